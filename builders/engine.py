"""The build engine: a source directory -> one validated, self-describing, atomically published
DuckDB file per domain.

Per domain (`build_domain`):
  1. ingest each table with DuckDB's own reader and the spec's types, sorted by the table's key
     (one `INSERT ... SELECT ... ORDER BY key` into a table declared from the spec; NOT NULL on
     key and non-nullable columns). NaN -> NULL and signature-type spellings are normalised in
     that same pass (builders/ingest.py);
  2. validate on the built table, two cheap scans: PROBABILITY in [0, 1], NON_NEGATIVE >= 0,
     signature types allowed (one parallel aggregate), key unique (the table is key-sorted, so
     duplicates are adjacent: compare each row's key hash with the previous row's). Only a
     failure re-reads the source, to name file, line/record and column;
  3. comment every table and column from the spec (services read them back);
  4. write the manifest tables `_cytoatlas_manifest`, `_cytoatlas_tables`, `_cytoatlas_sources`;
  5. CHECKPOINT, close, the fast checks of `cytoatlas verify` read-only, fsync, rename over the
     published file (builders/lifecycle/verify.py publish_verified, builders/publish.py).
`build_all` runs the domains in parallel processes. `describe_specs` renders the table specs.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import queue as queue_module
import shutil
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import duckdb

from builders import publish
from cytoatlas.domains import DOMAINS
from builders.lifecycle.files import LifecycleError
from builders.lifecycle.verify import publish_verified
from builders.ingest import SourceError, SourceFile, TableSource, normalised, resolve_sources
from cytoatlas.domains.manifest import MANIFEST, MANIFEST_COMMENTS
from cytoatlas.domains.sql import first_line, literal, quote
from cytoatlas.domains.spec import DomainSpec, TableSpec
from cytoatlas.domains.verify import value_checks

Log = Callable[[str], None]

# The manifest tables the services read (names and columns are a contract with cytoatlas.serving).
_PUBLISHED = "__published"  # alias of the published file, ATTACHed for a partial rebuild


class BuildError(Exception):
    """A build failed; the message says what is wrong (file, line/record and column where a value
    is bad). The published file, if any, is unchanged."""


def build_domain(domain: str, source: Path, output: Path, tables: Sequence[str] | None = None,
                 log: Log | None = None, *, memory_limit: str | None = None,
                 threads: int | None = None) -> Path:
    """Build <output>/<DomainSpec.file_name> from <source>; return the published path.

    tables: rebuild only these (plus the dependencies of derived ones, and derived tables that
    depend on them); every other table is copied unchanged from the currently published file.
    memory_limit / threads: DuckDB settings (default: $CYTOATLAS_BUILD_MEMORY_LIMIT or half the
    RAM; $CYTOATLAS_BUILD_THREADS or all cores).
    """
    started = time.monotonic()
    spec = domain_spec(domain)
    source, output = Path(source), Path(output)
    if not source.is_dir():
        raise BuildError(f"{domain}: source directory {source} does not exist")
    plan = _plan(spec, tables)
    target = output / spec.file_name
    if any(not rebuild for _, rebuild in plan) and not target.is_file():
        raise BuildError(f"{domain}: --tables rebuilds part of a published file, but {target} does not "
                         f"exist yet; build the whole domain first")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"{domain}: cannot create the output directory {output}: {exc}") from None
    publish.remove_stale(target)
    temp, spill = publish.temp_path(target), publish.spill_dir(target)
    publish.discard(temp)
    emit = log or (lambda line: None)
    try:
        spill.mkdir()
        con = duckdb.connect(str(temp), config=_duckdb_config(spill, memory_limit, threads))
        try:
            con.execute("SET enable_progress_bar = false")  # DuckDB draws one on long queries
            _DomainBuild(con, spec, source, target, spill, emit).run(plan)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        publish_verified(temp, target, domain, full=False)  # values and keys were checked while loading
    except BaseException as exc:
        publish.discard(temp)
        if isinstance(exc, BuildError):
            raise
        if isinstance(exc, SourceError):
            raise BuildError(str(exc)) from None
        if isinstance(exc, LifecycleError):
            raise BuildError(f"{domain}: {exc}") from None
        if isinstance(exc, (duckdb.Error, OSError)):
            raise BuildError(f"{domain}: {first_line(exc)}") from exc
        raise
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    emit(f"{domain}  published {target}  {human_size(target.stat().st_size)}  "
         f"{time.monotonic() - started:.1f} s")
    return target


def build_all(source: Path, output: Path, domains: Sequence[str] = ("atlas", "perturbation", "spatial"),
              log: Log | None = None) -> dict[str, Path]:
    """Build the domains in parallel processes (one per domain); raise BuildError naming every
    failed domain. Domains that succeed are published even when another fails."""
    domains = list(dict.fromkeys(domains))
    for d in domains:
        domain_spec(d)
    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    memory = _default_memory_limit(len(domains))
    procs = {d: ctx.Process(target=_child_build, name=f"cytoatlas-build-{d}",
                            args=(d, str(source), str(output), memory, messages)) for d in domains}
    published: dict[str, Path] = {}
    failures: dict[str, str] = {}
    emit = log or (lambda line: None)

    def handle(message: tuple) -> None:
        kind, domain, payload = message
        if kind == "log":
            emit(payload)
        elif kind == "done":
            published[domain] = Path(payload)
        else:
            failures[domain] = payload

    try:
        for p in procs.values():
            p.start()
        while len(published) + len(failures) < len(domains):
            try:
                handle(messages.get(timeout=0.2))
                continue
            except queue_module.Empty:
                pass
            for d, p in procs.items():
                if d in published or d in failures or p.is_alive():
                    continue
                while True:  # the child may have reported just before exiting
                    try:
                        handle(messages.get(timeout=0.5))
                    except queue_module.Empty:
                        break
                if d not in published and d not in failures:
                    failures[d] = f"the build process exited with code {p.exitcode} without a result"
    finally:  # normally every child has reported and is exiting; after an interrupt, stop them
        for d, p in procs.items():
            if p.is_alive() and (d in published or d in failures):
                p.join(timeout=10)
            if p.is_alive():
                p.terminate()
            p.join()
    if failures:
        lines = "\n".join(f"  {d}: {failures[d]}" for d in domains if d in failures)
        error = BuildError(f"{len(failures)} of {len(domains)} domain builds failed:\n{lines}")
        error.failures, error.published = failures, published  # type: ignore[attr-defined]
        raise error
    return {d: published[d] for d in domains}


def _child_build(domain: str, source: str, output: str, memory_limit: str, messages) -> None:
    """Entry point of one build_all process: build, report the result on the queue."""
    try:
        path = build_domain(domain, Path(source), Path(output), memory_limit=memory_limit,
                            log=lambda line: messages.put(("log", domain, line)))
        messages.put(("done", domain, str(path)))
    except BuildError as exc:
        messages.put(("error", domain, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        messages.put(("error", domain, f"{type(exc).__name__}: {exc}"))


# --- listing ----------------------------------------------------------------------------------


def domain_spec(domain: str) -> DomainSpec:
    try:
        return DOMAINS[domain]
    except KeyError:
        raise BuildError(f"unknown domain {domain!r}; domains: {', '.join(DOMAINS)}") from None


def list_tables(domain: str | None = None) -> list[dict]:
    """One dict per table: domain, file, table, source ('derived from ...'), format, key."""
    rows = []
    for spec in (domain_spec(domain),) if domain else DOMAINS.values():
        for t in spec.tables:
            src = (f"derived from {', '.join(t.depends_on)}" if t.derived_sql else t.source)
            fmt = "sql" if t.derived_sql else (f"json ({t.json_layout})" if t.format == "json" else t.format)
            rows.append({"domain": spec.name, "file": spec.file_name, "table": t.name, "source": src,
                         "format": fmt, "key": list(t.key), "description": t.description})
    return rows


def describe_specs(domain: str | None = None) -> str:
    """The table specs as text (`cytoatlas build --list`): per domain, each table and its source."""
    out = []
    for spec in (domain_spec(domain),) if domain else DOMAINS.values():
        rows = [r for r in list_tables(spec.name)]
        out.append(f"{spec.name}  ->  {spec.file_name}  (schema version {spec.schema_version}, "
                   f"{len(rows)} tables)")
        width = max(len(r["table"]) for r in rows)
        for r in rows:
            out.append(f"  {r['table']:<{width}}  {r['source']}  [{r['format']}]")
            out.append(f"  {'':<{width}}  key: {', '.join(r['key'])}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# --- one domain build -------------------------------------------------------------------------


class _DomainBuild:
    def __init__(self, con: duckdb.DuckDBPyConnection, spec: DomainSpec, source: Path, target: Path,
                 scratch: Path, log: Log):
        self.con, self.spec, self.source, self.target, self.log = con, spec, source, target, log
        self.scratch = scratch  # the spill directory: also holds JSON arrays split out of objects
        self.built_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.table_rows: list[tuple] = []  # _cytoatlas_tables rows
        self.source_rows: list[tuple] = []  # _cytoatlas_sources rows

    def run(self, plan: list[tuple[TableSpec, bool]]) -> None:
        copying = any(not rebuild for _, rebuild in plan)
        if copying:
            self._attach_published()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as hasher:
            for table, rebuild in plan:
                started = time.monotonic()
                if rebuild:
                    rows = self._build(table, hasher)
                    note = ""
                else:
                    rows = self._copy(table)
                    note = "  (copied from the published file)"
                self._comment(table)
                self.log(f"{self.spec.name}  {table.name}  {rows:,} rows  "
                         f"{time.monotonic() - started:.1f} s{note}")
        if copying:
            self.con.execute(f"DETACH {_PUBLISHED}")
        order = {t.name: i for i, t in enumerate(self.spec.tables)}
        self.table_rows.sort(key=lambda r: order[r[0]])
        self.source_rows.sort(key=lambda r: (order[r[0]], r[1]))
        self._write_manifest()

    # --- building a table ---------------------------------------------------------------------

    def _build(self, table: TableSpec, hasher: ThreadPoolExecutor) -> int:
        con = self.con
        con.execute(create_sql(table))
        source: TableSource | None = None
        if table.derived_sql:
            files: list[SourceFile] = []
            hashes: list[Future] = []
            cols = ", ".join(f"{normalised(c, quote(c.name), table.signature_types)} AS {quote(c.name)}"
                             for c in table.columns)
            select = f"SELECT {cols} FROM ({table.derived_sql}) AS __derived"
        else:
            files = resolve_sources(table, self.source)
            hashes = [hasher.submit(sha256_file, f.path) for f in files]
            source = TableSource(con, table, files, self.scratch) if files else None
            select = source.select_sql() if files else None  # an optional source that is absent: empty
        order = ", ".join(quote(k) for k in table.key)
        try:
            if select is not None:
                con.execute(f"INSERT INTO {quote(table.name)} SELECT * FROM ({select}) ORDER BY {order}")
        except duckdb.Error as exc:
            if source is not None:
                raise source.explain(exc) from None
            raise self._derived_failure(table, select, exc) from None
        self._validate(table, source)
        (rows,) = con.execute(f"SELECT count(*) FROM {quote(table.name)}").fetchone()
        self.table_rows.append((table.name, table.description, list(table.key), rows,
                                table.source if not table.derived_sql else "derived", self.built_at))
        for f, count, digest in zip(files, self._file_rows(table, source, rows), hashes):
            self.source_rows.append((table.name, f.rel, digest.result(), f.size, count))
        return rows

    def _file_rows(self, table: TableSpec, source: TableSource | None, rows: int) -> list[int]:
        if source is None:
            return []
        if len(source.files) == 1:
            return [rows]
        names = [f.path.name for f in source.files]
        if table.source_file_column and len(set(names)) == len(names):
            counts = dict(self.con.execute(
                f"SELECT {quote(table.source_file_column)}, count(*) FROM {quote(table.name)} GROUP BY ALL"
            ).fetchall())
            return [counts.get(n, 0) for n in names]
        return source.row_counts()

    def _derived_failure(self, table: TableSpec, select: str, exc: duckdb.Error) -> BuildError:
        if isinstance(exc, duckdb.ConstraintException):
            for col in table.columns:
                if col.nullable and col.name not in table.key:
                    continue
                row = self.con.execute(f"SELECT * FROM ({select}) WHERE {quote(col.name)} IS NULL LIMIT 1"
                                       ).fetchone()
                if row is not None:
                    key = _key_text(table, dict(zip(table.column_names, row)))
                    return BuildError(f"derived table {table.name}: column '{col.name}' is NULL in the row "
                                      f"with {key}")
        return BuildError(f"derived table {table.name}: {first_line(exc)}")

    def _validate(self, table: TableSpec, source: TableSource | None) -> None:
        """Value checks (one parallel aggregate) and key uniqueness (one streaming pass).

        The table is stored in key order, so equal keys are adjacent: each row's key hash is
        compared with the previous row's (a 64-bit hash per row, not the key strings, keeps the
        single-threaded window cheap); an equal hash is then confirmed on the keys themselves.
        The same pass checks that the window sees rows in storage (rowid) order, which adjacency
        relies on."""
        name = quote(table.name)
        checks = value_checks(table)
        if checks:
            bad = self.con.execute(f"SELECT {', '.join(f'count(*) FILTER (WHERE {p})' for _, p, _ in checks)} "
                                   f"FROM {name}").fetchone()
            for (column, predicate, problem), n in zip(checks, bad):
                if n:
                    raise self._bad_value(table, source, column, predicate, problem)
        keys = [quote(k) for k in table.key]
        unordered, same_hash = self.con.execute(
            "SELECT count(*) FILTER (WHERE __rowid <= __previous_rowid), count(*) FILTER (WHERE __h = __previous_h) "
            "FROM (SELECT __rowid, __h, lag(__rowid) OVER () AS __previous_rowid, lag(__h) OVER () AS __previous_h "
            f"FROM (SELECT rowid AS __rowid, hash({', '.join(keys)}) AS __h FROM {name}))").fetchone()
        if unordered:
            raise BuildError(f"table {table.name}: a scan returned rows out of storage order, so duplicate "
                             f"keys cannot be checked (a DuckDB ordering problem, not a data problem)")
        if same_hash:
            lags = ", ".join(f"lag({k}) OVER () AS __lag{i}" for i, k in enumerate(keys))
            equal = " AND ".join(f"{k} = __lag{i}" for i, k in enumerate(keys))
            values = self.con.execute(f"SELECT {', '.join(keys)} FROM (SELECT {', '.join(keys)}, {lags} FROM {name}) "
                                      f"WHERE {equal} LIMIT 1").fetchone()
            if values is not None:  # else only a hash collision
                raise self._duplicate(table, source, values)

    def _bad_value(self, table: TableSpec, source: TableSource | None, column: str, predicate: str,
                   problem: str) -> Exception:
        if source is not None:
            hits = source.locate(predicate, columns=(column,))
            if hits:
                pos, (value,) = hits[0]
                label = source.column_label(column, source.files.index(pos.file))
                return SourceError(f"{pos}, column {label}: {_show(value)} {problem}")
        row = self.con.execute(f"SELECT * FROM {quote(table.name)} WHERE {predicate} LIMIT 1").fetchone()
        values = dict(zip(table.column_names, row))
        where = f"derived table {table.name}" if source is None else f"table {table.name}"
        return BuildError(f"{where}, row with {_key_text(table, values)}, column '{column}': "
                          f"{_show(values[column])} {problem}")

    def _duplicate(self, table: TableSpec, source: TableSource | None, values: tuple) -> Exception:
        key = _key_text(table, dict(zip(table.key, values)))
        if source is not None:
            hits = source.locate(" AND ".join(f"{quote(k)} = ?" for k in table.key), list(values), limit=2)
            if len(hits) == 2:
                (a, _), (b, _) = hits
                second = b.where if b.file == a.file else str(b)
                return SourceError(f"{a.file.rel}: duplicate key ({key}) at {a.where} and {second}")
        where = f"derived table {table.name}" if source is None else f"table {table.name}"
        return BuildError(f"{where}: duplicate key ({key})")

    # --- copying a table from the published file ------------------------------------------------

    def _attach_published(self) -> None:
        try:
            self.con.execute(f"ATTACH {literal(str(self.target))} AS {_PUBLISHED} (READ_ONLY)")
            row = self.con.execute(
                f"SELECT domain, schema_version FROM {_PUBLISHED}._cytoatlas_manifest").fetchone()
        except duckdb.Error as exc:
            raise BuildError(f"{self.spec.name}: cannot read the published file {self.target}: "
                             f"{first_line(exc)}") from None
        if row != (self.spec.name, self.spec.schema_version):
            raise BuildError(f"{self.spec.name}: the published file {self.target} is domain {row[0]!r} schema "
                             f"version {row[1]}, the spec is {self.spec.name!r} version "
                             f"{self.spec.schema_version}: build the whole domain")

    def _copy(self, table: TableSpec) -> int:
        con, name = self.con, table.name
        found = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
                            "AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
                            [_PUBLISHED, name]).fetchall()
        expected = [(c.name, c.type) for c in table.columns]
        if found != expected:
            raise BuildError(f"{self.spec.name}: table {name} in the published file does not match its spec "
                             f"(columns {found or 'missing'}, expected {expected}); rebuild it too "
                             f"(--tables {name},...) or build the whole domain")
        meta = con.execute(f"SELECT source, built_at FROM {_PUBLISHED}._cytoatlas_tables WHERE table_name = ?",
                           [name]).fetchone()
        if meta is None:
            raise BuildError(f"{self.spec.name}: table {name} is not in the published file's manifest; "
                             f"build the whole domain")
        con.execute(create_sql(table))
        cols = ", ".join(quote(c.name) for c in table.columns)
        con.execute(f"INSERT INTO {quote(name)} SELECT {cols} FROM {_PUBLISHED}.main.{quote(name)}")
        (rows,) = con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()
        self.table_rows.append((name, table.description, list(table.key), rows, meta[0], meta[1]))
        self.source_rows += con.execute(
            f"SELECT table_name, path, sha256, size_bytes, row_count FROM {_PUBLISHED}._cytoatlas_sources "
            f"WHERE table_name = ?", [name]).fetchall()
        return rows

    # --- comments and manifest ------------------------------------------------------------------

    def _comment(self, table: TableSpec) -> None:
        comment_table(self.con, table)

    def _write_manifest(self) -> None:
        write_manifest(self.con, self.spec, self.built_at, self.table_rows, self.source_rows)


# --- shared with builders/lifecycle (restore, split): declare, comment, manifest, checks ---------


def create_sql(table: TableSpec) -> str:
    cols = ", ".join(f"{quote(c.name)} {c.type}{' NOT NULL' if not c.nullable or c.name in table.key else ''}"
                     f"{f' USING COMPRESSION {c.compression}' if c.compression else ''}"
                     for c in table.columns)
    return f"CREATE TABLE {quote(table.name)} ({cols})"


def stored_compression(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, set[str]]:
    """column -> how DuckDB compressed its segments in the file (lower case, e.g. {"uncompressed"}):
    what `create_sql`'s USING COMPRESSION came to."""
    stored: dict[str, set[str]] = {}
    for column, compression in con.execute("SELECT column_name, lower(compression) FROM pragma_storage_info(?) "
                                           "WHERE segment_type <> 'VALIDITY'", [table]).fetchall():
        stored.setdefault(column, set()).add(compression)
    return stored


