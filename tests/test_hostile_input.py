"""Hostile input at scale: a data-driven catalogue of malicious and malformed requests sent as raw
bytes to every RPC of every domain service, then a property-based test of random well-typed and
random malformed requests. Nothing a user can fix may answer UNKNOWN or INTERNAL, and the
services must still be SERVING and answering correctly afterwards.

To cover a new RPC (e.g. the typed domain RPCs), add its path to RPCS and rows to CATALOGUE.
"""

import math
import os
import struct
from dataclasses import dataclass
from typing import Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings, strategies as st

from cytoatlas.client.router import decode_arrow
from cytoatlas.table.v1 import table_service_pb2 as pb
from tests.conftest import DOMAINS, health_status, status_details

RPCS = {  # name -> (method path, server-streaming?)
    "ListTables": ("/cytoatlas.table.v1.TableService/ListTables", False),
    "GetTable": ("/cytoatlas.table.v1.TableService/GetTable", False),
    "GetDatabaseInfo": ("/cytoatlas.table.v1.TableService/GetDatabaseInfo", False),
    "Query": ("/cytoatlas.table.v1.TableService/Query", True),
    "Health.Check": ("/grpc.health.v1.Health/Check", False),
}
USER_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
              grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OK}
INJECTIONS = ["x\"; DROP TABLE t; --", "' OR '1'='1", "a) UNION SELECT * FROM duckdb_settings() --",
              "read_csv('/etc/passwd')", "${jndi:ldap://x}", "../../etc/passwd"]
OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@dataclass(frozen=True)
class Target:
    """What a case needs to know about one domain: a table and a text/int/double column of it."""
    domain: str
    table: str
    text: str
    integer: str
    double: str


def varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field carrying raw bytes (valid UTF-8 or not)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def s(v):
    return pb.Value(string_value=v)


def flt(column, op, *values):
    return pb.Filter(column=column, op=op, values=values)


def q(t: Target, **kw):
    return pb.QueryRequest(**{"table": t.table, **kw})


@dataclass(frozen=True)
class Case:
    name: str
    rpc: str
    request: Callable[[Target], object]  # -> a message or raw bytes
    code: grpc.StatusCode
    words: str = ""


