"""The routing client: name a table, get a pyarrow.Table; the Router finds the owning service.

Ownership is discovered with ListTables on each service, so a table added to a domain needs no
client release. The domains' declarations (cytoatlas.domains) serve only as a fallback, to name the owner of a table whose
service is down.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
import pyarrow as pa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cytoatlas import memory, wire
from cytoatlas.client.errors import CytoAtlasError, ServiceUnavailable, TableNotFound, from_rpc_error
from cytoatlas.client.flight_reader import FlightCallError, FlightReader, FlightReplicas, flight_host
from cytoatlas.client.retry import DEFAULT_MAX_ATTEMPTS, Retry, StreamBroken, shut_down_unstarted
from cytoatlas.client.socket_reader import SocketReader
from cytoatlas.client.targets import channel_target, replicas
from cytoatlas.client.transport import Transport
from cytoatlas.domains import DOMAINS as SPECS
from cytoatlas.requests import to_aggregates, to_columns, to_filters, to_order_by
from cytoatlas.suggestions import close_matches
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc

DOMAINS = ("atlas", "perturbation", "spatial")
# Where `cytoatlas serve` listens by default (its --host is 127.0.0.1). Not `localhost`: that
# resolves to ::1 first, where no service listens, so one of its two addresses always failed.
DEFAULT_ADDRESSES = {"atlas": "127.0.0.1:50051", "perturbation": "127.0.0.1:50052",
                     "spatial": "127.0.0.1:50053"}
SERVICE_CONFIG = (pathlib.Path(__file__).resolve().parents[2] / "protos" / "cytoatlas" / "table" / "v1"
                  / "table_grpc_service_config.json")
QUERY_METHOD = f"/{pb.DESCRIPTOR.services_by_name['TableService'].full_name}/Query"
# After a Flight endpoint of a domain stops answering (its process restarted or moved), the Router
# asks that domain's ListTables again at most once per FLIGHT_RECHECK_SECONDS, for FLIGHT_RECHECK_WINDOW
# seconds, and reads through the endpoints it lists then: a restarted service (a new instance id, a
# new Flight port) is read through Flight again, not over gRPC for the rest of the Router's life.
FLIGHT_RECHECK_SECONDS = 1.0
FLIGHT_RECHECK_WINDOW = 60.0


def addresses_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    return {d: environ.get(f"CYTOATLAS_{d.upper()}_ADDR", DEFAULT_ADDRESSES[d]) for d in DOMAINS}


def _service_config() -> str:
    try:
        return json.dumps(json.loads(SERVICE_CONFIG.read_text()))
    except OSError:  # installed without the protos folder: no retry policy, plain channel
        return ""


def decode_arrow(messages: Iterable[pb.QueryResponse | wire.QueryResponseView]
                 ) -> tuple[pa.Table, pb.QueryResponse | wire.QueryResponseView]:
    """Decode one Query call's messages without copying the payload; return (table, last message)."""
    schema, batches, last = None, [], None
    for message in messages:
        last = message
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(message.arrow_ipc))
        for ipc in reader:
            if ipc.type == "schema":
                schema = pa.ipc.read_schema(ipc)
            else:
                batches.append(pa.ipc.read_record_batch(ipc, schema))
    if schema is None:
        raise CytoAtlasError("the service sent no Arrow schema")
    return pa.Table.from_batches(batches, schema=schema), last


