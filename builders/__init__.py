"""Builders: analysis-result files (CSV/JSON/Parquet) -> one read-only DuckDB file per domain.

The tables each domain holds are declared in cytoatlas.domains; this package builds them.
"""
