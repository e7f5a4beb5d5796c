"""Verify a domain file against its domain's spec and its own manifest: the fast checks of
cytoatlas.domains.verify (which the services run before serving a file), then the full checks.

Full checks (one scan per table, plus a GROUP BY over each key):
  row_counts  counted exactly
  keys        key columns non-null and unique
  values      the spec's column checks (p/q values in [0, 1], counts >= 0, signature types), no
              NULL in a column declared NOT NULL, and no NaN in any floating-point column
              (missing values must be NULL)
  integrity   every column of every table is read, so DuckDB verifies the checksum of every
              block holding table data (DuckDB has no separate integrity-check command)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import duckdb

from builders import publish

from builders.lifecycle.files import LifecycleError, open_read_only, write_failure
from cytoatlas.domains.manifest import INTERNAL_PREFIX, columns_by_table
from cytoatlas.domains.spec import DomainSpec
from cytoatlas.domains.sql import first_line, quote
from cytoatlas.domains.verify import FAST_CHECKS, FULL_CHECKS, Report, fast_checks, value_checks

Log = Callable[[str], None]
# The scans must read the values, not trust stored min/max statistics (which a damaged file may
# contradict, and which leave NaN out: DuckDB would fold isnan() to false).
_SCAN_CONFIG = {"disabled_optimizers": "statistics_propagation"}


def verify_file(path: Path, domain: str | None = None, *, full: bool = True, log: Log | None = None) -> Report:
    """Check one file; never raises for a bad file (the report lists the problems)."""
    started = time.monotonic()
    path = Path(path)
    report = Report(str(path), FULL_CHECKS if full else FAST_CHECKS)
    try:
        con = open_read_only(path, _SCAN_CONFIG if full else None)
    except LifecycleError as exc:
        report.problem("open", str(exc))
        return report
    try:
        spec, listed = fast_checks(con, report, domain, stored_counts=not full)
        if spec is not None and full:
            _full(con, report, spec, listed, log or (lambda line: None))
    except duckdb.Error as exc:  # damaged metadata: the catalog itself cannot be read
        report.problem("integrity", first_line(exc))
    finally:
        con.close()
    report.seconds = time.monotonic() - started
    return report


def check_new_file(temp: Path, target: Path, domain: str, *, full: bool = True) -> None:
    """Verify a finished temp file before it is published as `target` (the one check every
    writer of a domain file runs: builds, restore, split). full=False runs only the fast checks,
    for builds, whose engine has already checked every value and key while loading."""
    report = verify_file(temp, domain, full=full)
    if not report.ok:
        raise LifecycleError(f"{target}: the new file failed verification, nothing was published: "
                             + "; ".join(f"{check}: {message}" for check, message in report.problems))


def publish_verified(temp: Path, target: Path, domain: str, *, full: bool = True) -> None:
    """Verify a finished temp file (check_new_file), then publish it atomically
    (builders/publish.py). On failure the temp file is removed and the target left as it was."""
    try:
        check_new_file(temp, target, domain, full=full)
        publish.publish(temp, target)
    except BaseException as exc:
        publish.discard(temp)
        if isinstance(exc, OSError):
            raise write_failure(exc, target) from None
        raise


# --- the checks -------------------------------------------------------------------------------


def _full(con: duckdb.DuckDBPyConnection, report: Report, spec: DomainSpec, listed: dict[str, int],
          log: Log) -> None:
    name_of_file = Path(report.path).name
    total = 0
    for name, columns in columns_by_table(con).items():
        started = time.monotonic()
        table = next((t for t in spec.tables if t.name == name), None)
        # One scan per table: count, every check as a filtered count, and a hash of every column
        # (which makes DuckDB read, and checksum, every block of the table).
        checks: list[tuple[str, str, str]] = []  # (check, predicate, what a hit means)
        if table is not None:
            checks += [("keys", f"{quote(k)} IS NULL", f"key column '{k}' is NULL") for k in table.key]
            checks += [("values", f"{quote(c.name)} IS NULL", f"column '{c.name}' is NULL (declared NOT NULL)")
                       for c in table.columns if not c.nullable and c.name not in table.key]
            checks += [("values", predicate, f"column '{column}' {problem}")
                       for column, predicate, problem in value_checks(table)]
        checks += [("values", f"isnan({quote(c)})", f"column '{c}' holds NaN (a missing value must be NULL)")
                   for c, type_ in columns if type_ in ("DOUBLE", "FLOAT")]
        select = ["count(*)"] + [f"count(*) FILTER (WHERE {p})" for _, p, _ in checks]
        select += [f"bit_xor(hash({quote(c)}))" for c, _ in columns]
        try:
            row = con.execute(f"SELECT {', '.join(select)} FROM {quote(name)}").fetchone()
            duplicate = _duplicate_key(con, name, table.key) if table is not None else None
        except duckdb.Error as exc:
            report.problem("integrity", f"table {name}: {first_line(exc)}")
            continue
        rows = row[0]
        total += rows if not name.startswith(INTERNAL_PREFIX) else 0
        if name in listed and rows != listed[name]:
            report.problem("row_counts", f"table {name} holds {rows:,} rows, the manifest says {listed[name]:,}")
        for (check, _, meaning), hits in zip(checks, row[1:]):
            if hits:
                report.problem(check, f"table {name}: {hits:,} row{'s' if hits > 1 else ''} where {meaning}")
        if duplicate:
            report.problem("keys", f"table {name}: {duplicate}")
        log(f"verify {name_of_file}  {name}  {rows:,} rows  {time.monotonic() - started:.1f} s")
    report.rows = total


def _duplicate_key(con: duckdb.DuckDBPyConnection, name: str, key: tuple[str, ...]) -> str | None:
    keys = ", ".join(quote(k) for k in key)
    row = con.execute(f"SELECT count(*) OVER (), {keys} FROM (SELECT {keys} FROM {quote(name)} "
                      f"GROUP BY ALL HAVING count(*) > 1) LIMIT 1").fetchone()
    if row is None:
        return None
    example = ", ".join(f"{k}={v!r}" for k, v in zip(key, row[1:]))
    return f"{row[0]:,} duplicate key value{'s' if row[0] > 1 else ''}, e.g. ({example})"
