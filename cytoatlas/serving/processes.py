"""Several processes serving one domain (`--processes N`, N > 1): the supervisor.

Why: a process answers in Python one call at a time (the interpreter lock); only DuckDB's part of
a query runs outside it. N processes answer N at once: on this 2-CPU machine two of them served
16 Router threads 16-17% more point queries a second than one, in two of three runs; where the
CPUs are saturated they cannot help (docs/performance.md).

How: this process opens no file, nor imports what serves one (its workers start sooner). It holds
the gRPC port (bound with SO_REUSEPORT, not listening, so no other program takes it and `--port 0`
has a number) and starts N workers (worker.py), each a whole service listening on that port
beside the others: the kernel hands each new connection to one of them, and it stays with it.
A client must reach each process's Flight endpoint and Arrow socket, so the first worker listens
on the domain's Flight and socket ports and the others on free ones; once all listen, each is told
every worker's ports and instance id, which ListTables returns, and the Router reads through all
of them (the least busy first: client/flight_reader.py).

The supervisor serves /metrics for all of them (prometheus_client's multiprocess mode: the
workers write their counters to files in a directory of its own, summed at scrape time), passes
SIGHUP on, starts a worker again when one dies, and on SIGTERM/SIGINT stops them all, each with
the grace period.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import NamedTuple

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from cytoatlas.serving.config import Settings
from cytoatlas.serving.signal_pipe import SignalPipe

log = logging.getLogger(__name__)
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's: where a worker's metrics live
RESTART_DELAYS = (1, 2, 5, 10, 30)  # seconds before starting a worker again, after each failure in a row


class WorkerStatus(NamedTuple):
    """What a worker serves, as it tells the supervisor (worker.status)."""
    serving: bool
    problem: str = ""  # why not, when not serving
    path: str = ""
    build_id: str = ""
    built_at: str = ""
    tables: int = 0


@dataclass
class Worker:
    index: int
    process: subprocess.Popen
    conn: Connection
    flight_port: int = 0
    instance_id: str = ""
    socket_port: int = 0
    status: WorkerStatus | None = None
    ready: bool = False


@dataclass
class Supervisor:
    domain: str
    settings: Settings
    workers: dict[int, Worker] = field(default_factory=dict)
    restarts: dict[int, tuple[float, int]] = field(default_factory=dict)  # index -> (when, failures)

    def __post_init__(self):
        self.port_holder = hold_port(self.settings.host, self.settings.resolved_port(self.domain))
        self.port = self.port_holder.getsockname()[1]
        self.metrics_dir = tempfile.mkdtemp(prefix=f"cytoatlas-{self.domain}-metrics-")
        self.signals = SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
        self.metrics_http = None

    # -- the workers ----------------------------------------------------------------------------

    def start(self, index: int) -> None:
        ours, theirs = socket.socketpair()
        process = subprocess.Popen(
            [sys.executable, "-m", "cytoatlas.serving.worker", str(theirs.fileno())], pass_fds=[theirs.fileno()],
            env={**os.environ, METRICS_DIR_ENV: self.metrics_dir})
        theirs.close()
        conn = Connection(ours.detach())
        conn.send((self.domain, worker_settings(self.settings, self.domain, index, self.port), index))
        self.workers[index] = Worker(index, process, conn)

    def receive(self, worker: Worker) -> tuple[str, str] | None:
        """Handle one message of `worker`. Returns ("failed", why) when it could not start (it
        exits next) and ("exited", why) when it has exited (its end of the pair closed)."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            code = worker.process.wait()
            del self.workers[worker.index]
            worker.conn.close()
            mark_process_dead(worker.process.pid, self.metrics_dir)
            if worker.ready:
                self.tell_processes()  # the others stop naming it in ListTables
            return "exited", f"process {worker.index} (pid {worker.process.pid}) exited with code {code}"
        kind = message[0]
        if kind == "ready":
            _, _, worker.flight_port, worker.instance_id, worker.socket_port, worker.status = message
            worker.ready = True
            self.restarts.pop(worker.index, None)
            self.tell_processes()
        elif kind == "status":
            worker.status = message[2]
        elif kind == "failed":
            return "failed", message[2]
        return None

    def tell_processes(self) -> None:
        """Tell every listening worker the Flight port, instance id and Arrow socket port of each
        (ListTables)."""
        ready = [w for _, w in sorted(self.workers.items()) if w.ready]
        listing = ("processes", [(w.flight_port, w.instance_id, w.socket_port) for w in ready])
        for worker in ready:
            try:
                worker.conn.send(listing)
            except OSError:  # exiting: its end of the pair is read next
                pass

    def wait_ready(self) -> str | None:
        """Wait until every worker listens; the first failure (or a stop signal) stops the wait."""
        while not all(w.ready for w in self.workers.values()):
            for ready in wait([*(w.conn for w in self.workers.values()), self.signals.fd]):
                if ready == self.signals.fd:
                    if self.signals.read() & {signal.SIGTERM, signal.SIGINT}:
                        return "stopped before it listened"
                    continue
                event = self.receive(next(w for w in self.workers.values() if w.conn is ready))
                if event:
                    return event[1] if event[0] == "failed" else event[1] + " before it listened"
        return None

    def supervise(self) -> None:
        """Until SIGTERM/SIGINT: pass SIGHUP on, note each worker's status, start a dead worker again."""
        while True:
            due = [when for when, _ in self.restarts.values() if when != float("inf")]
            timeout = max(0.0, min(due) - time.monotonic()) if due else None
            for ready in wait([*(w.conn for w in self.workers.values()), self.signals.fd], timeout):
                if ready == self.signals.fd:
                    received = self.signals.read()
                    if received & {signal.SIGTERM, signal.SIGINT}:
                        return
                    if signal.SIGHUP in received:
                        for worker in list(self.workers.values()):
                            worker.process.send_signal(signal.SIGHUP)
                    continue
                worker = next(w for w in self.workers.values() if w.conn is ready)
                event = self.receive(worker)
                if event and event[0] == "failed":
                    log.error("%s: process %d could not start: %s", self.domain, worker.index, event[1])
                elif event:
                    failures = self.restarts.get(worker.index, (0, 0))[1]
                    delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                    log.error("%s: %s; starting it again in %d s", self.domain, event[1], delay)
                    self.restarts[worker.index] = (time.monotonic() + delay, failures + 1)
            now = time.monotonic()
            for index, (when, failures) in list(self.restarts.items()):
                if when <= now and index not in self.workers:
                    self.restarts[index] = (float("inf"), failures)  # until it is ready or fails
                    self.start(index)

    def stop(self, grace: float) -> None:
        """SIGTERM to every worker, each stopping within `grace`; then free the port and files."""
        for worker in self.workers.values():
            worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace + 20  # their own grace, then closing the file
        for worker in self.workers.values():
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s: process %d did not stop: killing it", self.domain, worker.index)
                worker.process.kill()
                worker.process.wait()
            worker.conn.close()
        if self.metrics_http is not None:
            self.metrics_http.shutdown()
            self.metrics_http.server_close()
        self.port_holder.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)

    # -- metrics --------------------------------------------------------------------------------

    def start_metrics(self) -> int | None:
        if self.settings.metrics_port < 0:
            return None
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.metrics_dir)
        registry.register(_ProcessesCollector(self))
        self.metrics_http, _ = start_http_server(self.settings.metrics_port, addr=self.settings.host,
                                                 registry=registry)
        return self.metrics_http.server_port


