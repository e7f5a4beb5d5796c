"""The generic cytoatlas.table.v1.TableService, served the same way by every domain."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator

import duckdb
import grpc
import pyarrow as pa

from cytoatlas import wire
from cytoatlas.serving import compiler, encoding, limits, paging
from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import Database, TableInfo, arrow_reader
from cytoatlas.serving.errors import Reason, ServiceError, table_not_found
from cytoatlas.serving.typed_rpc import name_resolutions, resolution_metadata
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TableService"].full_name


def table_message(table: TableInfo) -> pb.Table:
    return pb.Table(
        name=table.name, domain=table.domain, description=table.description,
        row_count=table.row_count, key_columns=table.key_columns,
        columns=[pb.Column(name=c.name, type=c.type, nullable=c.nullable, description=c.description)
                 for c in table.columns])


def service_error(exc: Exception, domain: str, settings: Settings, table: str,
                  expired: bool = False) -> ServiceError:
    """Any exception of a call as the error model: ServiceError as is, DuckDB interrupts as
    CANCELLED (or DEADLINE_EXCEEDED when `expired`: the client's deadline passed), over-memory as
    RESOURCE_EXHAUSTED, a file gone bad as UNAVAILABLE, anything else as INTERNAL with a request id
    (never UNKNOWN). gRPC (`handle_errors`) and Flight (flight.py) answer from it alike."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, duckdb.InterruptException):
        code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
        return ServiceError(code, Reason.QUERY_INTERRUPTED, "the query was interrupted "
                            f"({'deadline exceeded' if expired else 'cancelled by the client'})",
                            metadata={"table": table})
    if isinstance(exc, duckdb.OutOfMemoryException):  # over duckdb_memory_limit: refused, not a crash
        return ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.RESOURCE_EXHAUSTED,
                            f"the query needs more memory than this service allows; narrow it with "
                            f"filters or a limit ({str(exc).splitlines()[0]})",
                            metadata={"limit": "duckdb_memory_limit"}, retry_after=settings.retry_after_seconds)
    if isinstance(exc, duckdb.IOException):  # the file went bad under us: say which, not INTERNAL
        return ServiceError(grpc.StatusCode.UNAVAILABLE, Reason.DATABASE_UNAVAILABLE,
                            f"the {domain} service cannot read its database file: {exc}",
                            metadata={"service": domain})
    request_id = uuid.uuid4().hex
    log.error("internal error, request id %s", request_id, exc_info=exc)
    return ServiceError(grpc.StatusCode.INTERNAL, Reason.INTERNAL_ERROR,
                        f"internal server error; quote request id {request_id} when reporting it",
                        metadata={"requestId": request_id})


def handle_errors(method):
    """Turn exceptions into the error model (`service_error`) and abort the gRPC call with it."""

    def wrapper(self, request, context):
        try:
            result = method(self, request, context)
            if isinstance(result, Iterator):
                yield from result
            else:
                yield result
        except Exception as exc:
            expired = (isinstance(exc, duckdb.InterruptException) and context.time_remaining() is not None
                       and context.time_remaining() <= 0)
            service_error(exc, self.domain, self.settings, getattr(request, "table", ""), expired).abort(context)

    if method.__name__ == "Query":  # server-streaming: gRPC iterates the generator
        wrapper.__name__ = method.__name__
        return wrapper

    def unary(self, request, context):
        # A typed RPC answers which spelling of a name it used (typed_rpc.NAME_FIELDS) in its trailers.
        with name_resolutions() as resolved:
            response = next(wrapper(self, request, context))
            if resolved:
                context.set_trailing_metadata(resolution_metadata(resolved))
            return response

    unary.__name__ = method.__name__
    return unary


def find_table(db: Database, name: str, field: str, settings: Settings, domain: str) -> TableInfo:
    """The served table `name` (from request field `field`), or the ServiceError saying why not."""
    if not name:
        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, Reason.INVALID_REQUEST,
                           f"a table name is required in `{field}`", field=field)
    if len(name.encode()) > settings.max_string_bytes:
        raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, Reason.INVALID_REQUEST,
                           f"`{field}` is longer than {settings.max_string_bytes} bytes; "
                           "no table has a name that long", field=field)
    table = db.tables.get(name)
    if table is None:
        raise table_not_found(name, db.tables, domain)
    return table


