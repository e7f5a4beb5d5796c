"""Command-line rendering: Arrow tables out as text, CSV, JSON or Parquet. (`--where` expressions
are read by cytoatlas.requests, the same code as the Router's `where`.)"""

from __future__ import annotations

import json
import sys

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq


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
