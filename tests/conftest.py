"""Session fixtures: real demo sources -> real builds -> the three real services on free ports.

The services run as `cytoatlas serve` subprocesses, exactly as deployed, so the tests also
exercise the entry point, and this process can open the same files read-only for comparisons.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import duckdb
import grpc
import pytest

from builders import demo_data, engine
from google.protobuf import json_format

from cytoatlas.atlas.v1 import atlas_service_pb2, atlas_service_pb2_grpc
from cytoatlas.client import Router
from cytoatlas.perturbation.v1 import perturbation_service_pb2, perturbation_service_pb2_grpc
from cytoatlas.spatial.v1 import spatial_service_pb2, spatial_service_pb2_grpc
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc

DOMAINS = ("atlas", "perturbation", "spatial")
BIN = pathlib.Path(sys.executable).parent
TEST_SCALE = float(os.environ.get("CYTOATLAS_TEST_SCALE", demo_data.MIN_SCALE))
_LISTENING = re.compile(r"listening on ([\d.]+):(\d+),.*")
_FLIGHT = re.compile(r"flight on ([\d.]+):(\d+)")


class ServiceProcess:
    """One `cytoatlas serve DOMAIN` subprocess, the address it listens on and its Arrow Flight
    endpoint's (`--port 0` puts that on a free port too; None with `--flight-port -1`)."""

    def __init__(self, domain: str, db: pathlib.Path, log: pathlib.Path, *extra: str):
        self.domain, self.db, self.log = domain, db, log
        self.process = subprocess.Popen(
            [str(BIN / "cytoatlas"), "serve", domain, "--db", str(db), "--port", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        self.address = None
        self.flight_address = None

    def wait_listening(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log.read_text())
            if match:
                self.address = f"{match.group(1)}:{match.group(2)}"
                flight = _FLIGHT.search(match.group(0))
                self.flight_address = f"{flight.group(1)}:{flight.group(2)}" if flight else None
                return self.address
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.domain} service exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.domain} service did not start: {self.log.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


# Demo sources and built files made beforehand (the mutation run builds them once for every mutant).
PREBUILT = os.environ.get("CYTOATLAS_TEST_DATA")


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory) -> tuple[pathlib.Path, dict[str, pathlib.Path]]:
    """Demo sources and the three files built from them, made once per test run: under
    pytest-xdist the first worker builds them and the others wait for it and reuse them."""
    from cytoatlas.domains import DOMAINS as SPECS

    if PREBUILT:
        root = pathlib.Path(PREBUILT)
        return root / "source", {d: root / "built" / SPECS[d].file_name for d in DOMAINS}
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "demo-files"
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = {d: root / "built" / SPECS[d].file_name for d in DOMAINS}
        if not (root / "done").exists():
            lines: list[str] = []
            written = demo_data.generate(root / "source", scale=TEST_SCALE, seed=0, log=lines.append)
            # what the generator wrote and logged, for tests/test_demo_data.py
            (root / "written.json").write_text(json.dumps({d: [str(p) for p in files] for d, files in written.items()}))
            (root / "log.txt").write_text("\n".join(lines))
            built = engine.build_all(root / "source", root / "built")
            (root / "done").touch()
    return root / "source", built


@pytest.fixture(scope="session")
def source_dir(demo_files) -> pathlib.Path:
    return demo_files[0]


@pytest.fixture(scope="session")
def built(demo_files) -> dict[str, pathlib.Path]:
    """The three published domain files, built by the real builders from the demo sources."""
    return demo_files[1]


@pytest.fixture(scope="session")
def services(built, tmp_path_factory) -> dict[str, ServiceProcess]:
    logs = tmp_path_factory.mktemp("logs")
    running = {d: ServiceProcess(d, built[d], logs / f"{d}.log") for d in DOMAINS}
    try:
        for service in running.values():
            service.wait_listening()
        yield running
    finally:
        for service in running.values():
            service.stop()


@pytest.fixture(scope="session")
def addresses(services) -> dict[str, str]:
    return {d: s.address for d, s in services.items()}


@pytest.fixture(scope="session")
def flight_addresses(services) -> dict[str, str]:
    """Each session service's Arrow Flight endpoint, host:port."""
    return {d: s.flight_address for d, s in services.items()}


@pytest.fixture(scope="session")
def router(addresses) -> Router:
    with Router(addresses) as r:
        yield r


