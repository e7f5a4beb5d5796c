"""Plain Python values -> QueryRequest parts (cytoatlas/requests.py), as the Router and the command
line both read them: the natural shapes of columns, order_by, group_by, where and aggregates,
both spellings of every operator, values converted to the column's type, and one clear error
naming the accepted shapes for anything else. No server needed."""

import pytest

from cytoatlas.requests import parse_condition, to_aggregates, to_columns, to_filters, to_order_by
from cytoatlas.table.v1 import table_service_pb2 as pb

TYPES = {"drug": "VARCHAR", "activity_diff": "DOUBLE", "n_treated": "BIGINT", "ok": "BOOLEAN"}


def flt(column, op, *values):
    return pb.Filter(column=column, op=op, values=[_value(v) for v in values])


def _value(v):
    if isinstance(v, bool):
        return pb.Value(bool_value=v)
    if isinstance(v, int):
        return pb.Value(int_value=v)
    if isinstance(v, float):
        return pb.Value(double_value=v)
    return pb.Value(string_value=v)


def order(column, descending=False):
    return pb.OrderBy(column=column, descending=descending)


@pytest.mark.parametrize("given, expected", [
    ("activity_diff", [order("activity_diff")]),
    ("-activity_diff", [order("activity_diff", True)]),
    ("activity_diff:desc", [order("activity_diff", True)]),
    ("activity_diff:asc", [order("activity_diff")]),
    ("drug,activity_diff:desc", [order("drug"), order("activity_diff", True)]),
    (["drug", "-activity_diff"], [order("drug"), order("activity_diff", True)]),
    (("activity_diff", True), [order("activity_diff", True)]),
    ([("activity_diff", "desc"), ("drug", False)], [order("activity_diff", True), order("drug")]),
    (None, []),
])
def test_order_by_takes_a_name_a_list_and_both_descending_spellings(given, expected):
    assert to_order_by(given) == expected


@pytest.mark.parametrize("given, expected", [
    ("drug", ["drug"]), ("drug,cell_line", ["drug", "cell_line"]), (["drug", "cell_line"], ["drug", "cell_line"]),
    (("drug",), ["drug"]), ((), []), (None, []),
])
def test_columns_and_group_by_take_a_name_a_comma_list_or_a_list(given, expected):
    assert to_columns(given) == expected


@pytest.mark.parametrize("given, expected", [
    (("drug", "Imatinib"), [flt("drug", pb.OP_EQ, "Imatinib")]),
    (("drug", "=", "Imatinib"), [flt("drug", pb.OP_EQ, "Imatinib")]),
    ("drug=Imatinib", [flt("drug", pb.OP_EQ, "Imatinib")]),
    ({"drug": "Imatinib"}, [flt("drug", pb.OP_EQ, "Imatinib")]),
    ([("drug", "Imatinib"), ("cell_line", "!=", "A549")],
     [flt("drug", pb.OP_EQ, "Imatinib"), flt("cell_line", pb.OP_NE, "A549")]),
    ((("drug", "Imatinib"), ("cell_line", "A549")),
     [flt("drug", pb.OP_EQ, "Imatinib"), flt("cell_line", pb.OP_EQ, "A549")]),
    (["drug=Imatinib", "cell_line=A549,K562"],
     [flt("drug", pb.OP_EQ, "Imatinib"), flt("cell_line", pb.OP_IN, "A549", "K562")]),
    (("drug", ["A", "B"]), [flt("drug", pb.OP_IN, "A", "B")]),
    ({"drug": ["A", "B"], "pvalue": None}, [flt("drug", pb.OP_IN, "A", "B"), flt("pvalue", pb.OP_IS_NULL)]),
    (("pvalue", "is null"), [flt("pvalue", pb.OP_IS_NULL)]),
    ("pvalue=null", [flt("pvalue", pb.OP_IS_NULL)]),
    ("pvalue != null", [flt("pvalue", pb.OP_IS_NOT_NULL)]),
    ("pvalue is not null", [flt("pvalue", pb.OP_IS_NOT_NULL)]),
    # both spellings of contains / starts_with, in tuples and in text
    (("drug", "~", "tinib"), [flt("drug", pb.OP_CONTAINS, "tinib")]),
    (("drug", "contains", "tinib"), [flt("drug", pb.OP_CONTAINS, "tinib")]),
    ("drug~tinib", [flt("drug", pb.OP_CONTAINS, "tinib")]),
    ("drug contains tinib", [flt("drug", pb.OP_CONTAINS, "tinib")]),
    (("drug", "^=", "Ima"), [flt("drug", pb.OP_STARTS_WITH, "Ima")]),
    (("drug", "starts_with", "Ima"), [flt("drug", pb.OP_STARTS_WITH, "Ima")]),
    ("drug^=Ima", [flt("drug", pb.OP_STARTS_WITH, "Ima")]),
    ("drug starts_with Ima", [flt("drug", pb.OP_STARTS_WITH, "Ima")]),
    ("n between 1,5", [flt("n", pb.OP_BETWEEN, "1", "5")]),
    ("drug not in A,B", [flt("drug", pb.OP_NOT_IN, "A", "B")]),
    (None, []), ([], []), ({}, []),
])
def test_where_takes_tuples_lists_dicts_and_text_with_either_operator_spelling(given, expected):
    assert to_filters(given) == expected


