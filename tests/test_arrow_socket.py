"""The Arrow socket (serving/arrow_socket.py): the Router reads pages through it, equal to DuckDB;
its wire as docs/contract.md writes it, spoken by a plain socket as a client in another language
would; its errors, a client leaving mid-answer, a stale pooled connection, the way back to Flight,
and when it is off."""

from __future__ import annotations

import socket
import struct
import threading
import time

import grpc
import pyarrow as pa
import pytest
from google.rpc import error_details_pb2, status_pb2

from cytoatlas.client import Router
from cytoatlas.client.errors import CytoAtlasError
from cytoatlas.client.flight_reader import FlightReader
from cytoatlas.client.socket_reader import SocketReader
from cytoatlas.client.transport import Transport
from cytoatlas.serving.arrow_socket import _Peer
from cytoatlas.serving.config import Settings
from cytoatlas.serving.server import start_server
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc
from tests.conftest import ServiceProcess, request_log

TABLE = "tahoe_drug_effect"  # perturbation
ARROW, END, ERROR = 1, 2, 3


def listed(address: str) -> pb.ListTablesResponse:
    with grpc.insecure_channel(address) as channel:
        return pb_grpc.TableServiceStub(channel).ListTables(pb.ListTablesRequest(), timeout=10)


def ask(conn: socket.socket, body: bytes) -> list[tuple[int, bytes]]:
    """One request on the wire, and the answer's frames (kind, payload) up to END or ERROR."""
    conn.sendall(struct.pack("<I", len(body)) + body)
    reader = conn.makefile("rb")
    frames = []
    while True:
        head = reader.read(5)
        assert len(head) == 5, f"the connection closed after {frames}"
        length, kind = struct.unpack("<IB", head)
        frames.append((kind, reader.read(length)))
        if kind != ARROW:
            return frames


def decoded(frames) -> tuple[pa.Table, str]:
    """ARROW frames as a table (schema first), and the END frame's next page token."""
    assert [kind for kind, _ in frames[:-1]] == [ARROW] * (len(frames) - 1) and frames[-1][0] == END, frames
    schema = pa.ipc.read_schema(pa.py_buffer(frames[0][1]))
    batches = [pa.ipc.read_record_batch(pa.py_buffer(payload), schema) for _, payload in frames[1:-1]]
    return pa.Table.from_batches(batches, schema), pb.QueryResponse.FromString(frames[-1][1]).next_page_token


def status_of(frames) -> status_pb2.Status:
    assert frames[-1][0] == ERROR, frames
    return status_pb2.Status.FromString(frames[-1][1])


def detail(status: status_pb2.Status, kind):
    for any_detail in status.details:
        if any_detail.Is(kind.DESCRIPTOR):
            message = kind()
            any_detail.Unpack(message)
            return message
    return None


@pytest.fixture(scope="module")
def service(built, tmp_path_factory):
    """One perturbation process whose messages are small (several batches per page)."""
    log = tmp_path_factory.mktemp("arrow-socket") / "perturbation.log"
    running = ServiceProcess("perturbation", built["perturbation"], log, "--processes", "1",
                             "--max-message-bytes", "20000")
    running.wait_listening()
    yield running
    running.stop()


def socket_address(service) -> tuple[str, int]:
    return "127.0.0.1", listed(service.address).socket_port