@pytest.fixture(scope="session")
def stubs(addresses) -> dict[str, pb_grpc.TableServiceStub]:
    channels = {d: grpc.insecure_channel(a) for d, a in addresses.items()}
    yield {d: pb_grpc.TableServiceStub(c) for d, c in channels.items()}
    for channel in channels.values():
        channel.close()


@pytest.fixture(scope="session")
def local(built) -> dict[str, duckdb.DuckDBPyConnection]:
    """In-process read-only connections to the same files: the reference answers come from here."""
    connections = {d: duckdb.connect(str(p), read_only=True) for d, p in built.items()}
    yield connections
    for connection in connections.values():
        connection.close()


# The typed services of the three domains: (pb module, stub class, service name).
TYPED_SERVICES = {
    "atlas": (atlas_service_pb2, atlas_service_pb2_grpc.AtlasServiceStub, "AtlasService"),
    "perturbation": (perturbation_service_pb2, perturbation_service_pb2_grpc.PerturbationServiceStub,
                     "PerturbationService"),
    "spatial": (spatial_service_pb2, spatial_service_pb2_grpc.SpatialServiceStub, "SpatialService"),
}


@pytest.fixture(scope="session")
def typed(addresses):
    """A stub of each domain's typed service (AtlasService, PerturbationService, SpatialService)."""
    channels = {d: grpc.insecure_channel(a) for d, a in addresses.items()}
    yield {d: TYPED_SERVICES[d][1](c) for d, c in channels.items()}
    for channel in channels.values():
        channel.close()


def call(typed, domain: str, rpc: str, request: dict | None = None):
    module, _, service = TYPED_SERVICES[domain]
    method = module.DESCRIPTOR.services_by_name[service].methods_by_name[rpc]
    message = json_format.ParseDict(request or {}, getattr(module, method.input_type.name)())
    return getattr(typed[domain], rpc)(message, timeout=60)


def field_value(message, name: str):
    """The message's value for a column; None for an unset optional (a NULL in the table), a list
    for a repeated field."""
    descriptor = message.DESCRIPTOR.fields_by_name[name]
    if descriptor.is_repeated:
        return list(getattr(message, name))
    if descriptor.has_presence and not message.HasField(name):
        return None
    return getattr(message, name)


def assert_rows_equal(messages, expected: list[dict]):
    assert len(messages) == len(expected)
    for got, want in zip(messages, expected):
        for column, value in want.items():
            assert field_value(got, column) == (pytest.approx(value) if isinstance(value, float) else value), column


@pytest.fixture
def start_service(tmp_path):
    """Start extra `cytoatlas serve` processes with their own flags; all stopped at the end."""
    started = []

    def start(domain: str, db, *extra: str, wait: bool = True) -> ServiceProcess:
        service = ServiceProcess(domain, pathlib.Path(db), tmp_path / f"{domain}-{len(started)}.log", *extra)
        started.append(service)
        if wait:
            service.wait_listening()
        return service

    yield start
    for service in started:
        service.stop()


def health_status(address: str, service: str = "", credentials=None, timeout: float = 5) -> str:
    """The grpc.health.v1 status name of a service at `address`."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    with channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout).status
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def status_details(err: grpc.RpcError, detail_type: type) -> list:
    """The google.rpc details of type `detail_type` (ErrorInfo, RetryInfo, ...) an error carries."""
    from grpc_status import rpc_status

    status = rpc_status.from_call(err)
    found = []
    for detail in status.details if status else ():
        if detail.Is(detail_type.DESCRIPTOR):
            message = detail_type()
            detail.Unpack(message)
            found.append(message)
    return found


def request_log(log: pathlib.Path, rpc: str | None = None) -> list[dict]:
    """The JSON request-log lines a service wrote to its log (stderr), optionally of one RPC."""
    import json

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if rpc is None or line["rpc"] == rpc]


def children(pid: int) -> list[int]:
    """The child processes of `pid`: a service's workers (--processes, one per CPU by default)."""
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def serving_pids(service: ServiceProcess) -> list[int]:
    """The processes that open the file and answer: the workers, or the one started if alone."""
    return children(service.process.pid) or [service.process.pid]


def closed_address() -> str:
    """A loopback address with nothing listening: bound, noted and closed again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def metrics_port(service: ServiceProcess, timeout: float = 30) -> int:
    """The /metrics port a service started with `--metrics-port 0` logged."""
    deadline = time.monotonic() + timeout
    while not (match := re.search(r"metrics on http://[\d.]+:(\d+)/metrics", service.log.read_text())):
        assert time.monotonic() < deadline, service.log.read_text()
        time.sleep(0.05)
    return int(match.group(1))
