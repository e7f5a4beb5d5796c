"""Plain Python values -> the parts of a table.v1 QueryRequest (filters, ordering, aggregates).

Shared by the Router (callers' keyword arguments), the command line (its --where, --order-by and
--aggregate strings go through the same functions) and the typed domain servicers (their fixed
queries), so all build requests the same way, with the same spellings, and the compiler sees
one shape of request. The operators and the accepted shapes are documented once, in
docs/clients.md ("Filters and ordering").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from cytoatlas.table.v1 import table_service_pb2 as pb

# Every spelling of every operator: the words (Router style) and the symbols (command-line style).
_OPS = {"=": pb.OP_EQ, "==": pb.OP_EQ, "!=": pb.OP_NE, "<>": pb.OP_NE, "<": pb.OP_LT, "<=": pb.OP_LE,
        ">": pb.OP_GT, ">=": pb.OP_GE, "in": pb.OP_IN, "not in": pb.OP_NOT_IN, "between": pb.OP_BETWEEN,
        "is null": pb.OP_IS_NULL, "is not null": pb.OP_IS_NOT_NULL, "contains": pb.OP_CONTAINS, "~": pb.OP_CONTAINS,
        "starts_with": pb.OP_STARTS_WITH, "starts with": pb.OP_STARTS_WITH, "^=": pb.OP_STARTS_WITH}
_NO_VALUE = {"is null", "is not null"}
_MANY_VALUES = {"in", "not in", "between"}
_AGGREGATES = {name.removeprefix("AGGREGATE_FUNCTION_").lower(): value
               for name, value in pb.AggregateFunction.items() if value}

OPERATORS = ("= (or ==), != (or <>), <, <=, >, >=, in, not in, between, is null, is not null, "
             "contains (or ~), starts_with (or ^=)")
WHERE_SHAPES = ("where takes: a dict {column: value} (a list value means IN, None means IS NULL); "
                "a tuple (column, value) or (column, op, value); a string 'column op value' such as "
                "'drug=Imatinib', 'activity_diff<-1' or 'drug contains tinib'; or a list of these. "
                f"Operators: {OPERATORS}")
ORDER_SHAPES = ("order_by takes a column name, '-column' or 'column:desc' for descending, "
                "(column, descending) tuples, or a list of these (a string may list several, "
                "comma-separated)")
COLUMN_SHAPES = "{field} takes a column name, a comma-separated string of names, or a list of names"
AGGREGATE_SHAPES = ("aggregates takes {alias: (function, column)}, a list of (function, column) or "
                    "'function:column' strings ('count' alone counts rows); functions: "
                    + ", ".join(_AGGREGATES))

# A condition written as text: COLUMN OP VALUE. Longest symbols first so "<=" is not read as "<";
# the word operators need a space on both sides (or the end, for the null tests).
_SYMBOL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|<>|<=|>=|=|<|>|~|\^=)\s*(.*)$", re.S)
_WORD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+(is\s+not\s+null|is\s+null|not\s+in|in|between|contains|"
                   r"starts_with|starts\s+with)(?:\s+(.*)|\s*)$", re.S | re.I)

_INTEGER_TYPES = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER",
                  "USMALLINT", "UTINYINT"}


def column_kind(column_type: str) -> str:
    """What a DuckDB column type holds, in plain words."""
    column_type = column_type.upper()
    if column_type in _INTEGER_TYPES:
        return "whole numbers"
    if column_type in ("DOUBLE", "FLOAT", "REAL") or column_type.startswith("DECIMAL"):
        return "numbers"
    if column_type == "BOOLEAN":
        return "true/false"
    if column_type in ("VARCHAR", "TEXT", "STRING"):
        return "text"
    return column_type.lower()


def convert(value, column: str, column_type: str | None):
    """A filter value converted to the column's type as the command line does: '5' for a BIGINT
    column is 5, '-1.5' for a DOUBLE is -1.5, 'true' for a BOOLEAN is True. Values of the right
    kind, and every value when the type is not known, pass unchanged. ValueError, naming the
    column, its type and the value, when the value cannot be one."""
    if column_type is None or value is None:
        return value
    kind = column_kind(column_type)

    def wrong(what: str) -> ValueError:
        return ValueError(f"column {column!r} is {column_type} ({kind}), so {value!r} cannot be "
                          f"compared with it: {what}")

    if kind in ("whole numbers", "numbers"):
        if isinstance(value, bool):
            raise wrong("give a number")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                pass
            try:
                number = float(text)
            except ValueError:
                raise wrong("it is not a number") from None
            if math.isnan(number):
                raise wrong("NaN is not comparable")
            return number
        raise wrong("give a number")
    if kind == "true/false":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise wrong("give True or False (or the text 'true' / 'false')")
    if kind == "text" and not isinstance(value, str):
        raise wrong(f"give text, e.g. {str(value)!r}")
    return value


def to_value(value) -> pb.Value:
    if isinstance(value, bool):
        return pb.Value(bool_value=value)
    if isinstance(value, int):
        return pb.Value(int_value=value)
    if isinstance(value, float):
        return pb.Value(double_value=value)
    if isinstance(value, str):
        return pb.Value(string_value=value)
    raise TypeError(f"cannot send {value!r} ({type(value).__name__}) as a filter value: "
                    "give a string, an int, a float or a bool")


def parse_condition(text: str) -> tuple:
    """'drug=Imatinib' -> ('drug', '=', 'Imatinib'); 'drug=a,b' -> ('drug', 'in', ['a', 'b']);
    'pvalue=null' -> ('pvalue', 'is null', None); 'drug contains tinib'; 'n between 1,5'.
    Values stay text here; to_filters converts them to the column's type when it knows it."""
    match = _SYMBOL.match(text)
    if match:
        column, op, raw = match.groups()
        op = {"~": "contains", "^=": "starts_with"}.get(op, op)
        if raw.strip().lower() == "null" and op in ("=", "==", "!=", "<>"):
            return (column, "is null" if op in ("=", "==") else "is not null", None)
        if op in ("=", "==", "!=", "<>") and "," in raw:
            return (column, "in" if op in ("=", "==") else "not in", raw.split(","))
        return (column, op, raw)
    match = _WORD.match(text)
    if match:
        column, op, raw = match.groups()
        op = " ".join(op.lower().split())
        if op in _NO_VALUE:
            if raw:
                raise ValueError(f"cannot read the condition {text!r}: {op!r} takes no value")
            return (column, op, None)
        if raw is None:
            raise ValueError(f"cannot read the condition {text!r}: {op!r} needs a value")
        return (column, op, raw.split(",") if op in _MANY_VALUES else raw)
    raise ValueError(f"cannot read the condition {text!r}: write it as COLUMN OP VALUE, e.g. "
                     f"'drug=Imatinib' or 'activity_diff<-1'. {WHERE_SHAPES}")


