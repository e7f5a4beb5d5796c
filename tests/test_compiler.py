"""Unit tests of request validation and SQL compilation (no server, no file)."""

import grpc
import pytest

from cytoatlas.serving import paging
from cytoatlas.serving.compiler import READER_STOPS_FROM_ROWS, compile_query
from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import ColumnInfo, TableInfo, arrow_reader
from cytoatlas.serving.errors import ServiceError
from cytoatlas.table.v1 import table_service_pb2 as pb

TABLE = TableInfo(
    name="effects", domain="perturbation", description="", row_count=10,
    columns=(ColumnInfo("cytokine", "VARCHAR", False, ""), ColumnInfo("cell_type", "VARCHAR", False, ""),
             ColumnInfo("n", "BIGINT", True, ""), ColumnInfo("diff", "DOUBLE", True, ""),
             ColumnInfo("ok", "BOOLEAN", True, ""), ColumnInfo('we"ird', "VARCHAR", True, "")),
    key_columns=("cytokine", "cell_type"))
SETTINGS = Settings()


def s(v):
    return pb.Value(string_value=v)


def i(v):
    return pb.Value(int_value=v)


def d(v):
    return pb.Value(double_value=v)


def f(column, op, *values):
    return pb.Filter(column=column, op=op, values=values)


def compile_(**kw):
    return compile_query(pb.QueryRequest(table="effects", **kw), TABLE, SETTINGS)


def error(**kw) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        compile_(**kw)
    return info.value


def test_plain_select_relies_on_key_order_and_fetches_one_extra_row():
    q = compile_()
    assert q.sql == f'SELECT * FROM served.main."effects" LIMIT {SETTINGS.arrow_default_limit + 1}'
    assert q.params == []


def test_a_long_unsorted_first_page_read_by_a_stopping_reader_has_no_limit_everything_else_keeps_it():
    def sql(offset=0, **kw):
        return compile_query(pb.QueryRequest(table="effects", **kw), TABLE, SETTINGS, offset, reader_stops=True).sql

    assert sql() == 'SELECT * FROM served.main."effects"'  # the default ARROW page: DuckDB reads in parallel
    assert sql(limit=READER_STOPS_FROM_ROWS - 1) == 'SELECT * FROM served.main."effects"'  # asks LIMIT + 1
    assert sql(limit=READER_STOPS_FROM_ROWS - 2).endswith(f"LIMIT {READER_STOPS_FROM_ROWS - 1}")  # short: stops sooner
    assert sql(offset=5).endswith(f"LIMIT {SETTINGS.arrow_default_limit + 1} OFFSET 5")  # a later page
    assert sql(format=pb.RESULT_FORMAT_ROWS).endswith(f"LIMIT {SETTINGS.rows_default_limit + 1}")
    ordered = sql(order_by=[pb.OrderBy(column="n")])
    assert ordered.endswith(f"LIMIT {SETTINGS.arrow_default_limit + 1}")  # top-N, not a full sort
    assert sql(group_by=["cytokine"]).endswith(f"LIMIT {SETTINGS.arrow_default_limit + 1}")
    # a caller that runs the statement to the end (typed RPCs) always gets the LIMIT
    assert compile_().sql.endswith(f"LIMIT {SETTINGS.arrow_default_limit + 1}")


def test_every_column_in_the_table_order_is_a_star_any_other_projection_is_listed():
    in_order = [c.name for c in TABLE.columns]
    assert compile_(columns=in_order).sql.startswith('SELECT * FROM')
    shuffled = in_order[1:] + in_order[:1]
    assert compile_(columns=shuffled).sql.startswith('SELECT "cell_type", "n", "diff", "ok", "we""ird", "cytokine" FROM')
    assert compile_(columns=in_order[:-1]).sql.startswith('SELECT "cytokine", "cell_type", "n", "diff", "ok" FROM')