def compile_request(db: Database, request: pb.QueryRequest, settings: Settings, domain: str) -> compiler.CompiledQuery:
    """Check `request` against the served file (table, columns, limits, page token) and compile it
    for `open_page`, whose reader stops after page_size + 1 rows."""
    table = find_table(db, request.table, "table", settings, domain)
    offset = paging.decode(request.page_token, request, db.manifest.build_id,
                           settings.token_secret) if request.page_token else 0
    return compiler.compile_query(request, table, settings, offset, reader_stops=True)


@contextlib.contextmanager
def open_page(db: Database, request: pb.QueryRequest, settings: Settings, domain: str,
              context) -> Iterator["QueryPage"]:
    """Compile `request` and run it on a fresh cursor: the one path from a QueryRequest to Arrow
    record batches, shared by TableService.Query and Flight's DoGet. The cursor is interrupted
    when the client goes away or the query runs too long (limits.query_cursor) and closed on exit;
    `context` is the gRPC context, or what Flight offers in its place (add_callback, time_remaining)."""
    query = compile_request(db, request, settings, domain)
    with limits.query_cursor(db, context, settings.query_timeout_seconds, request.table) as cursor:
        reader = arrow_reader(cursor, query.sql, query.params, settings.batch_rows)
        yield QueryPage(db, request, settings, query, reader)


def output_schema(db: Database, request: pb.QueryRequest, settings: Settings, domain: str, context) -> pa.Schema:
    """The Arrow schema `open_page` would stream for `request`, asked of DuckDB without reading a
    row (the compiled statement under LIMIT 0)."""
    query = compile_request(db, request, settings, domain)
    with limits.query_cursor(db, context, settings.query_timeout_seconds, request.table) as cursor:
        return cursor.sql(f"SELECT * FROM ({query.sql}) LIMIT 0", params=query.params).to_arrow_reader().schema


class QueryPage:
    """One page of a query being read: its Arrow schema, its record batches (at most page_size
    rows in all), and after them whether more rows follow and the token that continues there."""

    def __init__(self, db: Database, request: pb.QueryRequest, settings: Settings,
                 query: compiler.CompiledQuery, reader: pa.RecordBatchReader):
        self.query, self.schema = query, reader.schema
        self._db, self._request, self._settings, self._reader = db, request, settings, reader
        self._page = _Page(query.page_size)

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._page.take(self._reader)
        except OSError as exc:
            # A query interrupted mid-stream (client gone, deadline, query timeout) surfaces from
            # pyarrow's reader as an IOError status: make it the interrupt it is, so it is answered
            # CANCELLED / DEADLINE_EXCEEDED (limits.query_cursor), not INTERNAL.
            if str(exc).startswith("INTERRUPT Error"):
                raise duckdb.InterruptException(str(exc)) from exc
            raise

    @property
    def rows(self) -> int:
        """Rows taken so far (all of the page's once `batches()` is exhausted)."""
        return self._page.rows

    def next_page_token(self) -> str:
        """After `batches()`: the signed token of the next page, or "" when this page was the last."""
        if not self._page.more:
            return ""
        return paging.encode(self.query.offset + self.query.page_size, self._request,
                             self._db.manifest.build_id, self._settings.token_secret)