def _conditions(where) -> list:
    """`where` in any accepted shape -> a list of pb.Filter or (column, op, value) tuples."""
    if isinstance(where, (pb.Filter, str)) or (isinstance(where, tuple) and where and isinstance(where[0], str)):
        where = [where]
    elif isinstance(where, Mapping):
        return [(c, "is null" if v is None else "in" if isinstance(v, (list, tuple, set, frozenset)) else "=", v)
                for c, v in where.items()]
    elif not isinstance(where, Iterable) or isinstance(where, (bytes, bytearray)):
        raise TypeError(f"cannot use {where!r} ({type(where).__name__}) as where. {WHERE_SHAPES}")
    conditions = []
    items = list(where)
    for item in items:
        if isinstance(item, pb.Filter):
            conditions.append(item)
        elif isinstance(item, str):
            try:
                conditions.append(parse_condition(item))
            except ValueError as exc:
                if 2 <= len(items) <= 3 and all(not isinstance(i, (tuple, list, pb.Filter)) for i in items):
                    raise ValueError(f"{exc} (a list is several conditions; for one condition "
                                     f"write the tuple {tuple(items)!r})") from None
                raise
        elif isinstance(item, Mapping):
            conditions.extend(_conditions(item))
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3) and isinstance(item[0], str):
            if len(item) == 3:
                column, op, value = item
            elif isinstance(item[1], str) and " ".join(item[1].lower().split()) in _NO_VALUE:
                column, op, value = item[0], item[1], None
            else:
                value = item[1]
                op = "is null" if value is None else "in" if isinstance(value, (list, tuple, set)) else "="
                column = item[0]
            if not isinstance(op, str):
                raise TypeError(f"the operator in {tuple(item)!r} must be a string. {WHERE_SHAPES}")
            conditions.append((column, op, value))
        else:
            raise TypeError(f"cannot use {item!r} ({type(item).__name__}) as a condition. {WHERE_SHAPES}")
    return conditions


