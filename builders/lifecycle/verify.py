"""Verify a domain file against its domain's spec and its own manifest.

Fast checks (metadata only, no table scan; the services run these before serving a file):
  manifest    the three manifest tables exist with their columns; one _cytoatlas_manifest row
  schema      the manifest names a known domain (the expected one, if given) and the schema
              version its spec declares
  tables      every spec table is present with the declared columns and types, in order, and is
              listed in _cytoatlas_tables; every listed table exists
  row_counts  the stored row count of each table (DuckDB's storage metadata) equals the manifest's
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from builders import DOMAINS, publish
from builders.engine import MANIFEST, first_line, value_checks
from builders.ingest import quote
from builders.lifecycle.files import LifecycleError, open_read_only, write_failure
from builders.spec import DomainSpec

Log = Callable[[str], None]
FAST_CHECKS = ("manifest", "schema", "tables", "row_counts")
FULL_CHECKS = FAST_CHECKS + ("keys", "values", "integrity")
INTERNAL_PREFIX = "_cytoatlas_"
# The scans must read the values, not trust stored min/max statistics (which a damaged file may
# contradict, and which leave NaN out: DuckDB would fold isnan() to false).
_SCAN_CONFIG = {"disabled_optimizers": "statistics_propagation"}


@dataclass
class Report:
    path: str
    checks: tuple[str, ...]
    domain: str | None = None
    schema_version: int | None = None
    build_id: str | None = None
    tables: int = 0
    rows: int = 0
    extra_tables: list[str] = field(default_factory=list)  # served but not in the domain's spec
    problems: list[tuple[str, str]] = field(default_factory=list)  # (check, message)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, check: str, message: str) -> None:
        self.problems.append((check, message))

    def as_json(self) -> dict:
        failed = {check for check, _ in self.problems}
        return {"path": self.path, "ok": self.ok, "domain": self.domain, "schema_version": self.schema_version,
                "build_id": self.build_id, "tables": self.tables, "rows": self.rows,
                "extra_tables": self.extra_tables, "seconds": round(self.seconds, 3),
                "checks": {c: "fail" if c in failed else "pass" for c in ("open",) + self.checks},
                "problems": [{"check": c, "message": m} for c, m in self.problems]}

    def text(self) -> str:
        build = f"build {self.build_id[:12]}" if self.build_id else ""
        what = f"{self.domain} schema {self.schema_version} {build}" if self.domain else ""
        lines = [f"{'OK  ' if self.ok else 'FAIL'}  {self.path}  {what}  {self.tables} tables  "
                 f"{self.rows:,} rows  {self.seconds:.1f} s"]
        lines += [f"      {check}: {message}" for check, message in self.problems]
        if self.extra_tables:
            lines.append(f"      note: tables not in the {self.domain} spec (served as they are): "
                         f"{', '.join(self.extra_tables)}")
        return "\n".join(lines)


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
        spec, listed = _fast(con, report, domain, stored_counts=not full)
        if spec is not None and full:
            _full(con, report, spec, listed, log or (lambda line: None))
    except duckdb.Error as exc:  # damaged metadata: the catalog itself cannot be read
        report.problem("integrity", first_line(exc))
    finally:
        con.close()
    report.seconds = time.monotonic() - started
    return report


def check_served(connection: duckdb.DuckDBPyConnection, path: str, domain: str) -> None:
    """The fast checks on a file a service has just opened. Raises the serving layer's
    DatabaseError (the error a service already handles for a file it cannot serve)."""
    from cytoatlas.serving.database import DatabaseError  # here: the serving layer imports this module

    report = Report(path, FAST_CHECKS)
    try:
        _fast(connection, report, domain, stored_counts=True)
    except duckdb.Error as exc:
        report.problem("integrity", first_line(exc))
    if not report.ok:
        raise DatabaseError(f"{path}: failed verification: "
                            + "; ".join(f"{check}: {message}" for check, message in report.problems))


def check_new_file(temp: Path, target: Path, domain: str) -> None:
    """Fully verify a finished temp file before it is published as `target`."""
    report = verify_file(temp, domain)
    if not report.ok:
        raise LifecycleError(f"{target}: the new file failed verification, nothing was published: "
                             + "; ".join(f"{check}: {message}" for check, message in report.problems))


def publish_verified(temp: Path, target: Path, domain: str) -> None:
    """Fully verify a finished temp file, then publish it atomically (builders/publish.py).
    On failure the temp file is removed and the target left as it was."""
    try:
        check_new_file(temp, target, domain)
        publish.publish(temp, target)
    except BaseException as exc:
        publish.discard(temp)
        if isinstance(exc, OSError):
            raise write_failure(exc, target) from None
        raise


# --- the checks -------------------------------------------------------------------------------


def _fast(con: duckdb.DuckDBPyConnection, report: Report, expected_domain: str | None, stored_counts: bool
          ) -> tuple[DomainSpec | None, dict[str, int]]:
    """Run the fast checks; return the domain's spec (None when the rest cannot be checked) and
    the manifest's row count per table. stored_counts: compare the row counts kept in the storage
    metadata with the manifest's (the full checks count rows instead)."""
    catalog = publish.columns_by_table(con)
    for name, columns in MANIFEST.items():
        if name not in catalog:
            report.problem("manifest", f"no {name} table: not a CytoAtlas build")
            return None, {}
        if catalog[name] != list(columns):
            report.problem("manifest", f"{name} has columns {catalog[name]}, expected {list(columns)}")
            return None, {}
    rows = con.execute("SELECT domain, schema_version, build_id FROM _cytoatlas_manifest").fetchall()
    if len(rows) != 1:
        report.problem("manifest", f"_cytoatlas_manifest has {len(rows)} rows, expected 1")
        return None, {}
    report.domain, report.schema_version, report.build_id = rows[0]
    if report.domain not in DOMAINS:
        report.problem("schema", f"the manifest names an unknown domain {report.domain!r} "
                                 f"(domains: {', '.join(DOMAINS)})")
        return None, {}
    if expected_domain and report.domain != expected_domain:
        report.problem("schema", f"built for the {report.domain!r} domain, expected {expected_domain!r}")
        return None, {}
    spec = DOMAINS[report.domain]
    if report.schema_version != spec.schema_version:
        report.problem("schema", f"schema version {report.schema_version} is not known (the {spec.name} "
                                 f"spec is version {spec.schema_version})")
        return None, {}

    listing = con.execute("SELECT table_name, row_count FROM _cytoatlas_tables").fetchall()
    listed = dict(listing)
    if len(listed) != len(listing):
        report.problem("manifest", "_cytoatlas_tables lists a table more than once")
    for table in spec.tables:
        if table.name not in catalog:
            report.problem("tables", f"table {table.name} is missing")
            continue
        problem = _column_problem(catalog[table.name], [(c.name, c.type) for c in table.columns])
        if problem:
            report.problem("tables", f"table {table.name}: {problem}")
        if table.name not in listed:
            report.problem("tables", f"table {table.name} is not listed in _cytoatlas_tables")
    for name in listed:
        if name not in catalog:
            report.problem("tables", f"_cytoatlas_tables lists {name}, which the file does not hold")
    served = [name for name in catalog if not name.startswith(INTERNAL_PREFIX)]
    spec_names = {t.name for t in spec.tables}
    report.extra_tables = sorted(name for name in served if name not in spec_names)

    # estimated_size is the row count kept in the storage metadata (exact for the append-only
    # tables builders write), so no table is scanned here.
    stored = dict(con.execute("SELECT table_name, estimated_size FROM duckdb_tables() "
                              "WHERE database_name = current_database() AND schema_name = 'main'").fetchall())
    for name, expected in listed.items():
        if stored_counts and name in stored and stored[name] != expected:
            report.problem("row_counts", f"table {name} holds {stored[name]:,} rows, the manifest says {expected:,}")
    report.tables = len(served)
    report.rows = sum(stored.get(name, 0) for name in served)
    return spec, listed


def _column_problem(found: list[tuple[str, str]], expected: list[tuple[str, str]]) -> str:
    if found == expected:
        return ""
    found_types, expected_types = dict(found), dict(expected)
    parts = []
    missing = [c for c in expected_types if c not in found_types]
    extra = [c for c in found_types if c not in expected_types]
    retyped = [f"{c} is {found_types[c]}, declared {t}" for c, t in expected_types.items()
               if c in found_types and found_types[c] != t]
    if missing:
        parts.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if extra:
        parts.append(f"undeclared column{'s' if len(extra) > 1 else ''} {', '.join(extra)}")
    parts += retyped
    return "; ".join(parts) or (f"columns in the order {[c for c, _ in found]}, "
                                f"declared {[c for c, _ in expected]}")


def _full(con: duckdb.DuckDBPyConnection, report: Report, spec: DomainSpec, listed: dict[str, int],
          log: Log) -> None:
    name_of_file = Path(report.path).name
    total = 0
    for name, columns in publish.columns_by_table(con).items():
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
