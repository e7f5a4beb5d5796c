"""Service settings: one frozen dataclass; flags override CYTOATLAS_* environment variables,
which override defaults."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass, field

from cytoatlas.serving.machine import usable_cpus

DEFAULT_PORTS = {"atlas": 50051, "perturbation": 50052, "spatial": 50053}
FLIGHT_PORT_OFFSET = 10  # the Arrow Flight endpoint's default port: the gRPC port + 10 (50061/50062/50063)
SOCKET_PORT_OFFSET = 20  # the Arrow socket's default port: the gRPC port + 20 (50071/50072/50073)
ENV_PREFIX = "CYTOATLAS_"


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Everything a domain service can be told; each field is also `--flag` and `CYTOATLAS_FIELD`."""

    db: str = _setting("", "DuckDB file to serve (opened read-only).")
    host: str = _setting("127.0.0.1", "Address to listen on (0.0.0.0 in containers).")
    port: int = _setting(-1, "Port to listen on; -1 = the domain's default (50051/50052/50053), "
                             "0 = any free port (the log line says which).")
    processes: int = _setting(0, "Processes serving the domain; they share the gRPC port (SO_REUSEPORT) and "
                                 "each has a Flight port, the first --flight-port; a process answers in Python "
                                 "one call at a time, so more of them answer more at once. 0 = one per usable "
                                 "CPU. Behind a port mapping that forwards only the listed ports, use 1 and "
                                 "scale by replicas. Each process has its own --duckdb-memory-limit.")
    max_workers: int = _setting(0, "gRPC worker threads: concurrent RPCs served at once; beyond them gRPC "
                                   "refuses a call. 0 = max_queries + admission_queue + 8 (health, catalog).")
    duckdb_threads: int = _setting(0, "DuckDB threads of the served file; 0 = the CPUs this process may use "
                                      "(affinity and cgroup quota).")
    duckdb_memory_limit: str = _setting("2GB", "DuckDB memory_limit for the served file.")
    duckdb_temp_directory: str = _setting("", "Where DuckDB may spill a query bigger than memory_limit; "
                                              "empty = nowhere: such a query is refused with RESOURCE_EXHAUSTED.")
    reload_poll_seconds: float = _setting(1.0, "How often to look for a newly published file at --db "
                                               "(inode/size/mtime); 0 = only on SIGHUP.")
    max_queries: int = _setting(0, "Query RPCs running at once in each process; 0 = 4 per usable CPU, shared "
                                   "out among the processes. More wait in the "
                                   "admission queue, then are refused with RESOURCE_EXHAUSTED and a retry hint.")
    admission_queue: int = _setting(-1, "Query RPCs that may wait for a running one to finish before being "
                                        "refused; -1 = 2 x max_queries, 0 = refuse at once.")
    admission_wait_seconds: float = _setting(1.0, "Longest a query waits in the admission queue before it is "
                                                  "refused.")
    retry_after_seconds: float = _setting(0.25, "Retry delay suggested (google.rpc.RetryInfo) when refusing.")
    query_timeout_seconds: float = _setting(60.0, "Longest a query may run when the client set no shorter "
                                                  "deadline; it is then interrupted (0 = no limit).")
    tls_cert: str = _setting("", "PEM certificate chain: serve TLS only (needs --tls-key).")
    tls_key: str = _setting("", "PEM private key for --tls-cert.")
    tls_client_ca: str = _setting("", "PEM CA bundle: require client certificates signed by it (mutual TLS).")
    auth_token: str = _setting("", "Shared bearer token: calls without metadata "
                                   "`authorization: Bearer <token>` are refused with UNAUTHENTICATED.")
    auth_exempt: str = _setting("health,reflection", "With --auth-token: comma-separated services still "
                                                     "reachable without the token (health, reflection).")
    arrow_default_limit: int = _setting(1_000_000, "Rows per ARROW page when the request says limit 0.")
    arrow_max_limit: int = _setting(10_000_000, "Most rows one ARROW call returns.")
    rows_default_limit: int = _setting(100, "Rows per ROWS page when the request says limit 0.")
    rows_max_limit: int = _setting(10_000, "Most rows one ROWS call returns.")
    batch_rows: int = _setting(16_384, "Rows per Arrow record batch read from DuckDB.")
    max_message_bytes: int = _setting(3_500_000, "Largest response message; batches are split below it "
                                                 "(gRPC's default receive limit is 4 MiB).")
    max_filters: int = _setting(64, "Most filters, order_by terms, group_by columns or aggregates per query.")
    max_filter_values: int = _setting(10_000, "Most values in one filter (OP_IN / OP_NOT_IN).")
    max_string_bytes: int = _setting(4_096, "Longest string value or identifier accepted in a request.")
    token_secret: str = _setting("cytoatlas-page-token-v1",
                                 "Key that signs page tokens; set the same value on every replica.")
    grace_seconds: float = _setting(10.0, "On SIGTERM/SIGINT, time in-flight calls get to finish.")
    flight_port: int = _setting(-2, "Arrow Flight port (ListFlights, GetFlightInfo, GetSchema, DoGet over the "
                                    "same tables); -2 = the gRPC port + 10 (50061/50062/50063; any free port "
                                    "with --port 0), 0 = any free port (the log line says which), -1 = none.")
    socket_port: int = _setting(-2, "Arrow socket port: the Flight endpoint's DoGet over a plain TCP connection, "
                                    "what the Router reads pages through first (docs/contract.md); -2 = the gRPC "
                                    "port + 20 (50071/50072/50073; any free port with --port 0), 0 = any free "
                                    "port, -1 = none. None either with TLS, --auth-token or --flight-port -1.")
    metrics_port: int = _setting(-1, "HTTP port serving Prometheus /metrics; -1 = none, 0 = any free port "
                                     "(the log line says which). Compose and Kubernetes use 9090.")
    request_log: str = _setting("json", "Per-request log on stderr: json (one JSON line per RPC) or off.")

    def __post_init__(self):
        """Sizes left at 0 (or -1) come from the machine this process runs on (machine.py)."""
        if self.processes < 0:
            raise SystemExit(f"--processes / CYTOATLAS_PROCESSES must be 0 (one per CPU) or more, "
                             f"not {self.processes}")
        cpus = usable_cpus()
        # Every CPU for DuckDB, as DuckDB itself defaults: a long first page has no LIMIT
        # (compiler.compile_query, reader_stops), so its scan runs in all of them and streams ahead
        # of the Flight writer. On 2 CPUs against 1 thread: 1M rows through the Router 13-23%
        # faster, point and 10,000-row queries and 16-client QPS even (docs/performance.md).
        derived = {"duckdb_threads": self.duckdb_threads or cpus,
                   "processes": self.processes or cpus}
        # 4 queries per CPU for the whole service, shared out among its processes
        derived["max_queries"] = self.max_queries or max(1, math.ceil(4 * cpus / derived["processes"]))
        derived["admission_queue"] = (2 * derived["max_queries"] if self.admission_queue < 0
                                      else self.admission_queue)
        derived["max_workers"] = self.max_workers or derived["max_queries"] + derived["admission_queue"] + 8
        for name, value in derived.items():
            object.__setattr__(self, name, value)
        if self.request_log not in ("json", "off"):
            raise SystemExit(f"--request-log / CYTOATLAS_REQUEST_LOG must be json or off, "
                             f"not {self.request_log!r}")
        for name, offset in (("flight_port", FLIGHT_PORT_OFFSET), ("socket_port", SOCKET_PORT_OFFSET)):
            if getattr(self, name) < -2:
                raise SystemExit(f"--{name.replace('_', '-')} / {env_name(name)} must be -2 (gRPC port + {offset}), "
                                 f"-1 (none), 0 (any free port) or a port, not {getattr(self, name)}")

    def resolved_port(self, domain: str) -> int:
        return DEFAULT_PORTS[domain] if self.port < 0 else self.port

    def resolved_flight_port(self, domain: str) -> int | None:
        """The Flight port to listen on (0 = any free one), or None for no Flight endpoint."""
        if self.flight_port != -2:
            return None if self.flight_port == -1 else self.flight_port
        port = self.resolved_port(domain)
        return 0 if port == 0 else port + FLIGHT_PORT_OFFSET

    def resolved_socket_port(self, domain: str) -> int | None:
        """The Arrow socket's port (0 = any free one), or None for none: it has no TLS or token,
        and it answers the Flight endpoint's DoGet."""
        if self.socket_port == -1 or self.tls_cert or self.auth_token or self.resolved_flight_port(domain) is None:
            return None
        if self.socket_port != -2:
            return self.socket_port
        port = self.resolved_port(domain)
        return 0 if port == 0 else port + SOCKET_PORT_OFFSET


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one --flag per setting; unset flags fall back to the environment, then the default."""
    for f in dataclasses.fields(Settings):
        parser.add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, default=None, help=f"{f.metadata['help']} [env {env_name(f.name)}; default {f.default!r}]",
        )


def from_sources(args: argparse.Namespace | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    values = {}
    for f in dataclasses.fields(Settings):
        convert = {"int": int, "float": float}.get(str(f.type), str)
        flag = getattr(args, f.name, None) if args is not None else None
        if flag is not None:
            values[f.name] = convert(flag)
        elif env_name(f.name) in environ:
            raw = environ[env_name(f.name)]
            try:
                values[f.name] = convert(raw)
            except ValueError:
                raise SystemExit(f"{env_name(f.name)}={raw!r} is not a valid {convert.__name__}") from None
    return Settings(**values)