class _ProcessesCollector:
    """cytoatlas_database_info (as one process reports it: each build served, normally one) and
    cytoatlas_processes (how many workers listen)."""

    def __init__(self, supervisor: Supervisor):
        self.supervisor = supervisor

    def collect(self):
        workers = [w for w in list(self.supervisor.workers.values()) if w.ready]
        builds = {(w.status.build_id, w.status.built_at) for w in workers if w.status and w.status.serving}
        if builds:
            info = GaugeMetricFamily("cytoatlas_database_info", "The served file's build (always 1).",
                                     labels=["domain", "build_id", "built_at"])
            for build_id, built_at in sorted(builds):
                info.add_metric([self.supervisor.domain, build_id, built_at], 1)
            yield info
        yield GaugeMetricFamily("cytoatlas_processes", "Processes serving the domain (--processes) "
                                "that are listening.", value=len(workers))


class PortTaken(Exception):
    pass


def worker_settings(settings: Settings, domain: str, index: int, port: int) -> Settings:
    """The settings of worker `index`: the shared gRPC port; the domain's Flight port and Arrow
    socket port for the first worker and any free ones for the others (none where the domain has
    none); no metrics port (the supervisor serves everyone's)."""
    flight, arrow_socket = settings.resolved_flight_port(domain), settings.resolved_socket_port(domain)
    return dataclasses.replace(settings, port=port, metrics_port=-1,
                               flight_port=-1 if flight is None else (flight if index == 0 else 0),
                               socket_port=-1 if arrow_socket is None else (arrow_socket if index == 0 else 0))


