"""Hostile and malformed requests against a real service: the right status, a helpful message,
exactly one ErrorInfo, and the service still SERVING and answering correctly afterwards."""

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cytoatlas.table.v1 import table_service_pb2 as pb
from tests.conftest import status_details

INJECTION = "x\"; DROP TABLE tahoe_drug_effect; --"
SQLI_VALUE = "IL-6' OR '1'='1"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def s(v):
    return pb.Value(string_value=v)


def f(column, op, *values):
    return pb.Filter(column=column, op=op, values=values)


def q(**kw):
    return pb.QueryRequest(**{"table": "tahoe_drug_effect", **kw})


def call(stub, request):
    if isinstance(request, pb.GetTableRequest):
        return [stub.GetTable(request)]
    return list(stub.Query(request))


CASES = [
    # (id, request, code, words the message must contain, ErrorInfo reason)
    ("unknown table", q(table="tahoe_drug_efect"), grpc.StatusCode.NOT_FOUND, "did you mean 'tahoe_drug_effect'", "TABLE_NOT_FOUND"),
    ("empty table", q(table=""), INVALID, "a table name is required in `table`", "INVALID_REQUEST"),
    ("unknown table GetTable", pb.GetTableRequest(name="nope"), grpc.StatusCode.NOT_FOUND, "not served by the perturbation", "TABLE_NOT_FOUND"),
    ("injection in table", q(table=INJECTION), grpc.StatusCode.NOT_FOUND, "is not served", "TABLE_NOT_FOUND"),
    ("unknown column", q(columns=["activity_dif"]), INVALID, "did you mean 'activity_diff'", "COLUMN_NOT_FOUND"),
    ("injection in columns", q(columns=[INJECTION]), INVALID, "has no column", "COLUMN_NOT_FOUND"),
    ("injection in filter column", q(filters=[f(INJECTION, pb.OP_EQ, s("a"))]), INVALID, "has no column", "COLUMN_NOT_FOUND"),
    ("injection in order_by", q(order_by=[pb.OrderBy(column=INJECTION)]), INVALID, "has no column", "COLUMN_NOT_FOUND"),
    ("injection in group_by", q(group_by=[INJECTION]), INVALID, "has no column", "COLUMN_NOT_FOUND"),
    ("injection in aggregate column", q(aggregates=[pb.Aggregate(function=pb.AGGREGATE_FUNCTION_MAX, column=INJECTION)]),
     INVALID, "has no column", "COLUMN_NOT_FOUND"),
    ("wrong value type", q(filters=[f("n_treated", pb.OP_GT, s("2"))]), INVALID, "is BIGINT (whole numbers), so the value must be a number", "INVALID_FILTER"),
    ("string for double", q(filters=[f("activity_diff", pb.OP_GT, s("0.5"))]), INVALID, "must be a number (an int_value or a double_value)", "INVALID_FILTER"),
    ("no value set", q(filters=[f("drug", pb.OP_EQ, pb.Value())]), INVALID, "no value set", "INVALID_FILTER"),
    ("arity EQ", q(filters=[f("drug", pb.OP_EQ, s("a"), s("b"))]), INVALID, "exactly 1 value, got 2", "INVALID_FILTER"),
    ("arity BETWEEN", q(filters=[f("activity_diff", pb.OP_BETWEEN, pb.Value(double_value=1))]), INVALID, "exactly 2 values", "INVALID_FILTER"),
    ("arity IS NULL", q(filters=[f("pvalue", pb.OP_IS_NULL, pb.Value(double_value=1))]), INVALID, "takes no values", "INVALID_FILTER"),
    ("arity IN", q(filters=[f("drug", pb.OP_IN)]), INVALID, "takes 1 to", "INVALID_FILTER"),
    ("unspecified op", q(filters=[f("drug", pb.OP_UNSPECIFIED, s("a"))]), INVALID, "op is required", "INVALID_FILTER"),
    ("unknown op number", q(filters=[f("drug", 42, s("a"))]), INVALID, "op is required", "INVALID_FILTER"),
    ("contains on number", q(filters=[f("n_treated", pb.OP_CONTAINS, pb.Value(int_value=1))]), INVALID, "needs a VARCHAR column", "INVALID_FILTER"),
    ("unspecified aggregate", q(aggregates=[pb.Aggregate(column="pvalue")]), INVALID, "function is required", "INVALID_AGGREGATE"),
    ("sum of text", q(aggregates=[pb.Aggregate(function=pb.AGGREGATE_FUNCTION_SUM, column="drug")]), INVALID, "needs a numeric column", "INVALID_AGGREGATE"),
    ("projection outside group_by", q(group_by=["drug"], columns=["cell_line"]), INVALID, "not a group_by column", "INVALID_AGGREGATE"),
    ("negative limit", q(limit=-5), INVALID, "limit must be 0", "INVALID_REQUEST"),
    ("unknown format", q(format=9), INVALID, "is not a ResultFormat", "INVALID_REQUEST"),
    ("tampered token", q(page_token="AAAA" + "x" * 60), INVALID, "not a token this service issued", "INVALID_PAGE_TOKEN"),
    ("injection in token", q(page_token=INJECTION), INVALID, "not a token this service issued", "INVALID_PAGE_TOKEN"),
    ("too many filters", q(filters=[f("pvalue", pb.OP_IS_NOT_NULL)] * 100), INVALID, "at most 64", "INVALID_REQUEST"),
    ("giant string", q(filters=[f("drug", pb.OP_EQ, s("x" * 100_000))]), INVALID, "longer than", "INVALID_FILTER"),
]


