"""The fast checks of a built file against its domain's declaration: metadata only, no table scan.
A service runs them on every file before serving it; `cytoatlas verify` runs them before its full
checks (builders/lifecycle/verify.py).

  manifest    the three manifest tables exist with their columns; one _cytoatlas_manifest row
  schema      the manifest names a known domain (the expected one, if given) and the schema
              version its spec declares
  tables      every spec table is present with the declared columns and types, in order, and is
              listed in _cytoatlas_tables; every listed table exists
  row_counts  the stored row count of each table (DuckDB's storage metadata) equals the manifest's
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from cytoatlas.domains import DOMAINS
from cytoatlas.domains.manifest import INTERNAL_PREFIX, MANIFEST, columns_by_table
from cytoatlas.domains.spec import NON_NEGATIVE, PROBABILITY, SIGNATURE_TYPE, DomainSpec, TableSpec
from cytoatlas.domains.sql import first_line, literal, quote

FAST_CHECKS = ("manifest", "schema", "tables", "row_counts")
FULL_CHECKS = FAST_CHECKS + ("keys", "values", "integrity")


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




def problems_of_served_file(connection: duckdb.DuckDBPyConnection, path: str, domain: str) -> list[str]:
    """The fast checks on a file a service has just opened: each problem as "check: message"
    (none when the file may be served)."""
    report = Report(path, FAST_CHECKS)
    try:
        fast_checks(connection, report, domain, stored_counts=True)
    except duckdb.Error as exc:
        report.problem("integrity", first_line(exc))
    return [f"{check}: {message}" for check, message in report.problems]


def fast_checks(con: duckdb.DuckDBPyConnection, report: Report, expected_domain: str | None, stored_counts: bool
          ) -> tuple[DomainSpec | None, dict[str, int]]:
    """Run the fast checks; return the domain's spec (None when the rest cannot be checked) and
    the manifest's row count per table. stored_counts: compare the row counts kept in the storage
    metadata with the manifest's (the full checks count rows instead)."""
    catalog = columns_by_table(con)
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
        problem = column_problem(catalog[table.name], [(c.name, c.type) for c in table.columns])
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


def column_problem(found: list[tuple[str, str]], expected: list[tuple[str, str]]) -> str:
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


def value_checks(table: TableSpec) -> list[tuple[str, str, str]]:
    """(column, SQL predicate that is true for a bad value, problem) for each checked column."""
    checks = []
    for col in table.columns:
        q = quote(col.name)
        if col.check == PROBABILITY:
            checks.append((col.name, f"({q} < 0 OR {q} > 1)", "is not a probability (must be in [0, 1])"))
        elif col.check == NON_NEGATIVE:
            checks.append((col.name, f"{q} < 0", "is negative (must be >= 0)"))
        elif col.check == SIGNATURE_TYPE:
            allowed = ", ".join(literal(s) for s in table.signature_types)
            checks.append((col.name, f"{q} NOT IN ({allowed})",
                           f"is not a signature type (allowed: {', '.join(table.signature_types)})"))
    return checks


# --- helpers ----------------------------------------------------------------------------------