CATALOGUE = [
    # -- injection strings in every string field ---------------------------------------------
    *[Case(f"injection {i} in table", "Query", lambda t, x=x: q(t, table=x), NOT_FOUND, "is not served")
      for i, x in enumerate(INJECTIONS)],
    Case("injection in GetTable name", "GetTable", lambda t: pb.GetTableRequest(name=INJECTIONS[0]), NOT_FOUND, "is not served"),
    Case("injection in columns", "Query", lambda t: q(t, columns=[INJECTIONS[2]]), INVALID, "has no column"),
    Case("injection in filter column", "Query", lambda t: q(t, filters=[flt(INJECTIONS[1], pb.OP_EQ, s("a"))]), INVALID, "has no column"),
    Case("injection in filter value", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_EQ, s(INJECTIONS[1]))]), OK),
    Case("injection in IN values", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_IN, *map(s, INJECTIONS))]), OK),
    Case("injection in CONTAINS", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_CONTAINS, s("%' OR 1=1 --"))]), OK),
    Case("injection in order_by", "Query", lambda t: q(t, order_by=[pb.OrderBy(column=INJECTIONS[0])]), INVALID, "has no column"),
    Case("injection in group_by", "Query", lambda t: q(t, group_by=[INJECTIONS[3]]), INVALID, "has no column"),
    Case("injection in aggregate column", "Query", lambda t: q(t, aggregates=[
        pb.Aggregate(function=pb.AGGREGATE_FUNCTION_MAX, column=INJECTIONS[2])]), INVALID, "has no column"),
    Case("injection in aggregate alias", "Query", lambda t: q(t, aggregates=[
        pb.Aggregate(function=pb.AGGREGATE_FUNCTION_COUNT, alias=INJECTIONS[0])]), OK),
    Case("injection in page_token", "Query", lambda t: q(t, page_token=INJECTIONS[0]), INVALID, "not a token this service issued"),
    Case("injection in health service name", "Health.Check", lambda t: health_pb2.HealthCheckRequest(service=INJECTIONS[0]),
         NOT_FOUND),
    # -- control characters and invalid UTF-8 ------------------------------------------------
    Case("NUL and controls in table", "Query", lambda t: q(t, table="tab\x00le\r\n\x1b[2J"), NOT_FOUND, "is not served"),
    Case("controls in column", "Query", lambda t: q(t, columns=["\x00", "\t\n"]), INVALID, "has no column"),
    Case("NUL in filter value", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_EQ, s("a\x00b"))]), OK),
    Case("bidi override in table", "GetTable", lambda t: pb.GetTableRequest(name="\u202etable"), NOT_FOUND, "is not served"),
    Case("invalid UTF-8 in GetTable name", "GetTable", lambda t: field(1, b"\xff\xfe\xfd"), INVALID, "not a valid message"),
    Case("invalid UTF-8 in Query table", "Query", lambda t: field(1, b"\xc3\x28"), INVALID, "not a valid message"),
    Case("invalid UTF-8 in a column", "Query", lambda t: field(1, t.table.encode()) + field(2, b"\xed\xa0\x80"),
         INVALID, "not a valid message"),
    Case("invalid UTF-8 in a filter value", "Query", lambda t: field(1, t.table.encode()) + field(
        3, field(1, t.text.encode()) + b"\x10\x01" + field(3, field(1, b"\x80abc"))), INVALID, "not a valid message"),
    Case("invalid UTF-8 in health service", "Health.Check", lambda t: field(1, b"\xfe"), INVALID, "not a valid message"),
    # -- wrong types and garbage bytes -------------------------------------------------------
    Case("varint where a string goes", "GetTable", lambda t: b"\x08\x05", INVALID, "a table name is required"),
    Case("string where an int goes is an unknown field", "Query",  # protobuf skips a field of the wrong wire type
         lambda t: field(1, t.table.encode()) + field(5, b"ten"), OK),
    Case("truncated message", "Query", lambda t: field(1, t.table.encode())[:-2], INVALID, "not a valid message"),
    Case("garbage bytes", "GetDatabaseInfo", lambda t: b"\xff\xff\xff\xff", INVALID, "not a valid message"),
    Case("garbage bytes to ListTables", "ListTables", lambda t: b"\x0a\xff\xff\xff\xff\x0f", INVALID, "not a valid message"),
    Case("unknown fields are ignored", "ListTables", lambda t: field(99, b"hello"), OK),
    Case("text in an int column filter", "Query", lambda t: q(t, filters=[flt(t.integer, pb.OP_EQ, s("1"))]), INVALID, "int_value"),
    Case("bool in a double column filter", "Query", lambda t: q(t, filters=[flt(t.double, pb.OP_GT, pb.Value(bool_value=True))]),
         INVALID, "double_value"),
    Case("number in a text column filter", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_EQ, pb.Value(int_value=1))]),
         INVALID, "string_value"),
    # -- unspecified and unknown enums -------------------------------------------------------
    Case("unspecified op", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_UNSPECIFIED, s("a"))]), INVALID, "op is required"),
    Case("unknown op 999", "Query", lambda t: q(t, filters=[flt(t.text, 999, s("a"))]), INVALID, "op is required"),
    Case("unspecified aggregate", "Query", lambda t: q(t, aggregates=[pb.Aggregate(column=t.double)]), INVALID, "function is required"),
    Case("unknown aggregate 77", "Query", lambda t: q(t, aggregates=[pb.Aggregate(function=77, column=t.double)]),
         INVALID, "function is required"),
    Case("unknown format 9", "Query", lambda t: q(t, format=9), INVALID, "is not a ResultFormat"),
    Case("negative format", "Query", lambda t: q(t, format=-1), INVALID, "is not a ResultFormat"),
    # -- out-of-range numbers ----------------------------------------------------------------
    Case("negative limit", "Query", lambda t: q(t, limit=-1), INVALID, "limit must be 0"),
    Case("most negative limit", "Query", lambda t: q(t, limit=-(2 ** 63)), INVALID, "limit must be 0"),
    Case("huge limit is capped", "Query", lambda t: q(t, limit=2 ** 63 - 1, format=pb.RESULT_FORMAT_ROWS), OK),
    Case("int64 extremes in a filter", "Query", lambda t: q(t, filters=[flt(t.integer, pb.OP_BETWEEN, pb.Value(int_value=-(2 ** 63)),
                                                                            pb.Value(int_value=2 ** 63 - 1))], limit=3), OK),
    Case("NaN in a filter", "Query", lambda t: q(t, filters=[flt(t.double, pb.OP_GT, pb.Value(double_value=math.nan))]),
         INVALID, "NaN is not a comparable value"),
    Case("infinity in a filter", "Query", lambda t: q(t, filters=[flt(t.double, pb.OP_LT, pb.Value(double_value=math.inf))], limit=2), OK),
    # -- giant strings and lists, deeply repeated filters -------------------------------------
    Case("giant table name", "Query", lambda t: q(t, table="t" * 200_000), INVALID, "longer than"),
    Case("giant GetTable name", "GetTable", lambda t: pb.GetTableRequest(name="n" * 200_000), INVALID, "longer than"),
    Case("giant column name", "Query", lambda t: q(t, columns=["c" * 200_000]), INVALID, "has no column"),
    Case("giant filter value", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_EQ, s("x" * 100_000))]), INVALID, "longer than"),
    Case("giant IN list", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_IN, *[s(str(i)) for i in range(20_000)])]),
         INVALID, "takes 1 to 10000 values, got 20000"),
    Case("100,000 columns", "Query", lambda t: q(t, columns=[t.text] * 100_000), INVALID, "more than 1000 entries"),
    Case("the same filter 64 times", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_IS_NOT_NULL)] * 64, limit=2), OK),
    Case("the same filter 65 times", "Query", lambda t: q(t, filters=[flt(t.text, pb.OP_IS_NOT_NULL)] * 65), INVALID, "at most 64"),
    Case("10,000 order_by terms", "Query", lambda t: q(t, order_by=[pb.OrderBy(column=t.text)] * 10_000), INVALID, "at most"),
    Case("request over the 4 MiB limit", "Query", lambda t: q(t, page_token="p" * 5_000_000), grpc.StatusCode.RESOURCE_EXHAUSTED),
    # -- tampered page tokens ----------------------------------------------------------------
    Case("random token", "Query", lambda t: q(t, page_token="AAAA" + "x" * 60), INVALID, "not a token this service issued"),
    Case("token of wrong length", "Query", lambda t: q(t, page_token="QUJD"), INVALID, "not a token this service issued"),
    Case("non-base64 token", "Query", lambda t: q(t, page_token="!!!!***"), INVALID, "not a token this service issued"),
]


