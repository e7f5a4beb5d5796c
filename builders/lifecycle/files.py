"""What every lifecycle operation needs: one error type, opening a file read-only with a clear
message for each way that fails, and naming a write failure (a full disk above all)."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import duckdb

from cytoatlas.domains import DOMAINS
from cytoatlas.domains.sql import first_line
from cytoatlas.domains.spec import DomainSpec

# A DuckDB file has the 4-byte magic "DUCK" after its 8-byte header checksum.
_MAGIC, _MAGIC_OFFSET = b"DUCK", 8
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# The column types an export may hold: restore reads them from a file and puts them into a CREATE
# TABLE, so it accepts only these (a name, optional size, optional []), and export refuses the rest.
RESTORABLE_TYPE = re.compile(r"^[A-Z][A-Z0-9_]*(\(\d+(, ?\d+)?\))?(\[\])*$")


class LifecycleError(Exception):
    """An operation failed; the message names the file and the problem. Nothing half-written is
    left behind and no published file was changed."""


def domain_spec(domain: str) -> DomainSpec:
    try:
        return DOMAINS[domain]
    except KeyError:
        raise LifecycleError(f"unknown domain {domain!r}; domains: {', '.join(DOMAINS)}") from None


def check_duckdb_file(path: Path) -> None:
    """Raise LifecycleError unless `path` is an existing DuckDB database file."""
    if not path.exists():
        raise LifecycleError(f"{path}: no such file")
    if not path.is_file():
        raise LifecycleError(f"{path}: not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(_MAGIC_OFFSET + len(_MAGIC))
    except OSError as exc:
        raise LifecycleError(f"{path}: cannot read: {exc.strerror}") from None
    if head[_MAGIC_OFFSET:] != _MAGIC:
        raise LifecycleError(f"{path}: not a DuckDB database file")


def open_read_only(path: Path, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file read-only (never changes it), or raise LifecycleError saying why not."""
    check_duckdb_file(path)
    try:
        con = duckdb.connect(str(path), read_only=True, config=config or {})
    except duckdb.Error as exc:
        raise LifecycleError(f"{path}: cannot open as a DuckDB database: {first_line(exc)}") from None
    con.execute("SET enable_progress_bar = false")
    return con


def is_disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in _NO_SPACE or "No space left on device" in str(exc)


def write_failure(exc: BaseException, target: Path, doing: str = "") -> LifecycleError:
    """The LifecycleError for an operation that failed while writing `target` (whose temp files
    the caller has removed): 'disk full' when that is the cause."""
    text = first_line(exc)
    if is_disk_full(exc):
        return LifecycleError(f"disk full while writing {target}; nothing was published ({text})")
    if isinstance(exc, (OSError, duckdb.IOException)):
        return LifecycleError(f"cannot write {target}: {text}")
    return LifecycleError(f"{doing or target}: {text}")
