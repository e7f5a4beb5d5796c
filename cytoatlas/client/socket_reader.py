"""The Router's first way to read a query page: a service process's Arrow socket.

The socket (cytoatlas/serving/arrow_socket.py, the wire in docs/contract.md) answers what the
process's Flight DoGet answers, without HTTP/2: for a small page the round trip is about half
(docs/performance.md). A SocketReader wraps the process's FlightReader and has its host, port and
instance id, so FlightReplicas and the Router treat it as that process's reader.

Each calling thread keeps a connection of its own (one request at a time on each). An answer is
read whole: a google.rpc.Status in an ERROR frame becomes a FlightCallError as a Flight or gRPC
failure would (retried or raised alike). A connection that fails before any answer, when it had
been used before (the service restarted, or closed it idle), is opened again once. When the
socket cannot be reached (refused, or no connection within CONNECT_SECONDS), breaks mid-answer
or is found dead by the kernel, the page is asked of Flight at once, and so are the pages of the
next RETRY_SECONDS: a port mapping that forwards only some ports, a full server, or a process
gone, which Flight then reports as the transport failure FlightReplicas acts on. One deadline
covers the whole page, connection, retry and fallback included; a page that outlives it is
DEADLINE_EXCEEDED, and the connection is dropped (the server sees the hang-up and stops the query).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import weakref

import grpc
import pyarrow as pa
from google.rpc import status_pb2

from cytoatlas.client.flight_reader import _CODES, FlightCallError, FlightReader  # _CODES: gRPC code by number
from cytoatlas.table.v1 import table_service_pb2 as pb

log = logging.getLogger(__name__)

ARROW, END, ERROR = 1, 2, 3  # as serving/arrow_socket.py sends them
_LENGTH = struct.Struct("<I")
_FRAME = struct.Struct("<IB")
CONNECT_SECONDS = 2.0  # longest wait for a connection: a socket port that takes longer is left for Flight
RETRY_SECONDS = 30.0  # after the socket failed, pages go through Flight this long before it is tried again


class _Unreachable(Exception):
    """The socket failed as a transport (no answer, or a broken one): read through Flight."""


class SocketReader:
    """Query pages of one service process through its Arrow socket, else its Flight reader."""

    def __init__(self, flight: FlightReader, socket_port: int):
        self.flight, self.socket_port = flight, socket_port
        self.host, self.port, self.instance_id = flight.host, flight.port, flight.instance_id
        self._instance = pb.QueryRequest(instance_id=flight.instance_id).SerializeToString()
        self._local = threading.local()
        # every thread's, closed by close(); weak: a thread's ends (and closes) with the thread
        self._connections: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.unreachable: str | None = None  # why this reader reads through Flight now
        self._retry_at = 0.0  # when to try the socket again after it failed (time.monotonic)

    def page(self, request: pb.QueryRequest, timeout: float | None) -> tuple[pa.Table, str]:
        """One page of `request`: its rows and the next page's token ("" on the last page)."""
        if self.unreachable is None or time.monotonic() >= self._retry_at:
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                page = self._page(request.SerializeToString() + self._instance, deadline)
                self.unreachable = None
                return page
            except _Unreachable as exc:
                if self.unreachable is None:  # as quiet as Flight's way back to gRPC: info, once
                    log.info("the Arrow socket %s:%d failed (%s): reading through Flight on port %d for %.0f s",
                             self.host, self.socket_port, exc, self.port, RETRY_SECONDS)
                self.unreachable, self._retry_at = str(exc), time.monotonic() + RETRY_SECONDS
            if deadline is not None:
                timeout = max(deadline - time.monotonic(), 0.001)
        return self.flight.page(request, timeout)

    def _page(self, ticket: bytes, deadline: float | None) -> tuple[pa.Table, str]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                return self._exchange(conn, ticket, deadline)
            except _Unreachable:  # used before: the service may have closed it; once more, anew
                pass
        return self._exchange(self._connect(deadline), ticket, deadline)

    def _connect(self, deadline: float | None) -> socket.socket:
        try:  # a short wait: a port that does not answer at once is left for Flight
            conn = socket.create_connection((self.host, self.socket_port),
                                            timeout=min(CONNECT_SECONDS, _left(deadline)))
        except OSError as exc:
            raise _Unreachable(f"cannot connect: {exc.strerror or exc}") from None
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.conn, self._local.reader = conn, conn.makefile("rb")
        with self._lock:
            self._connections.add(conn)
        return conn

    def _exchange(self, conn: socket.socket, ticket: bytes, deadline: float | None) -> tuple[pa.Table, str]:
        """One request and its whole answer on `conn`. Unless the answer was read to its END or
        ERROR frame, whatever the exception, the connection is dropped: the rest of an answer
        left on it would be read as the next request's."""
        reader, answered = self._local.reader, False
        try:
            conn.settimeout(_left(deadline))
            conn.sendall(_LENGTH.pack(len(ticket)) + ticket)
            schema, batches = None, []
            while True:
                conn.settimeout(_left(deadline))  # each frame gets what is left of the deadline
                head = reader.read(_FRAME.size)
                if len(head) < _FRAME.size:
                    raise _Unreachable("the connection closed before the answer" if not head and schema is None
                                       else "the connection closed mid-answer")
                length, kind = _FRAME.unpack(head)
                payload = reader.read(length)
                if len(payload) < length:
                    raise _Unreachable("the connection closed mid-answer")
                if kind == ARROW:
                    if schema is None:
                        schema = pa.ipc.read_schema(pa.py_buffer(payload))
                    else:
                        batches.append(pa.ipc.read_record_batch(pa.py_buffer(payload), schema))
                elif kind == END:
                    answered = True
                    if schema is None:
                        raise _Unreachable("the answer ended without an Arrow schema")
                    token = pb.QueryResponse.FromString(payload).next_page_token
                    return pa.Table.from_batches(batches, schema=schema), token
                elif kind == ERROR:
                    answered = True
                    raise _failure(status_pb2.Status.FromString(payload))
                else:
                    raise _Unreachable(f"a frame of unknown kind {kind}")
        except TimeoutError as exc:  # socket.timeout is TimeoutError
            if exc.errno is not None:  # the kernel's ETIMEDOUT: the peer is gone, not slow
                raise _Unreachable(exc.strerror or str(exc)) from None
            raise FlightCallError(grpc.StatusCode.DEADLINE_EXCEEDED,  # the server sees the hang-up and stops
                                  f"no answer from the Arrow socket {self.host}:{self.socket_port} within the "
                                  "call's deadline", None) from None
        except OSError as exc:
            raise _Unreachable(exc.strerror or str(exc)) from None
        finally:
            if not answered:
                self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        if getattr(self._local, "conn", None) is conn:
            self._local.reader.close()
            self._local.conn = self._local.reader = None
        with self._lock:
            self._connections.discard(conn)
        conn.close()

    def close(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections), weakref.WeakSet()
        for conn in connections:
            conn.close()
        self.flight.close()


def _left(deadline: float | None) -> float | None:
    """Seconds left until `deadline` (None: no deadline); a passed deadline leaves a moment, so
    the read times out rather than blocks."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.001)


def _failure(status: status_pb2.Status) -> FlightCallError | _Unreachable:
    """An ERROR frame as a failed call. The service's own errors carry details (ErrorInfo); one
    with none is a refusal of the transport's kind (a ticket for another process), read as such."""
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    if not status.details:
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return _Unreachable(status.message)
        return FlightCallError(code, status.message, None)
    return FlightCallError(code, status.message, status)