def test_filters_are_bound_parameters_in_order():
    q = compile_(columns=["diff"], filters=[
        f("cytokine", pb.OP_IN, s("IL6"), s("IFNG")), f("diff", pb.OP_BETWEEN, i(-1), d(2.5)),
        f("cell_type", pb.OP_STARTS_WITH, s("CD4")), f("n", pb.OP_IS_NULL), f("cytokine", pb.OP_CONTAINS, s("'; drop"))],
        limit=5)
    assert q.sql == ('SELECT "diff" FROM served.main."effects" WHERE "cytokine" IN (?, ?) AND "diff" BETWEEN ? AND ? '
                     'AND starts_with("cell_type", ?) AND "n" IS NULL AND contains("cytokine", ?) LIMIT 6')
    assert q.params == ["IL6", "IFNG", -1, 2.5, "CD4", "'; drop"]


def test_order_by_appends_the_key_as_tiebreaker_with_nulls_last():
    q = compile_(order_by=[pb.OrderBy(column="diff", descending=True), pb.OrderBy(column="cell_type")])
    assert 'ORDER BY "diff" DESC NULLS LAST, "cell_type" ASC NULLS LAST, "cytokine" ASC NULLS LAST ' in q.sql


def test_group_by_with_aggregates_orders_by_groups():
    q = compile_(group_by=["cytokine"], aggregates=[
        pb.Aggregate(function=pb.AGGREGATE_FUNCTION_COUNT),
        pb.Aggregate(function=pb.AGGREGATE_FUNCTION_AVG, column="diff"),
        pb.Aggregate(function=pb.AGGREGATE_FUNCTION_COUNT_DISTINCT, column="cell_type", alias="cells"),
        pb.Aggregate(function=pb.AGGREGATE_FUNCTION_COUNT, column="n")],  # a column's count leaves its NULLs out
        order_by=[pb.OrderBy(column="avg_diff", descending=True)])
    assert q.sql.startswith('SELECT "cytokine", count(*) AS "count", avg("diff") AS "avg_diff", '
                            'count(DISTINCT "cell_type") AS "cells", count("n") AS "count_n" FROM served.main."effects" '
                            'GROUP BY "cytokine" '
                            'ORDER BY "avg_diff" DESC NULLS LAST, "cytokine" ASC NULLS LAST')


def test_limits_default_cap_and_offset():
    assert compile_(format=pb.RESULT_FORMAT_ROWS).page_size == SETTINGS.rows_default_limit
    assert compile_(format=pb.RESULT_FORMAT_ROWS, limit=10**9).page_size == SETTINGS.rows_max_limit
    assert compile_(limit=10**12).page_size == SETTINGS.arrow_max_limit
    q = compile_query(pb.QueryRequest(table="effects", limit=3), TABLE, SETTINGS, offset=9)
    assert q.sql.endswith("LIMIT 4 OFFSET 9")
    # An operator may set a default above the maximum (nothing refuses it): the maximum still wins.
    odd = Settings(rows_default_limit=50, rows_max_limit=10)
    assert compile_query(pb.QueryRequest(table="effects", format=pb.RESULT_FORMAT_ROWS), TABLE, odd).page_size == 10