def invoke(channel, rpc: str, request) -> tuple[grpc.StatusCode, str, grpc.RpcError | None]:
    """Send `request` (message or raw bytes) as raw bytes; return (code, details, error)."""
    path, streaming = RPCS[rpc]
    data = request if isinstance(request, bytes) else request.SerializeToString()
    try:
        if streaming:
            list(channel.unary_stream(path)(data, timeout=60))
        else:
            channel.unary_unary(path)(data, timeout=60)
        return OK, "", None
    except grpc.RpcError as err:
        return err.code(), err.details() or "", err


def error_infos(err) -> list[error_details_pb2.ErrorInfo]:
    return status_details(err, error_details_pb2.ErrorInfo)


@pytest.fixture(scope="module")
def targets(router) -> dict[str, Target]:
    tables = {"atlas": "inflammation_differential", "perturbation": "tahoe_drug_effect", "spatial": "spatial_activity"}
    found = {}
    for domain, name in tables.items():
        columns = router.describe(name).columns
        first = lambda types: next(c.name for c in columns if c.type in types)  # noqa: E731
        found[domain] = Target(domain, name, first({"VARCHAR"}), first({"BIGINT", "INTEGER"}), first({"DOUBLE"}))
    return found


@pytest.fixture(scope="module")
def channels(addresses):
    opened = {d: grpc.insecure_channel(a, options=[("grpc.max_receive_message_length", 64 << 20)])
              for d, a in addresses.items()}
    yield opened
    for channel in opened.values():
        channel.close()


def assert_correct_afterwards(addresses, channels, targets, local):
    for domain in DOMAINS:
        assert health_status(addresses[domain]) == "SERVING"
        t = targets[domain]
        messages = list(pb_stub_query(channels[domain], q(t, columns=[t.text], limit=20)))
        got, _ = decode_arrow(messages)
        assert got.num_rows == min(20, local[domain].sql(f'SELECT count(*) FROM "{t.table}"').fetchall()[0][0])


def pb_stub_query(channel, request):
    return channel.unary_stream(RPCS["Query"][0], request_serializer=pb.QueryRequest.SerializeToString,
                                response_deserializer=pb.QueryResponse.FromString)(request, timeout=60)


