"""The Arrow Flight endpoint of every service, through pyarrow.flight's own client as a user would:
every table listed and read whole (equal to DuckDB on the same file), QueryRequest tickets equal
to TableService.Query, paging, errors, the token, mutual TLS, metrics, a hot swap under a running
DoGet, and --flight-port -1. The session services have Flight on a free port (--port 0)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import types

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from google.rpc import error_details_pb2, status_pb2

from cytoatlas.requests import to_filters, to_order_by
from cytoatlas.serving import flight as serving_flight
from cytoatlas.serving.config import Settings
from cytoatlas.serving.errors import ServiceError
from cytoatlas.serving.server import start_server
from cytoatlas.table.v1 import table_service_pb2 as pb
from tests.conftest import DOMAINS, ServiceProcess, metrics_port
from tests.test_observability import scrape
from tests.test_security import pki  # noqa: F401 (the throwaway CA fixture)

TABLE = "tahoe_drug_effect"  # perturbation


def client(address: str, **kwargs) -> flight.FlightClient:
    return flight.connect(f"grpc://{address}", **kwargs)


def ticket(**fields) -> flight.Ticket:
    return flight.Ticket(pb.QueryRequest(**fields).SerializeToString())


def read_pages(flight_client, request: pb.QueryRequest, options=None) -> tuple[list[pa.Table], list[bytes]]:
    """Every page of `request`: DoGet, then again with the token the last batch carries."""
    pages, tokens = [], []
    while True:
        batches, token = [], b""
        reader = flight_client.do_get(flight.Ticket(request.SerializeToString()), options)
        for chunk in reader:
            batches.append(chunk.data)
            token = chunk.app_metadata.to_pybytes() if chunk.app_metadata else b""
        pages.append(pa.Table.from_batches(batches, reader.schema))
        if not token:
            return pages, tokens
        tokens.append(token)
        request.page_token = token.decode()


def grpc_query(stub, request: pb.QueryRequest) -> tuple[pa.Table, str]:
    """TableService.Query's page as a table, and its next_page_token."""
    messages = list(stub.Query(request))
    return (pa.ipc.open_stream(b"".join(m.arrow_ipc for m in messages)).read_all(),
            messages[-1].next_page_token)


def status_of(error: flight.FlightError) -> status_pb2.Status:
    """The google.rpc.Status a Flight error carries as extra_info."""
    return status_pb2.Status.FromString(error.extra_info)


def reason_of(error: flight.FlightError) -> str:
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


@pytest.fixture(scope="module")
def flights(flight_addresses):
    clients = {d: client(a) for d, a in flight_addresses.items()}
    yield clients
    for c in clients.values():
        c.close()


@pytest.fixture(scope="module")
def guarded(built, pki, tmp_path_factory):  # noqa: F811 (pki is the imported fixture)
    """Services with their own flags, started together: a token + metrics one on a copy of the
    perturbation file (small pages, one query at a time, and a copy to republish) and a
    mutual-TLS one."""
    root = tmp_path_factory.mktemp("flight")
    copy = root / "perturbation_data.duckdb"
    shutil.copy(built["perturbation"], copy)
    cert, key = pki["server"]
    started = {
        "token": ServiceProcess("perturbation", copy, root / "token.log", "--auth-token", "s3cret",
                                "--metrics-port", "0", "--arrow-max-limit", "2000", "--reload-poll-seconds", "0",
                                "--max-queries", "1", "--admission-queue", "1", "--admission-wait-seconds", "5"),
        "tls": ServiceProcess("spatial", built["spatial"], root / "tls.log", "--tls-cert", cert, "--tls-key", key,
                              "--tls-client-ca", pki["ca"]),
    }
    try:
        for service in started.values():
            service.wait_listening()
        yield types.SimpleNamespace(**started, copy=copy)
    finally:
        for service in started.values():  # all told first: they stop side by side
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in started.values():
            service.stop()


TOKEN = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer s3cret")])


# -- every table, every domain -----------------------------------------------------------------

