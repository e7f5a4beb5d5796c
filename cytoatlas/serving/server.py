"""Assembling and running a domain server: TableService, health, reflection, graceful stop."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import Database, DatabaseError
from cytoatlas.serving.observability import Observer
from cytoatlas.serving.table_service import TableServicer
from cytoatlas.serving.typed_rpc import TypedQueries
from cytoatlas.table.v1 import table_service_pb2, table_service_pb2_grpc

log = logging.getLogger(__name__)
TABLE_SERVICE = table_service_pb2.DESCRIPTOR.services_by_name["TableService"].full_name


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    database: Database
    service_names: tuple[str, ...]
    observer: Observer

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, let in-flight calls finish within `grace` seconds, close the file."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.observer.stop_metrics()
        self.database.close()


def start_server(domain: str, settings: Settings) -> RunningServer:
    """Open the domain's file, then start serving it; raise DatabaseError if it cannot be served."""
    database = Database.open(settings.db, domain, settings)
    observer = Observer(domain, settings, lambda: database)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix=f"{domain}-rpc"),
        options=[("grpc.so_reuseport", 0)], interceptors=[observer])
    table_service_pb2_grpc.add_TableServiceServicer_to_server(
        TableServicer(domain, settings, lambda: database), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # The domain's typed API (services/<domain>/rpcs.py), beside the generic TableService.
    typed = importlib.import_module(f"services.{domain}.rpcs")
    names = (TABLE_SERVICE, typed.add_to_server(server, TypedQueries(domain, settings, lambda: database)))
    reflection.enable_server_reflection(names + (health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = f"{settings.host}:{settings.resolved_port(domain)}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        database.close()
        raise DatabaseError(f"cannot listen on {address}: {exc}") from exc
    try:
        observer.start_metrics()
    except OSError as exc:
        database.close()
        raise DatabaseError(f"cannot serve metrics on {settings.host}:{settings.metrics_port}: {exc}") from exc
    server.start()
    for name in ("",) + names:  # SERVING only once the file is open and its catalog read
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer, database, names, observer)


def serve(domain: str, settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then stop gracefully. Returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        running = start_server(domain, settings)
    except DatabaseError as exc:
        print(f"cytoatlas {domain}: {exc}", file=sys.stderr)
        return 2
    db = running.database
    log.info("%s service listening on %s:%d, serving %s (build %s, %d tables)", domain, settings.host,
             running.port, db.path, db.manifest.build_id, len(db.tables))
    if running.observer.metrics_port is not None:
        log.info("%s metrics on http://%s:%d/metrics", domain, settings.host, running.observer.metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("%s service stopping: in-flight calls get %.0f s", domain, settings.grace_seconds)
    running.stop(settings.grace_seconds)
    return 0
