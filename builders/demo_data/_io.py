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
from typing import Callable, Mapping

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
    wanted = [c for c in spec.columns if c.name != spec.source_file_column and c.name not in drop]
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
        if not col.nullable and not col.fallback and arr.null_count:
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
             extra: Mapping[str, object] | None = None) -> pathlib.Path:
        """JSON in the spec's layout: records, {json_key: [...], **extra} or {category: [...]}."""
        path = self._path(spec.source)
        if spec.json_layout == "records":
            table = to_table(spec, columns)
            _copy_json(table, path)
            return self._done(path, table.num_rows)
        if spec.json_layout == "data":
            table = to_table(spec, columns)
            parts = [(spec.json_key, table)]
        else:  # dict_of_lists: one array per category, in order of first appearance
            table = to_table(spec, columns, drop=("category",))
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


    def nested_json(self, spec: TableSpec, document: object, rows: int) -> pathlib.Path:
        """A small source in a shape of its own (read by the spec's source_sql), written as given;
        `rows` is what the build will read from it, for the log."""
        path = self._path(spec.source)
        path.write_text(json.dumps(document, indent=1) + "\n")
        return self._done(path, rows)


    def json_tree(self, relative: str, tree: object, rows: int) -> pathlib.Path:
        """A JSON document of nested objects whose large arrays of records are Arrow tables: each
        `pa.Table` leaf is written as an array of records by DuckDB (fast, row order kept), every
        other value by `json.dumps` (NaN as the bare token NaN, as Python's json writes it)."""
        path = self._path(relative)
        con = duckdb.connect()
        try:
            with open(path, "w") as out, tempfile.TemporaryDirectory() as tmp:
                _write_tree(out, tree, pathlib.Path(tmp), con)
                out.write("\n")
        finally:
            con.close()
        return self._done(path, rows)


def _write_tree(out, value, tmp: pathlib.Path, con: duckdb.DuckDBPyConnection) -> None:
    if isinstance(value, pa.Table) and value.num_rows <= 2_000:  # small: a COPY costs more than it saves
        out.write(json.dumps(value.to_pylist()))
    elif isinstance(value, pa.Table):
        array = tmp / "leaf.json"
        _copy_json(value, array, con)
        with open(array) as src:
            shutil.copyfileobj(src, out)
    elif isinstance(value, dict):
        out.write("{")
        for k, (key, item) in enumerate(value.items()):
            out.write(("" if k == 0 else ", ") + json.dumps(key) + ": ")
            _write_tree(out, item, tmp, con)
        out.write("}")
    else:
        out.write(json.dumps(value))


def _copy_json(table: pa.Table, path: pathlib.Path, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Write a JSON array of records with DuckDB (fast; keeps the Arrow row order)."""
    own = con is None
    con = duckdb.connect() if own else con
    try:
        con.execute("SET preserve_insertion_order = true")
        con.register("records", table)
        con.execute(f"COPY records TO '{path}' (FORMAT json, ARRAY true)")
        con.unregister("records")
    finally:
        if own:
            con.close()


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
