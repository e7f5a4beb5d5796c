"""The manifest every built file carries: which builder built it, when, from which sources, with
which tables and row counts. Builders write these tables; services and lifecycle tools read them."""

from __future__ import annotations

import duckdb

INTERNAL_PREFIX = "_cytoatlas_"  # tables of the file that are not served
MANIFEST = {
    "_cytoatlas_manifest": (("domain", "VARCHAR"), ("schema_version", "INTEGER"), ("build_id", "VARCHAR"),
                            ("built_at", "VARCHAR"), ("builder_version", "VARCHAR"),
                            ("duckdb_version", "VARCHAR")),
    "_cytoatlas_tables": (("table_name", "VARCHAR"), ("description", "VARCHAR"), ("key_columns", "VARCHAR[]"),
                          ("row_count", "BIGINT"), ("source", "VARCHAR"), ("built_at", "VARCHAR")),
    "_cytoatlas_sources": (("table_name", "VARCHAR"), ("path", "VARCHAR"), ("sha256", "VARCHAR"),
                           ("size_bytes", "BIGINT"), ("row_count", "BIGINT")),
}
MANIFEST_COMMENTS = {
    "_cytoatlas_manifest": "Build manifest: one row saying which builder built this file, when.",
    "_cytoatlas_tables": "One row per served table: description, key, row count, source, build time.",
    "_cytoatlas_sources": "One row per source file read: path relative to --source, SHA-256, size, rows.",
}


def columns_by_table(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """Each table of the open file's main schema -> its (column, type) pairs in order."""
    catalog: dict[str, list[tuple[str, str]]] = {}
    for table, column, type_ in con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "ORDER BY table_name, column_index").fetchall():
        catalog.setdefault(table, []).append((column, type_))
    return catalog