class Router:
    """Routes table queries to the atlas, perturbation and spatial services.

    A call a busy service refuses (RESOURCE_EXHAUSTED with a retry hint) is asked again after the
    hinted delay, within `timeout` and `max_attempts` (retry.py); one that finds a replica gone is
    moved to another by gRPC's retry policy (table_grpc_service_config.json). A service that is
    down fails a call in ~0.15 s with ServiceUnavailable."""

    def __init__(self, addresses: Mapping[str, str] | None = None, *, timeout: float | None = 300.0,
                 channel_options: Sequence[tuple[str, object]] = (), tls_ca: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None, token: str | None = None,
                 keep_large_buffers: bool = False, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 flight: bool | None = None, socket: bool | None = None):
        """tls_ca / tls_cert+tls_key / token: TLS, mutual TLS, bearer token (default: the
        CYTOATLAS_CLIENT_* environment, see transport.py); plaintext when none is set.

        timeout: seconds each call (each page of a query) may take, retries and waits included.
        max_attempts: attempts per call when the service refuses it as busy (RESOURCE_EXHAUSTED
        with a RetryInfo delay, or gRPC's "every worker is busy"); the Router waits the hinted
        delay with jitter between attempts (cytoatlas/client/retry.py). 1 = never ask again.

        keep_large_buffers: raise this process's glibc mmap/trim thresholds (cytoatlas.memory) so
        the ~1.5 MB buffers of large results are reused from the heap instead of mmapped per
        message (~20 ms less CPU per 67 MB received). Off by default: it changes malloc for the
        whole host process, which is the host's decision; the CLI and the benchmark turn it on.

        flight: read query results through each service's Arrow Flight endpoint, the port its
        ListTables names (flight_reader.py): the same answers, received by Arrow's C++ transport.
        Default on; False, or CYTOATLAS_CLIENT_FLIGHT=0, reads them as TableService.Query
        messages. A domain whose Flight port cannot be reached is read over gRPC.

        socket: read each page first through the process's Arrow socket, the port its ListTables
        names beside the Flight port (socket_reader.py): the same answers as its Flight DoGet,
        without HTTP/2, about half the round trip of a small page. Default on (when flight is);
        False, or CYTOATLAS_CLIENT_SOCKET=0, reads through Flight. A socket that cannot be reached
        is left for that process's Flight endpoint."""
        self.addresses = {**addresses_from_env(), **(addresses or {})}
        transport = Transport.from_env(tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key, token=token)
        self._transport = transport
        self._use_flight = os.environ.get("CYTOATLAS_CLIENT_FLIGHT", "1") != "0" if flight is None else flight
        self._use_socket = os.environ.get("CYTOATLAS_CLIENT_SOCKET", "1") != "0" if socket is None else socket
        self._flight: dict[str, FlightReplicas] = {}
        # Flight endpoints that stopped answering, by domain (never read through again while
        # listed: a port this Router cannot reach), and when to check the domain's ListTables again
        self._flight_failed: dict[str, set[tuple[str, int, str]]] = {}
        self._flight_recheck: dict[str, tuple[float, float]] = {}  # domain -> (next check, last drop)
        self.timeout = timeout
        self._retry = Retry(max_attempts)
        if keep_large_buffers:
            memory.keep_large_buffers()
        # Query streams are read on the calling thread, not handed over from the channel's
        # polling thread: ~0.2 ms less CPU per call (bench/), the most point queries can spare.
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1), *channel_options]
        if config := _service_config():
            options += [("grpc.service_config", config), ("grpc.enable_retries", 1)]
        self._channels = {d: transport.channel(channel_target(a), options) for d, a in self.addresses.items()}
        self._stubs = {d: pb_grpc.TableServiceStub(c) for d, c in self._channels.items()}
        # A replica list's processes are asked one by one at discovery, for each one's Flight port
        self._replica_channels = {d: [(r, transport.channel(r, options)) for r in rs]
                                  for d, a in self.addresses.items() if (rs := replicas(a))}
        self._replica_stubs = {d: [(r, pb_grpc.TableServiceStub(c)) for r, c in rcs]
                               for d, rcs in self._replica_channels.items()}
        # Query with the Arrow payload read straight out of the received bytes (cytoatlas.wire)
        self._query = {d: c.unary_stream(QUERY_METHOD, request_serializer=pb.QueryRequest.SerializeToString,
                                         response_deserializer=wire.parse_response)
                       for d, c in self._channels.items()}
        self._owners: dict[str, str] | None = None
        self._tables: dict[str, pb.Table] = {}
        self._down: dict[str, CytoAtlasError] = {}

    # -- discovery ---------------------------------------------------------------------------

    def discover(self) -> dict[str, str]:
        """Ask every service for its tables (in parallel); return table -> domain."""
        owners, tables, down = {}, {}, {}
        with ThreadPoolExecutor(len(self._stubs)) as pool:
            for domain, (answers, error) in zip(self._stubs, pool.map(self._list_tables, self._stubs)):
                if error:
                    down[domain] = error
                    continue
                self._read_through_flight(domain, answers)
                for table in answers[0][1].tables:
                    owners[table.name] = domain
                    tables[table.name] = table
        self._owners, self._tables, self._down = owners, tables, down
        return dict(owners)

    def _list_tables(self, domain: str) -> tuple[list[tuple[str, pb.ListTablesResponse]], CytoAtlasError | None]:
        """([(address, ListTablesResponse)] of each process of `domain` that answered, the error if none did)."""
        answers, error = [], None
        for address, stub in self._replica_stubs.get(domain) or [(self.addresses[domain], self._stubs[domain])]:
            try:
                answers.append((address, self._retry.call(
                    lambda t, stub=stub: stub.ListTables(pb.ListTablesRequest(), timeout=t), 10)))
            except grpc.RpcError as err:
                error = error or err
        if not answers:
            return [], from_rpc_error(error, domain, self.addresses[domain], timeout=10)
        return answers, None

    def _read_through_flight(self, domain: str, answers: list[tuple[str, pb.ListTablesResponse]]) -> None:
        """Read `domain`'s pages through the Arrow sockets (else Flight endpoints) its processes
        named, each on the host this Router reaches that process at (when flight is on); calls
        carry each one's instance id, so they are refused unless the port reaches the process
        that listed it."""
        sockets = {}  # (host, flight port, instance id) -> Arrow socket port
        for address, response in answers:
            if response.flight_port and (host := flight_host(address)):
                for process in (response.processes or [response]):  # several processes behind one port
                    sockets[(host, process.flight_port, process.instance_id)] = process.socket_port
        listed = list(sockets)
        failed = self._flight_failed.get(domain, set()) & set(listed)  # forget those no longer listed
        self._flight_failed[domain] = failed
        endpoints = [endpoint for endpoint in listed if endpoint not in failed]
        if not (self._use_flight and endpoints):
            self._flight.pop(domain, None)
            return
        current = self._flight.get(domain)
        if current is None or [(r.host, r.port, r.instance_id) for r in current.readers] != endpoints:
            # a process moved, restarted or came back: new clients for new endpoints; those still
            # listed are kept (another thread may be reading through one), the rest closed
            kept = {(r.host, r.port, r.instance_id): r for r in current.readers} if current is not None else {}
            readers = [kept.pop(endpoint, None) or self._reader(endpoint, sockets[endpoint]) for endpoint in endpoints]
            for reader in kept.values():
                reader.close()
            self._flight[domain] = FlightReplicas(readers, on_drop=lambda reader: self._flight_dropped(domain, reader))

    def _reader(self, endpoint: tuple[str, int, str], socket_port: int) -> FlightReader | SocketReader:
        """The reader of one process: through its Arrow socket when it has one, else Flight."""
        reader = FlightReader(*endpoint[:2], self._transport, endpoint[2])
        return SocketReader(reader, socket_port) if socket_port and self._use_socket else reader

    def _flight_dropped(self, domain: str, reader: FlightReader) -> None:
        """A Flight endpoint of `domain` stopped answering: leave it out, and look for a new one."""
        self._flight_failed.setdefault(domain, set()).add((reader.host, reader.port, reader.instance_id))
        now = time.monotonic()
        self._flight_recheck[domain] = (now + FLIGHT_RECHECK_SECONDS, now)

    def _recheck_flight(self, domain: str) -> None:
        """ListTables of a domain that lost a Flight endpoint, and read through what it lists now."""
        now = time.monotonic()
        _, dropped = self._flight_recheck.get(domain, (now, now))
        if now - dropped > FLIGHT_RECHECK_WINDOW:
            self._flight_recheck.pop(domain, None)
            return
        self._flight_recheck[domain] = (now + FLIGHT_RECHECK_SECONDS, dropped)  # other threads go on meanwhile
        answers, error = self._list_tables(domain)
        if error is None:  # down or starting: asked again in a second
            self._read_through_flight(domain, answers)

    def service_for(self, table: str) -> str:
        """The domain serving `table`; TableNotFound or ServiceUnavailable otherwise."""
        if self._owners is None or table not in self._owners:
            self.discover()  # tables can appear after a rebuild: look again before failing
        if table in self._owners:
            return self._owners[table]
        owner = _spec_owner(table)
        if owner in self._down:
            error = self._down[owner]
            if isinstance(error, ServiceUnavailable):
                raise error.for_table(table)
            raise ServiceUnavailable(f"table {table!r} belongs to the {owner} service at {self.addresses[owner]}, "
                                     f"which did not list its tables: {error}", code=error.code,
                                     reason=error.reason, metadata=error.metadata, service=owner,
                                     address=self.addresses[owner])
        known = list(self._owners) + [t for d in self._down for t in _spec_tables(d)]
        raise TableNotFound(table, close_matches(table, known))

    def tables(self) -> dict[str, pb.Table]:
        """Every table served right now, by name (services that are down are left out)."""
        self.discover()
        return dict(self._tables)

    def unavailable(self) -> dict[str, CytoAtlasError]:
        """Services that failed the last discovery, with the error."""
        return dict(self._down)

    def describe(self, table: str) -> pb.Table:
        domain = self.service_for(table)
        return self._call(domain, "GetTable", pb.GetTableRequest(name=table)).table

    # -- queries -----------------------------------------------------------------------------

    def query(self, table: str, columns: str | Sequence[str] = (), where=None, order_by=None,
              limit: int | None = None, group_by: str | Sequence[str] = (), aggregates=None) -> pa.Table:
        """Query a table; all matching rows (following page tokens) unless `limit` is given.

        columns / group_by: a name, 'a,b' or a list. where: a dict {column: value}, a (column,
        value) or (column, op, value) tuple, a 'column op value' string ('drug=Imatinib'), or a
        list of these; string values are converted to the column's type. order_by: 'col',
        '-col' or 'col:desc', or a list. Operators and shapes: docs/clients.md.

        A read of several pages that a rebuild of the file interrupts (the next page's token is
        from the old build: FAILED_PRECONDITION, STALE_PAGE_TOKEN) starts again from the first
        page on the new build, once, so the result never mixes builds; a second interruption is
        raised."""
        for attempt in (1, 2):
            try:
                pages = list(self.query_pages(table, columns, where, order_by, limit, group_by, aggregates))
                break
            except CytoAtlasError as exc:
                if exc.reason != "STALE_PAGE_TOKEN" or attempt == 2:
                    raise
        return pa.concat_tables(pages) if len(pages) > 1 else pages[0]

    def query_pages(self, table: str, columns: str | Sequence[str] = (), where=None, order_by=None,
                    limit: int | None = None, group_by: str | Sequence[str] = (), aggregates=None,
                    page_size: int = 0) -> Iterator[pa.Table]:
        """Yield the result page by page (page_size 0 = the server's default page). The arguments
        are query()'s. A rebuild between two pages raises CytoAtlasError (reason
        STALE_PAGE_TOKEN): pages already yielded cannot be taken back, so start again."""
        domain = self.service_for(table)
        request = self.request(table, columns, where, order_by, group_by, aggregates)
        remaining = limit
        while True:
            request.limit = min(filter(None, (remaining, page_size)), default=0)
            page, token = self._query_page(domain, request)
            yield page
            if remaining is not None:
                remaining -= page.num_rows
            if not token or (remaining is not None and remaining <= 0):
                return
            request.page_token = token

    def request(self, table: str, columns: str | Sequence[str] = (), where=None, order_by=None,
                group_by: str | Sequence[str] = (), aggregates=None) -> pb.QueryRequest:
        """The QueryRequest query() sends (ARROW, no limit), with filter values converted to
        their columns' types as learnt from discovery. TypeError or ValueError, naming the
        accepted shapes, for arguments it cannot read."""
        known = self._tables.get(table)
        types = {c.name: c.type for c in known.columns} if known is not None else None
        return pb.QueryRequest(
            table=table, columns=to_columns(columns), filters=to_filters(where, types),
            order_by=to_order_by(order_by), group_by=to_columns(group_by, "group_by"),
            aggregates=to_aggregates(aggregates), format=pb.RESULT_FORMAT_ARROW)

    def _query_page(self, domain: str, request: pb.QueryRequest) -> tuple[pa.Table, str]:
        """One page and the next page's token, asked again as retry.py says; through the
        service's Arrow socket or Flight endpoint when it has one (socket_reader.py; a Flight port
        unreachable from here: over gRPC until the domain's ListTables names a new one,
        FLIGHT_RECHECK_SECONDS). A gRPC call that fails before its first message has had gRPC's
        retry policy already (UNAVAILABLE: on another replica). That policy cannot retry
        a stream that broke after its first message (a replica killed mid-answer); a page is a pure
        read, so it is asked for once more (StreamBroken), and round_robin sends that call to
        another replica; so is a call a server shutting down cancelled before it started
        (retry.shut_down_unstarted)."""
        query = self._query[domain]
        if self._flight_recheck and (recheck := self._flight_recheck.get(domain)) and time.monotonic() >= recheck[0]:
            self._recheck_flight(domain)

        def attempt(timeout):
            if (reader := self._flight.get(domain)) is not None:
                try:
                    return reader.page(request, timeout)
                except FlightCallError as err:
                    if not err.from_transport:
                        raise  # the service's answer: retried or raised as a gRPC one would be
                    self._flight.pop(domain, None)
            messages = query(request, timeout=timeout)
            try:
                first = next(messages, None)  # a refusal or an unreachable service raises here
            except grpc.RpcError as err:
                if shut_down_unstarted(err):
                    raise StreamBroken(err) from None
                raise
            try:
                table, last = decode_arrow(messages if first is None else itertools.chain((first,), messages))
                return table, last.next_page_token
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.UNAVAILABLE:
                    raise StreamBroken(err) from None
                raise

        try:
            return self._retry.call(attempt, self.timeout)
        except grpc.RpcError as err:
            raise from_rpc_error(err, domain, self.addresses[domain], timeout=self.timeout) from None

    # -- cross-domain ------------------------------------------------------------------------

    def target_profile(self, signature: str, signature_type: str = "", top_n: int = 0):
        """Where `signature` (e.g. "IFNG") is most active in each domain, asked of the three
        services in parallel; a failed domain is in `.errors`, the others in `.results`."""
        from cytoatlas.client.target import target_profile

        return target_profile(self._channels, self.addresses, signature, signature_type, top_n,
                              timeout=self.timeout, retry=self._retry)

    def search(self, term: str, entity_type: str | None = None, limit: int = 20):
        """The `limit` entities (cytokines, proteins, genes, cell types, diseases, organs, tissues,
        drugs, ...) best matching `term`, over the three services asked in parallel and merged by
        score (then type, name, domain). `.results` are SearchResult messages naming their domain;
        a domain that failed is in `.errors`. entity_type: only that type (e.g. "drug")."""
        from cytoatlas.client.search import search

        return search(self._channels, self.addresses, term, entity_type, limit, timeout=self.timeout,
                      retry=self._retry)

    def autocomplete(self, prefix: str, entity_type: str | None = None, limit: int = 10):
        """Up to `limit` (at most 20) completions of `prefix` over the three services, best and
        shortest first; one per entity, naming the domains that hold it (`.suggestions`)."""
        from cytoatlas.client.search import autocomplete

        return autocomplete(self._channels, self.addresses, prefix, entity_type, limit, timeout=self.timeout,
                            retry=self._retry)

    # -- operations --------------------------------------------------------------------------

    def database_info(self, domain: str) -> pb.DatabaseInfo:
        return self._call(domain, "GetDatabaseInfo", pb.GetDatabaseInfoRequest()).database_info

    def health(self, domain: str, service: str = "") -> str:
        stub = health_pb2_grpc.HealthStub(self._channels[domain])
        try:
            status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        except grpc.RpcError as err:
            raise from_rpc_error(err, domain, self.addresses[domain], timeout=5) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(status)

    def _call(self, domain: str, method: str, request):
        unary = getattr(self._stubs[domain], method)
        try:
            return self._retry.call(lambda timeout: unary(request, timeout=timeout), self.timeout)
        except grpc.RpcError as err:
            raise from_rpc_error(err, domain, self.addresses[domain], timeout=self.timeout) from None

    def close(self) -> None:
        for channel in [*self._channels.values(), *(c for rcs in self._replica_channels.values() for _, c in rcs)]:
            channel.close()
        for reader in self._flight.values():
            reader.close()

    def __enter__(self) -> "Router":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _spec_tables(domain: str) -> list[str]:
    return [t.name for t in SPECS[domain].tables] if domain in SPECS else []


def _spec_owner(table: str) -> str | None:
    return next((d for d in DOMAINS if table in _spec_tables(d)), None)
