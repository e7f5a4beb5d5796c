"""Faults: a missing, truncated, corrupt or wrong-domain file at start leaves the process up,
NOT_SERVING and answering UNAVAILABLE naming the file; publishing a good file makes it serve
without a restart. Killing one service does not disturb the other two (through the Router)."""

import os
import shutil
import signal
import time

import grpc
import pytest

from cytoatlas.client import Router, ServiceUnavailable
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc
from tests.conftest import health_status

POLL = "0.2"


def _missing(path, built):
    pass


def _truncated(path, built):
    data = built["perturbation"].read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt(path, built):
    data = bytearray(built["perturbation"].read_bytes())
    data[: 8192] = os.urandom(8192)  # header and first blocks overwritten
    path.write_bytes(bytes(data))


def _empty(path, built):
    path.write_bytes(b"")


def _wrong_domain(path, built):
    shutil.copyfile(built["spatial"], path)


FAULTS = [  # (id, make the bad file, words the UNAVAILABLE message must contain)
    ("missing", _missing, "no such file"),
    ("truncated", _truncated, "perturbation_data.duckdb"),
    ("corrupt", _corrupt, "perturbation_data.duckdb"),
    ("empty", _empty, "not a valid DuckDB database file"),
    ("wrong domain", _wrong_domain, "built for the 'spatial' domain"),
]

RPCS = [
    ("ListTables", lambda stub: stub.ListTables(pb.ListTablesRequest(), timeout=5)),
    ("GetTable", lambda stub: stub.GetTable(pb.GetTableRequest(name="tahoe_drug_effect"), timeout=5)),
    ("GetDatabaseInfo", lambda stub: stub.GetDatabaseInfo(pb.GetDatabaseInfoRequest(), timeout=5)),
    ("Query", lambda stub: list(stub.Query(pb.QueryRequest(table="tahoe_drug_effect", limit=3), timeout=5))),
]


def publish_copy(source, target):
    """Publish like a builder: write beside the target, then rename over it atomically."""
    temp = target.with_name(f".{target.name}.publish.tmp")
    shutil.copyfile(source, temp)
    os.replace(temp, target)
    return time.monotonic()


def wait_serving(address, timeout=15.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if health_status(address) == "SERVING":
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"not SERVING {timeout} s after the good file was published")


@pytest.mark.parametrize("name, make_bad, words", FAULTS, ids=[f[0] for f in FAULTS])
def test_bad_file_at_start_then_good_file_published(built, tmp_path, start_service, name, make_bad, words):
    served = tmp_path / "served" / "perturbation_data.duckdb"
    served.parent.mkdir()
    make_bad(served, built)
    service = start_service("perturbation", served, "--reload-poll-seconds", POLL)
    assert service.process.poll() is None, "the process must stay up"
    assert health_status(service.address) == "NOT_SERVING"
    assert health_status(service.address, "cytoatlas.table.v1.TableService") == "NOT_SERVING"
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.TableServiceStub(channel)
        for rpc, call in RPCS:
            with pytest.raises(grpc.RpcError) as info:
                call(stub)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, (rpc, info.value.details())
            assert str(served) in info.value.details() and words in info.value.details(), info.value.details()
        published = publish_copy(built["perturbation"], served)
        latency = wait_serving(service.address) - published
        rows = list(stub.Query(pb.QueryRequest(table="tahoe_drug_effect", limit=3,
                                               format=pb.RESULT_FORMAT_ROWS), timeout=5))
    assert rows[-1].stats.rows_returned == 3
    assert service.process.poll() is None
    print(f"\nFIGURE faults[{name}]: process up, NOT_SERVING, {len(RPCS)}/{len(RPCS)} RPCs UNAVAILABLE "
          f"naming the file; SERVING {latency:.2f} s after a good file was published (poll {POLL} s)")


def test_a_bad_publish_never_replaces_a_good_file(built, tmp_path, start_service):
    served = tmp_path / "perturbation_data.duckdb"
    shutil.copyfile(built["perturbation"], served)
    service = start_service("perturbation", served, "--reload-poll-seconds", POLL)
    bad = tmp_path / "bad.duckdb"
    _truncated(bad, built)
    os.replace(bad, served)
    service.process.send_signal(signal.SIGHUP)  # look now, not at the next poll
    deadline = time.monotonic() + 15  # wait for the attempt itself, not a fixed time: the machine may be busy
    while "keeps serving build" not in service.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health_status(service.address) == "SERVING"
    with grpc.insecure_channel(service.address) as channel:
        rows = list(pb_grpc.TableServiceStub(channel).Query(
            pb.QueryRequest(table="tahoe_drug_effect", limit=2, format=pb.RESULT_FORMAT_ROWS), timeout=5))
    assert rows[-1].stats.rows_returned == 2
    assert "keeps serving build" in service.log.read_text()


@pytest.mark.reliability  # seconds of load through a service's death: a long run
def test_killing_one_service_leaves_the_others_serving(built, start_service):
    services = {d: start_service(d, built[d]) for d in ("atlas", "perturbation", "spatial")}
    with Router({d: s.address for d, s in services.items()}, timeout=10) as router:
        router.discover()
        services["perturbation"].process.send_signal(signal.SIGKILL)
        services["perturbation"].process.wait(timeout=10)
        ok, dead_failures, slowest_failure = 0, 0, 0.0
        for _ in range(6):
            assert router.query("cima_differential", limit=5).num_rows == 5
            assert router.query("spatial_activity", limit=5).num_rows == 5
            ok += 2
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable) as info:
                router.query("tahoe_drug_effect", limit=5)
            slowest_failure = max(slowest_failure, time.monotonic() - started)
            assert "perturbation" in str(info.value) and info.value.service == "perturbation"
            dead_failures += 1
        assert slowest_failure < 5.0
        assert router.health("atlas") == router.health("spatial") == "SERVING"
    print(f"\nFIGURE kill one service: {ok} queries to atlas/spatial succeeded, 0 failed; "
          f"{dead_failures} queries to the killed perturbation service failed naming it, "
          f"slowest failure {slowest_failure * 1000:.0f} ms")
