"""Export (back up) a domain file: every served table as Parquet (zstd), the build manifest and
each table's declaration as `manifest.json`, and `SHA256SUMS` (checkable with `sha256sum -c`).

The export is written into `.<DIR>.<pid>.tmp` beside DIR and renamed to DIR when complete, so DIR
either holds a whole export or does not exist. `restore` turns DIR back into the database.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import duckdb

from builders.engine import human_size, sha256_file
from builders.lifecycle.files import RESTORABLE_TYPE, LifecycleError, domain_spec, open_read_only, write_failure
from builders.publish import fsync_dir, fsync_file
from builders.lifecycle.verify import verify_file
from cytoatlas.domains.manifest import INTERNAL_PREFIX, MANIFEST, columns_by_table
from cytoatlas.domains.sql import literal, quote

Log = Callable[[str], None]
FORMAT, FORMAT_VERSION = "cytoatlas-export", 1
MANIFEST_FILE, CHECKSUMS_FILE = "manifest.json", "SHA256SUMS"


def export_domain(domain: str, db: Path, to: Path, log: Log | None = None) -> dict:
    """Export `db` (a file of `domain`) into the new or empty directory `to`; return the manifest."""
    started = time.monotonic()
    emit = log or (lambda line: None)
    spec = domain_spec(domain)
    db, to = Path(db), Path(to)
    report = verify_file(db, domain, full=False)
    if not report.ok:
        raise LifecycleError("; ".join(m if check == "open" else f"{db}: {m}" for check, m in report.problems))
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise LifecycleError(f"{to}: already exists and is not an empty directory; export into a new one")
    _check_restorable(db)
    temp = to.with_name(f".{to.name}.{os.getpid()}.tmp")
    try:
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        con = open_read_only(db)
        try:
            manifest = _describe(con, db, spec.name)
            for table in manifest["tables"]:
                table_started = time.monotonic()
                file = temp / table["file"]
                (written,) = con.execute(f"COPY {quote(table['name'])} TO {literal(str(file))} "
                                         f"(FORMAT parquet, COMPRESSION zstd)").fetchone()
                if written != table["rows"]:
                    raise LifecycleError(f"{db}: table {table['name']}: wrote {written:,} rows, the file "
                                         f"holds {table['rows']:,}")
                fsync_file(file)
                table["bytes"], table["sha256"] = file.stat().st_size, sha256_file(file)
                emit(f"export {spec.name}  {table['name']}  {table['rows']:,} rows  "
                     f"{human_size(table['bytes'])}  {time.monotonic() - table_started:.1f} s")
        finally:
            con.close()
        _write_json(temp / MANIFEST_FILE, manifest)
        sums = [(t["sha256"], t["file"]) for t in manifest["tables"]]
        sums.append((sha256_file(temp / MANIFEST_FILE), MANIFEST_FILE))
        _write_text(temp / CHECKSUMS_FILE, "".join(f"{digest}  {name}\n" for digest, name in sums))
        fsync_dir(temp)
        if to.exists():
            to.rmdir()  # empty (checked above); a directory cannot be renamed over a non-empty one
        os.replace(temp, to)
        fsync_dir(to.parent)
    except BaseException as exc:
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(exc, (OSError, duckdb.Error)):
            raise write_failure(exc, to, f"{db}: export failed") from None
        raise
    parquet = sum(t["bytes"] for t in manifest["tables"])
    emit(f"export {spec.name}  wrote {to}  {len(manifest['tables'])} tables  {human_size(parquet)} of Parquet  "
         f"{time.monotonic() - started:.1f} s")
    for line in size_summary(manifest):
        emit(f"export {spec.name}  {line}")
    return manifest


def _check_restorable(db: Path) -> None:
    """Refuse, before anything is written, a table with a column type restore does not accept
    (an unknown table a split copied as it was may hold one)."""
    con = open_read_only(db)
    try:
        catalog = columns_by_table(con)
    finally:
        con.close()
    for table, columns in catalog.items():
        for column, type_ in columns:
            if not table.startswith(INTERNAL_PREFIX) and not RESTORABLE_TYPE.match(type_):
                raise LifecycleError(f"{db}: cannot export table {table}: column {column!r} has the type {type_}, "
                                     f"which restore does not support; nothing was written")


def size_summary(manifest: dict) -> list[str]:
    """Parquet bytes against the source bytes the build manifest recorded, per source format."""
    by_format: dict[str, list[int]] = {}
    for table in manifest["tables"]:
        if table["source_bytes"]:
            totals = by_format.setdefault(table["source_format"], [0, 0])
            totals[0] += table["bytes"]
            totals[1] += table["source_bytes"]
    return [f"tables from {fmt} sources: {human_size(parquet)} of Parquet vs {human_size(source)} of {fmt} "
            f"({100 * (1 - parquet / source):.0f}% smaller)"
            for fmt, (parquet, source) in sorted(by_format.items())]


def _describe(con: duckdb.DuckDBPyConnection, db: Path, domain: str) -> dict:
    """Everything restore needs besides the rows: declarations, comments, the manifest tables."""
    from cytoatlas import __version__

    manifest_rows = {}
    for name, columns in MANIFEST.items():
        names = [c for c, _ in columns]
        cursor = con.execute(f"SELECT {', '.join(quote(c) for c in names)} FROM {name}")
        manifest_rows[name] = [dict(zip(names, row)) for row in cursor.fetchall()]
    sources: dict[str, list[str]] = {}
    source_bytes: dict[str, int] = {}
    for row in manifest_rows["_cytoatlas_sources"]:
        sources.setdefault(row["table_name"], []).append(row["path"])
        source_bytes[row["table_name"]] = source_bytes.get(row["table_name"], 0) + row["size_bytes"]
    tables = []
    for name, comment, rows in con.execute(
            "SELECT table_name, comment, estimated_size FROM duckdb_tables() WHERE database_name = "
            "current_database() AND schema_name = 'main' AND NOT starts_with(table_name, ?) ORDER BY table_name",
            [INTERNAL_PREFIX]).fetchall():
        columns = [{"name": c, "type": t, "nullable": bool(n), "comment": k} for c, t, n, k in con.execute(
            "SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() WHERE database_name = "
            "current_database() AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
            [name]).fetchall()]
        suffixes = {Path(p).suffix.lstrip(".").lower() for p in sources.get(name, [])}
        tables.append({"name": name, "comment": comment, "rows": rows, "columns": columns,
                       "file": f"{name}.parquet", "source_bytes": source_bytes.get(name, 0),
                       "source_format": "/".join(sorted(suffixes)) or None})
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "domain": domain,
            "exported_from": str(db.resolve()), "exported_at": _now(), "exporter_version": __version__,
            "duckdb_version": duckdb.__version__, "manifest": manifest_rows, "tables": tables}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, data: dict) -> None:
    _write_text(path, json.dumps(data, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
