"""Client-side load balancing and failover: two real replicas of one domain behind one Router
endpoint; one is killed mid-run and no query may fail. Pages are read through each replica's
Flight endpoint in turn (FlightReplicas), and over gRPC's round robin with flight=False."""

import signal
import threading
import time

import pytest

from cytoatlas.client import Router
from cytoatlas.client.targets import channel_target
from tests.conftest import ServiceProcess, request_log

TABLE = "parse10m_cytokine_metadata"  # a small perturbation table: many calls per second


def queries_served(log, rpc: str) -> int:
    return len(request_log(log, rpc))


def test_a_comma_list_becomes_an_address_list_and_uris_pass_through():
    assert channel_target("127.0.0.1:1,localhost:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert channel_target("dns:///perturbation.cytoatlas:50052") == "dns:///perturbation.cytoatlas:50052"
    assert channel_target("localhost:50052") == "localhost:50052"


@pytest.mark.parametrize("way, rpc", [({}, "SocketGet"), ({"socket": False}, "DoGet"), ({"flight": False}, "Query")],
                         ids=["socket", "flight", "grpc"])
def test_round_robin_spreads_queries_and_killing_a_replica_fails_none(built, addresses, tmp_path, way, rpc):
    replicas = [ServiceProcess("perturbation", built["perturbation"], tmp_path / f"replica{i}.log")
                for i in range(2)]
    try:
        endpoint = ",".join(r.wait_listening() for r in replicas)
        with Router({**addresses, "perturbation": endpoint}, **way) as router:
            want = router.query(TABLE)
            killed = threading.Event()
            answers, failures = [], []

            def drive():  # several callers, so calls are in flight on the replica when it dies
                deadline = None
                while deadline is None or time.monotonic() < deadline:
                    try:
                        answers.append(router.query(TABLE).equals(want))
                    except Exception as exc:  # noqa: BLE001 - any failure is what this test counts
                        failures.append(repr(exc))
                    if killed.is_set() and deadline is None:
                        deadline = time.monotonic() + 2  # keep querying the survivor for 2 s

            drivers = [threading.Thread(target=drive, daemon=True) for _ in range(4)]  # never hang pytest
            for thread in drivers:
                thread.start()
            try:
                give_up = time.monotonic() + 60
                while min(queries_served(r.log, rpc) for r in replicas) < 20 and time.monotonic() < give_up:
                    time.sleep(0.05)  # until both replicas have served some traffic
                before = [queries_served(r.log, rpc) for r in replicas]
                replicas[0].process.send_signal(signal.SIGKILL)
            finally:
                killed.set()  # the drivers stop 2 s after this, whatever happened above
            for thread in drivers:
                thread.join(timeout=60)
        assert failures == []
        assert all(answers) and len(answers) > sum(before)
        assert min(before) >= 20
        assert queries_served(replicas[1].log, rpc) > before[1]  # the survivor took the rest
    finally:
        for replica in replicas:
            replica.stop()