@pytest.mark.parametrize("domain", DOMAINS)
def test_every_table_is_listed_and_reads_whole_as_duckdb_has_it(flights, stubs, local, domain):
    infos = {info.descriptor.path[0].decode(): info for info in flights[domain].list_flights()}
    served = {t.name: t.row_count for t in stubs[domain].ListTables(pb.ListTablesRequest()).tables}
    assert set(infos) == set(served) and served
    for name, info in infos.items():
        expected = local[domain].sql(f'SELECT * FROM "{name}"').to_arrow_table()
        assert info.total_records == served[name] == expected.num_rows, name
        assert info.schema == expected.schema and info.ordered, name
        [endpoint] = info.endpoints
        assert endpoint.locations == []  # redeemed here
        got = flights[domain].do_get(endpoint.ticket).read_all()
        assert got.equals(expected), name
        assert flights[domain].get_schema(flight.FlightDescriptor.for_path(name)).schema == expected.schema
    name = sorted(infos)[0]  # a bare table name is a ticket too
    assert flights[domain].do_get(flight.Ticket(name.encode())).read_all().num_rows == served[name]


# -- a QueryRequest ticket is TableService.Query ---------------------------------------------------

def test_a_query_request_ticket_answers_as_table_service_query(flights, stubs):
    request = pb.QueryRequest(
        table=TABLE, columns=["drug", "cell_line", "signature", "activity_diff"],
        filters=to_filters([("signature_type", "=", "CytoSig"), ("activity_diff", ">", 0.0)]),
        order_by=to_order_by(["-activity_diff", "drug"]), limit=25)
    expected, _ = grpc_query(stubs["perturbation"], request)
    got = flights["perturbation"].do_get(flight.Ticket(request.SerializeToString())).read_all()
    assert expected.num_rows == 25 and got.equals(expected)
    aggregate = pb.QueryRequest(table=TABLE, group_by=["drug"], order_by=to_order_by(["drug"]),
                                aggregates=[pb.Aggregate(function=pb.AGGREGATE_FUNCTION_COUNT, alias="n")])
    assert flights["perturbation"].do_get(flight.Ticket(aggregate.SerializeToString())).read_all().equals(
        grpc_query(stubs["perturbation"], aggregate)[0])
    # GetFlightInfo / GetSchema of the query: its output schema, and a ticket carrying the request
    info = flights["perturbation"].get_flight_info(flight.FlightDescriptor.for_command(request.SerializeToString()))
    assert info.schema == expected.schema and info.total_records == -1
    assert pb.QueryRequest.FromString(info.endpoints[0].ticket.ticket) == request
    assert flights["perturbation"].do_get(info.endpoints[0].ticket).read_all().equals(expected)
    schema = flights["perturbation"].get_schema(flight.FlightDescriptor.for_command(aggregate.SerializeToString()))
    assert schema.schema.names == ["drug", "n"]


def test_pages_follow_the_token_in_the_last_batch_as_query_pages_do(flights, stubs, local):
    request = pb.QueryRequest(table="tahoe_dose_response", order_by=to_order_by(["-activity"]), limit=1000)
    pages, tokens = read_pages(flights["perturbation"], pb.QueryRequest.FromString(request.SerializeToString()))
    [(total,)] = local["perturbation"].sql("SELECT count(*) FROM tahoe_dose_response").fetchall()
    assert total > 2000 and len(pages) == -(-total // 1000) and sum(p.num_rows for p in pages) == total
    _, first_token = grpc_query(stubs["perturbation"], request)
    assert tokens[0].decode() == first_token  # the same signed token as Query's next_page_token
    whole = flights["perturbation"].do_get(ticket(table="tahoe_dose_response", order_by=request.order_by,
                                                  limit=total)).read_all()
    assert pa.concat_tables(pages).equals(whole)


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, kind, reason, words", [
    (b"\x0a\x05tahoe\x22\x01", flight.FlightServerError, "INVALID_REQUEST", "neither a serialized"),
    (b"", flight.FlightServerError, "INVALID_REQUEST", "the ticket is empty"),
    (b"tahoe_drug_efect", flight.FlightServerError, "TABLE_NOT_FOUND", "did you mean 'tahoe_drug_effect'"),
    (pb.QueryRequest(table=TABLE, columns=["drugg"]).SerializeToString(), flight.FlightServerError,
     "COLUMN_NOT_FOUND", "has no column 'drugg'; did you mean 'drug'"),
    (pb.QueryRequest(table=TABLE, page_token="forged").SerializeToString(), flight.FlightServerError,
     "INVALID_PAGE_TOKEN", "not a token this service issued"),
    (pb.QueryRequest(table=TABLE, format=pb.RESULT_FORMAT_ROWS).SerializeToString(), flight.FlightServerError,
     "INVALID_REQUEST", "Flight answers in Arrow only"),
])
def test_a_bad_ticket_is_a_flight_error_naming_the_problem(flights, bad, kind, reason, words):
    with pytest.raises(kind) as info:
        flights["perturbation"].do_get(flight.Ticket(bad)).read_all()
    assert str(info.value).startswith(f"{reason}: ") and words in str(info.value)
    assert reason_of(info.value) == reason  # the google.rpc.Status of the gRPC path, as extra_info
    assert status_of(info.value).code in (3, 5)  # INVALID_ARGUMENT, NOT_FOUND