@pytest.mark.parametrize("kw, reason, field", [
    (dict(columns=["nope"]), "COLUMN_NOT_FOUND", "columns[0]"),
    (dict(columns=["diff", "diff"]), "INVALID_REQUEST", "columns"),
    (dict(limit=-1), "INVALID_REQUEST", "limit"),
    (dict(format=7), "INVALID_REQUEST", "format"),
    (dict(filters=[f("diff", pb.OP_UNSPECIFIED, d(1))]), "INVALID_FILTER", "filters[0].op"),
    (dict(filters=[f("diff", 99, d(1))]), "INVALID_FILTER", "filters[0].op"),
    (dict(filters=[f("diff", pb.OP_EQ)]), "INVALID_FILTER", "filters[0].values"),
    (dict(filters=[f("diff", pb.OP_BETWEEN, d(1))]), "INVALID_FILTER", "filters[0].values"),
    (dict(filters=[f("diff", pb.OP_BETWEEN, d(1), d(2), d(3))]), "INVALID_FILTER", "filters[0].values"),
    (dict(filters=[f("diff", pb.OP_IS_NULL, d(1))]), "INVALID_FILTER", "filters[0].values"),
    (dict(filters=[f("diff", pb.OP_IN)]), "INVALID_FILTER", "filters[0].values"),
    (dict(filters=[f("n", pb.OP_EQ, s("3"))]), "INVALID_FILTER", "filters[0].values[0]"),
    (dict(filters=[f("cytokine", pb.OP_EQ, i(3))]), "INVALID_FILTER", "filters[0].values[0]"),
    (dict(filters=[f("ok", pb.OP_EQ, s("true"))]), "INVALID_FILTER", "filters[0].values[0]"),
    (dict(filters=[f("diff", pb.OP_EQ, d(float("nan")))]), "INVALID_FILTER", "filters[0].values[0]"),
    (dict(filters=[f("diff", pb.OP_EQ, pb.Value())]), "INVALID_FILTER", "filters[0].values[0]"),
    (dict(filters=[f("n", pb.OP_CONTAINS, i(1))]), "INVALID_FILTER", "filters[0].op"),
    (dict(filters=[f("diff", pb.OP_STARTS_WITH, d(1))]), "INVALID_FILTER", "filters[0].op"),
    (dict(filters=[f("x; DROP TABLE effects", pb.OP_EQ, s("a"))]), "COLUMN_NOT_FOUND", "filters[0].column"),
    (dict(group_by=["cytokine"], columns=["diff"]), "INVALID_AGGREGATE", "columns[0]"),
    (dict(aggregates=[pb.Aggregate(function=pb.AGGREGATE_FUNCTION_SUM, column="cytokine")]),
     "INVALID_AGGREGATE", "aggregates[0].column"),
    (dict(aggregates=[pb.Aggregate(column="diff")]), "INVALID_AGGREGATE", "aggregates[0].function"),
    (dict(aggregates=[pb.Aggregate(function=pb.AGGREGATE_FUNCTION_MAX)]), "INVALID_AGGREGATE", "aggregates[0].column"),
    (dict(group_by=["cytokine"], aggregates=[pb.Aggregate(function=pb.AGGREGATE_FUNCTION_COUNT, alias="cytokine")]),
     "INVALID_AGGREGATE", "aggregates[0].alias"),
    (dict(group_by=["cytokine"], order_by=[pb.OrderBy(column="diff")]), "COLUMN_NOT_FOUND", "order_by[0].column"),
    (dict(order_by=[pb.OrderBy(column="diff"), pb.OrderBy(column="diff")]), "INVALID_REQUEST", "order_by[1].column"),
    (dict(filters=[f("n", pb.OP_IS_NOT_NULL)] * 65), "INVALID_REQUEST", "filters"),
    (dict(filters=[f("cytokine", pb.OP_EQ, s("x" * 5000))]), "INVALID_FILTER", "filters[0].values[0]"),
])
def test_bad_requests_are_invalid_argument_naming_the_field(kw, reason, field):
    err = error(**kw)
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.field == field
    status = err.to_status()
    assert reason in str(status.details[0].value)
    assert field.split("[")[0] in err.message


def test_in_takes_up_to_max_filter_values_values():
    small = Settings(max_filter_values=3)
    values = [s("a"), s("b"), s("c"), s("d")]
    for op in (pb.OP_IN, pb.OP_NOT_IN):
        request = pb.QueryRequest(table="effects", filters=[f("cytokine", op, *values[:3])])
        assert compile_query(request, TABLE, small).params == ["a", "b", "c"]  # exactly the maximum: taken
        with pytest.raises(ServiceError) as info:
            compile_query(pb.QueryRequest(table="effects", filters=[f("cytokine", op, *values)]), TABLE, small)
        assert info.value.field == "filters[0].values"


