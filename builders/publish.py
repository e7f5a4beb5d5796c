"""Temp file -> verify -> atomic rename: a published domain file is always a complete build.

A build writes `.<file_name>.<pid>.tmp` (and spills to `.<file_name>.<pid>.spill/`) beside the
published file, so the rename stays on one file system. `verify` reopens the finished temp file
read-only, exactly as a service will, before `publish` renames it over the published file. On any
failure `discard` removes the temp file, its WAL and the spill directory; the published file is
never touched until the rename.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb


class PublishError(Exception):
    """The finished file failed verification; the message says what is wrong."""


def temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def spill_dir(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.spill")


def discard(temp: Path) -> None:
    """Remove a temp build file, its WAL and its spill directory (whichever exist)."""
    for path in (temp, temp.with_name(temp.name + ".wal")):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    shutil.rmtree(temp.with_suffix(".spill"), ignore_errors=True)


def remove_stale(target: Path) -> list[Path]:
    """Remove temp files and spill directories left by builds of `target` whose process is gone."""
    pattern = re.compile(re.escape(f".{target.name}.") + r"(\d+)\.(tmp|tmp\.wal|spill)$")
    removed = []
    for path in target.parent.glob(f".{target.name}.*"):
        m = pattern.match(path.name)
        if not m or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def columns_by_table(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Each table of the open file's main schema -> its (column, type) pairs in order."""
    catalog: dict[str, list[tuple[str, str]]] = {}
    for table, column, type_ in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "ORDER BY table_name, column_index").fetchall():
        catalog.setdefault(table, []).append((column, type_))
    return catalog


def verify(path: Path, expected: dict[str, list[tuple[str, str]]],
           internal: dict[str, list[tuple[str, str]]]) -> None:
    """Open `path` read-only and check it serves what the build meant to write.

    expected: served table -> [(column, type), ...] in order; internal: the same for the manifest
    tables.
    Every expected table is present with exactly those columns, the manifest has one row, and
    `_cytoatlas_tables` lists every expected table with its true row count.
    """
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise PublishError(f"the built file does not reopen read-only: {exc}") from None
    try:
        catalog = columns_by_table(con)
        for table, columns in internal.items():
            if catalog.get(table) != columns:
                raise PublishError(f"internal table {table} has columns {catalog.get(table)}, expected {columns}")
        for table, columns in expected.items():
            if table not in catalog:
                raise PublishError(f"table {table} is missing from the built file")
            if catalog[table] != columns:
                raise PublishError(f"table {table} has columns {catalog[table]}, expected {columns}")
        (manifests,) = con.execute("SELECT count(*) FROM _cytoatlas_manifest").fetchone()
        if manifests != 1:
            raise PublishError(f"_cytoatlas_manifest has {manifests} rows, expected 1")
        listed = dict(con.execute("SELECT table_name, row_count FROM _cytoatlas_tables").fetchall())
        if set(listed) != set(expected):
            raise PublishError(f"_cytoatlas_tables lists {sorted(listed)}, expected {sorted(expected)}")
        for table in expected:
            (rows,) = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            if rows != listed[table]:
                raise PublishError(f"table {table} has {rows} rows, the manifest says {listed[table]}")
    finally:
        con.close()


def publish(temp: Path, target: Path) -> None:
    """fsync the finished temp file, rename it over `target` atomically, fsync the directory."""
    fsync_file(temp)
    os.replace(temp, target)
    fsync_dir(target.parent)


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk; nothing on platforms without
    directory fds."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