class TableServicer(pb_grpc.TableServiceServicer):
    def __init__(self, domain: str, settings: Settings, database: Callable[[], Database]):
        self.domain = domain
        self.settings = settings
        self._database = database
        self.flight_port = 0  # set by server.start_server once the Flight endpoint listens
        self.instance_id = ""  # this process's, as the Flight endpoint checks it
        self.socket_port = 0  # set by server.start_server once the Arrow socket listens
        # Every process serving this port, this one among them (processes.py sets it; empty alone)
        self.processes: list[pb.ServiceProcess] = []

    def table(self, db: Database, name: str, field: str) -> TableInfo:
        return find_table(db, name, field, self.settings, self.domain)

    @handle_errors
    def ListTables(self, request, context):
        db = self._database()
        return pb.ListTablesResponse(tables=[table_message(db.tables[n]) for n in sorted(db.tables)],
                                     flight_port=self.flight_port, instance_id=self.instance_id,
                                     processes=self.processes, socket_port=self.socket_port)

    @handle_errors
    def GetTable(self, request, context):
        return pb.GetTableResponse(table=table_message(self.table(self._database(), request.name, "name")))

    @handle_errors
    def GetDatabaseInfo(self, request, context):
        db = self._database()
        m = db.manifest
        return pb.GetDatabaseInfoResponse(database_info=pb.DatabaseInfo(
            domain=m.domain, schema_version=m.schema_version, build_id=m.build_id,
            built_at=m.built_at, builder_version=m.builder_version, duckdb_version=m.duckdb_version,
            source_files=[pb.SourceFile(table=s.table, path=s.path, sha256=s.sha256,
                                        size_bytes=s.size_bytes, row_count=s.row_count) for s in m.sources],
            table_row_counts=[pb.TableRowCount(table=n, row_count=db.tables[n].row_count)
                              for n in sorted(db.tables)],
            file_sha256=db.sha256, file_path=db.path, file_size_bytes=db.size_bytes))

    @handle_errors
    def Query(self, request, context):
        started = time.perf_counter()
        with open_page(self._database(), request, self.settings, self.domain, context) as page:
            yield from self._messages(page, started)

    def _messages(self, page: "QueryPage", started: float):
        """Stream one page as QueryResponses: Arrow IPC payloads or Struct rows; the last carries
        the stats and, when more rows match, the next page's token."""
        rows = page.query.format == compiler.ROWS
        batches = page.batches()
        messages = self._rows_messages(batches) if rows else self._arrow_payloads(page.schema, batches)
        last = None
        sent = 0
        for message in messages:  # held back one, so the last can carry the token and stats
            if last is not None:
                yield last if rows else wire.arrow_response(last)
            sent += message.ByteSize() if rows else wire.payload_size(message)
            last = message
        tail = pb.QueryResponse(stats=pb.QueryStats(
            rows_returned=page.rows, bytes_returned=sent,
            server_time_ms=(time.perf_counter() - started) * 1000))
        tail.next_page_token = page.next_page_token()
        if rows:
            last.MergeFrom(tail)
            yield last
        else:
            yield wire.arrow_response(last, tail)

    def _arrow_payloads(self, schema: pa.Schema, batches) -> Iterator[list]:
        """Each message's Arrow IPC payload as a list of parts (one encoded batch each, sent
        without copying them into a protobuf message); the schema rides on the first,
        end-of-stream on the last."""
        head = [encoding.schema_bytes(schema)]
        previous = None
        for chunk in encoding.ipc_messages(batches, self.settings.max_message_bytes):
            if previous is not None:
                yield previous
            previous, head = head + [chunk], []
        yield (previous if previous is not None else head) + [encoding.IPC_EOS]

    def _rows_messages(self, batches) -> Iterator[pb.QueryResponse]:
        message = pb.QueryResponse()
        size = 0
        for batch in batches:
            for row in encoding.struct_rows(batch):
                row_size = row.ByteSize() + 4
                if size + row_size > self.settings.max_message_bytes and message.rows:
                    yield message
                    message, size = pb.QueryResponse(), 0
                message.rows.append(row)
                size += row_size
        yield message


def add_to_server(servicer: TableServicer, server: grpc.Server) -> None:
    """Register the TableService; as the generated add_TableServiceServicer_to_server, except
    that Query's responses may come pre-serialized (cytoatlas.wire: no protobuf copy of Arrow)."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name), request_deserializer=getattr(pb, f"{name}Request").FromString,
            response_serializer=getattr(pb, f"{name}Response").SerializeToString)
        for name in ("ListTables", "GetTable", "GetDatabaseInfo")}
    handlers["Query"] = grpc.unary_stream_rpc_method_handler(
        servicer.Query, request_deserializer=pb.QueryRequest.FromString,
        response_serializer=wire.serialize_response)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


class _Page:
    """Counts rows off the reader: the query asked for page_size + 1, the extra row means `more`."""

    def __init__(self, page_size: int):
        self.page_size = page_size
        self.rows = 0
        self.more = False

    def take(self, reader) -> Iterator[pa.RecordBatch]:
        for batch in reader:
            room = self.page_size - self.rows
            if batch.num_rows > room:
                self.more = True
                batch = batch.slice(0, room)
            if batch.num_rows:
                self.rows += batch.num_rows
                yield batch
            if self.more:
                return