def test_a_double_against_an_integer_column_compares_as_a_number():
    q = compile_(columns=["n"], filters=[f("n", pb.OP_GT, d(1.5)), f("n", pb.OP_IN, d(2.0), i(3)),
                                         f("n", pb.OP_BETWEEN, d(0.5), d(9.5))])
    assert q.params == [1.5, 2.0, 3, 0.5, 9.5]
    import duckdb  # and DuckDB compares them as numbers: 2 > 1.5, 1 is not

    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS served")
    con.execute('CREATE TABLE served.main.effects (cytokine VARCHAR, cell_type VARCHAR, n BIGINT, diff DOUBLE, '
                'ok BOOLEAN, "we""ird" VARCHAR)')
    con.execute("INSERT INTO served.main.effects VALUES ('a', 'x', 1, 0, true, ''), ('b', 'x', 2, 0, true, ''), "
                "('c', 'x', 3, 0, true, '')")
    assert con.execute(q.sql, q.params).fetchall() == [(2,), (3,)]


@pytest.mark.parametrize("value, column, words", [
    (s("-1.5"), "diff", ["column diff is DOUBLE (numbers)", "must be a number", "got text '-1.5'"]),
    (s("3"), "n", ["column n is BIGINT (whole numbers)", "must be a number", "got text '3'"]),
    (i(3), "cytokine", ["column cytokine is VARCHAR (text)", "must be text", "got the whole number 3"]),
    (s("true"), "ok", ["column ok is BOOLEAN (true/false)", "must be true or false", "got text 'true'"]),
    (pb.Value(), "diff", ["column diff is DOUBLE", "got no value set"]),
])
def test_a_wrong_value_type_is_said_in_plain_words_with_the_column_and_its_type(value, column, words):
    message = error(filters=[f(column, pb.OP_EQ, value)]).message
    assert all(w in message for w in words), message


def test_unknown_column_suggests_close_names():
    err = error(columns=["cell_typ"])
    assert "did you mean 'cell_type'" in err.message
    assert err.metadata["suggestions"] == "cell_type"


def test_page_tokens_round_trip_and_reject_tampering_other_requests_and_old_builds():
    request = pb.QueryRequest(table="effects", filters=[f("n", pb.OP_GT, i(3))], limit=5)
    token = paging.encode(40, request, "build-1", "secret")
    assert paging.decode(token, request, "build-1", "secret") == 40
    other_page_size = pb.QueryRequest(table="effects", filters=[f("n", pb.OP_GT, i(3))], limit=50)
    assert paging.decode(token, other_page_size, "build-1", "secret") == 40
    # a page read through another replica's Flight endpoint (another instance_id) continues it
    elsewhere = pb.QueryRequest(table="effects", filters=[f("n", pb.OP_GT, i(3))], limit=5, instance_id="b")
    assert paging.decode(token, elsewhere, "build-1", "secret") == 40
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad, code in [(tampered, grpc.StatusCode.INVALID_ARGUMENT), ("not a token!", grpc.StatusCode.INVALID_ARGUMENT),
                      ("", grpc.StatusCode.INVALID_ARGUMENT)]:
        with pytest.raises(ServiceError) as info:
            paging.decode(bad, request, "build-1", "secret")
        assert info.value.code == code
    with pytest.raises(ServiceError) as info:
        paging.decode(token, pb.QueryRequest(table="effects", limit=5), "build-1", "secret")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "different request" in info.value.message
    with pytest.raises(ServiceError) as info:
        paging.decode(token, request, "build-2", "secret")
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and "rebuilt" in info.value.message


# -- pivot and join: the same checked identifiers and bound values ----------------------------

def test_pivot_binds_filter_values_quotes_identifiers_and_checks_columns():
    from cytoatlas.serving.compiler import Pivot, compile_pivot

    request = pb.QueryRequest(table="effects", filters=[f("cytokine", pb.OP_EQ, s("IL-6'; DROP"))])
    sql, params = compile_pivot(request, Pivot('we"ird', "cell_type", "diff"), TABLE, SETTINGS)
    assert params == ["IL-6'; DROP"] and "DROP" not in sql
    assert '"we""ird" AS r' in sql and 'avg("diff")' in sql
    with pytest.raises(ServiceError) as info:
        compile_pivot(pb.QueryRequest(table="effects"), Pivot("cytokine", "celltype", "diff"), TABLE, SETTINGS)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "did you mean 'cell_type'" in info.value.message
    with pytest.raises(ServiceError) as info:  # a non-numeric cell value cannot be averaged
        compile_pivot(pb.QueryRequest(table="effects"), Pivot("cytokine", "cell_type", "ok"), TABLE, SETTINGS)
    assert "numeric" in info.value.message


