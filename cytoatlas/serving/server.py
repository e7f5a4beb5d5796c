"""Assembling and running a domain server: TableService, health, reflection, graceful stop;
the served file swapped on a new build (poll + SIGHUP), TLS, and the call interceptor (metrics,
token, malformed requests, overload, build leases); beside it, on its own port, the Arrow Flight
endpoint (flight.py), which shares the file, the settings and those guards, and the Arrow socket
(arrow_socket.py), which answers the Flight endpoint's DoGet over a plain TCP connection."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cytoatlas import memory
from cytoatlas.serving import config, security
from cytoatlas.serving.admission import Admission
from cytoatlas.serving.arrow_socket import ArrowSocket
from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import Database, DatabaseError
from cytoatlas.serving.flight import FlightEndpoint
from cytoatlas.serving.interceptor import CallInterceptor
from cytoatlas.serving.observability import Observer
from cytoatlas.serving.signal_pipe import SignalPipe
from cytoatlas.serving.swap import ServedFile
from cytoatlas.serving.table_service import TableServicer, add_to_server
from cytoatlas.serving.typed_rpc import TypedQueries
from cytoatlas.table.v1 import table_service_pb2

log = logging.getLogger(__name__)
TABLE_SERVICE = table_service_pb2.DESCRIPTOR.services_by_name["TableService"].full_name


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    files: ServedFile
    service_names: tuple[str, ...]
    observer: Observer
    flight: FlightEndpoint | None = None  # None: --flight-port -1
    tables: TableServicer | None = None
    socket: ArrowSocket | None = None  # None: Settings.resolved_socket_port says none

    @property
    def flight_port(self) -> int | None:
        return self.flight.port if self.flight is not None else None

    @property
    def socket_port(self) -> int | None:
        return self.socket.port if self.socket is not None else None

    @property
    def database(self) -> Database:
        """The build new requests are answered from (UNAVAILABLE ServiceError if there is none)."""
        return self.files.current()

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, let in-flight calls (gRPC, Flight and the Arrow socket's) finish
        within `grace` seconds, close the file."""
        self.health.enter_graceful_shutdown()
        stopped = self.server.stop(grace)  # returns at once; the three drain at the same time
        closing = None
        if self.socket is not None:
            closing = threading.Thread(target=self.socket.stop, args=(grace,), name="socket-stop", daemon=True)
            closing.start()
        if self.flight is not None:
            self.flight.stop(grace)
        if closing is not None:
            closing.join()
        stopped.wait()
        self.observer.stop_metrics()
        self.files.close()


