"""The Router's way to read a query page: through the service's Arrow Flight endpoint.

Every service also answers Query's requests on its Arrow Flight port (a DoGet whose ticket is the
serialized QueryRequest: the same compiler, limits, page tokens, admission, token check and
metrics; cytoatlas/serving/flight.py), and says which port in ListTables. Reading there, the
record batches are received and decoded by Arrow's C++ Flight client instead of Python gRPC
messages decoded one by one: less client CPU on every answer, the most on large ones (figures in
docs/performance.md).

A Flight failure becomes a `FlightCallError`, a grpc.RpcError with the status the server sent
(its google.rpc.Status rides in the Flight error's extra_info), so retry.py and errors.py read it
exactly as a gRPC failure: a busy refusal is retried after its RetryInfo delay, a bad request
raises the same CytoAtlasError. A failure that carries no such status and says UNAVAILABLE is the
transport's (the Flight port unreachable from here: a proxy or port mapping that forwards only
the gRPC port, or a replica that went away), as is a CANCELLED without one (a process stopping
cancels the calls it accepted but had not started). A domain served by several processes (a replica
list, or several processes behind one port) has a reader per process, the least busy taken for
each page (FlightReplicas); one whose port stops answering leaves, and once none is left the
Router reads that domain over gRPC.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import grpc
import pyarrow as pa
import pyarrow.flight as flight
from google.rpc import status_pb2
from grpc_status import rpc_status

from cytoatlas.client.transport import RECONNECT_OPTIONS, Transport, read_pem
from cytoatlas.table.v1 import table_service_pb2 as pb

_CODES = {code.value[0]: code for code in grpc.StatusCode}
_KINDS = ((flight.FlightUnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
          (flight.FlightUnauthorizedError, grpc.StatusCode.PERMISSION_DENIED),
          (flight.FlightUnavailableError, grpc.StatusCode.UNAVAILABLE),
          (flight.FlightTimedOutError, grpc.StatusCode.DEADLINE_EXCEEDED),
          (flight.FlightCancelledError, grpc.StatusCode.CANCELLED),
          (flight.FlightInternalError, grpc.StatusCode.INTERNAL))
# host:port, [v6]:port or dns:///host:port; anything else (unix sockets, other schemes) is read over gRPC
_ADDRESS = re.compile(r"(?:dns:///)?(\[[^\]]+\]|[^/:\[\]]+):\d+")


class FlightCallError(grpc.RpcError):
    """A failed Flight call as the grpc.RpcError the gRPC path would have raised."""

    def __init__(self, code: grpc.StatusCode, details: str, status: status_pb2.Status | None):
        super().__init__(details)
        self._code, self._details, self._status = code, details, status

    @property
    def from_transport(self) -> bool:
        """Unreachable, or cancelled unstarted by a server shutting down, as opposed to answered
        by the service (which always sends a status; the Router never cancels its own calls)."""
        return self._status is None and self._code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        if self._status is None:
            return ()
        return ((rpc_status.GRPC_DETAILS_METADATA_KEY, self._status.SerializeToString()),)


def call_error(exc: flight.FlightError) -> FlightCallError:
    if exc.extra_info:
        try:
            status = status_pb2.Status.FromString(exc.extra_info)
        except Exception:  # noqa: BLE001 - not a google.rpc.Status: read the error as the transport's
            status = None
        if status is not None and status.code in _CODES:
            return FlightCallError(_CODES[status.code], status.message, status)
    code = next((code for kind, code in _KINDS if isinstance(exc, kind)), grpc.StatusCode.UNKNOWN)
    return FlightCallError(code, str(exc), None)


def flight_host(address: str) -> str | None:
    """The host of a Router address, for the Flight port on the same host; None: not host:port."""
    match = _ADDRESS.fullmatch(address)
    return match.group(1) if match else None


class FlightReader:
    """Query pages of one service, read with pyarrow's Flight client (thread-safe, one per service)."""

    def __init__(self, host: str, port: int, transport: Transport, instance_id: str = ""):
        self.host, self.port, self.instance_id = host, port, instance_id
        self.location = f"{'grpc+tls' if transport.tls else 'grpc+tcp'}://{host}:{port}"
        self._client = flight.FlightClient(self.location, tls_root_certs=read_pem(transport.tls_ca),
                                           cert_chain=read_pem(transport.tls_cert),
                                           private_key=read_pem(transport.tls_key),
                                           generic_options=list(RECONNECT_OPTIONS))
        self._headers = [(b"authorization", f"Bearer {transport.token}".encode())] if transport.token else []
        # Every ticket names the process whose ListTables named this port (QueryRequest.instance_id):
        # an endpoint of another process refuses it (serving/flight.py) and the Router goes back to
        # gRPC. Appended as bytes: a serialized message followed by another merges into one.
        self._instance = pb.QueryRequest(instance_id=instance_id).SerializeToString()

    def page(self, request: pb.QueryRequest, timeout: float | None) -> tuple[pa.Table, str]:
        """One page of `request`: its rows and the next page's token ("" on the last page)."""
        options = flight.FlightCallOptions(timeout=timeout, headers=self._headers)
        try:
            reader = self._client.do_get(flight.Ticket(request.SerializeToString() + self._instance), options)
            batches, token = [], None
            while True:
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    break
                if chunk.data is not None:
                    batches.append(chunk.data)
                if chunk.app_metadata is not None:  # the last batch of a page with more rows after it
                    token = chunk.app_metadata
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except flight.FlightError as exc:
            raise call_error(exc) from None
        return table, token.to_pybytes().decode() if token is not None else ""

    def close(self) -> None:
        self._client.close()


class FlightReplicas:
    """The readers of one domain, one per serving process (a FlightReader, or a SocketReader
    reading through the process's Arrow socket before its Flight endpoint: socket_reader.py).
    Each page goes to the reader with the fewest pages in flight from this Router, the first on a
    tie: calls one after another stay with one process, whose threads and caches are warm (point
    and 10,000-row queries 1-6% faster than taking turns, docs/performance.md), and concurrent
    calls spread over all of them.
    A reader whose endpoint stops answering (a transport failure, not a service's error) leaves
    and the page is asked of another (on_drop(reader) is told). With none left, the last transport
    failure is raised."""

    def __init__(self, readers: list[FlightReader], on_drop: Callable[[FlightReader], None] = lambda reader: None):
        self.readers = list(readers)
        self._on_drop = on_drop
        self._busy = {id(reader): 0 for reader in self.readers}  # pages in flight per reader
        self._lock = threading.Lock()

    def page(self, request: pb.QueryRequest, timeout: float | None) -> tuple[pa.Table, str]:
        while True:
            with self._lock:
                readers = self.readers
                reader = min(readers, key=lambda r: self._busy[id(r)])
                self._busy[id(reader)] += 1
            try:
                return reader.page(request, timeout)
            except FlightCallError as err:
                if not err.from_transport:
                    raise
                self._on_drop(reader)
                if len(readers) == 1:
                    raise
                with self._lock:  # not closed: another thread may be reading through it
                    self.readers = [r for r in self.readers if r is not reader]
            finally:
                with self._lock:
                    self._busy[id(reader)] -= 1

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