def test_pivot_orders_rows_and_columns_by_another_column_when_asked():
    """Age bins sort by their lower bound ('10-20' before '5-10' as text, after it by bound)."""
    import duckdb

    from cytoatlas.serving.compiler import Pivot, compile_pivot

    table = TableInfo(name="bins", domain="atlas", description="", row_count=6,
                      columns=(ColumnInfo("sig", "VARCHAR", False, ""), ColumnInfo("bin", "VARCHAR", False, ""),
                               ColumnInfo("bin_low", "DOUBLE", False, ""), ColumnInfo("v", "DOUBLE", True, ""),
                               ColumnInfo("sig_rank", "BIGINT", False, "")),
                      key_columns=("sig", "bin"))
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS served")
    con.execute("CREATE TABLE served.main.bins AS SELECT * FROM (VALUES ('IL6', '10-20', 10.0, 1.0, 2), "
                "('IL6', '5-10', 5.0, 2.0, 2), ('IL6', '20-30', 20.0, 3.0, 2), ('IFNG', '5-10', 5.0, 4.0, 1), "
                "('IFNG', '10-20', 10.0, 5.0, 1)) AS t(sig, bin, bin_low, v, sig_rank)")
    request = pb.QueryRequest(table="bins")

    def matrix(pivot):
        return [(r, c, v) for r, c, v in con.execute(compile_pivot(request, pivot, table, SETTINGS)[0]).fetchall()]

    assert matrix(Pivot("sig", "bin", "v")) == [
        ("IFNG", ["10-20", "20-30", "5-10"], [5.0, None, 4.0]), ("IL6", ["10-20", "20-30", "5-10"], [1.0, 3.0, 2.0])]
    assert matrix(Pivot("sig", "bin", "v", row_order="sig_rank", column_order="bin_low")) == [
        ("IFNG", ["5-10", "10-20", "20-30"], [4.0, 5.0, None]), ("IL6", ["5-10", "10-20", "20-30"], [2.0, 1.0, 3.0])]
    assert [r for r, _, _ in matrix(Pivot("sig", "bin", "v", row_order="v"))] == ["IL6", "IFNG"]
    with pytest.raises(ServiceError, match="bin_lo"):
        compile_pivot(request, Pivot("sig", "bin", "v", column_order="bin_lo"), table, SETTINGS)


def test_join_pages_over_both_keys_and_refuses_ambiguous_columns():
    from cytoatlas.serving.compiler import compile_join

    right_table = TableInfo(name="meta", domain="perturbation", description="", row_count=1,
                            columns=(ColumnInfo("cytokine", "VARCHAR", False, ""),
                                     ColumnInfo("family", "VARCHAR", True, "")), key_columns=("cytokine",))
    left = pb.QueryRequest(table="effects", columns=["cytokine", "cell_type", "diff"], limit=10,
                           filters=[f("diff", pb.OP_GT, d(1.0))])
    right = pb.QueryRequest(table="meta", columns=["cytokine", "family"], filters=[f("family", pb.OP_EQ, s("IL"))])
    q = compile_join(left, TABLE, right, right_table, ("cytokine",), SETTINGS, offset=20)
    assert q.params == [1.0, "IL"] and q.page_size == 10
    assert q.sql.endswith('USING ("cytokine") ORDER BY "cytokine" ASC NULLS LAST, "cell_type" ASC NULLS LAST '
                          "LIMIT 11 OFFSET 20")
    left.columns.append("n")
    clash = pb.QueryRequest(table="effects", columns=["cytokine", "cell_type", "n"])
    with pytest.raises(ServiceError, match="both sides of the join project"):
        compile_join(left, TABLE, clash, TABLE, ("cytokine",), SETTINGS)
    partial_key = pb.QueryRequest(table="effects", columns=["cytokine", "diff"])
    with pytest.raises(ServiceError, match=r"must project the key of effects; missing \['cell_type'\]"):
        compile_join(partial_key, TABLE, right, right_table, ("cytokine",), SETTINGS)
    not_in_right = pb.QueryRequest(table="meta", columns=["family"])
    with pytest.raises(ServiceError, match="must be projected on both sides"):
        compile_join(left, TABLE, not_in_right, right_table, ("cytokine",), SETTINGS)
    ordered = pb.QueryRequest(table="meta", columns=["cytokine", "family"], order_by=[pb.OrderBy(column="family")])
    with pytest.raises(ServiceError, match="columns and filters only"):
        compile_join(left, TABLE, ordered, right_table, ("cytokine",), SETTINGS)


