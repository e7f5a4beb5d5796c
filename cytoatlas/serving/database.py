"""Opening a served DuckDB file read-only and reading its catalog and manifest once.

The file never changes while it is open (builders publish a new file by rename), so the catalog,
row counts and manifest are read at open time and cached for the life of the `Database`.

Each `Database` is its own in-memory DuckDB instance with the file ATTACHed read-only, not
`duckdb.connect(path)`: DuckDB caches instances by path, so after a rebuild `connect(path)` would
hand back the instance still open on the old (renamed-over) file. The file is closed when the last
reference to its `Database` goes, i.e. when the last request using it has finished (see swap.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from cytoatlas.domains.manifest import INTERNAL_PREFIX
from cytoatlas.domains.verify import problems_of_served_file
from cytoatlas.serving.config import Settings

log = logging.getLogger(__name__)
SERVED_CATALOG = "served"  # the name the file is attached under
INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                           "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})
FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE", "REAL"})


class DatabaseError(Exception):
    """The file cannot be served: missing, not DuckDB, not a CytoAtlas build, wrong domain."""


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool
    description: str

    @property
    def is_integer(self) -> bool:
        return self.type in INTEGER_TYPES

    @property
    def is_numeric(self) -> bool:
        return self.type in INTEGER_TYPES or self.type in FLOAT_TYPES or self.type.startswith("DECIMAL")

    @property
    def is_text(self) -> bool:
        return self.type == "VARCHAR"


@dataclass(frozen=True)
class TableInfo:
    name: str
    domain: str
    description: str
    row_count: int
    columns: tuple[ColumnInfo, ...]
    key_columns: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    def column(self, name: str) -> ColumnInfo | None:
        return self._by_name.get(name)


@dataclass(frozen=True)
class SourceInfo:
    table: str
    path: str
    sha256: str
    size_bytes: int
    row_count: int


@dataclass(frozen=True)
class Manifest:
    domain: str
    schema_version: int
    build_id: str
    built_at: str
    builder_version: str
    duckdb_version: str
    sources: tuple[SourceInfo, ...]


class Database:
    """One open, read-only served file. Thread-safe: every request takes its own `cursor()`."""

    def __init__(self, path: str, connection: duckdb.DuckDBPyConnection, manifest: Manifest,
                 tables: dict[str, TableInfo]):
        self.path = path
        self.connection = connection
        self.manifest = manifest
        self.tables = tables
        stat = os.stat(path)
        self.size_bytes = stat.st_size
        self.identity = file_identity(stat)
        self._sha256 = ""
        # Closed when the last in-flight request drops its reference, or at shutdown.
        self._finalizer = weakref.finalize(self, _close_connection, connection, path, manifest.build_id)
        threading.Thread(target=self._hash_file, name="sha256", daemon=True).start()

    @classmethod
    def open(cls, path: str, domain: str, settings: Settings) -> "Database":
        if not path:
            raise DatabaseError("no database file given (--db or CYTOATLAS_DB)")
        if not os.path.isfile(path):
            raise DatabaseError(f"{path}: no such file")
        try:
            connection = duckdb.connect(":memory:", config={
                "threads": settings.duckdb_threads,
                "memory_limit": settings.duckdb_memory_limit,
                "temp_directory": settings.duckdb_temp_directory,
                "autoload_known_extensions": False,
                "autoinstall_known_extensions": False,
            })
        except duckdb.Error as exc:
            raise DatabaseError(f"cannot start DuckDB: {exc}") from exc
        try:
            try:
                connection.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS {SERVED_CATALOG} (READ_ONLY)")
                connection.execute(f"USE {SERVED_CATALOG}")
                # From here no query can read or write other files, and no setting can undo that.
                connection.execute("SET enable_external_access = false")
                connection.execute("SET lock_configuration = true")
            except duckdb.Error as exc:
                raise DatabaseError(f"{path}: cannot open as a DuckDB database: {exc}") from exc
            manifest = _read_manifest(connection, path)
            if manifest.domain != domain:
                raise DatabaseError(f"{path}: built for the {manifest.domain!r} domain, "
                                    f"but this is the {domain!r} service")
            problems = problems_of_served_file(connection, path, domain)  # the fast subset of `cytoatlas verify`
            if problems:
                raise DatabaseError(f"{path}: failed verification: " + "; ".join(problems))
            tables = _read_catalog(connection, domain)
        except BaseException:
            connection.close()
            raise
        return cls(path, connection, manifest, tables)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one request. It starts in the in-memory catalog, not the
        served file: compiled queries name their tables with SERVED_CATALOG (compiler.table_ref)."""
        return self.connection.cursor()

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the file; empty until the background hash finishes."""
        return self._sha256

    def close(self) -> None:
        self._finalizer()

    def _hash_file(self) -> None:
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        self._sha256 = digest.hexdigest()


def arrow_reader(cursor: duckdb.DuckDBPyConnection, sql: str, params: list, batch_rows: int) -> pa.RecordBatchReader:
    """Run one compiled statement on `cursor`; its rows as a streaming Arrow reader.

    Through the engine's one-statement entry (`_submit`), not `cursor.sql()`: the relation API
    parses a statement, binds it to describe the relation, then parses and plans it again to run
    it, ~0.3 ms of a ~1.5 ms point query (bench/, issue 12). A compiled query needs none of that:
    it is one SELECT whose parameters the compiler bound. `_submit` is DuckDB's own seam under
    `sql()` (duckdb/_seam.py); the public path stays as the fallback should a release (pinned:
    2.0.0) drop it. tests/test_compiler.py checks both give the same answers."""
    submit = getattr(cursor, "_submit", None)
    if submit is None:
        return cursor.sql(sql, params=params).to_arrow_reader(batch_rows)
    return submit(sql, params, "stream", batch_rows).arrow_reader()


def arrow_table(cursor: duckdb.DuckDBPyConnection, sql: str, params: list | dict, batch_rows: int) -> pa.Table:
    """Run one statement on `cursor`; all its rows as an Arrow table, through the same entry as
    `arrow_reader` (the typed RPCs' and SearchService's statements: SearchService's ranking
    statement took 16.9 ms instead of 21.1 ms through `cursor.sql()`, autocomplete 7.6 instead of
    10.0, in-process on the scale-1 atlas file)."""
    submit = getattr(cursor, "_submit", None)
    if submit is None:
        return cursor.sql(sql, params=params).to_arrow_table(batch_rows)
    return submit(sql, params, "arrow", batch_rows).arrow_table()


def file_identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a builder publishes a new file at the same path (rename = new inode)."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _close_connection(connection: duckdb.DuckDBPyConnection, path: str, build_id: str) -> None:
    connection.close()
    log.info("closed %s (build %s)", path, build_id)


def _read_manifest(connection: duckdb.DuckDBPyConnection, path: str) -> Manifest:
    try:
        row = connection.execute(
            "SELECT domain, schema_version, build_id, built_at, builder_version, duckdb_version "
            "FROM _cytoatlas_manifest").fetchone()
        sources = connection.execute(
            "SELECT table_name, path, sha256, size_bytes, row_count FROM _cytoatlas_sources "
            "ORDER BY table_name, path").fetchall()
    except duckdb.Error as exc:
        raise DatabaseError(f"{path}: not a CytoAtlas build (no readable manifest: {exc})") from exc
    if row is None:
        raise DatabaseError(f"{path}: the manifest table _cytoatlas_manifest is empty")
    return Manifest(*row, sources=tuple(SourceInfo(*s) for s in sources))


def _read_catalog(connection: duckdb.DuckDBPyConnection, domain: str) -> dict[str, TableInfo]:
    meta = {name: (description, tuple(keys), rows) for name, description, keys, rows in connection.execute(
        "SELECT table_name, description, key_columns, row_count FROM _cytoatlas_tables").fetchall()}
    columns: dict[str, list[ColumnInfo]] = {}
    for table, name, data_type, nullable, comment in connection.execute(
            "SELECT table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal "
            "AND NOT starts_with(table_name, ?) "
            "ORDER BY table_name, column_index", [INTERNAL_PREFIX]).fetchall():
        keys = meta.get(table, ("", (), 0))[1]
        columns.setdefault(table, []).append(
            ColumnInfo(name, data_type, bool(nullable) and name not in keys, comment or ""))
    tables = {}
    for name, cols in columns.items():
        description, keys, rows = meta.get(name) or (None, None, None)
        if description is None:  # a table the builder did not declare: still served, counted here
            description, keys = "", ()
            rows = connection.execute(f'SELECT count(*) FROM "{name.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
        tables[name] = TableInfo(name, domain, description, rows, tuple(cols), keys)
    return tables