def test_catalogue(addresses, channels, targets, local):
    assert len(CATALOGUE) >= 40
    assert {c.rpc for c in CATALOGUE} == set(RPCS), "every RPC needs cases"
    runs, by_code, failures = 0, {}, []
    for case in CATALOGUE:
        for domain in DOMAINS:
            code, details, err = invoke(channels[domain], case.rpc, case.request(targets[domain]))
            runs += 1
            by_code[code.name] = by_code.get(code.name, 0) + 1
            problems = []
            if code != case.code:
                problems.append(f"answered {code.name}, expected {case.code.name}")
            if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
                problems.append("UNKNOWN/INTERNAL for input a user can fix")
            if case.words and case.words not in details:
                problems.append(f"message lacks {case.words!r}")
            if err is not None and case.name != "request over the 4 MiB limit" and case.rpc != "Health.Check":
                infos = error_infos(err)
                if len(infos) != 1 or infos[0].domain != "cytoatlas.org":
                    problems.append(f"{len(infos)} ErrorInfo details")
            if problems:
                failures.append(f"{case.name} [{domain}]: {'; '.join(problems)}: {details[:200]}")
    assert not failures, "\n".join(failures)
    assert_correct_afterwards(addresses, channels, targets, local)
    print(f"\nFIGURE hostile catalogue: {len(CATALOGUE)} cases x {len(DOMAINS)} services = {runs} requests "
          f"over {len(RPCS)} RPCs; answers {dict(sorted(by_code.items()))}; 0 crashes, 0 UNKNOWN/INTERNAL; "
          f"all services SERVING and answering correctly afterwards")


def test_replayed_and_foreign_page_tokens(channels, targets):
    t = targets["perturbation"]
    request = q(t, limit=5, format=pb.RESULT_FORMAT_ROWS)
    token = list(pb_stub_query(channels["perturbation"], request))[-1].next_page_token
    request.page_token = token
    first = list(pb_stub_query(channels["perturbation"], request))
    again = list(pb_stub_query(channels["perturbation"], request))  # replay: same page, read-only data
    assert [m.SerializeToString() for m in first[:-1]] == [m.SerializeToString() for m in again[:-1]]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    code, details, _ = invoke(channels["perturbation"], "Query", q(t, limit=5, page_token=flipped))
    assert code == INVALID and "not a token this service issued" in details
    code, details, _ = invoke(channels["atlas"], "Query", q(targets["atlas"], limit=5, page_token=token))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "another service" in details


EXAMPLES = int(os.environ.get("CYTOATLAS_HOSTILE_EXAMPLES", "150"))
# Hostile requests per typed RPC: `make test` sends an even spread of at most this many (the empty
# request and garbage bytes always); `make test-reliability` sets 0 = every one generated.
PER_RPC = int(os.environ.get("CYTOATLAS_HOSTILE_PER_RPC", "6"))
texts = st.text(max_size=40) | st.sampled_from(INJECTIONS)
values = st.one_of(st.builds(pb.Value, string_value=texts), st.builds(pb.Value, int_value=st.integers(-(2 ** 63), 2 ** 63 - 1)),
                   st.builds(pb.Value, double_value=st.floats(allow_nan=True)), st.builds(pb.Value, bool_value=st.booleans()),
                   st.just(pb.Value()))


@st.composite
def well_typed(draw, targets):
    t = draw(st.sampled_from(sorted(targets.values(), key=lambda x: x.domain)))
    real = st.sampled_from([t.text, t.integer, t.double])
    names = st.one_of(real, real, real, texts)  # mostly real names, so most requests reach the compiler
    request = pb.QueryRequest(
        table=t.table if draw(st.integers(0, 4)) else draw(texts), columns=draw(st.lists(names, max_size=3)),
        filters=draw(st.lists(st.builds(pb.Filter, column=names, op=st.integers(-2, 16) | st.integers(1, 13),
                                        values=st.lists(values, max_size=3)), max_size=3)),
        order_by=draw(st.lists(st.builds(pb.OrderBy, column=names, descending=st.booleans()), max_size=2)),
        group_by=draw(st.lists(names, max_size=2)),
        aggregates=draw(st.lists(st.builds(pb.Aggregate, function=st.integers(-1, 10), column=names, alias=texts),
                                 max_size=2)),
        limit=draw(st.integers(-5, 200) | st.integers(-(2 ** 63), 2 ** 63 - 1)),
        page_token=draw(st.just("") | texts), format=draw(st.integers(-1, 4)))
    return t.domain, request


def test_random_requests_never_crash_or_blame_the_server(addresses, channels, targets, local):
    seen = {"well-typed": {}, "malformed": {}}

    def record(kind, code):
        seen[kind][code.name] = seen[kind].get(code.name, 0) + 1
        assert code in USER_CODES, f"{kind} request answered {code.name}"

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(well_typed(targets))
    def typed(case):
        domain, request = case
        code, details, _ = invoke(channels[domain], "Query", request)
        record("well-typed", code)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.sampled_from(DOMAINS), st.sampled_from(sorted(RPCS)), st.binary(max_size=300))
    def malformed(domain, rpc, data):
        code, details, _ = invoke(channels[domain], rpc, data)
        record("malformed", code)

    typed()
    malformed()
    assert_correct_afterwards(addresses, channels, targets, local)
    total = sum(sum(v.values()) for v in seen.values())
    print(f"\nFIGURE hostile property test: {total} random requests ({EXAMPLES} examples each kind); "
          f"well-typed answers {dict(sorted(seen['well-typed'].items()))}; malformed answers "
          f"{dict(sorted(seen['malformed'].items()))}; 0 UNKNOWN/INTERNAL; services SERVING and correct afterwards")


