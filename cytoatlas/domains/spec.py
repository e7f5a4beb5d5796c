"""Declarative table specs: the contract between source files, builders and services.

Each domain module (atlas, perturbation, spatial) lists its tables as `TableSpec`s. The build
engine, the demo-data generator and the tests all read these specs, so a column is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Signature types allowed per domain (DOMAIN.md decision 2); builders normalise spellings.
SIGNATURE_TYPES = ("CytoSig", "SecAct")
ATLAS_SIGNATURE_TYPES = ("CytoSig", "SecAct", "LinCytoSig")

# Column checks the engine runs after loading.
PROBABILITY = "probability"  # value in [0, 1] (p, q, fractions)
NON_NEGATIVE = "non_negative"  # counts, standard deviations
SIGNATURE_TYPE = "signature_type"  # normalised to the domain's canonical spellings


@dataclass(frozen=True)
class Column:
    """One column of a served table."""

    name: str
    type: str  # DuckDB type: VARCHAR, DOUBLE, BIGINT, INTEGER, BOOLEAN
    description: str = ""
    nullable: bool = True
    # Names to look for in the source, in order; the first present wins. Default: (name,).
    source_names: tuple[str, ...] = ()
    check: str | None = None  # PROBABILITY, NON_NEGATIVE or SIGNATURE_TYPE
    # Another column whose value stands in where the source has none (absent key, null value or
    # no such column at all): the real sources leave some key parts implicit.
    fallback: str | None = None
    # A constant that stands in where the source has no value (no such column, or NULL), e.g.
    # 'All' for a cell type the real file leaves implicit. Applied after `fallback`.
    default: str | int | float | None = None
    # A column the builder computes rather than reads: a SQL expression over the table's other
    # (loaded, typed) columns, window functions allowed, e.g. "abs(rho)" or
    # "rank() OVER (PARTITION BY organ, signature_type ORDER BY specificity_score DESC)".
    expression: str | None = None
    # DuckDB's storage compression for the column (`USING COMPRESSION`), e.g. "uncompressed" for
    # text a fixed statement reads in full on every call, where decoding DuckDB's dictionary/FSST
    # strings was most of the scan (the search index); None = DuckDB chooses, as for every other.
    compression: str | None = None

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.source_names or (self.name,)


@dataclass(frozen=True)
class TableSpec:
    """One served table and the source it is built from."""

    name: str
    description: str
    columns: tuple[Column, ...]
    # Unique, non-null key. Its order is also the physical sort order of the built table (most
    # filtered columns first, so DuckDB zone maps skip data) and the default order of results.
    key: tuple[str, ...]
    # Source path relative to the --source dir; may be a glob (files are concatenated).
    source: str | None = None
    # File-name patterns (fnmatch, on the base name) a glob's matches leave out, for directories
    # where another writer's files share the table's name pattern (e.g. all_correlations.csv, the
    # concatenation of the per-atlas *_correlations.csv files).
    source_exclude: tuple[str, ...] = ()
    # A source whose files may not exist yet (a result the pipeline does not write at every
    # version): no file -> an empty table instead of a build error.
    optional: bool = False
    format: str = "csv"  # csv | json | parquet | reader
    # JSON layout: "records" (array of objects), "data" (object whose `json_key` key holds the
    # records) or "dict_of_lists" (object of category -> records; the key becomes `category`).
    json_layout: str = "records"
    json_key: str = "data"
    # For JSON shapes no layout describes (records nested under several levels of keys, scalars
    # and lists under keys, arrays inside records to explode): a DuckDB SELECT that turns the file
    # into records with source-named columns. `{json}` stands for the file read as JSON values
    # (one row, column `json`, per top-level value; the whole file for an object), `{path}` for
    # the file's path as a SQL literal. Values are cast to the spec types like any source's.
    source_sql: str | None = None
    # format "reader": "module:function" called with the source file's Path, returning a
    # pyarrow.RecordBatchReader of source-named columns (for sources DuckDB cannot read, such as
    # the validation scatter SQLite). It is streamed into DuckDB, never held whole.
    reader: str | None = None
    # For globbed sources: name of the column that receives the source file's base name.
    source_file_column: str | None = None
    # Derived tables have no source: SQL over tables built earlier in the same file.
    derived_sql: str | None = None
    depends_on: tuple[str, ...] = ()  # tables a derived table reads
    signature_types: tuple[str, ...] = SIGNATURE_TYPES

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class DomainSpec:
    """A domain: the file it builds and the tables in it (in build order)."""

    name: str  # atlas | perturbation | spatial
    file_name: str  # e.g. perturbation_data.duckdb
    schema_version: int
    tables: tuple[TableSpec, ...] = field(default_factory=tuple)

    def table(self, name: str) -> TableSpec:
        for spec in self.tables:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def declared_compression(self) -> dict[tuple[str, str], str]:
        """(table, column) -> the storage compression its Column declares (e.g. the search index's
        "uncompressed"); columns that leave it to DuckDB are not listed."""
        return {(t.name, c.name): c.compression for t in self.tables for c in t.columns if c.compression}


# --- small constructors so the domain modules read as tables, not boilerplate -----------------


def text(name: str, description: str = "", **kw) -> Column:
    return Column(name, "VARCHAR", description, **kw)


def real(name: str, description: str = "", **kw) -> Column:
    return Column(name, "DOUBLE", description, **kw)


def count(name: str, description: str = "", **kw) -> Column:
    return Column(name, "BIGINT", description, check=NON_NEGATIVE, **kw)


def integer(name: str, description: str = "", **kw) -> Column:
    return Column(name, "INTEGER", description, **kw)


def pvalue(name: str = "pvalue", description: str = "Two-sided Mann-Whitney U p-value.", **kw) -> Column:
    return Column(name, "DOUBLE", description, check=PROBABILITY, **kw)


def qvalue(name: str = "qvalue", description: str = "Benjamini-Hochberg FDR within a signature type.", **kw) -> Column:
    return Column(name, "DOUBLE", description, check=PROBABILITY, **kw)


def signature(**kw) -> Column:
    """The target protein/cytokine a signature scores (sources may call it protein or target)."""
    kw.setdefault("source_names", ("signature", "protein", "target"))
    return Column("signature", "VARCHAR", "Signature target (cytokine or secreted protein).",
                  nullable=False, **kw)


def signature_type(**kw) -> Column:
    return Column("signature_type", "VARCHAR", "Signature family: CytoSig, SecAct or LinCytoSig.",
                  nullable=False, check=SIGNATURE_TYPE, **kw)


def key_text(name: str, description: str = "", **kw) -> Column:
    return Column(name, "VARCHAR", description, nullable=False, **kw)