def test_parse_condition_reads_the_command_line_spelling():
    assert parse_condition("activity_diff<=-1") == ("activity_diff", "<=", "-1")
    assert parse_condition("drug=BAY-11-7082") == ("drug", "=", "BAY-11-7082")
    assert parse_condition("cytokine = IL-6") == ("cytokine", "=", "IL-6")


@pytest.mark.parametrize("given, error, shown", [
    (5, TypeError, "where takes"),
    ([1, 2], TypeError, "where takes"),
    (b"drug=x", TypeError, "where takes"),
    ("drug", ValueError, "COLUMN OP VALUE"),
    (["drug", "Imatinib"], ValueError, "write the tuple ('drug', 'Imatinib')"),
    (("drug", "like", "x"), ValueError, "unknown operator 'like'"),
    ((("drug", 5, "x"),), TypeError, "operator"),
])
def test_anything_else_is_one_clear_error_showing_the_accepted_shapes(given, error, shown):
    with pytest.raises(error) as info:
        to_filters(given)
    assert shown in str(info.value)


@pytest.mark.parametrize("call, shown", [
    (lambda: to_columns(5), "columns takes a column name"),
    (lambda: to_columns(["drug", 5]), "columns takes a column name"),
    (lambda: to_order_by(5), "order_by takes a column name"),
    (lambda: to_order_by([5]), "order_by takes a column name"),
    (lambda: to_order_by("drug:down"), "order_by takes"),
    (lambda: to_aggregates(5), "aggregates takes"),
])
def test_bad_columns_order_and_aggregates_show_the_accepted_shapes(call, shown):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert shown in str(info.value)


def test_values_are_converted_to_the_column_type_as_the_command_line_does():
    assert to_filters(("activity_diff", "<", "-1.5"), TYPES) == [flt("activity_diff", pb.OP_LT, -1.5)]
    assert to_filters("activity_diff<-1", TYPES) == [flt("activity_diff", pb.OP_LT, -1)]
    assert to_filters({"n_treated": "2"}, TYPES) == [flt("n_treated", pb.OP_EQ, 2)]
    assert to_filters("n_treated=1,2", TYPES) == [flt("n_treated", pb.OP_IN, 1, 2)]
    assert to_filters("n_treated>1.5", TYPES) == [flt("n_treated", pb.OP_GT, 1.5)]  # compared as a number
    assert to_filters("ok=TRUE", TYPES) == [flt("ok", pb.OP_EQ, True)]
    assert to_filters(("activity_diff", "<", -2), TYPES) == [flt("activity_diff", pb.OP_LT, -2)]
    assert to_filters("drug=5", TYPES) == [flt("drug", pb.OP_EQ, "5")]  # text stays text
    assert to_filters("unknown=5", TYPES) == [flt("unknown", pb.OP_EQ, "5")]  # the server names it


@pytest.mark.parametrize("where, words", [
    ("n_treated=abc", ["'n_treated'", "BIGINT", "whole numbers", "'abc'", "not a number"]),
    (("activity_diff", "<", "-1.5x"), ["'activity_diff'", "DOUBLE", "numbers", "'-1.5x'"]),
    (("drug", 5), ["'drug'", "VARCHAR", "text", "5", "'5'"]),
    (("ok", "yes"), ["'ok'", "BOOLEAN", "'yes'", "True or False"]),
])
def test_a_value_that_cannot_be_converted_is_named_with_its_column_and_type_in_plain_words(where, words):
    with pytest.raises(ValueError) as info:
        to_filters(where, TYPES)
    message = str(info.value)
    assert all(w in message for w in words), message
    assert "_value" not in message  # no protobuf field names for Python users


def test_aggregates_take_the_command_line_spelling_too():
    assert to_aggregates(["count", "avg:activity"]) == to_aggregates([("count", ""), ("avg", "activity")])
    assert to_aggregates("avg:activity") == to_aggregates([("avg", "activity")])
    assert to_aggregates({"mean": ("avg", "activity")})[0].alias == "mean"