def test_descriptor_errors_name_the_problem(flights):
    with pytest.raises(flight.FlightServerError, match="TABLE_NOT_FOUND: table 'nope'"):
        flights["spatial"].get_flight_info(flight.FlightDescriptor.for_path("nope"))
    with pytest.raises(flight.FlightServerError, match="a path descriptor names one table"):
        flights["spatial"].get_flight_info(flight.FlightDescriptor.for_path("a", "b"))
    # pyarrow 26's GetSchema passes a Flight error on as a plain one: the message still says it all
    with pytest.raises(pa.ArrowException, match="TABLE_NOT_FOUND: table 'nope'"):
        flights["spatial"].get_schema(flight.FlightDescriptor.for_path("nope"))


# -- token, metrics, pages as endpoints, hot swap ---------------------------------------------

def test_the_token_is_required(guarded):
    with client(guarded.token.flight_address) as c:
        for options, words in [(None, "no bearer token was sent"),
                               (flight.FlightCallOptions(headers=[(b"authorization", b"Bearer wrong")]),
                                "the bearer token is not valid")]:
            with pytest.raises(flight.FlightUnauthenticatedError, match=words):
                c.do_get(flight.Ticket(TABLE.encode()), options).read_all()
            with pytest.raises(flight.FlightUnauthenticatedError):
                list(c.list_flights(options=options))
        assert c.do_get(ticket(table=TABLE, limit=3), TOKEN).read_all().num_rows == 3


def test_metrics_count_do_get_and_its_rows(guarded):
    port = metrics_port(guarded.token)
    before = scrape(port)
    with client(guarded.token.flight_address) as c:
        rows = sum(c.do_get(ticket(table=TABLE, limit=n), TOKEN).read_all().num_rows for n in (5, 7))
        with pytest.raises(flight.FlightServerError):
            c.do_get(flight.Ticket(b"nope"), TOKEN).read_all()
        with pytest.raises(flight.FlightUnauthenticatedError):
            c.do_get(flight.Ticket(TABLE.encode())).read_all()
    after = scrape(port)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert rows == 12 and moved("cytoatlas_requests_total", rpc="DoGet", code="OK") == 2
    assert moved("cytoatlas_requests_total", rpc="DoGet", code="NOT_FOUND") == 1
    assert moved("cytoatlas_requests_total", rpc="DoGet", code="UNAUTHENTICATED") == 1
    assert moved("cytoatlas_rows_served_total", table=TABLE) == 12
    assert after[("cytoatlas_requests_in_flight", (("rpc", "DoGet"),))] == 0


def test_a_client_that_goes_away_frees_its_query_slot(guarded):
    port = metrics_port(guarded.token)
    before = scrape(port)
    with client(guarded.token.flight_address) as c:
        reader = c.do_get(ticket(table="parse10m_activity"), TOKEN)  # 160k rows: many batches
        assert reader.read_chunk().data.num_rows > 0  # running, holding the only query slot
        reader.cancel()
        # The next query waits for that slot (--admission-wait-seconds 5): it is freed at once.
        assert c.do_get(ticket(table=TABLE, limit=3), TOKEN).read_all().num_rows == 3
    after = scrape(port)
    moved = {code: after.get(key, 0) - before.get(key, 0) for code in ("OK", "CANCELLED")
             if (key := ("cytoatlas_requests_total", (("code", code), ("rpc", "DoGet"))))}
    # CANCELLED, unless the server had handed the whole stream to gRPC's buffers before the cancel
    assert sum(moved.values()) == 2 and moved["OK"] >= 1, moved
    assert after[("cytoatlas_requests_in_flight", (("rpc", "DoGet"),))] == 0


