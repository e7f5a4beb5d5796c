"""Split a legacy monolithic DuckDB file (every domain's tables in one file, as the real project
had) into the three domain files.

Each table goes to the domain whose spec declares it. The whole plan is checked before anything
is written: a domain's file is written only when the legacy file holds every table of its spec
(otherwise the file would fail verification and no service would serve it), and every declared
column must be found (by its name or one of the spec's source names). Rows are copied as the
builders ingest them (spec types, NaN -> NULL, canonical signature types, stored in key order),
the row count of each table is compared with the legacy table's, the manifest names the legacy
file (path, SHA-256, size) as the source of every table. Every domain file is written beside its
target and fully verified before any is published (temp file -> verify read-only -> fsync ->
rename, builders/publish.py), so a failure while writing or verifying publishes none. The files
are then published one rename at a time: a failure among the renames leaves the files renamed
before it published (each a complete, verified file) and removes the rest. The legacy file is only
ever opened read-only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import duckdb

from builders import publish
from cytoatlas.domains import DOMAINS
from builders.engine import comment_table, create_sql, human_size, sha256_file, write_manifest
from builders.ingest import normalised
from builders.lifecycle.files import LifecycleError, domain_spec, is_disk_full, open_read_only, write_failure
from builders.lifecycle.verify import check_new_file
from cytoatlas.domains.manifest import INTERNAL_PREFIX
from cytoatlas.domains.sql import first_line, literal, quote
from cytoatlas.domains.spec import TableSpec

Log = Callable[[str], None]
_LEGACY = "__legacy"  # alias of the legacy file, ATTACHed read-only into each new file


@dataclass
class Plan:
    """Which legacy table goes where."""

    tables: dict[str, list[TableSpec]] = field(default_factory=dict)  # domain -> its spec tables
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> spec column -> legacy column
    dropped: dict[str, list[str]] = field(default_factory=dict)  # table -> legacy columns no spec declares
    unassigned: list[str] = field(default_factory=list)  # legacy tables no spec declares
    skipped: list[str] = field(default_factory=list)  # domains with no table in the legacy file


def split(legacy: Path, output: Path, unassigned_to: str | None = None, log: Log | None = None) -> dict[str, Path]:
    """Write <output>/<domain file> for every domain the legacy file holds; return the paths."""
    started = time.monotonic()
    emit = log or (lambda line: None)
    legacy, output = Path(legacy), Path(output)
    if unassigned_to is not None:
        domain_spec(unassigned_to)
    con = open_read_only(legacy)
    try:
        plan = _plan(con, legacy, unassigned_to)
        copied = [t.name for tables in plan.tables.values() for t in tables] + plan.unassigned
        legacy_rows = {name: con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0] for name in copied}
    finally:
        con.close()
    targets = {domain: output / DOMAINS[domain].file_name for domain in plan.tables}
    for target in targets.values():
        if target.resolve() == legacy.resolve():
            raise LifecycleError(f"{legacy}: the split would publish {target} over the legacy file itself; "
                                 f"choose another --output directory")
    for name in plan.unassigned:
        fate = f"goes to {unassigned_to}" if unassigned_to else "left out (no domain declares it; see --unassigned-to)"
        emit(f"split  unassigned table {name} ({legacy_rows[name]:,} rows): {fate}")
    for table, columns in plan.dropped.items():
        emit(f"split  {table}: legacy columns not in the spec, left out: {', '.join(columns)}")
    for domain in plan.skipped:
        emit(f"split  {domain}: the legacy file holds none of its tables; {DOMAINS[domain].file_name} not written")
    emit(f"split  reading {legacy} ({human_size(legacy.stat().st_size)}) for its checksum")
    source = (str(legacy.resolve()), sha256_file(legacy), legacy.stat().st_size)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LifecycleError(f"cannot create the output directory {output}: {exc.strerror}") from None
    # Every domain file is written and verified before any is published, so a failure while
    # writing or verifying (a bad value, a full disk) publishes none of them.
    temps: dict[str, Path] = {}
    try:
        for domain, tables in plan.tables.items():
            extra = plan.unassigned if domain == unassigned_to else []
            temps[domain] = publish.temp_path(targets[domain])
            _write_domain(domain, tables, extra, plan, legacy_rows, source, temps[domain], emit)
        for domain, temp in temps.items():
            check_new_file(temp, targets[domain], domain)
        for domain, temp in temps.items():
            publish.publish(temp, targets[domain])
            emit(f"split {domain}  published {targets[domain]}  {human_size(targets[domain].stat().st_size)}")
    except BaseException as exc:
        for temp in temps.values():
            publish.discard(temp)
        if isinstance(exc, (OSError, duckdb.Error)):
            raise write_failure(exc, output, f"{legacy}: split failed") from None
        raise
    emit(f"split  wrote {len(targets)} domain files from {legacy.name} in {time.monotonic() - started:.1f} s")
    return targets


def _plan(con: duckdb.DuckDBPyConnection, legacy: Path, unassigned_to: str | None) -> Plan:
    found: dict[str, list[str]] = {}
    for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT starts_with(table_name, ?) ORDER BY table_name, column_index",
            [INTERNAL_PREFIX]).fetchall():
        found.setdefault(table, []).append(column)
    plan = Plan()
    owned = {t.name for spec in DOMAINS.values() for t in spec.tables}
    plan.unassigned = [name for name in found if name not in owned]
    problems = []
    for domain, spec in DOMAINS.items():
        present = [t for t in spec.tables if t.name in found]
        if not present:
            if domain == unassigned_to and plan.unassigned:
                problems.append(f"--unassigned-to {domain}, but the legacy file holds none of the {domain} tables")
            plan.skipped.append(domain)
            continue
        missing = [t.name for t in spec.tables if t.name not in found]
        if missing:
            problems.append(f"the legacy file lacks the {domain} table{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)}, so {spec.file_name} would be incomplete")
            continue
        plan.tables[domain] = present
        for table in present:
            mapping = {}
            for col in table.columns:
                names = list(dict.fromkeys((col.name, *col.candidates)))  # as served, or as in the sources
                match = next((name for name in names if name in found[table.name]), None)
                if match is None:
                    problems.append(f"table {table.name}: no column {' or '.join(names)}")
                else:
                    mapping[col.name] = match
            plan.columns[table.name] = mapping
            dropped = [c for c in found[table.name] if c not in mapping.values()]
            if dropped:
                plan.dropped[table.name] = dropped
    if problems:
        raise LifecycleError(f"{legacy}: cannot split, nothing was written:\n  " + "\n  ".join(problems))
    return plan


def _write_domain(domain: str, tables: list[TableSpec], extra: list[str], plan: Plan, legacy_rows: dict[str, int],
                  source: tuple[str, str, int], temp: Path, emit: Log) -> None:
    """Write one domain's file as `temp` (beside its target), manifest included."""
    spec = domain_spec(domain)
    publish.remove_stale(temp.with_name(spec.file_name))
    publish.discard(temp)
    built_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path, sha256, size = source
    table_rows, source_rows = [], []
    con = duckdb.connect(str(temp))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH {literal(path)} AS {_LEGACY} (READ_ONLY)")
        for table in tables:
            started = time.monotonic()
            rows = _copy_table(con, table, plan.columns[table.name], legacy_rows[table.name])
            comment_table(con, table)
            table_rows.append((table.name, table.description, list(table.key), rows, path, built_at))
            source_rows.append((table.name, path, sha256, size, rows))
            emit(f"split {domain}  {table.name}  {rows:,} rows  {time.monotonic() - started:.1f} s")
        for name in extra:
            started = time.monotonic()
            rows = _copy_unassigned(con, name, legacy_rows[name])
            table_rows.append((name, "", [], rows, path, built_at))
            source_rows.append((name, path, sha256, size, rows))
            emit(f"split {domain}  {name}  {rows:,} rows (unassigned table)  {time.monotonic() - started:.1f} s")
        con.execute(f"DETACH {_LEGACY}")
        write_manifest(con, spec, built_at, table_rows, source_rows)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _copy_table(con: duckdb.DuckDBPyConnection, table: TableSpec, mapping: dict[str, str], expected: int) -> int:
    """Copy one spec table as the builders ingest it; check no row was lost or added."""
    con.execute(create_sql(table))
    select = ", ".join(
        f"{normalised(c, f'CAST({quote(mapping[c.name])} AS {c.type})', table.signature_types)} AS {quote(c.name)}"
        for c in table.columns)
    order = ", ".join(quote(k) for k in table.key)
    legacy_name = f"{_LEGACY}.main.{quote(table.name)}"
    try:
        con.execute(f"INSERT INTO {quote(table.name)} SELECT * FROM (SELECT {select} FROM {legacy_name}) "
                    f"ORDER BY {order}")
    except duckdb.Error as exc:  # name the column and value (the scans run only after a failure)
        if isinstance(exc, duckdb.IOException) or is_disk_full(exc):
            raise
        raise LifecycleError(f"table {table.name}: {_uncastable(con, table, mapping, legacy_name) or first_line(exc)}; "
                             f"nothing was published") from None
    return _checked_count(con, table.name, expected)


