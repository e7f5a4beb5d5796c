"""Command-line rendering: `--where` expressions in, Arrow tables out as text, CSV, JSON or Parquet."""

from __future__ import annotations

import json
import re
import sys

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from cytoatlas.table.v1 import table_service_pb2 as pb

# Longest operators first so "<=" is not read as "<".
_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|<=|>=|=|<|>|~|\^=)\s*(.*)$", re.S)
_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "~": "contains",
        "^=": "starts_with"}
WHERE_HELP = ("filter as COLUMN OP VALUE with OP one of = != < <= > >= ~ (contains) ^= (starts with); "
              "COLUMN=a,b,c matches any of a list; COLUMN=null / COLUMN!=null test for NULL; "
              "repeat to AND several")


def parse_where(expression: str, table: pb.Table) -> tuple:
    """'cytokine=IL6' -> ('cytokine', '=', 'IL6'), values converted to the column's type."""
    match = _WHERE.match(expression)
    if not match:
        raise ValueError(f"cannot read --where {expression!r}: {WHERE_HELP}")
    column, op, raw = match.groups()
    types = {c.name: c.type for c in table.columns}
    if column not in types:
        raise ValueError(f"--where {expression!r}: table {table.name} has no column {column!r}; "
                         f"columns are: {', '.join(types)}")
    if raw.lower() == "null" and op in ("=", "!="):
        return (column, "is null" if op == "=" else "is not null", None)
    if op in ("=", "!=") and "," in raw:
        values = [_convert(v, types[column], expression) for v in raw.split(",")]
        return (column, "in" if op == "=" else "not in", values)
    return (column, _OPS[op], _convert(raw, types[column], expression))


def _convert(raw: str, column_type: str, expression: str):
    try:
        if column_type in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"):
            return int(raw)
        if column_type in ("DOUBLE", "FLOAT", "REAL") or column_type.startswith("DECIMAL"):
            return float(raw)
        if column_type == "BOOLEAN":
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return raw.lower() == "true"
    except ValueError:
        raise ValueError(f"--where {expression!r}: {raw!r} is not a {column_type} value") from None
    return raw


def write_table(table: pa.Table, fmt: str, output: str | None = None) -> None:
    if fmt == "parquet":
        if not output:
            raise ValueError("--format parquet needs --output FILE")
        pq.write_table(table, output)
        return
    stream = open(output, "w", newline="") if output else sys.stdout
    try:
        if fmt == "csv":
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(table, sink)
            stream.write(sink.getvalue().to_pybytes().decode())
        elif fmt == "json":
            json.dump(table.to_pylist(), stream, indent=1, default=str)
            stream.write("\n")
        else:
            stream.write(render_text(table) + "\n")
    finally:
        if output:
            stream.close()


def render_text(table: pa.Table) -> str:
    """An aligned text table, numbers right-aligned, doubles to 4 significant decimals."""
    rows = table.to_pylist()
    names = table.column_names
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]
    cells = [[_cell(row[n]) for n in names] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(names), line(["-" * w for w in widths])] + [line(r) for r in cells]
    out.append(f"({table.num_rows} row{'s' if table.num_rows != 1 else ''})")
    return "\n".join(out)


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value else f"{value:.4f}"
    return str(value)