def to_filters(where, types: Mapping[str, str] | None = None) -> list[pb.Filter]:
    """`where` in any of the shapes WHERE_SHAPES lists (or pb.Filters) -> filters. With `types`
    ({column: DuckDB type}, e.g. from discovery) values are converted to their column's type
    first, as the command line does."""
    if where is None or (isinstance(where, (str, Mapping, list, tuple, set)) and not where):
        return []
    filters = []
    for condition in _conditions(where):
        if isinstance(condition, pb.Filter):
            filters.append(condition)
            continue
        column, op, value = condition
        name = " ".join(op.lower().split())
        if name not in _OPS:
            raise ValueError(f"unknown operator {op!r} in {condition!r}; operators: {OPERATORS}")
        if isinstance(value, (list, tuple, set, frozenset)):
            values = list(value)
        else:
            values = [] if value is None and name in _NO_VALUE else [value]
        column_type = (types or {}).get(column)
        filters.append(pb.Filter(column=column, op=_OPS[name],
                                 values=[to_value(convert(v, column, column_type)) for v in values]))
    return filters


def to_columns(columns, field: str = "columns") -> list[str]:
    """'drug' or 'drug,cell_line' or ['drug', 'cell_line'] -> ['drug', 'cell_line']."""
    if columns is None:
        return []
    if isinstance(columns, str):
        return [c.strip() for c in columns.split(",") if c.strip()]
    if isinstance(columns, Iterable) and not isinstance(columns, (bytes, bytearray, Mapping)):
        names = list(columns)
        if all(isinstance(c, str) for c in names):
            return names
    raise TypeError(f"cannot use {columns!r} as {field}: " + COLUMN_SHAPES.format(field=field))


def to_order_by(order_by) -> list[pb.OrderBy]:
    """'col', '-col' or 'col:desc' (descending), 'col:asc', ('col', True), pb.OrderBy, or a list."""
    if order_by is None:
        return []
    if isinstance(order_by, (str, pb.OrderBy)) or _is_order_pair(order_by):
        order_by = [order_by]
    elif not isinstance(order_by, Iterable) or isinstance(order_by, (bytes, bytearray, Mapping)):
        raise TypeError(f"cannot use {order_by!r} as order_by: {ORDER_SHAPES}")
    terms = []
    for term in order_by:
        if isinstance(term, pb.OrderBy):
            terms.append(term)
        elif isinstance(term, str):
            for part in (p.strip() for p in term.split(",")):
                if not part:
                    continue
                name, _, direction = part.partition(":")
                if direction.lower() not in ("", "asc", "desc"):
                    raise ValueError(f"cannot read the order term {part!r}: {ORDER_SHAPES}")
                descending = name.startswith("-") or direction.lower() == "desc"
                terms.append(pb.OrderBy(column=name.lstrip("-").strip(), descending=descending))
        elif _is_order_pair(term):
            descending = term[1]
            if isinstance(descending, str):
                if descending.lower() not in ("asc", "desc"):
                    raise ValueError(f"cannot read the order term {term!r}: {ORDER_SHAPES}")
                descending = descending.lower() == "desc"
            terms.append(pb.OrderBy(column=term[0], descending=bool(descending)))
        else:
            raise TypeError(f"cannot use {term!r} as an order term: {ORDER_SHAPES}")
    return terms


def _is_order_pair(term) -> bool:
    """('col', True) or ('col', 'desc'): one order term, not a list of two column names."""
    return (isinstance(term, (tuple, list)) and len(term) == 2 and isinstance(term[0], str)
            and (isinstance(term[1], (bool, int)) or (isinstance(term[1], str) and term[1].lower() in ("asc", "desc"))))


def to_aggregates(aggregates) -> list[pb.Aggregate]:
    """{"alias": ("avg", "column")} or [("count", ""), ("max", "activity"), "avg:activity", "count"]"""
    if not aggregates:
        return []
    if isinstance(aggregates, Mapping):
        items = list(aggregates.items())
    elif isinstance(aggregates, str) or (isinstance(aggregates, tuple) and len(aggregates) == 2
                                         and all(isinstance(a, str) for a in aggregates)):
        items = [(None, aggregates)]
    elif isinstance(aggregates, Iterable):
        items = [(None, a) for a in aggregates]
    else:
        raise TypeError(f"cannot use {aggregates!r} as aggregates: {AGGREGATE_SHAPES}")
    result = []
    for alias, spec in items:
        if isinstance(spec, str):
            function, _, column = spec.partition(":")
        elif isinstance(spec, (tuple, list)) and len(spec) == 2 and all(isinstance(s, str) for s in spec):
            function, column = spec
        else:
            raise TypeError(f"cannot use {spec!r} as an aggregate: {AGGREGATE_SHAPES}")
        if function.strip().lower() not in _AGGREGATES:
            raise ValueError(f"unknown aggregate {function!r}; use one of {', '.join(_AGGREGATES)}")
        result.append(pb.Aggregate(function=_AGGREGATES[function.strip().lower()], column=column.strip(),
                                   alias=alias or ""))
    return result