def test_int_encoding_helper():
    assert varint(300) == b"\xac\x02" and struct.pack("B", 0x08) == b"\x08"


# -- the typed domain RPCs: hostile values generated for every field of every request ---------

def typed_methods(domain: str):
    """(method path, request class) for every RPC of every typed service the domain serves."""
    import importlib

    from google.protobuf import descriptor_pool, message_factory

    module = importlib.import_module(f"services.{domain}.rpcs")
    for typed in module.SERVICES:
        service = descriptor_pool.Default().FindServiceByName(typed.name)
        for method in service.methods:
            assert not method.server_streaming and not method.client_streaming
            yield f"/{service.full_name}/{method.name}", message_factory.GetMessageClass(method.input_type)


def hostile_requests(request_class):
    """(label, request bytes) per field: injection, controls, giant and invalid-UTF-8 strings,
    out-of-range numbers, unknown enum values, tampered page tokens, plus garbage bytes."""
    from google.protobuf.descriptor import FieldDescriptor as F

    yield "empty request", b""
    yield "garbage bytes", b"\xff\xff\xff\xff"
    for fd in request_class.DESCRIPTOR.fields:
        repeated = fd.is_repeated

        def build(value, fd=fd, repeated=repeated):
            message = request_class()
            getattr(message, fd.name).append(value) if repeated else setattr(message, fd.name, value)
            return message.SerializeToString()

        if fd.type == F.TYPE_STRING:
            for i, text in enumerate(INJECTIONS[:3] + ["a\x00b\r\n\x1b[2J", "x" * 200_000]):
                yield f"{fd.name} hostile string {i}", build(text)
            yield f"{fd.name} invalid UTF-8", field(fd.number, b"\xff\xfe")
        elif fd.type in (F.TYPE_INT32, F.TYPE_INT64, F.TYPE_SINT32, F.TYPE_SINT64):
            bits = 31 if fd.type in (F.TYPE_INT32, F.TYPE_SINT32) else 63
            for number in (-1, -(2 ** bits), 2 ** bits - 1):
                yield f"{fd.name} = {number}", build(number)
        elif fd.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            for number in (math.nan, math.inf, -math.inf, -1e308):
                yield f"{fd.name} = {number}", build(number)
        elif fd.type == F.TYPE_ENUM:
            for number in (-1, 999):
                yield f"{fd.name} = {number} (unknown enum)", build(number)
        elif fd.type == F.TYPE_BOOL:
            yield f"{fd.name} = true", build(True)
    if "page_token" in request_class.DESCRIPTOR.fields_by_name:
        message = request_class(page_token="AAAA" + "x" * 60)
        yield "tampered page_token", message.SerializeToString()


def test_typed_rpcs_survive_hostile_fields(addresses, channels, targets, local):
    runs, rpcs, by_code, failures = 0, 0, {}, []
    for domain in DOMAINS:
        for path, request_class in typed_methods(domain):
            rpcs += 1
            cases = list(hostile_requests(request_class))
            if PER_RPC and len(cases) > PER_RPC:
                stride = -(-(len(cases) - 2) // (PER_RPC - 2))
                cases = cases[:2] + cases[2::stride]
            for label, data in cases:
                try:
                    channels[domain].unary_unary(path)(data, timeout=60)
                    code, details, err = OK, "", None
                except grpc.RpcError as error:
                    code, details, err = error.code(), error.details() or "", error
                runs += 1
                by_code[code.name] = by_code.get(code.name, 0) + 1
                if code not in USER_CODES or "Stream removed" in details:  # the status itself broke
                    failures.append(f"{path} {label}: {code.name}: {details[:200]}")
                elif err is not None and code != grpc.StatusCode.RESOURCE_EXHAUSTED and not details:
                    failures.append(f"{path} {label}: {code.name} without a message")
    assert rpcs >= 3 and not failures, "\n".join(failures[:30])
    assert_correct_afterwards(addresses, channels, targets, local)
    print(f"\nFIGURE hostile typed RPCs: {rpcs} typed RPCs, {runs} generated hostile requests; answers "
          f"{dict(sorted(by_code.items()))}; 0 UNKNOWN/INTERNAL; all services SERVING and correct afterwards")