def test_a_table_over_the_page_maximum_lists_one_endpoint_per_page(guarded, local):
    with client(guarded.token.flight_address) as c:
        info = c.get_flight_info(flight.FlightDescriptor.for_path(TABLE), TOKEN)  # 4,150 rows, pages of 2,000
        assert info.total_records > 4000 and len(info.endpoints) == -(-info.total_records // 2000)
        got = pa.concat_tables(c.do_get(e.ticket, TOKEN).read_all() for e in info.endpoints)
    assert got.equals(local["perturbation"].sql(f"SELECT * FROM {TABLE}").to_arrow_table())


def test_a_hot_swap_does_not_break_a_running_do_get(guarded, local):
    expected = local["perturbation"].sql("SELECT * FROM parse10m_activity LIMIT 2000").to_arrow_table()
    with client(guarded.token.flight_address) as c:
        reader = c.do_get(ticket(table="parse10m_activity", limit=2000), TOKEN)
        first = reader.read_chunk().data  # the stream is open and holds its build
        new = guarded.copy.with_name("next.duckdb")
        shutil.copy(guarded.copy, new)
        os.replace(new, guarded.copy)  # a new publish: new inode at the served path
        guarded.token.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "replacing build" not in guarded.token.log.read_text():
            assert time.monotonic() < deadline, guarded.token.log.read_text()
            time.sleep(0.05)
        rest = reader.read_all()
        assert pa.concat_tables([pa.Table.from_batches([first]), rest]).equals(expected)
        assert c.do_get(ticket(table=TABLE, limit=3), TOKEN).read_all().num_rows == 3  # the new build


# -- TLS, the port ------------------------------------------------------------------------------------

def test_mutual_tls(guarded, pki):  # noqa: F811
    ca = open(pki["ca"], "rb").read()
    cert, key = (open(p, "rb").read() for p in pki["client"])
    location = f"grpc+tls://{guarded.tls.flight_address}"
    with flight.connect(location, tls_root_certs=ca, cert_chain=cert, private_key=key) as c:
        assert c.do_get(flight.Ticket(b"spatial_tissue_summary")).read_all().num_rows > 0
    with flight.connect(location, tls_root_certs=ca) as c, pytest.raises(flight.FlightUnavailableError):
        c.do_get(flight.Ticket(b"spatial_tissue_summary"), flight.FlightCallOptions(timeout=5)).read_all()
    with client(guarded.tls.flight_address) as c, pytest.raises(flight.FlightUnavailableError):  # plaintext
        c.do_get(flight.Ticket(b"spatial_tissue_summary"), flight.FlightCallOptions(timeout=5)).read_all()


def test_the_flight_port_follows_the_grpc_port_and_minus_one_turns_it_off(built):
    assert [Settings().resolved_flight_port(d) for d in DOMAINS] == [50061, 50062, 50063]
    assert Settings(port=6000).resolved_flight_port("atlas") == 6010
    assert Settings(port=0).resolved_flight_port("atlas") == 0  # any free port, logged
    assert Settings(flight_port=7000).resolved_flight_port("atlas") == 7000
    running = start_server("atlas", Settings(db=str(built["atlas"]), port=0, flight_port=-1, reload_poll_seconds=0))
    try:
        assert running.flight is None and running.flight_port is None
    finally:
        running.stop()


def test_a_graceful_stop_lets_a_running_do_get_finish(built, local):
    [(rows,)] = local["perturbation"].sql("SELECT count(*) FROM parse10m_activity").fetchall()
    running = start_server("perturbation", Settings(db=str(built["perturbation"]), port=0,
                                                    reload_poll_seconds=0, request_log="off"))
    with client(f"127.0.0.1:{running.flight_port}") as c:
        reader = c.do_get(flight.Ticket(b"parse10m_activity"))
        first = reader.read_chunk().data
        stopping = threading.Thread(target=running.stop, args=(10,))
        stopping.start()
        time.sleep(0.2)  # stopping: new calls are refused, this one goes on
        rest = reader.read_all()
        stopping.join(10)
        assert not stopping.is_alive() and first.num_rows + rest.num_rows == rows
        with pytest.raises(flight.FlightUnavailableError):
            c.do_get(flight.Ticket(TABLE.encode()), flight.FlightCallOptions(timeout=2)).read_all()


# -- pieces ------------------------------------------------------------------------------------

def test_a_cancelled_call_interrupts_its_query():
    running = serving_flight.RunningQueries()
    cancelled = threading.Event()
    context = types.SimpleNamespace(is_cancelled=cancelled.is_set)
    query = serving_flight._QueryContext(context)
    interrupted = threading.Event()
    query.add_callback(interrupted.set)
    try:
        with running.watching(query):
            assert not interrupted.wait(0.15)
            cancelled.set()  # the client went away
            assert interrupted.wait(2) and not query.stopped
        stopping = serving_flight._QueryContext(types.SimpleNamespace(is_cancelled=lambda: False))
        with running.watching(stopping):
            running.cancel_all()  # the server stops past its grace
        assert stopping.stopped
    finally:
        running.close()


def test_large_batches_are_sliced_under_the_message_cap():
    batch = pa.record_batch({"x": pa.array(range(100_000), pa.int64())})  # 800 kB
    pieces = list(serving_flight._pieces(batch, 100_000))
    assert all(p.nbytes <= 100_000 for p in pieces) and pa.Table.from_batches(pieces).equals(
        pa.Table.from_batches([batch]))
    assert list(serving_flight._pieces(batch, 10**9)) == [batch]


def test_parse_request():
    assert serving_flight.parse_request(b"cima_activity", "ticket") == pb.QueryRequest(table="cima_activity")
    request = pb.QueryRequest(table="t", limit=3)
    assert serving_flight.parse_request(request.SerializeToString(), "ticket") == request
    with pytest.raises(ServiceError, match="names no table"):
        serving_flight.parse_request(pb.QueryRequest(limit=3).SerializeToString(), "ticket")


# -- the Router reads through it ---------------------------------------------------------------

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from cytoatlas.client import Router  # noqa: E402
from cytoatlas.client.errors import CytoAtlasError  # noqa: E402

ROUTER_QUERIES = [  # (table, query() keyword arguments): pages, order, filters, groups, limits
    ("tahoe_dose_response", {"order_by": "-activity"}),
    (TABLE, {"where": [("signature_type", "=", "CytoSig"), ("activity_diff", ">", 0.0)],
             "columns": ["drug", "cell_line", "signature", "activity_diff"], "limit": 2500}),
    (TABLE, {"group_by": "drug", "aggregates": {"n": "count", "mean": ("avg", "activity_diff")},
             "order_by": "drug"}),
    ("spatial_activity", {"where": "signature_type = SecAct", "limit": 7}),
    ("activity", {"where": {"signature_type": "CytoSig"}}),
]


@pytest.mark.parametrize("table, kwargs", ROUTER_QUERIES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(ROUTER_QUERIES)])
def test_the_router_reads_through_flight_what_it_reads_over_grpc(addresses, table, kwargs):
    with Router(addresses) as through_flight, Router(addresses, flight=False) as over_grpc:
        got = through_flight.query(table, **kwargs)
        assert set(through_flight._flight) == set(DOMAINS)  # every service said its Flight port
        assert not over_grpc._flight
        expected = over_grpc.query(table, **kwargs)
    assert got.num_rows > 0 and got.equals(expected)


