"""Several processes behind one port (`--processes N`, default one per usable CPU): ListTables
names every process's Flight endpoint, the Router reads through all of them, /metrics adds them
up, SIGHUP and a new build reach every one, a process that dies is started again, and none
outlives its supervisor."""

import math
import os
import re
import shutil
import signal
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from builders import demo_data, engine
from cytoatlas.client import Router
from cytoatlas.serving.config import Settings
from cytoatlas.serving.machine import usable_cpus
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc
from tests.conftest import TEST_SCALE, children, metrics_port, request_log

TABLE = "parse10m_activity"


def listed(address: str) -> pb.ListTablesResponse:
    with grpc.insecure_channel(address) as channel:
        return pb_grpc.TableServiceStub(channel).ListTables(pb.ListTablesRequest(), timeout=10)


def metric_lines(port: int, name: str) -> list[str]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return [line for line in text.splitlines() if line.startswith(name)]


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def test_by_default_one_process_per_usable_cpu_shares_out_the_query_slots():
    settings = Settings()
    assert settings.processes == usable_cpus()
    assert settings.max_queries == max(1, math.ceil(4 * usable_cpus() / settings.processes))
    assert Settings(processes=1).max_queries == 4 * usable_cpus()
    with pytest.raises(SystemExit, match="--processes"):
        Settings(processes=-1)


def test_every_process_is_listed_and_the_router_reads_through_each(built, start_service):
    service = start_service("perturbation", built["perturbation"], "--processes", "2", "--metrics-port", "0")
    assert "2 processes" in service.log.read_text()
    assert len(children(service.process.pid)) == 2
    answer = listed(service.address)
    ports = {p.flight_port for p in answer.processes}
    instances = {p.instance_id for p in answer.processes}
    sockets = {p.socket_port for p in answer.processes}
    assert len(ports) == 2 and len(instances) == 2 and len(sockets) == 2 and 0 not in sockets, answer.processes
    # the process that answered names itself among them, its Flight port the domain's first
    assert (answer.flight_port, answer.instance_id) in {(p.flight_port, p.instance_id) for p in answer.processes}
    assert answer.processes[0].flight_port == int(service.flight_address.rsplit(":", 1)[1])

    router = Router({"perturbation": service.address})
    for i in range(10):  # one after another: each to the least busy process, the first on a tie
        assert router.query(TABLE, limit=5 + i).num_rows == 5 + i
    assert {line["process"] for line in request_log(service.log, "SocketGet")} == {0}
    with ThreadPoolExecutor(8) as pool:  # at once: spread over both
        assert all(pool.map(lambda i: router.query(TABLE, limit=1000 + i).num_rows == 1000 + i, range(40)))
    calls = 50
    by_process = {}
    for line in request_log(service.log, "SocketGet"):
        by_process[line["process"]] = by_process.get(line["process"], 0) + 1
    assert set(by_process) == {0, 1} and sum(by_process.values()) == calls, by_process

    port = metrics_port(service)
    assert metric_lines(port, 'cytoatlas_requests_total{code="OK",rpc="SocketGet"}') == [
        f'cytoatlas_requests_total{{code="OK",rpc="SocketGet"}} {float(calls)}']
    assert metric_lines(port, "cytoatlas_processes ") == ["cytoatlas_processes 2.0"]
    assert len(metric_lines(port, "cytoatlas_database_info{")) == 1


def test_a_process_that_dies_is_started_again_and_the_router_keeps_answering(built, start_service):
    service = start_service("perturbation", built["perturbation"], "--processes", "2")
    router = Router({"perturbation": service.address})
    router.discover()
    before = {p.instance_id for p in listed(service.address).processes}
    victim = min(children(service.process.pid))  # process 0, which one caller's pages go to
    os.kill(victim, signal.SIGKILL)
    failed = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # the Router drops the dead process's endpoint and goes on
        try:
            router.query(TABLE, limit=3)
        except Exception:  # noqa: BLE001 - counted: there must be none
            failed += 1
    assert failed == 0
    assert re.search(r"process 0 \(pid %d\) exited with code -9; starting it again" % victim,
                     service.log.read_text())
    after = wait_for(lambda: (ps := listed(service.address).processes) and len(ps) == 2 and ps, 30,
                     "the dead process was not started again")
    assert len({p.instance_id for p in after} - before) == 1
    assert victim not in children(service.process.pid) and len(children(service.process.pid)) == 2
    # ... and the Router reads through the new process 0 again (its ListTables asked anew after
    # the drop, router.FLIGHT_RECHECK_SECONDS), not through process 1 alone from then on
    served_by_0 = len([line for line in request_log(service.log, "SocketGet") if line["process"] == 0])
    wait_for(lambda: router.query(TABLE, limit=3).num_rows == 3 and len(
        [line for line in request_log(service.log, "SocketGet") if line["process"] == 0]) > served_by_0,
        10, "the Router never read through the restarted process")


def test_a_new_build_and_sighup_reach_every_process(built, start_service, tmp_path):
    served_dir = tmp_path / "served"
    served_dir.mkdir()
    served = served_dir / built["perturbation"].name
    shutil.copy(built["perturbation"], served)
    service = start_service("perturbation", served, "--processes", "2", "--metrics-port", "0",
                            "--reload-poll-seconds", "0")  # only SIGHUP looks at the file
    port = metrics_port(service)
    old = metric_lines(port, "cytoatlas_database_info{")
    demo_data.generate(tmp_path / "source", scale=TEST_SCALE, seed=1, domains=["perturbation"])
    engine.build_domain("perturbation", tmp_path / "source", served_dir)  # atomic rename over the file
    time.sleep(0.5)
    assert metric_lines(port, "cytoatlas_database_info{") == old  # not looked at yet
    service.process.send_signal(signal.SIGHUP)
    new = wait_for(lambda: (lines := metric_lines(port, "cytoatlas_database_info{")) != old and len(lines) == 1
                   and lines, 30, "not every process serves the new build")
    assert re.search(r'build_id="(\w+)"', new[0]).group(1) != re.search(r'build_id="(\w+)"', old[0]).group(1)
    assert len(re.findall(r"\(process [01]\): perturbation: serving .* replacing build", service.log.read_text())) == 2


def test_sigterm_stops_every_process_and_a_killed_supervisor_takes_them_along(built, start_service):
    service = start_service("perturbation", built["perturbation"], "--processes", "2")
    workers = children(service.process.pid)
    assert service.stop() == 0
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]

    service = start_service("perturbation", built["perturbation"], "--processes", "2")
    workers = children(service.process.pid)
    service.process.kill()  # no chance to stop them: each sees its end of the pipe close
    service.process.wait()
    wait_for(lambda: not [pid for pid in workers if os.path.exists(f"/proc/{pid}")
                          and open(f"/proc/{pid}/stat").read().split()[2] != "Z"], 30,
             "processes outlived their supervisor")


def test_a_busy_port_is_refused_by_name(built, start_service):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = start_service("perturbation", built["perturbation"], "--processes", "2", "--port", str(port),
                                wait=False)
        assert service.process.wait(timeout=30) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in service.log.read_text()