def assert_still_serving(address, stub):
    with grpc.insecure_channel(address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert len(call(stub, q(limit=2))) >= 1


@pytest.mark.parametrize("name, request_, code, words, reason", CASES, ids=[c[0] for c in CASES])
def test_bad_request(addresses, stubs, name, request_, code, words, reason):
    stub = stubs["perturbation"]
    with pytest.raises(grpc.RpcError) as info:
        call(stub, request_)
    err = info.value
    assert err.code() == code, err.details()
    assert words in err.details()
    infos = status_details(err, error_details_pb2.ErrorInfo)
    assert [i.reason for i in infos] == [reason] and infos[0].domain == "cytoatlas.org"
    assert_still_serving(addresses["perturbation"], stub)


def test_injection_strings_as_values_are_just_values(stubs, local):
    """Bound parameters: an injection attempt matches nothing and changes nothing."""
    stub = stubs["perturbation"]
    messages = call(stub, q(filters=[f("drug", pb.OP_EQ, s(SQLI_VALUE))], format=pb.RESULT_FORMAT_ROWS))
    assert messages[-1].stats.rows_returned == 0
    messages = call(stub, q(filters=[f("drug", pb.OP_IN, s(INJECTION), s(SQLI_VALUE))], format=pb.RESULT_FORMAT_ROWS))
    assert messages[-1].stats.rows_returned == 0
    # An alias is an output name, quoted: a hostile one is a strange column name, nothing more.
    messages = call(stub, q(aggregates=[pb.Aggregate(function=pb.AGGREGATE_FUNCTION_COUNT, alias=INJECTION)],
                            format=pb.RESULT_FORMAT_ROWS))
    count = local["perturbation"].execute("SELECT count(*) FROM tahoe_drug_effect").fetchall()[0][0]
    assert dict(messages[0].rows[0]) == {INJECTION: float(count)}


def test_token_from_another_request_and_stale_shape(stubs):
    stub = stubs["perturbation"]
    first = call(stub, q(limit=5))
    token = first[-1].next_page_token
    assert token
    with pytest.raises(grpc.RpcError) as info:
        call(stub, q(limit=5, page_token=token, columns=["drug"]))
    assert info.value.code() == INVALID and "different request" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        call(stub, pb.QueryRequest(table="tahoe_dose_response", page_token=token))
    assert info.value.code() == INVALID