def _uncastable(con: duckdb.DuckDBPyConnection, table: TableSpec, mapping: dict[str, str], legacy_name: str) -> str:
    """Name the first column whose legacy values do not convert to the spec's type."""
    for c in table.columns:
        src = quote(mapping[c.name])
        row = con.execute(f"SELECT {src}::VARCHAR FROM {legacy_name} WHERE {src} IS NOT NULL AND "
                          f"TRY_CAST({src} AS {c.type}) IS NULL LIMIT 1").fetchone()
        if row is not None:
            return f"column {mapping[c.name]!r}: cannot convert {row[0]!r} to {c.type}"
    return ""


def _copy_unassigned(con: duckdb.DuckDBPyConnection, name: str, expected: int) -> int:
    """A table no spec declares: copied as it is (its own types, order and comment)."""
    con.execute(f"CREATE TABLE {quote(name)} AS SELECT * FROM {_LEGACY}.main.{quote(name)}")
    (comment,) = con.execute("SELECT comment FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
                             [_LEGACY, name]).fetchone()
    if comment:
        con.execute(f"COMMENT ON TABLE {quote(name)} IS {literal(comment)}")
    return _checked_count(con, name, expected)


def _checked_count(con: duckdb.DuckDBPyConnection, name: str, expected: int) -> int:
    (rows,) = con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()
    if rows != expected:
        raise LifecycleError(f"table {name}: copied {rows:,} rows, the legacy file holds {expected:,}; "
                             f"nothing was published")
    return rows
