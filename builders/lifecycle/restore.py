"""Restore an export directory (builders/lifecycle/export.py) to a database file.

Every checksum is checked before anything is written. The tables are declared exactly as
exported (types, NOT NULL, comments), filled from Parquet in the exported (key) order, the
manifest tables refilled with the exported rows (same build id: it is the same build), then the
file goes through the builders' publish: temp file beside the target, CHECKPOINT, full
verification read-only, fsync, atomic rename.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import duckdb

from builders import publish
from builders.engine import create_manifest_tables, human_size, sha256_file
from cytoatlas.domains.manifest import MANIFEST
from cytoatlas.domains.sql import literal, quote
from builders.lifecycle.export import CHECKSUMS_FILE, FORMAT, FORMAT_VERSION, MANIFEST_FILE
from builders.lifecycle.files import RESTORABLE_TYPE, LifecycleError, domain_spec, write_failure
from builders.lifecycle.verify import publish_verified

Log = Callable[[str], None]


def restore(source: Path, output: Path, log: Log | None = None) -> Path:
    """Rebuild the database exported to `source` as `output`; return the published path."""
    started = time.monotonic()
    emit = log or (lambda line: None)
    source, output = Path(source), Path(output)
    manifest = load_export(source)
    spec = domain_spec(manifest["domain"])
    if output.is_dir():
        raise LifecycleError(f"{output}: is a directory; give the file to write, e.g. {output / spec.file_name}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LifecycleError(f"cannot create the directory {output.parent}: {exc.strerror}") from None
    publish.remove_stale(output)
    temp = publish.temp_path(output)
    publish.discard(temp)
    try:
        con = duckdb.connect(str(temp))
        try:
            con.execute("SET enable_progress_bar = false")
            # How the builders store a column is not in the manifest: it comes from the spec
            compression = spec.declared_compression()
            for table in manifest["tables"]:
                _restore_table(con, source, table, compression, lambda line: emit(f"restore {spec.name}  {line}"))
            create_manifest_tables(con)
            for name, columns in MANIFEST.items():
                rows = [[row[c] for c, _ in columns] for row in manifest["manifest"][name]]
                if rows:
                    con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})", rows)
            con.execute("CHECKPOINT")
        finally:
            con.close()
    except BaseException as exc:
        publish.discard(temp)
        if isinstance(exc, (OSError, duckdb.Error)):
            raise write_failure(exc, output, f"{source}: restore failed") from None
        raise
    publish_verified(temp, output, spec.name)
    emit(f"restore {spec.name}  published {output}  {human_size(output.stat().st_size)}  "
         f"{time.monotonic() - started:.1f} s")
    return output


def load_export(source: Path) -> dict:
    """Read and check an export directory: its manifest, and the checksum of every file."""
    if not source.is_dir():
        raise LifecycleError(f"{source}: no such directory")
    try:
        manifest = json.loads((source / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise LifecycleError(f"{source}: no {MANIFEST_FILE}: not a cytoatlas export") from None
    except (OSError, ValueError) as exc:
        raise LifecycleError(f"{source / MANIFEST_FILE}: unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LifecycleError(f"{source / MANIFEST_FILE}: not a cytoatlas export manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise LifecycleError(f"{source / MANIFEST_FILE}: export format version {manifest.get('format_version')} "
                             f"is not known (this version reads {FORMAT_VERSION})")
    if not (source / CHECKSUMS_FILE).is_file():
        raise LifecycleError(f"{source}: not an export: {CHECKSUMS_FILE} missing")
    listed = {}
    for line in (source / CHECKSUMS_FILE).read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    if MANIFEST_FILE not in listed:
        raise LifecycleError(f"{source / CHECKSUMS_FILE}: does not list {MANIFEST_FILE}")
    if sha256_file(source / MANIFEST_FILE) != listed[MANIFEST_FILE]:
        raise LifecycleError(f"{source / MANIFEST_FILE}: checksum does not match {CHECKSUMS_FILE}")
    _check_keys(manifest, source / MANIFEST_FILE)
    for table in manifest["tables"]:
        file = source / table["file"]
        if Path(table["file"]).name != table["file"]:
            raise LifecycleError(f"{source / MANIFEST_FILE}: table file {table['file']!r} is not a plain file name")
        if not file.is_file():
            raise LifecycleError(f"{file}: missing from the export")
        if sha256_file(file) != table["sha256"]:
            raise LifecycleError(f"{file}: checksum does not match the export manifest (the file is damaged)")
        for column in table["columns"]:
            if not RESTORABLE_TYPE.match(column["type"]):
                raise LifecycleError(f"{source / MANIFEST_FILE}: table {table['name']}: column "
                                     f"{column['name']!r} has an unsupported type {column['type']!r}")
    return manifest


def _check_keys(manifest: dict, path: Path) -> None:
    """Raise LifecycleError naming the first key restore needs that the manifest lacks."""
    def require(record, keys: tuple[str, ...], where: str) -> None:
        if not isinstance(record, dict):
            raise LifecycleError(f"{path}: {where} is not a JSON object")
        for key in keys:
            if key not in record:
                raise LifecycleError(f"{path}: {where} has no {key!r} key")

    require(manifest, ("domain", "tables", "manifest"), "the manifest")
    for i, table in enumerate(manifest["tables"]):
        require(table, ("name", "file", "sha256", "rows", "comment", "columns"), f"tables[{i}]")
        for j, column in enumerate(table["columns"]):
            require(column, ("name", "type", "nullable", "comment"), f"tables[{i}].columns[{j}]")
    require(manifest["manifest"], tuple(MANIFEST), "manifest")
    for name, columns in MANIFEST.items():
        for i, row in enumerate(manifest["manifest"][name]):
            require(row, tuple(c for c, _ in columns), f"manifest.{name}[{i}]")


def _restore_table(con: duckdb.DuckDBPyConnection, source: Path, table: dict, compression: dict, emit: Log) -> None:
    started = time.monotonic()
    name = quote(table["name"])
    columns = table["columns"]

    def storage(column: str) -> str:
        chosen = compression.get((table["name"], column))
        return f" USING COMPRESSION {chosen}" if chosen else ""

    declared = ", ".join(f"{quote(c['name'])} {c['type']}{'' if c['nullable'] else ' NOT NULL'}{storage(c['name'])}"
                         for c in columns)
    con.execute(f"CREATE TABLE {name} ({declared})")
    selected = ", ".join(quote(c["name"]) for c in columns)
    con.execute(f"INSERT INTO {name} SELECT {selected} FROM read_parquet({literal(str(source / table['file']))})")
    (rows,) = con.execute(f"SELECT count(*) FROM {name}").fetchone()
    if rows != table["rows"]:
        raise LifecycleError(f"{source / table['file']}: {rows:,} rows, the export manifest says {table['rows']:,}")
    if table["comment"]:
        con.execute(f"COMMENT ON TABLE {name} IS {literal(table['comment'])}")
    for c in columns:
        if c["comment"]:
            con.execute(f"COMMENT ON COLUMN {name}.{quote(c['name'])} IS {literal(c['comment'])}")
    emit(f"{table['name']}  {rows:,} rows  {time.monotonic() - started:.1f} s")
