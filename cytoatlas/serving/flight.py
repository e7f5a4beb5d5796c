"""Arrow Flight beside gRPC: the served tables for any Flight client, in the same process.

Each service also listens for Arrow Flight on a port of its own (--flight-port; the gRPC port + 10
by default) and answers from the same served file:

  ListFlights                 one FlightInfo per table: descriptor path [table], the table's Arrow
                              schema, total_records = its row count, and tickets that read it whole
                              (one endpoint per page of at most --arrow-max-limit rows, in order)
  GetFlightInfo, GetSchema    a path [table] descriptor: that table, as above; a cmd descriptor
                              holding a serialized cytoatlas.table.v1.QueryRequest: that query's
                              output schema (compiled, asked of DuckDB under LIMIT 0, not run) and
                              one ticket carrying the request
  DoGet                       the ticket is a serialized QueryRequest (a bare table name also does);
                              it runs through table_service.open_page, the path TableService.Query
                              takes in the ARROW format: the same compiler, limits and page tokens;
                              one whose instance_id names another process is refused unanswered

A DoGet answers one page, as Query does (`limit` is the page size, 0 = --arrow-default-limit).
When more rows match, the last record batch carries the next page's token as its app_metadata:
set it as the request's `page_token` and DoGet again.

The guards are the gRPC interceptor's, in its order. Every call is observed (metrics and the
request log, refusals included) by its handler; with --auth-token a middleware first checks the
bearer token (the only way pyarrow lets a handler see headers; without a token there is no
middleware: pyarrow's hooks and the gRPC interceptor under them cost ~0.4 ms of server CPU per
point query, docs/performance.md). A ticket whose QueryRequest names another process's
`instance_id` is refused unanswered. DoGet then takes a query slot from the Admission the gRPC
server uses (one --max-queries for both), and holds the build (ServedFile.hold) until its stream
ends, so a hot swap never changes the file under it. A page of one message is read, everything
given back and the call observed before C++ sends it; a longer page is observed when its stream
ends (or is dropped, the client gone).
A query is interrupted by the server's query timeout (limits.query_cursor) and, since pyarrow
gives a Flight call no cancel callback, by a thread that polls the running calls' is_cancelled().

Errors are the gRPC path's ServiceErrors (table_service.service_error), raised as the Flight error
of their code (`flight_error`): the message is the same, prefixed with the ErrorReason name, and
extra_info holds the google.rpc.Status (code, ErrorInfo, BadRequest, RetryInfo) as bytes.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import re
import threading
import weakref

import grpc
import pyarrow as pa
import pyarrow.flight as flight
from google.rpc import status_pb2

from cytoatlas.serving import paging
from cytoatlas.serving.admission import Admission
from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import Database, DatabaseError
from cytoatlas.serving.errors import Reason, ServiceError, invalid
from cytoatlas.serving.observability import REQUEST_ID_HEADER, Call, Observer
from cytoatlas.serving.security import TlsMaterial, TokenCheck
from cytoatlas.serving.swap import ServedFile
from cytoatlas.serving.table_service import find_table, open_page, output_schema, service_error
from cytoatlas.table.v1 import table_service_pb2 as pb

log = logging.getLogger(__name__)

MIDDLEWARE_KEY = "cytoatlas"
# A ticket or command of only these characters is a table name, never a serialized QueryRequest
# (one with its table set starts with the tag byte 0x0a).
_TABLE_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_FLIGHT_ERRORS = {
    grpc.StatusCode.UNAUTHENTICATED: flight.FlightUnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: flight.FlightUnauthorizedError,
    grpc.StatusCode.UNAVAILABLE: flight.FlightUnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: flight.FlightTimedOutError,
    grpc.StatusCode.CANCELLED: flight.FlightCancelledError,
    grpc.StatusCode.INTERNAL: flight.FlightInternalError,
}  # every other code (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...): FlightServerError
_CODES = {error: code for code, error in _FLIGHT_ERRORS.items()}


def flight_error(error: ServiceError) -> flight.FlightError:
    """The Flight error a ServiceError is answered with: same message, reason first, and the
    google.rpc.Status a gRPC call would carry as extra_info (grpc-status-details-bin on the wire)."""
    kind = _FLIGHT_ERRORS.get(error.code, flight.FlightServerError)
    return kind(f"{Reason.Name(error.reason)}: {error.message}", error.to_status().SerializeToString())


def status_of(exc: flight.FlightError) -> status_pb2.Status:
    """The google.rpc.Status a Flight error carries (flight_error puts it in extra_info), or one
    of its kind's code and its message when it carries none (a refusal that is the transport's:
    no ErrorInfo, so clients read it as such)."""
    if exc.extra_info:
        return status_pb2.Status.FromString(exc.extra_info)
    code = next((code for kind, code in _CODES.items() if isinstance(exc, kind)), grpc.StatusCode.UNKNOWN)
    return status_pb2.Status(code=code.value[0], message=str(exc))


def parse_request(data: bytes, field: str) -> pb.QueryRequest:
    """A ticket's or cmd descriptor's bytes as a QueryRequest: a serialized one, or a table name."""
    if not data:
        raise invalid(Reason.INVALID_REQUEST, f"the {field} is empty; send a serialized "
                      "cytoatlas.table.v1.QueryRequest or a table name", field)
    if _TABLE_NAME.fullmatch(data):
        return pb.QueryRequest(table=data.decode())
    try:
        request = pb.QueryRequest.FromString(data)
    except Exception as exc:  # DecodeError and friends: the client's bytes are at fault
        raise invalid(Reason.INVALID_REQUEST, f"the {field} is neither a serialized "
                      f"cytoatlas.table.v1.QueryRequest nor a table name ({exc})", field) from None
    if not request.table:
        raise invalid(Reason.INVALID_REQUEST, f"the {field} names no table: send a serialized "
                      "cytoatlas.table.v1.QueryRequest with `table` set, or a table name", field)
    if request.format not in (pb.RESULT_FORMAT_UNSPECIFIED, pb.RESULT_FORMAT_ARROW):
        raise invalid(Reason.INVALID_REQUEST, "Flight answers in Arrow only: leave `format` unset or "
                      "RESULT_FORMAT_ARROW (RESULT_FORMAT_ROWS is TableService.Query's)", "format")
    return request


def _rpc_name(method: flight.FlightMethod) -> str:
    """FlightMethod.DO_GET -> "DoGet", the label of the call in metrics and the request log."""
    return "".join(part.title() for part in method.name.split("_"))


def _header(headers: dict, name: str):
    values = headers.get(name)
    return values[0] if values else None


class FlightEndpoint(flight.FlightServerBase):
    """The domain's Flight server: listening from construction until `stop`."""

    def __init__(self, domain: str, settings: Settings, files: ServedFile, observer: Observer,
                 token: TokenCheck | None, admission: Admission, port: int, tls: TlsMaterial | None,
                 instance_id: str = ""):
        self.domain, self.settings, self.files, self.admission = domain, settings, files, admission
        self.observer, self.instance_id = observer, instance_id
        self._schemas: weakref.WeakKeyDictionary[Database, dict[str, pa.Schema]] = weakref.WeakKeyDictionary()
        self._schemas_lock = threading.Lock()
        self._running = RunningQueries()
        location = (flight.Location.for_grpc_tls if tls else flight.Location.for_grpc_tcp)(settings.host, port)
        try:
            super().__init__(location, tls_certificates=[(tls.cert, tls.key)] if tls else None,
                             verify_client=bool(tls and tls.client_ca),
                             root_certificates=tls.client_ca if tls else None,
                             middleware={MIDDLEWARE_KEY: _Guard(observer, token)} if token else None)
        except (pa.ArrowException, OSError) as exc:
            self._running.close()
            raise DatabaseError(f"cannot listen for Arrow Flight on {settings.host}:{port}: {exc}") from exc

    def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let running ones finish within `grace` seconds (None: none), then
        interrupt what still runs and wait for it to end."""
        if not grace:
            self._running.cancel_all()
        # As `with server:` ends: shut down (waiting for running calls), then free the C++ server,
        # which holds the middleware and through it the served file (else kept alive until exit).
        stopping = threading.Thread(target=self.__exit__, args=(None, None, None),
                                    name=f"{self.domain}-flight-stop", daemon=True)
        stopping.start()
        stopping.join(grace)
        if stopping.is_alive():
            log.warning("%s: Flight calls still running after %s s: interrupting them", self.domain, grace)
            self._running.cancel_all()
            stopping.join(10)
        self._running.close()

    # -- ListFlights, GetFlightInfo, GetSchema -------------------------------------------------

    def list_flights(self, context, criteria):
        with self._answering(context, "ListFlights") as (db, _):
            return [self._table_info(db, name) for name in sorted(db.tables)]

    def get_flight_info(self, context, descriptor):
        with self._answering(context, "GetFlightInfo") as (db, call):
            return self._info(db, descriptor, call)

    def get_schema(self, context, descriptor):
        with self._answering(context, "GetSchema") as (db, call):
            return flight.SchemaResult(self._info(db, descriptor, call).schema)

    def list_actions(self, context):
        return []

    def _info(self, db: Database, descriptor: flight.FlightDescriptor, call: Call) -> flight.FlightInfo:
        if descriptor.descriptor_type == flight.DescriptorType.PATH:
            if len(descriptor.path) != 1:
                raise invalid(Reason.INVALID_REQUEST, "a path descriptor names one table: [table], "
                              f"not {len(descriptor.path)} parts", "descriptor.path")
            name = descriptor.path[0].decode("utf-8", "replace")
            call.table = name
            return self._table_info(db, name)
        if descriptor.descriptor_type != flight.DescriptorType.CMD:
            raise invalid(Reason.INVALID_REQUEST, "the descriptor must be a path [table] or a command "
                          "holding a serialized cytoatlas.table.v1.QueryRequest", "descriptor")
        request = parse_request(descriptor.command, "descriptor.command")
        call.table = request.table
        self.admission.admit()  # compiling and describing runs a statement: it takes a query slot
        try:
            schema = output_schema(db, request, self.settings, self.domain, None)
        finally:
            self.admission.leave()
        ticket = flight.Ticket(request.SerializeToString(deterministic=True))
        return flight.FlightInfo(schema, descriptor, [flight.FlightEndpoint(ticket, [])],
                                 total_records=-1, total_bytes=-1, ordered=True)

    def _table_info(self, db: Database, name: str) -> flight.FlightInfo:
        """A table's FlightInfo: its schema, its row count, and tickets that read it whole, one
        per page of at most --arrow-max-limit rows (page 2 on carry a page token); no locations:
        the tickets are redeemed on this endpoint."""
        table = find_table(db, name, "descriptor.path", self.settings, self.domain)
        page = self.settings.arrow_max_limit
        whole = pb.QueryRequest(table=name, limit=min(table.row_count, page))
        endpoints = []
        for offset in range(0, max(table.row_count, 1), page):
            request = pb.QueryRequest()
            request.CopyFrom(whole)
            if offset:
                request.page_token = paging.encode(offset, whole, db.manifest.build_id, self.settings.token_secret)
            endpoints.append(flight.FlightEndpoint(request.SerializeToString(deterministic=True), []))
        return flight.FlightInfo(self._table_schema(db, name), flight.FlightDescriptor.for_path(name), endpoints,
                                 total_records=table.row_count, total_bytes=-1, ordered=True)

    def _table_schema(self, db: Database, name: str) -> pa.Schema:
        """What a whole-table DoGet streams, asked of DuckDB once per build and table."""
        with self._schemas_lock:
            schema = self._schemas.setdefault(db, {}).get(name)
        if schema is None:
            schema = output_schema(db, pb.QueryRequest(table=name), self.settings, self.domain, None)
            with self._schemas_lock:
                self._schemas.setdefault(db, {})[name] = schema
        return schema

    def _begin(self, context, rpc: str) -> Call:
        """Observe a call, with the caller's x-request-id when the token middleware read it."""
        caller = context.get_middleware(MIDDLEWARE_KEY)
        return self.observer.begin(rpc, None, caller.request_id if caller is not None else None)

    @contextlib.contextmanager
    def _answering(self, context, rpc: str):
        """Observe a unary call and hold the current build for it; its errors as Flight errors."""
        call = self._begin(context, rpc)
        try:
            with self.files.hold() as db:
                yield db or self.files.current(), call
        except Exception as exc:
            raise self._error(exc, call) from None
        finally:
            call.finish()

    # -- DoGet ----------------------------------------------------------------------------------

    def do_get(self, context, ticket):
        call = self._begin(context, "DoGet")
        stream = self.page_stream(call, context, ticket.ticket)
        try:
            head = next(stream)  # parsed, admitted, leased and running: a bad ticket fails here
        except BaseException:
            call.finish()
            raise
        if isinstance(head, pa.Table):  # the whole page, read: C++ streams it, no Python per batch
            stream.close()  # its slot, lease and cursor are given back already
            call.finish()
            return flight.RecordBatchStream(head)
        return flight.GeneratorStream(head, stream)  # it finishes the call as it ends

    def page_stream(self, call: Call, context, ticket: bytes, running: "RunningQueries | None" = None):
        """One DoGet from ticket to last batch (the Arrow socket answers from it too, arrow_socket.py:
        `context` needs only is_cancelled(), and `running` is the socket's own registry, which
        polls it; default this endpoint's). First yielded: the whole page as a pa.Table when it
        is one message (every point query: read before the slot, lease and cursor are given back,
        then written by C++ as a RecordBatchStream with no Python per batch, ~0.3 ms less than a
        generator), else the schema, then the page's record batches (each under
        --max-message-bytes), held back by one so the last can carry the next page's token as
        app_metadata. The slot, the build lease and the cursor are held in here, so they end with
        the stream, or when pyarrow drops a stream the client left unread (closing this
        generator), and errors pass through limits.query_cursor as on the gRPC path (a timeout
        names its limit). A streamed page's call is finished here, when the stream ends."""
        streaming = False
        try:
            request = parse_request(ticket, "ticket")
            call.table = request.table
            if request.instance_id and request.instance_id != self.instance_id:
                # the client learnt this port from another process's ListTables: not us; no
                # status detail, so the Router reads it as unreachable and goes back to that
                # process's gRPC
                raise flight.FlightUnavailableError(
                    f"this Flight endpoint is the {self.domain} service instance {self.instance_id}, not "
                    f"{request.instance_id}: the port reaches another process than the one whose "
                    "ListTables named it")
            running = self._running if running is None else running
            self.admission.admit()
            try:
                with self.files.hold() as db, running.watching(_QueryContext(context)) as query, \
                        open_page(db or self.files.current(), request, self.settings, self.domain, query) as page:
                    pieces = (piece for batch in page.batches()
                              for piece in _pieces(batch, self.settings.max_message_bytes))
                    head = list(itertools.islice(pieces, 2))
                    if len(head) < 2 and not page.next_page_token():
                        whole = pa.Table.from_batches(head, schema=page.schema)
                        call.rows, call.bytes = page.rows, sum(piece.get_total_buffer_size() for piece in head)
                    else:
                        whole, streaming = None, True
                        yield page.schema
                        yield from self._pieces_of(page, itertools.chain(head, pieces), query, call)
            finally:
                self.admission.leave()
        except GeneratorExit:  # closed unfinished: the client went away mid-stream
            call.code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            raise self._error(exc, call) from None
        finally:
            if streaming:
                call.finish()
        if whole is not None:  # out of the try: do_get closes the generator here, answered
            yield whole

    def _pieces_of(self, page, pieces, query: "_QueryContext", call: Call):
        """A page of several messages, the last with the next page's token as app_metadata."""
        last, sent = None, 0
        for piece in pieces:
            if query.stopped:
                raise ServiceError(grpc.StatusCode.UNAVAILABLE, Reason.QUERY_INTERRUPTED,
                                   f"the {self.domain} service is stopping; the query was "
                                   "interrupted: retry (on another replica)",
                                   metadata={"service": self.domain, "table": call.table})
            if last is not None:
                yield last
            last = piece
            sent += piece.nbytes
        token = page.next_page_token()
        call.rows, call.bytes = page.rows, sent
        if last is not None:
            yield (last, token.encode()) if token else last

    def _error(self, exc: Exception, call: Call) -> flight.FlightError:
        if isinstance(exc, flight.FlightError):
            call.code = call.code or next((code for kind, code in _CODES.items() if isinstance(exc, kind)),
                                          grpc.StatusCode.UNKNOWN)
            return exc
        error = service_error(exc, self.domain, self.settings, call.table)
        call.code = error.code
        return flight_error(error)