def hold_port(host: str, port: int) -> socket.socket:
    """A socket bound to host:port with SO_REUSEPORT (the workers listen beside it; nobody else
    can), after checking that nothing listens there: bound without SO_REUSEPORT first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not refused for TIME_WAIT leftovers
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortTaken(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        port = probe.getsockname()[1]
    holder = socket.socket(family)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, port))
    return holder


def supervise(domain: str, settings: Settings) -> int:
    """Run `settings.processes` workers until SIGTERM/SIGINT. Returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        supervisor = Supervisor(domain, settings)
    except PortTaken as exc:
        print(f"cytoatlas {domain}: {exc}", file=sys.stderr)
        return 2
    try:
        for index in range(settings.processes):
            supervisor.start(index)
        problem = supervisor.wait_ready()
        if problem:
            print(f"cytoatlas {domain}: {problem}", file=sys.stderr)
            return 0 if problem == "stopped before it listened" else 2
        try:
            metrics_port = supervisor.start_metrics()
        except OSError as exc:
            print(f"cytoatlas {domain}: cannot serve metrics on {settings.host}:{settings.metrics_port}: {exc}",
                  file=sys.stderr)
            return 2
        first = supervisor.workers[0]
        flight = f", flight on {settings.host}:{first.flight_port}" if first.flight_port else ", no flight"
        flight += f", arrow socket on {settings.host}:{first.socket_port}" if first.socket_port else ""
        status = first.status
        if not status.serving:
            log.warning("%s service listening on %s:%d, NOT_SERVING: %s%s, %d processes", domain, settings.host,
                        supervisor.port, status.problem, flight, settings.processes)
        else:
            log.info("%s service listening on %s:%d, serving %s (build %s, %d tables)%s, %d processes", domain,
                     settings.host, supervisor.port, status.path, status.build_id, status.tables, flight,
                     settings.processes)
        log.info("%s capacity: %d processes, each %d queries at once, %d more may wait %.1f s, %d gRPC workers, "
                 "%d DuckDB threads", domain, settings.processes, settings.max_queries, settings.admission_queue,
                 settings.admission_wait_seconds, settings.max_workers, settings.duckdb_threads)
        if metrics_port is not None:
            log.info("%s metrics on http://%s:%d/metrics", domain, settings.host, metrics_port)
        supervisor.supervise()
        log.info("%s service stopping: in-flight calls get %.0f s", domain, settings.grace_seconds)
        return 0
    finally:
        supervisor.stop(settings.grace_seconds)
