"""The Arrow socket: the Flight endpoint's DoGet answered over a plain TCP connection.

A Flight DoGet is an HTTP/2 stream through gRPC's C++ machinery, and for a small answer that, not
the bytes, is most of the round trip (`python -m bench.transport_floor`: 12 rows 0.63 ms over
DoGet, 0.29 ms over a socket). So each process also listens on a TCP port of its own
(--socket-port; the gRPC port + 20 by default, 50071/50072/50073) and answers there what DoGet
answers, from the same code (FlightEndpoint.page_stream): the same ticket (a serialized
QueryRequest, its instance_id checked), query slot, build lease, compiler, limits, interrupts,
metrics and request log (rpc "SocketGet"). The Router reads its pages here first
(client/socket_reader.py).

The wire, per connection, one request at a time, as many as the client likes:

  request   u32 length (little-endian), then that many bytes: what a Flight ticket holds
  answer    frames, each a u32 length (little-endian), a u8 kind and that many bytes of payload:
              ARROW  1   one encapsulated Arrow IPC message: the schema first, then the record
                         batches of the page, in order
              END    2   a serialized cytoatlas.table.v1.QueryResponse holding only
                         next_page_token ("" on the last page): the answer is complete
              ERROR  3   a serialized google.rpc.Status, what a gRPC call's trailers would carry
                         (code, message, ErrorInfo, BadRequest, RetryInfo): the call failed, and
                         any ARROW frames before it are void

A request longer than MAX_REQUEST_BYTES is answered ERROR and the connection closed; so is a
connection idle for IDLE_SECONDS (clients open another). A client that closes its connection while
its query runs interrupts it (the hang-up is polled, as the Flight endpoint polls its cancels); a
closed connection mid-answer ends the stream (CANCELLED in the log).

It has no TLS and no token, so it is off when the service uses either (the Router then reads
through Flight), and with --flight-port -1, whose DoGet it answers.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight

from cytoatlas.serving.database import DatabaseError
from cytoatlas.serving.errors import Reason, invalid
from cytoatlas.serving.flight import FlightEndpoint, RunningQueries, status_of
from cytoatlas.table.v1 import table_service_pb2 as pb

log = logging.getLogger(__name__)

ARROW, END, ERROR = 1, 2, 3
LENGTH = struct.Struct("<I")
FRAME = struct.Struct("<IB")
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # as gRPC's default receive limit: a QueryRequest is far smaller
MAX_CONNECTIONS = 512  # one thread each, mostly asleep; beyond it a connection is hung up at once
IDLE_SECONDS = 300.0  # a connection with no request for this long is closed (the client reconnects)
_GONE = select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL


def frame(kind: int, payload) -> list:
    """One frame as the buffers to send (no copy of the payload)."""
    return [FRAME.pack(len(memoryview(payload)), kind), payload]


class ArrowSocket:
    """Listening from construction until `stop`: a thread accepts, and one serves each connection."""

    def __init__(self, endpoint: FlightEndpoint, host: str, port: int):
        self.endpoint, self.domain = endpoint, endpoint.domain
        try:
            self._listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host
                                                  else socket.AF_INET, backlog=256)
        except OSError as exc:
            raise DatabaseError(f"cannot listen for the Arrow socket on {host}:{port}: {exc}") from exc
        self.port = self._listener.getsockname()[1]
        self._running = RunningQueries()  # its queries, polled for clients that hung up
        self._lock = threading.Lock()
        self._idle: set[socket.socket] = set()  # waiting for a request: hung up at once on stop
        self._busy: set[socket.socket] = set()  # answering one: on stop, ends after it (or the grace)
        self._stopping = False
        self._changed = threading.Condition(self._lock)  # a connection went idle or ended
        threading.Thread(target=self._accept, name=f"{self.domain}-socket", daemon=True).start()

    def stop(self, grace: float | None = None) -> None:
        """Accept nothing more; hang up idle connections; let answers in progress finish within
        `grace` seconds, then interrupt their queries, hang up and wait for them to end. Each
        connection's own thread closes it (closing it from here could free its descriptor under
        a call still using it)."""
        with self._lock:
            self._stopping = True
            idle = set(self._idle)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self._listener.close()
        for conn in idle:
            _hang_up(conn)
        with self._lock:
            self._changed.wait_for(lambda: not self._busy, grace or 0)
            busy = set(self._busy)
        if busy:
            log.warning("%s: Arrow socket answers still running after %s s: interrupting them", self.domain, grace)
            self._running.cancel_all()
            for conn in busy:
                _hang_up(conn)
            with self._lock:  # out of DuckDB before the file closes
                self._changed.wait_for(lambda: not self._busy, 10)
        self._running.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError as exc:
                if self._stopping:
                    return
                # out of descriptors or buffers, or a connection reset before it was taken: the
                # listener is still good; wait a little rather than spin, and go on
                log.warning("%s: the Arrow socket could not accept a connection: %s", self.domain, exc)
                time.sleep(0.1)
                continue
            with self._lock:
                refuse = self._stopping or len(self._idle) + len(self._busy) >= MAX_CONNECTIONS
                if not refuse:
                    self._idle.add(conn)
            if refuse:  # the client reads it through Flight for a while
                _hang_up(conn)
                conn.close()
                continue
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # half-open ones end
                threading.Thread(target=self._serve, args=(conn,), name=f"{self.domain}-socket-conn",
                                 daemon=True).start()
            except (OSError, RuntimeError) as exc:  # no thread to serve it: hang it up
                log.warning("%s: the Arrow socket could not serve a connection: %s", self.domain, exc)
                with self._lock:
                    self._idle.discard(conn)
                _hang_up(conn)
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                conn.settimeout(IDLE_SECONDS)  # an idle connection ends; the client opens another
                head = reader.read(LENGTH.size)
                conn.settimeout(None)
                if len(head) < LENGTH.size:
                    return  # the client closed the connection between requests
                with self._lock:
                    if self._stopping or conn not in self._idle:
                        return
                    self._idle.discard(conn)
                    self._busy.add(conn)
                (length,) = LENGTH.unpack(head)
                if length > MAX_REQUEST_BYTES:  # refused, observed as every refusal is, then closed
                    error = invalid(Reason.INVALID_REQUEST, f"a request of {length} bytes: the Arrow socket takes "
                                    f"at most {MAX_REQUEST_BYTES}; send a serialized cytoatlas.table.v1.QueryRequest",
                                    "ticket")
                    call = self.endpoint.observer.begin("SocketGet", None, None)
                    call.code = error.code
                    call.finish()
                    _send(conn, frame(ERROR, error.to_status().SerializeToString()))
                    return
                ticket = reader.read(length)
                if len(ticket) < length or not self._answer(conn, ticket):
                    return
                with self._lock:
                    self._busy.discard(conn)
                    self._changed.notify_all()
                    if self._stopping:
                        return
                    self._idle.add(conn)
        except OSError:  # the client went away, it stayed idle too long, or stop hung up
            return
        finally:
            with self._lock:
                self._idle.discard(conn)
                self._busy.discard(conn)
                self._changed.notify_all()
            reader.close()
            _hang_up(conn)
            conn.close()

    def _answer(self, conn: socket.socket, ticket: bytes) -> bool:
        """Answer one request; False when the connection can take no more (the client left)."""
        call = self.endpoint.observer.begin("SocketGet", None, None)
        stream = self.endpoint.page_stream(call, _Peer(conn), ticket, self._running)
        try:
            head = next(stream)  # parsed, admitted, leased and running: a bad request fails here
        except flight.FlightError as exc:
            call.finish()
            _send(conn, frame(ERROR, status_of(exc).SerializeToString()))
            return True
        except BaseException:
            call.finish()
            raise
        if isinstance(head, pa.Table):  # the whole page, read; slot, lease and cursor given back
            stream.close()
            call.finish()
            frames = frame(ARROW, head.schema.serialize())
            for batch in head.to_batches():
                frames += frame(ARROW, batch.serialize())
            _send(conn, frames + frame(END, b""))
            return True
        try:  # a page of several messages: sent as read; the stream finishes the call as it ends
            _send(conn, frame(ARROW, head.serialize()))
            token = b""
            for item in stream:
                batch, token = item if isinstance(item, tuple) else (item, b"")
                _send(conn, frame(ARROW, batch.serialize()))
            _send(conn, frame(END, pb.QueryResponse(next_page_token=token.decode()).SerializeToString()))
        except flight.FlightError as exc:
            _send(conn, frame(ERROR, status_of(exc).SerializeToString()))
        except OSError:
            stream.close()  # the client went away mid-answer: CANCELLED in the log
            return False
        return True


def _send(conn: socket.socket, buffers: list) -> None:
    """sendmsg until every byte is out (it may send part of a large batch)."""
    views = [memoryview(b).cast("B") for b in buffers]
    while views:
        sent = conn.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if views and sent:
            views[0] = views[0][sent:]


def _hang_up(conn: socket.socket) -> None:
    """End the connection both ways: its thread's read or write returns at once."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:  # already gone
        pass


class _Peer:
    """What FlightEndpoint.page_stream asks of a call's context: whether the client went away,
    read from the connection without blocking (it sends nothing while waiting for its answer)."""

    def __init__(self, conn: socket.socket):
        self._poll = select.poll()
        self._poll.register(conn, _GONE)

    def is_cancelled(self) -> bool:
        return bool(self._poll.poll(0))
