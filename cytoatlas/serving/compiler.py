"""QueryRequest -> one parameterised DuckDB statement.

Identifiers are checked against the served file's catalog and then quoted; every value is a
bound parameter; nothing is filtered, sorted or aggregated outside DuckDB. Ordering is total:
the table key (or the group_by columns) always breaks ties, so pages never overlap or skip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import SERVED_CATALOG, ColumnInfo, TableInfo
from cytoatlas.serving.errors import Reason, column_not_found, invalid
from cytoatlas.table.v1 import table_service_pb2 as pb

ARROW = pb.RESULT_FORMAT_ARROW
ROWS = pb.RESULT_FORMAT_ROWS

_OPS = frozenset(pb.Op.values())  # built once: Op.values() makes a new list on every call
_COMPARISONS = {pb.OP_EQ: "=", pb.OP_NE: "<>", pb.OP_LT: "<", pb.OP_LE: "<=", pb.OP_GT: ">", pb.OP_GE: ">="}
_AGGREGATES = {
    pb.AGGREGATE_FUNCTION_COUNT: ("count", "count({})"),
    pb.AGGREGATE_FUNCTION_COUNT_DISTINCT: ("count_distinct", "count(DISTINCT {})"),
    pb.AGGREGATE_FUNCTION_SUM: ("sum", "sum({})"),
    pb.AGGREGATE_FUNCTION_AVG: ("avg", "avg({})"),
    pb.AGGREGATE_FUNCTION_MIN: ("min", "min({})"),
    pb.AGGREGATE_FUNCTION_MAX: ("max", "max({})"),
    pb.AGGREGATE_FUNCTION_MEDIAN: ("median", "median({})"),
    pb.AGGREGATE_FUNCTION_STDDEV: ("stddev", "stddev_samp({})"),
}
_NUMERIC_ONLY = {pb.AGGREGATE_FUNCTION_SUM, pb.AGGREGATE_FUNCTION_AVG, pb.AGGREGATE_FUNCTION_MEDIAN,
                 pb.AGGREGATE_FUNCTION_STDDEV}


@dataclass(frozen=True)
class CompiledQuery:
    # ends in LIMIT page_size + 1 [OFFSET offset]: the extra row says whether a page follows; no
    # LIMIT when compiled for a reader that stops after page_size + 1 rows (see _page_clause)
    sql: str
    params: list
    page_size: int
    offset: int
    format: int  # ARROW or ROWS


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def table_ref(table: TableInfo) -> str:
    """The table named with the catalog the served file is attached under, so a fresh cursor
    needs no `USE` statement first (it saved ~0.05 ms per request)."""
    return f"{SERVED_CATALOG}.main.{quote(table.name)}"


def page_size(request: pb.QueryRequest, settings: Settings) -> int:
    if request.limit < 0:
        raise invalid(Reason.INVALID_REQUEST, f"limit must be 0 (server default) or positive, "
                      f"got {request.limit}", "limit")
    if request.format == ROWS:
        default, maximum = settings.rows_default_limit, settings.rows_max_limit
    else:
        default, maximum = settings.arrow_default_limit, settings.arrow_max_limit
    return min(request.limit or default, maximum)


def result_format(request: pb.QueryRequest) -> int:
    if request.format == pb.RESULT_FORMAT_UNSPECIFIED:
        return ARROW
    if request.format not in (ARROW, ROWS):
        raise invalid(Reason.INVALID_REQUEST, f"format {request.format} is not a ResultFormat; use "
                      "RESULT_FORMAT_ARROW or RESULT_FORMAT_ROWS", "format")
    return request.format


# A first page at least this long, unsorted and read by a reader that stops by itself, gets no
# LIMIT: see _page_clause.
READER_STOPS_FROM_ROWS = 250_000


def compile_query(request: pb.QueryRequest, table: TableInfo, settings: Settings, offset: int = 0,
                  reader_stops: bool = False) -> CompiledQuery:
    """Validate `request` against `table` and compile it; raise ServiceError on bad input.
    `reader_stops`: the statement is read as a stream that stops after page_size + 1 rows
    (TableService and Flight's DoGet), not run to the end."""
    fmt = result_format(request)
    size = page_size(request, settings)
    params: list = []
    select, _ = _select(request, table, settings, params)
    sorted_ = bool(request.order_by or request.group_by or request.aggregates)  # _select wrote ORDER BY
    if reader_stops and not sorted_ and not offset and size + 1 >= READER_STOPS_FROM_ROWS:
        return CompiledQuery(select, params, size, offset, fmt)
    return CompiledQuery(f"{select} {_page_clause(size, offset)}", params, size, offset, fmt)


def _page_clause(size: int, offset: int) -> str:
    """LIMIT one row past the page (that row says whether a page follows), and OFFSET only past
    the first page: DuckDB plans `OFFSET 0` as a limit of its own that no longer stops the scan
    early, 0.45 to 1.1 ms where the first rows of a table are asked for (bench/, issue 12).

    To keep the row order under a LIMIT, DuckDB reads in one thread. So a long first page
    (READER_STOPS_FROM_ROWS and up, the default ARROW page among them) of an unsorted query has no
    LIMIT when its reader stops after page_size + 1 rows: with two or more DuckDB threads (the
    default on 2 CPUs and up) DuckDB then reads in all of them, in order, at most its streaming
    buffer (10 MiB) ahead of the reader. In-process at 2 threads: the bench's point query with the
    default page took 0.86x the time, 1,000,000 of 1.6M matching rows 0.75x; at 1 thread both
    were even (0.99x, 1.04x). A short limit keeps its LIMIT, which stops DuckDB sooner: without
    it, 10,000 of 67,000 matching rows took 2.1-2.5x, 10,000 of 1.6M 3.9-4.4x
    (scratch measurement, 21 interleaved rounds, bench scale 0.25)."""
    return f"LIMIT {size + 1} OFFSET {offset}" if offset else f"LIMIT {size + 1}"


def _select(request: pb.QueryRequest, table: TableInfo, settings: Settings, params: list,
            ordered: bool = True) -> tuple[str, list[str]]:
    """The SELECT statement of `request` (no LIMIT) and its output columns; values go to `params`."""
    _check_counts(request, settings)

    where = [_filter_sql(f, i, table, settings, params) for i, f in enumerate(request.filters)]
    grouped = bool(request.group_by) or bool(request.aggregates)

    if grouped:
        group_by = _columns(request.group_by, table, "group_by")
        if len(set(group_by)) != len(group_by):
            raise invalid(Reason.INVALID_REQUEST, "group_by names a column twice", "group_by")
        projected = _columns(request.columns, table, "columns") or group_by
        for i, name in enumerate(projected):
            if name not in group_by:
                raise invalid(Reason.INVALID_AGGREGATE,
                              f"columns[{i}]: {name!r} is not a group_by column; with group_by or "
                              "aggregates, output columns must be group_by columns",
                              f"columns[{i}]", column=name)
        aggregates = _aggregates(request.aggregates, table, set(projected))
        select = [quote(c) for c in projected] + [f"{sql} AS {quote(alias)}" for alias, sql in aggregates]
        orderable = set(group_by) | {alias for alias, _ in aggregates}
        tiebreak = group_by
    else:
        projected = _columns(request.columns, table, "columns") or [c.name for c in table.columns]
        if len(set(projected)) != len(projected):
            raise invalid(Reason.INVALID_REQUEST, "columns names a column twice", "columns")
        # every column in the table's order: `*`, which DuckDB binds ~0.05 ms faster than the list
        everything = projected == [c.name for c in table.columns]
        select = ["*"] if everything else [quote(c) for c in projected]
        orderable = {c.name for c in table.columns}
        tiebreak = list(table.key_columns)

    order = _order_by(request.order_by, table, orderable, grouped)
    sql = [f"SELECT {', '.join(select)} FROM {table_ref(table)}"]
    if where:
        sql.append("WHERE " + " AND ".join(where))
    if request.group_by:
        sql.append("GROUP BY " + ", ".join(quote(c) for c in group_by))
    if ordered and (order or grouped):
        # Without order_by and grouping the builder's key order is the physical order, which
        # DuckDB preserves (preserve_insertion_order), so no sort is needed for a stable order.
        named = {term.column for term in request.order_by}
        terms = order + [f"{quote(c)} ASC NULLS LAST" for c in tiebreak if c not in named]
        if terms:
            sql.append("ORDER BY " + ", ".join(terms))
    outputs = projected + ([alias for alias, _ in aggregates] if grouped else [])
    return " ".join(sql), outputs


def _check_counts(request: pb.QueryRequest, settings: Settings) -> None:
    for name in ("columns", "filters", "order_by", "group_by", "aggregates"):
        n = len(getattr(request, name))
        if n > settings.max_filters and name != "columns":
            raise invalid(Reason.INVALID_REQUEST, f"{name} has {n} entries; at most "
                          f"{settings.max_filters} are allowed", name)
    if len(request.columns) > 1000:
        raise invalid(Reason.INVALID_REQUEST, "columns has more than 1000 entries", "columns")


def _column(name: str, table: TableInfo, field: str) -> ColumnInfo:
    column = table.column(name)
    if column is None:
        if not name:
            raise invalid(Reason.INVALID_REQUEST, f"{field}: a column name is required", field)
        raise column_not_found(name, table.name, [c.name for c in table.columns], field)
    return column


def _columns(names, table: TableInfo, field: str) -> list[str]:
    return [_column(name, table, f"{field}[{i}]").name for i, name in enumerate(names)]


def _filter_sql(f: pb.Filter, index: int, table: TableInfo, settings: Settings, params: list) -> str:
    field = f"filters[{index}]"
    column = _column(f.column, table, f"{field}.column")
    op_name = pb.Op.Name(f.op) if f.op in _OPS else str(f.op)

    def bad(message: str, sub: str = "op") -> Exception:
        return invalid(Reason.INVALID_FILTER, f"{field} ({f.column} {op_name}): {message}",
                       f"{field}.{sub}", column=f.column, op=op_name)

    if f.op == pb.OP_UNSPECIFIED or f.op not in _OPS:
        raise bad("op is required: one of " + ", ".join(n for n in pb.Op.keys() if n != "OP_UNSPECIFIED"))
    n = len(f.values)
    if f.op in (pb.OP_IS_NULL, pb.OP_IS_NOT_NULL):
        if n:
            raise bad(f"takes no values, got {n}", "values")
        return f"{quote(column.name)} IS {'' if f.op == pb.OP_IS_NULL else 'NOT '}NULL"
    if f.op in (pb.OP_IN, pb.OP_NOT_IN):
        if not 1 <= n <= settings.max_filter_values:
            raise bad(f"takes 1 to {settings.max_filter_values} values, got {n}", "values")
    elif f.op == pb.OP_BETWEEN:
        if n != 2:
            raise bad(f"takes exactly 2 values (low, high), got {n}", "values")
    elif n != 1:
        raise bad(f"takes exactly 1 value, got {n}", "values")
    if f.op in (pb.OP_CONTAINS, pb.OP_STARTS_WITH) and not column.is_text:
        raise bad(f"needs a VARCHAR column; {column.name} is {column.type}")
    values = [_value(v, column, f"{field}.values[{i}]", settings) for i, v in enumerate(f.values)]
    params.extend(values)
    col = quote(column.name)
    if f.op in _COMPARISONS:
        return f"{col} {_COMPARISONS[f.op]} ?"
    if f.op == pb.OP_BETWEEN:
        return f"{col} BETWEEN ? AND ?"
    if f.op == pb.OP_CONTAINS:
        return f"contains({col}, ?)"
    if f.op == pb.OP_STARTS_WITH:
        return f"starts_with({col}, ?)"
    placeholders = ", ".join("?" * n)
    return f"{col} {'IN' if f.op == pb.OP_IN else 'NOT IN'} ({placeholders})"


_KINDS = {"string_value": "text", "int_value": "the whole number", "double_value": "the number",
          "bool_value": "the boolean"}


def _value(value: pb.Value, column: ColumnInfo, field: str, settings: Settings):
    """The Python value of a filter value for `column`. A number compares with any numeric
    column: a double_value against an integer column is compared as a number (n < 2.5)."""
    kind = value.WhichOneof("kind")

    def wrong(holds: str, expected: str) -> Exception:
        got = f"{_KINDS[kind]} {getattr(value, kind)!r} ({kind})" if kind else "no value set (none of its fields)"
        return invalid(Reason.INVALID_FILTER, f"{field}: column {column.name} is {column.type} ({holds}), "
                       f"so the value must be {expected}; got {got}", field, column=column.name)

    if column.is_text:
        if kind != "string_value":
            raise wrong("text", "text (a string_value)")
        if len(value.string_value.encode()) > settings.max_string_bytes:
            raise invalid(Reason.INVALID_FILTER, f"{field}: string longer than "
                          f"{settings.max_string_bytes} bytes", field, column=column.name)
        return value.string_value
    if column.is_numeric:
        holds = "whole numbers" if column.is_integer else "numbers"
        if kind == "int_value":
            return value.int_value
        if kind != "double_value":
            raise wrong(holds, "a number (an int_value or a double_value)")
        if math.isnan(value.double_value):
            raise invalid(Reason.INVALID_FILTER, f"{field}: NaN is not a comparable value", field,
                          column=column.name)
        return value.double_value
    if column.type == "BOOLEAN":
        if kind != "bool_value":
            raise wrong("true/false", "true or false (a bool_value)")
        return value.bool_value
    raise invalid(Reason.INVALID_FILTER, f"{field}: column {column.name} of type {column.type} "
                  "cannot be filtered", field, column=column.name)


def _aggregates(aggregates, table: TableInfo, taken: set[str]) -> list[tuple[str, str]]:
    result = []
    names = set(taken)
    for i, agg in enumerate(aggregates):
        field = f"aggregates[{i}]"
        if agg.function not in _AGGREGATES:
            raise invalid(Reason.INVALID_AGGREGATE, f"{field}.function is required: one of " + ", ".join(
                pb.AggregateFunction.Name(f) for f in _AGGREGATES), f"{field}.function")
        prefix, template = _AGGREGATES[agg.function]
        fn_name = pb.AggregateFunction.Name(agg.function)
        if agg.column:
            column = _column(agg.column, table, f"{field}.column")
            if agg.function in _NUMERIC_ONLY and not column.is_numeric:
                raise invalid(Reason.INVALID_AGGREGATE, f"{field}: {fn_name} needs a numeric column; "
                              f"{column.name} is {column.type}", f"{field}.column",
                              function=fn_name, column=column.name)
            sql = template.format(quote(column.name))
            alias = agg.alias or f"{prefix}_{column.name}"
        elif agg.function == pb.AGGREGATE_FUNCTION_COUNT:
            sql, alias = "count(*)", agg.alias or "count"
        else:
            raise invalid(Reason.INVALID_AGGREGATE, f"{field}.column is required for {fn_name}",
                          f"{field}.column", function=fn_name)
        if alias in names:
            raise invalid(Reason.INVALID_AGGREGATE, f"{field}: output column {alias!r} already exists; "
                          "set a different alias", f"{field}.alias", alias=alias)
        names.add(alias)
        result.append((alias, sql))
    return result


def _order_by(order_by, table: TableInfo, orderable: set[str], grouped: bool) -> list[str]:
    terms, seen = [], set()
    for i, term in enumerate(order_by):
        field = f"order_by[{i}].column"
        if term.column not in orderable:
            if not grouped:
                _column(term.column, table, field)
            raise invalid(Reason.COLUMN_NOT_FOUND, f"{field}: {term.column!r} is not a column of the "
                          f"result; order by one of: {', '.join(sorted(orderable))}", field,
                          table=table.name, column=term.column)
        if term.column in seen:
            raise invalid(Reason.INVALID_REQUEST, f"{field}: {term.column!r} appears twice", field)
        seen.add(term.column)
        terms.append(f"{quote(term.column)} {'DESC' if term.descending else 'ASC'} NULLS LAST")
    return terms


# --- matrices and joins: the same checked, parameterised building blocks, composed ------------


@dataclass(frozen=True)
class Pivot:
    """A matrix view of a long table: one matrix row per `rows` value, one column per `columns`
    value, each cell `function(value)` over the filtered rows that fall in it. Rows and columns
    come in ascending order of their own values, or of `row_order` / `column_order` (another
    column, e.g. an age bin's lower bound, whose smallest value in the row or column ranks it)."""

    rows: str
    columns: str
    value: str
    function: int = pb.AGGREGATE_FUNCTION_AVG
    row_order: str | None = None
    column_order: str | None = None


def compile_pivot(request: pb.QueryRequest, pivot: Pivot, table: TableInfo,
                  settings: Settings) -> tuple[str, list]:
    """Pivot `request.table` (after `request.filters`) in DuckDB.

    The result has one row per distinct `pivot.rows` value, in order, with two lists aligned
    across rows: `columns` (every distinct `pivot.columns` value, in order) and `values` (the
    cell values in that order, NULL where no row falls in a cell).
    """
    if request.group_by or request.aggregates or request.order_by or request.columns:
        raise invalid(Reason.INVALID_REQUEST, "a pivot takes filters only", "pivot")
    _check_counts(request, settings)
    params: list = []
    where = [_filter_sql(f, i, table, settings, params) for i, f in enumerate(request.filters)]
    rows, columns = (_column(c, table, f"pivot.{n}").name for c, n in
                     ((pivot.rows, "rows"), (pivot.columns, "columns")))
    row_order, column_order = (quote(_column(c, table, f"pivot.{n}").name) if c else None for c, n in
                               ((pivot.row_order, "row_order"), (pivot.column_order, "column_order")))
    aggregate = pb.Aggregate(function=pivot.function, column=pivot.value, alias="cell")
    [(_, cell)] = _aggregates([aggregate], table, set())
    source = (f"SELECT {quote(rows)} AS r, {quote(columns)} AS c, {cell} AS v, "
              f"min({row_order or quote(rows)}) AS ro, min({column_order or quote(columns)}) AS co "
              f"FROM {table_ref(table)}"
              + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY 1, 2")  # by position: a table may have its own r or c
    sql = (f"WITH cells AS ({source}), row_keys AS (SELECT r, min(ro) AS ro FROM cells GROUP BY r), "
           "column_keys AS (SELECT c, min(co) AS co FROM cells GROUP BY c) "
           f"SELECT row_keys.r AS {quote(rows)}, list(column_keys.c ORDER BY column_keys.co, column_keys.c) "
           "AS \"columns\", list(cells.v ORDER BY column_keys.co, column_keys.c) AS \"values\" "
           "FROM row_keys CROSS JOIN column_keys "
           "LEFT JOIN cells ON cells.r = row_keys.r AND cells.c = column_keys.c "
           "GROUP BY row_keys.r ORDER BY min(row_keys.ro), row_keys.r")
    return sql, params


def compile_join(left: pb.QueryRequest, left_table: TableInfo, right: pb.QueryRequest,
                 right_table: TableInfo, using: tuple[str, ...], settings: Settings,
                 offset: int = 0) -> CompiledQuery:
    """Join two filtered projections on equal `using` columns, paged like `left` asks.

    Each side compiles as a query of its own (checked, parameterised); the only other output
    column both sides may share is a `using` column. Ordered by both tables' keys, so pages are
    stable.
    """
    for side, request in (("left", left), ("right", right)):
        if request.group_by or request.aggregates or request.order_by:
            raise invalid(Reason.INVALID_REQUEST, f"a join side takes columns and filters only "
                          f"(the {side} side has group_by, aggregates or order_by)", side)
    size = page_size(left, settings)
    params: list = []
    left_sql, left_columns = _select(left, left_table, settings, params, ordered=False)
    right_sql, right_columns = _select(right, right_table, settings, params, ordered=False)
    for i, name in enumerate(using):
        _column(name, left_table, f"using[{i}]")
        _column(name, right_table, f"using[{i}]")
        if name not in left_columns or name not in right_columns:
            raise invalid(Reason.INVALID_REQUEST, f"join column {name!r} must be projected on both sides",
                          "columns", column=name)
    shared = (set(left_columns) & set(right_columns)) - set(using)
    if shared:
        raise invalid(Reason.INVALID_REQUEST, f"both sides of the join project {sorted(shared)}",
                      "columns")
    for table, columns in ((left_table, left_columns), (right_table, right_columns)):
        missing = [c for c in table.key_columns if c not in columns]
        if missing:  # without the whole key the order is not total, and pages could overlap
            raise invalid(Reason.INVALID_REQUEST, f"a join must project the key of {table.name}; "
                          f"missing {missing}", "columns")
    keys = list(dict.fromkeys((*left_table.key_columns, *right_table.key_columns)))
    order = ", ".join(f"{quote(c)} ASC NULLS LAST" for c in keys)
    sql = (f"SELECT * FROM ({left_sql}) AS l JOIN ({right_sql}) AS r USING "
           f"({', '.join(quote(c) for c in using)}) ORDER BY {order} {_page_clause(size, offset)}")
    return CompiledQuery(sql, params, size, offset, result_format(left))