def test_the_router_pages_through_flight_as_over_grpc(addresses, local):
    with Router(addresses) as through_flight, Router(addresses, flight=False) as over_grpc:
        pages = list(through_flight.query_pages("tahoe_dose_response", order_by="-activity", page_size=997))
        expected = list(over_grpc.query_pages("tahoe_dose_response", order_by="-activity", page_size=997))
    [(total,)] = local["perturbation"].sql("SELECT count(*) FROM tahoe_dose_response").fetchall()
    assert len(pages) == len(expected) == -(-total // 997) > 2
    assert all(p.equals(e) for p, e in zip(pages, expected))


@pytest.mark.parametrize("kwargs, reason", [
    ({"columns": ["nope"]}, "COLUMN_NOT_FOUND"), ({"group_by": "drug", "columns": ["cell_line"]}, "INVALID_AGGREGATE"),
    ({"order_by": "nope"}, "COLUMN_NOT_FOUND")])
def test_a_bad_query_fails_the_same_through_flight(addresses, kwargs, reason):
    errors = []
    for flight_on in (True, False):
        with Router(addresses, flight=flight_on) as router, pytest.raises(CytoAtlasError) as failed:
            router.query(TABLE, **kwargs)
        errors.append((type(failed.value), str(failed.value), failed.value.code, failed.value.reason))
    assert errors[0] == errors[1] and errors[0][3] == reason


def test_the_router_brings_the_token_and_tls_to_flight_and_waits_out_refusals(guarded, pki):  # noqa: F811
    # the token service admits one query at a time with a queue of one: 8 threads are refused
    # often, and the Router waits out each refusal (RetryInfo) through Flight as over gRPC
    port = metrics_port(guarded.token)
    before = scrape(port)
    with Router({"perturbation": guarded.token.address}, token="s3cret") as router:
        tables = list(ThreadPoolExecutor(8).map(lambda _: router.query(TABLE, limit=3000), range(32)))
        assert "perturbation" in router._flight
    after = scrape(port)
    assert all(t.num_rows == 3000 for t in tables)
    key = ("cytoatlas_requests_total", (("code", "RESOURCE_EXHAUSTED"), ("rpc", "DoGet")))
    assert after.get(key, 0) - before.get(key, 0) > 0  # refusals happened, and were waited out
    cert, key_file = pki["client"]
    with Router({"spatial": guarded.tls.address}, tls_ca=pki["ca"], tls_cert=cert, tls_key=key_file) as router:
        assert router.query("spatial_tissue_summary").num_rows > 0
        assert router._flight["spatial"].readers[0].location.startswith("grpc+tls://")


def test_a_flight_port_the_router_cannot_reach_is_read_over_grpc(built, local):
    running = start_server("perturbation", Settings(db=str(built["perturbation"]), port=0, flight_port=0,
                                                    socket_port=-1, reload_poll_seconds=0))  # Flight alone
    try:
        with Router({"perturbation": f"127.0.0.1:{running.port}"}) as router:
            router.discover()
            assert "perturbation" in router._flight
            running.flight.stop(0)  # its port now refuses connections, as behind a gRPC-only proxy
            running.flight = None
            table = router.query("tahoe_dose_response")
            assert "perturbation" not in router._flight  # remembered: gRPC from now on
    finally:
        running.stop()
    assert table.num_rows == local["perturbation"].sql("SELECT count(*) FROM tahoe_dose_response").fetchall()[0][0]


def test_flight_off_by_argument_or_environment(addresses, monkeypatch):
    monkeypatch.setenv("CYTOATLAS_CLIENT_FLIGHT", "0")
    with Router(addresses) as router:
        assert router.query(TABLE, limit=3).num_rows == 3 and not router._flight
    monkeypatch.delenv("CYTOATLAS_CLIENT_FLIGHT")
    with Router(addresses) as router, Router(addresses, flight=False) as off:
        assert router.query(TABLE, limit=3).equals(off.query(TABLE, limit=3)) and not off._flight


def test_a_flight_port_that_reaches_another_process_is_never_read_from(built, local, tmp_path):
    # perturbation lists its tables and names its Flight port; then that port is taken by a
    # spatial service (as a port mapping that forwards only gRPC, or another stack, would do)
    running = start_server("perturbation", Settings(db=str(built["perturbation"]), port=0, flight_port=0,
                                                    socket_port=-1, reload_poll_seconds=0))  # Flight alone
    other = None
    try:
        with Router({"perturbation": f"127.0.0.1:{running.port}"}) as router:
            router.discover()
            port = running.flight_port
            running.flight.stop(0)
            running.flight = None
            other = ServiceProcess("spatial", built["spatial"], tmp_path / "other.log", "--flight-port", str(port))
            other.wait_listening()
            table = router.query("tahoe_dose_response")  # refused there by instance id: read over gRPC
            assert "perturbation" not in router._flight
        with client(f"127.0.0.1:{port}") as c, pytest.raises(flight.FlightUnavailableError, match="not abc"):
            c.do_get(ticket(table="spatial_activity", instance_id="abc")).read_all()
    finally:
        running.stop()
        if other is not None:
            other.stop()
    [(rows,)] = local["perturbation"].sql("SELECT count(*) FROM tahoe_dose_response").fetchall()
    assert table.num_rows == rows
