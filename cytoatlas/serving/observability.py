"""Operating a domain service: Prometheus metrics on their own HTTP port and one JSON log line per
request, both fed by the call interceptor (interceptor.py) so no servicer knows about them."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import Database
from cytoatlas.serving.errors import ServiceError
from cytoatlas.table.v1.table_service_pb2 import QueryStats

REQUEST_ID_HEADER = "x-request-id"
# Probes (compose, Kubernetes, load balancers) call Health every few seconds: those calls are
# counted on their own, not in cytoatlas_requests_total or the request log, which are for traffic.
HEALTH_PREFIX = "/grpc.health.v1.Health/"
# Seconds; from a cached catalog answer (~1 ms) to a large Arrow page (tens of seconds).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)



class Observer:
    """Counts, times and logs every RPC of one domain service; serves /metrics when asked to."""

    def __init__(self, domain: str, settings: Settings, database: Callable[[], Database]):
        self.domain = domain
        self.settings = settings
        self.registry = CollectorRegistry()
        self.requests = Counter("cytoatlas_requests", "RPCs finished, by method and gRPC status code.",
                                ["rpc", "code"], registry=self.registry)
        self.latency = Histogram("cytoatlas_request_duration_seconds", "RPC wall time, by method.",
                                 ["rpc"], buckets=LATENCY_BUCKETS, registry=self.registry)
        # livesum: with several processes (processes.py) the supervisor adds up the living ones'
        self.in_flight = Gauge("cytoatlas_requests_in_flight", "RPCs being served right now.",
                               ["rpc"], registry=self.registry, multiprocess_mode="livesum")
        self.rows = Counter("cytoatlas_rows_served", "Result rows sent by Query and Flight DoGet, by table.",
                            ["table"], registry=self.registry)
        self.bytes = Counter("cytoatlas_bytes_served", "Result payload bytes (Arrow IPC or rows) sent "
                             "by Query and Flight DoGet, by table.", ["table"], registry=self.registry)
        self.health_checks = Counter("cytoatlas_health_checks", "Health checks answered "
                                     "(grpc.health.v1.Health), by gRPC status code; not in "
                                     "cytoatlas_requests_total or the request log.", ["code"],
                                     registry=self.registry)
        self.registry.register(_BuildCollector(domain, database))
        self._http = None
        self.metrics_port: int | None = None
        # Labelled children by (metric, labels): prometheus_client's labels() validates and locks
        # on every call, six times per RPC; the label values are few (methods, codes, tables).
        self._children: dict = {}
        self.log_requests = settings.request_log == "json"
        self.process: int | None = None  # which of several processes this is (processes.py), logged
        self._log_lock = threading.Lock()

    def child(self, metric, *labels):
        """metric.labels(*labels), looked up once."""
        key = (id(metric), labels)  # the metrics live as long as this observer
        found = self._children.get(key)
        if found is None:
            found = self._children.setdefault(key, metric.labels(*labels))
        return found

    def log(self, line: str) -> None:
        """One request log line on stderr, whole: written directly rather than through logging,
        whose record, formatter and handler cost more than the JSON itself (~0.05 ms a call)."""
        with self._log_lock:
            sys.stderr.write(line + "\n")

    def start_metrics(self) -> int | None:
        """Serve /metrics on settings.metrics_port (-1 = not at all, 0 = any free port)."""
        if self.settings.metrics_port < 0:
            return None
        self._http, _ = start_http_server(self.settings.metrics_port, addr=self.settings.host,
                                          registry=self.registry)
        self.metrics_port = self._http.server_port
        return self.metrics_port

    def stop_metrics(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def start(self, rpc: str, request, context, health: bool = False) -> "Call":
        """Begin observing one RPC (the call interceptor calls this first, for every call);
        `health`: a health check, counted in cytoatlas_health_checks_total only."""
        if health:
            return HealthCall(self)
        return self.begin(rpc, request, next(
            (value for key, value in context.invocation_metadata() if key == REQUEST_ID_HEADER), None))

    def begin(self, rpc: str, request, request_id: str | None = None) -> "Call":
        """Begin observing one call given its request id header (the Flight endpoint's middleware,
        which has headers but no gRPC context); a fresh id when the client sent none."""
        return Call(self, rpc, request, request_id or uuid.uuid4().hex)


class Call:
    """One RPC being observed: started on creation, recorded and logged by finish()."""

    def __init__(self, observer: Observer, rpc: str, request, request_id: str):
        self.observer, self.rpc, self.request_id = observer, rpc, request_id
        # Query and GetTable name their table in different fields; the catalog RPCs name none.
        self.table = getattr(request, "table", "") or getattr(request, "name", "")
        self.rows = self.bytes = 0
        self.code: grpc.StatusCode | None = None
        self.started = time.perf_counter()
        observer.child(observer.in_flight, rpc).inc()

    def sent(self, response) -> None:
        stats = getattr(response, "stats", None)  # Query's last message carries the page's figures
        if isinstance(stats, QueryStats) and response.HasField("stats"):  # (a typed RPC's `stats` is its own)
            self.rows += stats.rows_returned
            self.bytes += stats.bytes_returned

    def finish(self, context=None) -> None:
        """Record and log the call; its code is `code` if set, else the gRPC context's, else OK."""
        observer, seconds = self.observer, time.perf_counter() - self.started
        code = (self.code or (context.code() if context is not None else None) or grpc.StatusCode.OK).name
        observer.child(observer.in_flight, self.rpc).dec()
        observer.child(observer.requests, self.rpc, code).inc()
        observer.child(observer.latency, self.rpc).observe(seconds)
        if self.rows or self.bytes:
            observer.child(observer.rows, self.table).inc(self.rows)
            observer.child(observer.bytes, self.table).inc(self.bytes)
        if observer.log_requests:
            observer.log(json.dumps({
                "ts": time.time(), "domain": observer.domain, "request_id": self.request_id,
                "rpc": self.rpc, "table": self.table, "rows": self.rows, "bytes": self.bytes,
                "duration_ms": round(seconds * 1000, 3), "code": code,
                **({"process": observer.process} if observer.process is not None else {})}))


class HealthCall:
    """A health check being observed: only its status code is counted."""

    def __init__(self, observer: Observer):
        self.observer = observer
        self.code: grpc.StatusCode | None = None

    def sent(self, response) -> None:
        pass

    def finish(self, context) -> None:
        code = (self.code or context.code() or grpc.StatusCode.OK).name
        self.observer.child(self.observer.health_checks, code).inc()


class _BuildCollector:
    """cytoatlas_database_info: 1, labelled with the build id of the file served at scrape time."""

    def __init__(self, domain: str, database: Callable[[], Database]):
        self.domain, self.database = domain, database

    def collect(self):
        try:
            manifest = self.database().manifest
        except ServiceError:  # no servable file right now (NOT_SERVING): no build to report
            return
        family = GaugeMetricFamily("cytoatlas_database_info", "The served file's build (always 1).",
                                   labels=["domain", "build_id", "built_at"])
        family.add_metric([self.domain, manifest.build_id, manifest.built_at], 1)
        yield family