def _pieces(batch: pa.RecordBatch, max_bytes: int):
    """The batch as is, or sliced (no copy) into pieces of about max_bytes of Arrow buffers, so a
    client with gRPC's default 4 MiB receive limit can read it."""
    # get_total_buffer_size, not nbytes: ~1 us instead of ~20 (nbytes walks every column's
    # offsets); it counts a sliced batch's whole buffers, which can only make the pieces smaller.
    size = batch.get_total_buffer_size()
    if size <= max_bytes or batch.num_rows <= 1:
        yield batch
        return
    rows = max(1, batch.num_rows // math.ceil(size / max_bytes))
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


class _QueryContext:
    """What limits.query_cursor asks of a gRPC context, for one DoGet: interrupt callbacks, fired
    when the client cancels (or its deadline passes: gRPC marks the call cancelled) or the server
    stops; and time_remaining, unknown to a Flight server, so the server's query timeout bounds
    the query."""

    def __init__(self, context: flight.ServerCallContext):
        self.context = context
        self.stopped = False
        self._callbacks: list = []

    def add_callback(self, callback) -> bool:
        self._callbacks.append(callback)
        return True

    def time_remaining(self) -> None:
        return None

    def interrupt(self, stopping: bool = False) -> None:
        self.stopped = self.stopped or stopping
        for callback in self._callbacks:
            callback()


class RunningQueries:
    """The DoGets (or the Arrow socket's calls) running a query, and one thread that polls them: pyarrow offers a Flight call
    is_cancelled() but no callback, so this is how a client that went away interrupts DuckDB, as
    context.add_callback does on the gRPC path. It sleeps while no query runs."""

    POLL_SECONDS = 0.05

    def __init__(self):
        self._queries: set[_QueryContext] = set()
        self._wake = threading.Condition()
        self._closed = False
        self._idle = False  # asleep until a query comes (else it polls every POLL_SECONDS anyway)
        self._thread = threading.Thread(target=self._poll, name="flight-cancels", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def watching(self, query: _QueryContext):
        with self._wake:
            self._queries.add(query)
            if self._idle:  # woken only from idle: a wake per query costs a thread switch each
                self._wake.notify()
        try:
            yield query
        finally:
            with self._wake:  # after this no poll touches the call's context, which ends with the call
                self._queries.discard(query)

    def cancel_all(self) -> None:
        with self._wake:
            queries = list(self._queries)
        for query in queries:
            query.interrupt(stopping=True)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _poll(self) -> None:
        with self._wake:
            while not self._closed:
                if not self._queries:
                    self._idle = True
                    self._wake.wait()
                    self._idle = False
                    continue
                gone = [q for q in self._queries if q.context.is_cancelled()]
                for query in gone:
                    self._queries.discard(query)
                    try:
                        query.interrupt()
                    except Exception:  # this thread serves every call: one failure must not end it
                        log.exception("Flight: interrupting a cancelled query failed")
                self._wake.wait(self.POLL_SECONDS)


class _Guard(flight.ServerMiddlewareFactory):
    """With --auth-token, every Flight call starts here: refused with FlightUnauthenticatedError
    (and observed as refused) unless it carries `authorization: Bearer <token>`; the handler
    gets the caller's x-request-id."""

    def __init__(self, observer: Observer, token: TokenCheck):
        self.observer, self.token = observer, token

    def start_call(self, info, headers):
        request_id = _header(headers, REQUEST_ID_HEADER)
        try:
            self.token.verify(_header(headers, "authorization") or "")
        except ServiceError as exc:
            call = self.observer.begin(_rpc_name(info.method), None, request_id)
            call.code = exc.code
            call.finish()
            raise flight_error(exc) from None
        return _Caller(request_id)


class _Caller(flight.ServerMiddleware):
    """What the handlers learn from a call's headers: the caller's request id."""

    def __init__(self, request_id: str | None):
        self.request_id = request_id