def comment_table(con: duckdb.DuckDBPyConnection, table: TableSpec) -> None:
    """Store the spec's table and column descriptions as comments (the services read them), in one
    transaction: committed one by one, they cost ~6 ms a table."""
    name = quote(table.name)
    statements = [f"COMMENT ON TABLE {name} IS {literal(table.description)}"] + [
        f"COMMENT ON COLUMN {name}.{quote(col.name)} IS {literal(col.description)}"
        for col in table.columns if col.description]
    con.execute("BEGIN TRANSACTION; " + "; ".join(statements) + "; COMMIT")


def create_manifest_tables(con: duckdb.DuckDBPyConnection) -> None:
    for name, columns in MANIFEST.items():
        con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns)})")
        con.execute(f"COMMENT ON TABLE {name} IS {literal(MANIFEST_COMMENTS[name])}")


def write_manifest(con: duckdb.DuckDBPyConnection, spec: DomainSpec, built_at: str, table_rows: list[tuple],
                   source_rows: list[tuple]) -> None:
    """Create the manifest tables and fill them: a new build id, this builder's version."""
    from cytoatlas import __version__

    create_manifest_tables(con)
    con.execute("INSERT INTO _cytoatlas_manifest VALUES (?, ?, ?, ?, ?, ?)",
                [spec.name, spec.schema_version, uuid.uuid4().hex, built_at, __version__, duckdb.__version__])
    if table_rows:
        con.executemany("INSERT INTO _cytoatlas_tables VALUES (?, ?, ?, ?, ?, ?)", table_rows)
    if source_rows:
        con.executemany("INSERT INTO _cytoatlas_sources VALUES (?, ?, ?, ?, ?)", source_rows)