def test_the_router_reads_every_page_through_the_socket_equal_to_duckdb(service, local):
    expected = local["perturbation"].sql(f"SELECT * FROM {TABLE}").to_arrow_table()
    with Router({"perturbation": service.address}) as router:
        pages = list(router.query_pages(TABLE, page_size=700))
        point = router.query(TABLE, where=("drug", "=", expected["drug"][0].as_py()))
    assert len(pages) == -(-expected.num_rows // 700) > 2
    got = pa.concat_tables(pages)
    key = [(c, "ascending") for c in expected.column_names]
    assert got.sort_by(key).equals(expected.sort_by(key))
    assert point.num_rows == sum(1 for d in expected["drug"].to_pylist() if d == expected["drug"][0].as_py())
    socket_calls = request_log(service.log, "SocketGet")
    assert len(socket_calls) == len(pages) + 1 and {line["code"] for line in socket_calls} == {"OK"}
    assert not request_log(service.log, "DoGet") and not request_log(service.log, "Query")


def test_the_wire_as_the_contract_writes_it(service, local):
    request = pb.QueryRequest(table=TABLE, limit=500, order_by=[pb.OrderBy(column="drug")])
    with socket.create_connection(socket_address(service)) as conn:
        first, token = decoded(ask(conn, request.SerializeToString()))
        assert first.num_rows == 500 and token  # several ARROW frames (20,000-byte messages), a token
        request.page_token = token
        second, _ = decoded(ask(conn, request.SerializeToString()))  # the same connection, next request
        whole, none = decoded(ask(conn, TABLE.encode()))  # a bare table name, as a Flight ticket may be
    expected = local["perturbation"].sql(f"SELECT * FROM {TABLE}").to_arrow_table()
    assert second.num_rows == 500 and whole.num_rows == expected.num_rows and none == ""
    assert first["drug"].to_pylist() + second["drug"].to_pylist() == sorted(expected["drug"].to_pylist())[:1000]


def test_errors_carry_the_status_a_grpc_call_would(service):
    with socket.create_connection(socket_address(service)) as conn:
        bad = status_of(ask(conn, b"\x0a\x03tah\xff\xff"))
        assert bad.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert detail(bad, error_details_pb2.BadRequest).field_violations[0].field == "ticket"
        missing = status_of(ask(conn, pb.QueryRequest(table="no_such_table").SerializeToString()))
        assert missing.code == grpc.StatusCode.NOT_FOUND.value[0]
        assert detail(missing, error_details_pb2.ErrorInfo).reason == "TABLE_NOT_FOUND"
        # another process's instance id: refused with no detail, which the Router reads as "not here"
        elsewhere = status_of(ask(conn, pb.QueryRequest(table=TABLE, instance_id="other").SerializeToString()))
        assert elsewhere.code == grpc.StatusCode.UNAVAILABLE.value[0] and not elsewhere.details
        assert decoded(ask(conn, pb.QueryRequest(table=TABLE, limit=3).SerializeToString()))[0].num_rows == 3
        # a length past the limit: ERROR, then the connection is closed (nothing to resynchronise on)
        too_long = status_of(_oversized(conn))
        assert too_long.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "at most" in too_long.message
        assert conn.recv(1) == b""
    codes = [line["code"] for line in request_log(service.log, "SocketGet")[-5:]]
    assert codes == ["INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE", "OK", "INVALID_ARGUMENT"], codes
    with Router({"perturbation": service.address}) as router:  # the Router raises them as over gRPC
        with pytest.raises(CytoAtlasError) as raised:
            router.query(TABLE, where=("no_such_column", "=", 1))
        assert raised.value.reason == "COLUMN_NOT_FOUND" and "no_such_column" in str(raised.value)


def _oversized(conn: socket.socket) -> list[tuple[int, bytes]]:
    conn.sendall(struct.pack("<I", 64 * 1024 * 1024))
    reader = conn.makefile("rb")
    length, kind = struct.unpack("<IB", reader.read(5))
    return [(kind, reader.read(length))]


def test_a_client_that_leaves_mid_answer_ends_the_stream_cancelled(service):
    calls = len(request_log(service.log, "SocketGet"))
    with socket.socket() as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small: the server must wait for us
        conn.connect(socket_address(service))
        body = pb.QueryRequest(table="parse10m_activity").SerializeToString()  # 161,269 rows, ~10 MB
        conn.sendall(struct.pack("<I", len(body)) + body)
        assert conn.recv(5)  # the answer started; then we leave with the rest unread
    deadline = time.monotonic() + 10
    while len(request_log(service.log, "SocketGet")) == calls:
        assert time.monotonic() < deadline, "the call was never logged"
        time.sleep(0.05)
    assert request_log(service.log, "SocketGet")[-1]["code"] == "CANCELLED"
    with Router({"perturbation": service.address}) as router:  # and the service answers on
        assert router.query(TABLE, limit=1).num_rows == 1


def test_a_stale_pooled_connection_is_opened_again_and_an_unreachable_socket_falls_back_to_flight(
        built, tmp_path, capfd):
    settings = Settings(db=str(built["perturbation"]), port=0, flight_port=0, socket_port=0, processes=1)
    first = start_server("perturbation", settings)
    flight_port, socket_port = first.flight_port, first.socket_port
    reader = SocketReader(FlightReader("127.0.0.1", flight_port, Transport()), socket_port)
    try:
        assert reader.page(pb.QueryRequest(table=TABLE, limit=2), 10)[0].num_rows == 2
        first.stop(1)  # closes the pooled connection from the server's side
        again = start_server("perturbation", Settings(db=str(built["perturbation"]), port=0, flight_port=flight_port,
                                                      socket_port=socket_port, processes=1))
        try:
            capfd.readouterr()
            assert reader.page(pb.QueryRequest(table=TABLE, limit=4), 10)[0].num_rows == 4
            assert reader.unreachable is None  # opened again, still through the socket
            assert '"rpc": "SocketGet"' in capfd.readouterr().err
        finally:
            again.stop(1)
    finally:
        reader.close()
    with socket.socket() as closed:  # a port nothing listens on: the page is read through Flight
        closed.bind(("127.0.0.1", 0))
        nowhere = closed.getsockname()[1]
    third = start_server("perturbation", Settings(db=str(built["perturbation"]), port=0, flight_port=0,
                                                  socket_port=-1, processes=1))
    reader = SocketReader(FlightReader("127.0.0.1", third.flight_port, Transport()), nowhere)
    try:
        capfd.readouterr()
        assert reader.page(pb.QueryRequest(table=TABLE, limit=5), 10)[0].num_rows == 5
        assert "cannot connect" in reader.unreachable
        assert '"rpc": "DoGet"' in capfd.readouterr().err
        assert listed(f"127.0.0.1:{third.port}").socket_port == 0  # --socket-port -1: none listed
    finally:
        reader.close()
        third.stop(1)


def test_no_socket_under_a_token(built, start_service):
    service = start_service("perturbation", built["perturbation"], "--processes", "1", "--auth-token", "s3cret")
    assert "arrow socket on" not in service.log.read_text()
    with grpc.insecure_channel(service.address) as channel:
        answer = pb_grpc.TableServiceStub(channel).ListTables(
            pb.ListTablesRequest(), metadata=[("authorization", "Bearer s3cret")], timeout=10)
    assert answer.flight_port and answer.socket_port == 0
    with Router({"perturbation": service.address}, token="s3cret") as router:
        assert router.query(TABLE, limit=2).num_rows == 2
    assert request_log(service.log, "DoGet") and not request_log(service.log, "SocketGet")


def test_a_socket_port_that_reaches_another_process_is_never_read_from(built, local, tmp_path):
    # perturbation lists its tables and names its socket; then that port is taken by a spatial
    # service (as a port mapping to another stack would do): the Router must not read from it
    running = start_server("perturbation", Settings(db=str(built["perturbation"]), port=0, flight_port=0,
                                                    socket_port=0, processes=1, reload_poll_seconds=0))
    other = None
    try:
        with Router({"perturbation": f"127.0.0.1:{running.port}"}) as router:
            router.discover()
            port = running.socket_port
            running.socket.stop(0)
            other = ServiceProcess("spatial", built["spatial"], tmp_path / "other.log", "--processes", "1",
                                   "--socket-port", str(port))
            other.wait_listening()
            table = router.query("tahoe_dose_response")  # refused there by instance id: read through Flight
        refused = request_log(other.log, "SocketGet")
        assert [line["code"] for line in refused] == ["UNAVAILABLE"], refused
    finally:
        running.stop(1)
        if other is not None:
            other.stop()
    [(rows,)] = local["perturbation"].sql("SELECT count(*) FROM tahoe_dose_response").fetchall()
    assert table.num_rows == rows


class _Scripted:
    """A stand-in Arrow socket on loopback answering by the request's table name: "twice" gets
    schema A's frame and then a whole answer of schema A (what a client interrupted after the
    first frame leaves unread is an answer of its own); "slow" gets nothing; any other name a
    whole answer of schema B. It counts the connections it accepted."""

    SCHEMA_A, SCHEMA_B = pa.schema([("a", pa.int64())]), pa.schema([("b", pa.string())])

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port, self.connections = self.listener.getsockname()[1], 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        def frame(kind, payload):
            return struct.pack("<IB", len(payload), kind) + bytes(payload)

        reader = conn.makefile("rb")
        with conn:
            while len(head := reader.read(4)) == 4:
                table = pb.QueryRequest.FromString(reader.read(struct.unpack("<I", head)[0])).table
                if table == "slow":
                    continue
                schema = self.SCHEMA_A if table == "twice" else self.SCHEMA_B
                conn.sendall((frame(ARROW, schema.serialize()) if table == "twice" else b"")
                             + frame(ARROW, schema.serialize()) + frame(END, b""))

    def close(self):
        self.listener.close()


def test_an_answer_left_half_read_or_past_its_deadline_never_reaches_the_next_request(monkeypatch):
    scripted = _Scripted()
    read_schema = pa.ipc.read_schema

    def interrupted(buffer):  # Ctrl-C while the first frame is decoded; later reads are left alone
        monkeypatch.setattr(pa.ipc, "read_schema", read_schema)
        raise KeyboardInterrupt
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = closed.getsockname()[1]
    reader = SocketReader(FlightReader("127.0.0.1", nowhere, Transport()), scripted.port)
    try:
        monkeypatch.setattr(pa.ipc, "read_schema", interrupted)
        with pytest.raises(KeyboardInterrupt):  # the rest of the answer is left unread
            reader.page(pb.QueryRequest(table="twice"), 5)
        assert reader.page(pb.QueryRequest(table="good"), 5)[0].schema == _Scripted.SCHEMA_B  # not A's leftovers
        assert scripted.connections == 2
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as late:
            reader.page(pb.QueryRequest(table="slow"), 0.3)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - started < 2
        assert reader.page(pb.QueryRequest(table="good"), 5)[0].schema == _Scripted.SCHEMA_B
        assert scripted.connections == 3 and reader.unreachable is None
    finally:
        reader.close()
        scripted.close()


def test_the_server_sees_a_client_hang_up_while_its_query_runs():
    """What interrupts a running query when its client leaves: the hang-up, polled (arrow_socket._Peer)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        served, _ = listener.accept()
        with served:
            peer = _Peer(served)
            assert not peer.is_cancelled()
            client.close()
            deadline = time.monotonic() + 5
            while not peer.is_cancelled():
                assert time.monotonic() < deadline, "the hang-up was never seen"
                time.sleep(0.01)