def start_server(domain: str, settings: Settings, shared_port: bool = False,
                 on_status: Callable[[bool], None] = lambda serving: None) -> RunningServer:
    """Start serving the domain's file. A missing or damaged file does not stop the start: health
    says NOT_SERVING and calls answer UNAVAILABLE until a good file is published at the path.
    shared_port: listen on the gRPC port beside the other processes of the domain (SO_REUSEPORT,
    processes.py); else the port must be free. on_status(serving) follows each check of the file,
    as health does. Raises DatabaseError (no --db, cannot listen) or security.SecurityError (bad
    TLS/token settings)."""
    if not settings.db:
        raise DatabaseError("no database file given (--db or CYTOATLAS_DB)")
    memory.keep_large_buffers()  # large pages: reuse heap memory, not mmap per message
    credentials = security.server_credentials(settings)
    tls = security.tls_material(settings) if credentials else None
    token = (security.TokenCheck(settings.auth_token, security.exempt_prefixes(settings))
             if settings.auth_token else None)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    # The domain's typed services (services/<domain>/rpcs.py SERVICES), beside the generic TableService.
    typed = importlib.import_module(f"services.{domain}.rpcs").SERVICES
    names = (TABLE_SERVICE, *(service.name for service in typed))

    def report(serving: bool) -> None:  # SERVING only while a verified file is open
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("",) + names:
            health_servicer.set(name, status)
        on_status(serving)

    files = ServedFile(settings.db, domain, settings, on_status=report)
    observer = Observer(domain, settings, files.current)
    # Observe every call (refusals included), refuse strangers, then bad bytes, then overload; a
    # call that gets through holds the current build until it ends (interceptor.py).
    admission = Admission(settings.max_queries, settings.retry_after_seconds, settings.admission_queue,
                          settings.admission_wait_seconds)
    interceptor = CallInterceptor(observer, token, admission, files)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix=f"{domain}-rpc"),
        options=[("grpc.so_reuseport", int(shared_port))], interceptors=[interceptor],
        # Never queue a call for a worker: beyond max_workers gRPC refuses it (RESOURCE_EXHAUSTED);
        # queries wait, if at all, in the admission queue, which has a worker for each of them.
        maximum_concurrent_rpcs=settings.max_workers)
    tables = TableServicer(domain, settings, files.current)
    add_to_server(tables, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    queries = TypedQueries(domain, settings, files.current)
    for service in typed:
        service.register(service.servicer(queries), server)
    reflection.enable_server_reflection(names + (health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"{settings.host}:{settings.resolved_port(domain)}"
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError as exc:
        raise DatabaseError(f"cannot listen on {address}: {exc}") from exc
    flight_port, socket_port = settings.resolved_flight_port(domain), settings.resolved_socket_port(domain)
    endpoint = arrow_socket = None
    try:
        if flight_port is not None:  # listening from here: it answers UNAVAILABLE until files.check()
            instance = uuid.uuid4().hex
            endpoint = FlightEndpoint(domain, settings, files, observer, token, admission, flight_port, tls,
                                      instance)
            # ListTables tells clients where and whom to read through (the Router does)
            tables.flight_port, tables.instance_id = endpoint.port, instance
        if socket_port is not None:
            arrow_socket = ArrowSocket(endpoint, settings.host, socket_port)
            tables.socket_port = arrow_socket.port
        try:
            observer.start_metrics()
        except OSError as exc:
            raise DatabaseError(f"cannot serve metrics on {settings.host}:{settings.metrics_port}: {exc}") from exc
    except DatabaseError:
        for listening in (arrow_socket, endpoint):
            if listening is not None:
                listening.stop()
        raise
    files.check()
    server.start()
    files.watch()
    return RunningServer(server, port, health_servicer, files, names, observer, endpoint, tables, arrow_socket)


class StopSignals:
    """SIGTERM/SIGINT end `wait()`; SIGHUP looks at the served file now. Installed before the
    service says it listens, so a signal from then on is never the default (killing) one. The
    main thread sleeps reading the signal pipe (signal_pipe.py: why not an Event)."""

    def __init__(self, files: ServedFile, domain: str):
        self._pipe = SignalPipe((signal.SIGTERM, signal.SIGINT))
        # the check runs in a thread, started from the main thread outside any lock
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(
            target=files.check, kwargs={"force": True}, name=f"{domain}-sighup", daemon=True).start())

    def wait(self) -> None:
        while not {signal.SIGTERM, signal.SIGINT} & self._pipe.read():
            pass


def serve(domain: str, settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then stop gracefully. Returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.processes > 1:  # this process supervises, the processes it starts serve
        from cytoatlas.serving.processes import supervise
        return supervise(domain, settings)
    try:
        running = start_server(domain, settings)
    except (DatabaseError, security.SecurityError) as exc:
        print(f"cytoatlas {domain}: {exc}", file=sys.stderr)
        return 2
    files = running.files
    signals = StopSignals(files, domain)
    flight = f", flight on {settings.host}:{running.flight_port}" if running.flight is not None else ", no flight"
    flight += f", arrow socket on {settings.host}:{running.socket_port}" if running.socket is not None else ""
    if files.problem:
        log.warning("%s service listening on %s:%d, NOT_SERVING: %s%s", domain, settings.host,
                    running.port, files.problem, flight)
    else:
        db = files.current()
        log.info("%s service listening on %s:%d, serving %s (build %s, %d tables)%s", domain, settings.host,
                 running.port, db.path, db.manifest.build_id, len(db.tables), flight)
    log.info("%s capacity: %d queries at once, %d more may wait %.1f s, %d gRPC workers, %d DuckDB threads",
             domain, settings.max_queries, settings.admission_queue, settings.admission_wait_seconds,
             settings.max_workers, settings.duckdb_threads)
    if running.observer.metrics_port is not None:
        log.info("%s metrics on http://%s:%d/metrics", domain, settings.host, running.observer.metrics_port)
    signals.wait()
    log.info("%s service stopping: in-flight calls get %.0f s", domain, settings.grace_seconds)
    running.stop(settings.grace_seconds)
    return 0


def main(domain: str, argv: list[str]) -> int:
    """`python -m services.<domain> [--db FILE] [--port N] ...`: the same flags as `cytoatlas serve`."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{domain}",
                                     description=f"Serve the {domain} domain's file over gRPC.")
    config.add_arguments(parser)
    return serve(domain, config.from_sources(parser.parse_args(argv)))