# -- every operator at its boundary, run by DuckDB ---------------------------------------------

BOUNDARY = TableInfo(name="b", domain="atlas", description="", row_count=6,
                     columns=(ColumnInfo("k", "BIGINT", False, ""), ColumnInfo("x", "DOUBLE", True, ""),
                              ColumnInfo("t", "VARCHAR", True, "")),
                     key_columns=("k",))
# k: 1..6; x: 1, 2, 2, 3, NULL, 4; t: 'IL6', 'IL6R', 'il6', 'TNF', NULL, 'xIL6'
EXPECTED_KEYS = [
    (f("x", pb.OP_EQ, d(2)), [2, 3]), (f("x", pb.OP_NE, d(2)), [1, 4, 6]),
    (f("x", pb.OP_LT, d(2)), [1]), (f("x", pb.OP_LE, d(2)), [1, 2, 3]),
    (f("x", pb.OP_GT, d(2)), [4, 6]), (f("x", pb.OP_GE, d(2)), [2, 3, 4, 6]),
    (f("x", pb.OP_IN, d(1), d(4)), [1, 6]), (f("x", pb.OP_NOT_IN, d(1), d(4)), [2, 3, 4]),
    (f("x", pb.OP_BETWEEN, d(2), d(3)), [2, 3, 4]), (f("x", pb.OP_IS_NULL), [5]),
    (f("x", pb.OP_IS_NOT_NULL), [1, 2, 3, 4, 6]), (f("t", pb.OP_CONTAINS, s("IL6")), [1, 2, 6]),
    (f("t", pb.OP_STARTS_WITH, s("IL6")), [1, 2]), (f("k", pb.OP_GT, i(5)), [6]), (f("k", pb.OP_LE, i(1)), [1]),
]


@pytest.mark.parametrize("filter_,keys", EXPECTED_KEYS, ids=[pb.Op.Name(c[0].op) + "-" + c[0].column for c in EXPECTED_KEYS])
def test_each_operator_keeps_exactly_the_rows_on_its_side_of_the_boundary(filter_, keys):
    import duckdb

    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS served")
    con.execute("CREATE TABLE served.main.b AS SELECT * FROM (VALUES (1, 1.0, 'IL6'), (2, 2.0, 'IL6R'), "
                "(3, 2.0, 'il6'), (4, 3.0, 'TNF'), (5, NULL, NULL), (6, 4.0, 'xIL6')) AS v(k, x, t)")
    compiled = compile_query(pb.QueryRequest(table="b", columns=["k"], filters=[filter_]), BOUNDARY, SETTINGS)
    assert [k for (k,) in con.execute(compiled.sql, compiled.params).fetchall()] == keys
    # the service's way of running it (database.arrow_reader: DuckDB's _submit) and the public
    # relation path it falls back to agree with that
    served = arrow_reader(con.cursor(), compiled.sql, compiled.params, 2).read_all()
    public = con.cursor().sql(compiled.sql, params=compiled.params).to_arrow_reader(2).read_all()
    assert served.column("k").to_pylist() == public.column("k").to_pylist() == keys


def test_every_operator_has_a_boundary_case():
    assert {c[0].op for c in EXPECTED_KEYS} == {op for op in pb.Op.values() if op != pb.OP_UNSPECIFIED}