def _plan(spec: DomainSpec, tables: Sequence[str] | None) -> list[tuple[TableSpec, bool]]:
    """Tables in build order (dependencies first), each with rebuild=True or copy (False)."""
    names = [t.name for t in spec.tables]
    for t in spec.tables:
        if not t.source and not t.derived_sql:
            raise BuildError(f"{spec.name}: table {t.name} has neither a source nor derived_sql")
        unknown = [d for d in t.depends_on if d not in names]
        if unknown:
            raise BuildError(f"{spec.name}: derived table {t.name} depends on unknown table(s) {', '.join(unknown)}")
    if tables is None:
        selected = set(names)
    else:
        tables = list(tables)
        unknown = [n for n in tables if n not in names]
        if unknown or not tables:
            raise BuildError(f"{spec.name}: unknown table{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(unknown) or '(none given)'}; the {spec.name} tables are: "
                             f"{', '.join(names)}")
        selected = set(tables)
        grew = True
        while grew:  # a derived table needs its inputs rebuilt with it
            before = len(selected)
            for t in spec.tables:
                if t.name in selected:
                    selected.update(t.depends_on)
            grew = len(selected) > before
        grew = True
        while grew:  # and a derived table goes stale when one of its inputs is rebuilt
            before = len(selected)
            selected.update(t.name for t in spec.tables if t.derived_sql and selected.intersection(t.depends_on))
            grew = len(selected) > before
    ordered: list[TableSpec] = []
    while len(ordered) < len(spec.tables):
        placed = {t.name for t in ordered}
        ready = [t for t in spec.tables if t.name not in placed and placed.issuperset(t.depends_on)]
        if not ready:
            raise BuildError(f"{spec.name}: derived tables depend on each other in a cycle")
        ordered.append(ready[0])
    return [(t, t.name in selected) for t in ordered]


def _duckdb_config(spill: Path, memory_limit: str | None, threads: int | None) -> dict:
    config = {
        "memory_limit": memory_limit or _default_memory_limit(1),
        "temp_directory": str(spill),
        "preserve_insertion_order": True,  # tables are stored in key order; the services rely on it
        # Parquet min/max statistics leave NaN out, and DuckDB 2.0 then folds isnan(x) / x = 'NaN'
        # to false, so NaN would survive the NaN -> NULL normalisation. Costs nothing measurable.
        "disabled_optimizers": "statistics_propagation",
    }
    threads = threads or int(os.environ.get("CYTOATLAS_BUILD_THREADS", "0") or 0)
    if threads:
        config["threads"] = threads
    return config


def _default_memory_limit(parallel_builds: int) -> str:
    if os.environ.get("CYTOATLAS_BUILD_MEMORY_LIMIT"):
        return os.environ["CYTOATLAS_BUILD_MEMORY_LIMIT"]
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return f"{max(512, int(total * 0.5 / max(1, parallel_builds)) >> 20)}MB"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _key_text(table: TableSpec, values: dict) -> str:
    return ", ".join(f"{k}={_show(values[k])}" for k in table.key)


def _show(value) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"
