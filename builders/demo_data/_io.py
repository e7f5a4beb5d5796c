"""Writing source files exactly as a TableSpec declares them (path, format, layout, column names).

Generators hand over columns under their *served* names; the writer renames each to the name the
real source uses (the first of `Column.source_names`), checks the set of columns against the spec
and turns NaN into a missing value (empty CSV field / JSON null).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import tempfile
import threading
from typing import Callable, Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cytoatlas.domains.spec import TableSpec

_ARROW_TYPES = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BIGINT": pa.int64(),
                "INTEGER": pa.int32(), "BOOLEAN": pa.bool_()}


def cat(codes, categories) -> pa.DictionaryArray:
    """A string column given as integer codes into a list of names (cheap for repeated values);
    a negative code is a missing value."""
    codes = np.asarray(codes, dtype=np.int32)
    missing = codes < 0
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=missing if missing.any() else None),
                                          pa.array(list(categories), pa.string()))


def _length(values) -> int | None:
    if isinstance(values, str) or values is None:
        return None
    return len(values)


def _to_arrow(values, type_name: str, n: int) -> pa.Array:
    arrow_type = _ARROW_TYPES[type_name]
    if values is None or isinstance(values, str):  # a constant column
        return cat(np.zeros(n, dtype=np.int32), [values]) if values is not None \
            else pa.nulls(n, arrow_type)
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    if type_name == "VARCHAR":
        return pa.array(list(values) if not isinstance(values, np.ndarray) else values.tolist(),
                        pa.string())
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        mask = np.isnan(arr)
        if type_name in ("BIGINT", "INTEGER"):
            arr = np.where(mask, 0, arr).astype(np.int64)
        return pa.array(arr, type=arrow_type, mask=mask if mask.any() else None)
    return pa.array(arr, type=arrow_type)


def to_table(spec: TableSpec, columns: Mapping[str, object], *, drop: tuple[str, ...] = ()) -> pa.Table:
    """Arrow table with the spec's source column names, in spec order."""
    wanted = [c for c in spec.columns  # a computed column is the builder's, never the source's
              if c.name != spec.source_file_column and c.name not in drop and c.expression is None]
    names = {c.name for c in wanted}
    given = set(columns) - set(drop)
    if given != names:
        raise ValueError(f"{spec.name}: columns {sorted(given ^ names)} disagree with the spec")
    n = next(_length(v) for v in columns.values() if _length(v) is not None)
    arrays, fields = [], []
    for col in wanted:
        arr = _to_arrow(columns[col.name], col.type, n)
        if len(arr) != n:
            raise ValueError(f"{spec.name}.{col.name}: {len(arr)} values, expected {n}")
        if not col.nullable and not col.fallback and col.default is None and arr.null_count:
            raise ValueError(f"{spec.name}.{col.name}: NULL in a non-nullable column")
        arrays.append(arr)
        fields.append(pa.field(col.candidates[0], arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class Writer:
    """Writes one domain's source files under `output`, logging one line per file."""

    def __init__(self, output: pathlib.Path, domain: str, log: Callable[[str], None] | None):
        self.output, self.domain, self.log = output, domain, log
        self.files: list[pathlib.Path] = []

    def _path(self, relative: str) -> pathlib.Path:
        path = self.output / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _done(self, path: pathlib.Path, rows: int) -> pathlib.Path:
        self.files.append(path)
        if self.log:
            self.log(f"{self.domain}: {path.relative_to(self.output).as_posix()}  {rows:,} rows")
        return path

    def csv(self, spec: TableSpec, columns: Mapping[str, object], relative: str | None = None) -> pathlib.Path:
        table = to_table(spec, columns)
        path = self._path(relative or spec.source)
        pacsv.write_csv(table, path)
        return self._done(path, table.num_rows)

    def csv_stream(self, spec: TableSpec) -> "CsvStream":
        return CsvStream(self, spec)

    def json(self, spec: TableSpec, columns: Mapping[str, object],
             extra: Mapping[str, object] | None = None, omit: tuple[str, ...] = ()) -> pathlib.Path:
        """JSON in the spec's layout: records, {json_key: [...], **extra} or {category: [...]}.
        `omit`: columns the real source does not have (their spec default or fallback stands in)."""
        for name in omit:
            if spec.column(name).default is None and not spec.column(name).fallback:
                raise ValueError(f"{spec.name}.{name}: only a column with a default or fallback can be omitted")
        path = self._path(spec.source)
        if spec.json_layout == "records":
            table = to_table(spec, columns, drop=omit)
            _copy_json(table, path)
            return self._done(path, table.num_rows)
        if spec.json_layout == "data":
            table = to_table(spec, columns, drop=omit)
            parts = [(spec.json_key, table)]
        else:  # dict_of_lists: one array per category, in order of first appearance
            table = to_table(spec, columns, drop=("category", *omit))
            categories = _to_arrow(columns["category"], "VARCHAR", table.num_rows)
            if pa.types.is_dictionary(categories.type):
                categories = categories.dictionary_decode()
            parts = [(c, table.filter(pc.equal(categories, c))) for c in pc.unique(categories).to_pylist()]
        with open(path, "w") as out, tempfile.TemporaryDirectory() as tmp:
            for k, (key, part) in enumerate(parts):
                out.write(("{" if k == 0 else ",\n") + f"{json.dumps(key)}: ")
                array = pathlib.Path(tmp) / f"{k}.json"
                _copy_json(part, array)
                with open(array) as src:
                    shutil.copyfileobj(src, out)
            for key, value in (extra or {}).items():
                out.write(f",\n{json.dumps(key)}: {json.dumps(value)}")
            out.write("}\n")
        return self._done(path, table.num_rows)


    def json_object(self, relative: str, parts: Sequence[tuple[str, object]], rows: int) -> pathlib.Path:
        """One JSON object holding several parts in order: a pa.Table part is an array of records
        (written by DuckDB, nested struct columns as nested objects), anything else is written as
        JSON. For the real files that keep several record arrays, lists and scalars side by side;
        `rows` is what the build reads from the file, for the log."""
        path = self._path(relative)
        with open(path, "w") as out, tempfile.TemporaryDirectory() as tmp:
            for k, (key, value) in enumerate(parts):
                out.write(("{" if k == 0 else ",\n") + f"{json.dumps(key)}: ")
                if isinstance(value, pa.Table):
                    array = pathlib.Path(tmp) / f"{k}.json"
                    _copy_json(value, array)
                    with open(array) as src:
                        shutil.copyfileobj(src, out)
                else:
                    out.write(json.dumps(value))
            out.write("}\n")
        return self._done(path, rows)

    def nested_json(self, spec: TableSpec, document: object, rows: int, indent: int | None = 1) -> pathlib.Path:
        """A small source in a shape of its own (read by the spec's source_sql), written as given;
        `rows` is what the build will read from it, for the log."""
        path = self._path(spec.source)
        path.write_text(json.dumps(document, indent=indent) + "\n")
        return self._done(path, rows)

    def json_tree(self, spec: TableSpec, tree: object, relative: str | None = None) -> pathlib.Path:
        """A large source in a shape of its own: dicts and lists of plain values written as
        json.dumps writes them, and `Records` leaves (arrays of records given as Arrow tables)
        written by DuckDB, so no record passes through Python. Logs the records written."""
        path = self._path(relative or spec.source)
        rows = 0
        with open(path, "w") as out, tempfile.TemporaryDirectory() as tmp:
            def write(node) -> None:
                nonlocal rows
                if isinstance(node, Records):
                    out.write("[")
                    first = True
                    for k, table in enumerate(t for t in node.tables if t.num_rows):
                        array = pathlib.Path(tmp) / f"{k}.json"
                        _copy_json(table, array)
                        text = array.read_text().strip()
                        out.write(("" if first else ",") + text[1:-1].strip())
                        first, rows = False, rows + table.num_rows
                    out.write("]")
                elif isinstance(node, dict):
                    out.write("{")
                    for k, (key, value) in enumerate(node.items()):
                        out.write(("" if k == 0 else ", ") + json.dumps(key) + ": ")
                        write(value)
                    out.write("}")
                else:
                    out.write(json.dumps(node))
            write(tree)
            out.write("\n")
        return self._done(path, rows)


class Records:
    """One JSON array of records for `Writer.json_tree`: the rows of each Arrow table in turn, each
    record holding its table's columns (so records of different shapes can share an array; a null
    is written as null, an absent column is an absent key)."""

    def __init__(self, *tables: pa.Table):
        merged: list[pa.Table] = []  # consecutive tables of one shape: one DuckDB write
        for table in tables:
            if merged and merged[-1].schema == table.schema:
                merged[-1] = pa.concat_tables([merged[-1], table])
            else:
                merged.append(table)
        self.tables = tuple(merged)


_COPIER: list[duckdb.DuckDBPyConnection] = []  # one in-memory connection: connecting costs ~40 ms a file
_COPY_LOCK = threading.Lock()


def _copy_json(table: pa.Table, path: pathlib.Path) -> None:
    """Write a JSON array of records with DuckDB (fast; keeps the Arrow row order)."""
    with _COPY_LOCK:
        if not _COPIER:
            _COPIER.append(duckdb.connect())
            _COPIER[0].execute("SET preserve_insertion_order = true")
        con = _COPIER[0]
        con.register("records", table)
        try:
            con.execute(f"COPY records TO '{path}' (FORMAT json, ARRAY true)")
        finally:
            con.unregister("records")


class CsvStream:
    """A CSV written in batches (for tables too large to hold as one Arrow table)."""

    def __init__(self, writer: Writer, spec: TableSpec):
        self.writer, self.spec = writer, spec
        self.path = writer._path(spec.source)
        self._csv: pacsv.CSVWriter | None = None
        self.rows = 0

    def write(self, columns: Mapping[str, object]) -> None:
        table = to_table(self.spec, columns)
        if self._csv is None:
            self._schema = table.schema
            self._csv = pacsv.CSVWriter(self.path, table.schema)
        self._csv.write_table(table if table.schema == self._schema else table.cast(self._schema))
        self.rows += table.num_rows

    def __enter__(self) -> "CsvStream":
        return self

    def __exit__(self, *exc) -> None:
        if self._csv is not None:
            self._csv.close()
        if exc[0] is None:
            self.writer._done(self.path, self.rows)


def json_as_written(writer: Writer, spec: TableSpec, columns: Mapping[str, object],
                    as_written: Mapping[str, str]) -> pathlib.Path:
    """A records-layout JSON source (as Writer.json) whose `as_written` columns hold the JSON value
    the real writer stores rather than the typed one: source column -> a DuckDB expression of it
    giving that value, e.g. a p-value the real writer turns into text when it is small."""
    table = to_table(spec, columns)
    path = writer._path(spec.source)
    replace = ", ".join(f'CAST(({sql}) AS JSON) AS "{name}"' for name, sql in as_written.items())
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.register("records", table)
        con.execute(f"COPY (SELECT * REPLACE ({replace}) FROM records) TO '{path}' (FORMAT json, ARRAY true)")
    finally:
        con.close()
    return writer._done(path, table.num_rows)
