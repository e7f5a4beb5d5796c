"""Plain Python values -> the parts of a table.v1 QueryRequest (filters, ordering, aggregates).

Shared by the Router (callers' keyword arguments) and the typed domain servicers (their fixed
queries), so both build requests the same way and the compiler sees one shape of request.
"""

from __future__ import annotations

from collections.abc import Mapping

from cytoatlas.table.v1 import table_service_pb2 as pb

_OPS = {"=": pb.OP_EQ, "==": pb.OP_EQ, "!=": pb.OP_NE, "<>": pb.OP_NE, "<": pb.OP_LT, "<=": pb.OP_LE,
        ">": pb.OP_GT, ">=": pb.OP_GE, "in": pb.OP_IN, "not in": pb.OP_NOT_IN, "between": pb.OP_BETWEEN,
        "is null": pb.OP_IS_NULL, "is not null": pb.OP_IS_NOT_NULL, "contains": pb.OP_CONTAINS,
        "starts_with": pb.OP_STARTS_WITH}
_AGGREGATES = {name.removeprefix("AGGREGATE_FUNCTION_").lower(): value
               for name, value in pb.AggregateFunction.items() if value}


def to_value(value) -> pb.Value:
    if isinstance(value, bool):
        return pb.Value(bool_value=value)
    if isinstance(value, int):
        return pb.Value(int_value=value)
    if isinstance(value, float):
        return pb.Value(double_value=value)
    if isinstance(value, str):
        return pb.Value(string_value=value)
    raise TypeError(f"cannot send {value!r} ({type(value).__name__}) as a filter value")


def to_filters(where) -> list[pb.Filter]:
    """`where` as {column: value | [values] | None} or [(column, op, value), ...] or pb.Filters."""
    if not where:
        return []
    if isinstance(where, Mapping):
        where = [(c, "is null" if v is None else "in" if isinstance(v, (list, tuple, set)) else "=", v)
                 for c, v in where.items()]
    filters = []
    for item in where:
        if isinstance(item, pb.Filter):
            filters.append(item)
            continue
        column, op, *rest = item
        if op.lower() not in _OPS:
            raise ValueError(f"unknown operator {op!r}; use one of {', '.join(_OPS)}")
        values = rest[0] if rest else ()
        if not isinstance(values, (list, tuple, set)):
            values = () if values is None and "null" in op else (values,)
        filters.append(pb.Filter(column=column, op=_OPS[op.lower()], values=[to_value(v) for v in values]))
    return filters


def to_order_by(order_by) -> list[pb.OrderBy]:
    """["col", "-col" (descending), ("col", True)]"""
    terms = []
    for term in order_by or ():
        if isinstance(term, str):
            terms.append(pb.OrderBy(column=term.lstrip("-"), descending=term.startswith("-")))
        else:
            terms.append(pb.OrderBy(column=term[0], descending=bool(term[1])))
    return terms


def to_aggregates(aggregates) -> list[pb.Aggregate]:
    """{"alias": ("avg", "column")} or [("count", ""), ("max", "activity"), ...]"""
    items = aggregates.items() if isinstance(aggregates, Mapping) else [(None, a) for a in aggregates or ()]
    result = []
    for alias, spec in items:
        function, column = (spec, "") if isinstance(spec, str) else spec
        if function.lower() not in _AGGREGATES:
            raise ValueError(f"unknown aggregate {function!r}; use one of {', '.join(_AGGREGATES)}")
        result.append(pb.Aggregate(function=_AGGREGATES[function.lower()], column=column, alias=alias or ""))
    return result
