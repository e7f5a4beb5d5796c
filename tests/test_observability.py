"""Metrics and request logs of a real service: scrape /metrics before and after real queries."""

import time
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cytoatlas.client import Router
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc
from tests.conftest import ServiceProcess, metrics_port, request_log

TABLE = "spatial_tissue_summary"


@pytest.fixture(scope="module")
def observed(built, tmp_path_factory):
    """A spatial service with metrics on a free port, and that port."""
    log = tmp_path_factory.mktemp("observed") / "spatial.log"
    service = ServiceProcess("spatial", built["spatial"], log, "--metrics-port", "0")
    service.wait_listening()
    yield service, metrics_port(service)
    service.stop()


def scrape(port: int) -> dict[tuple, float]:
    """Every sample on /metrics as {(name, sorted labels): value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("way,rpc", [({}, "SocketGet"), ({"socket": False}, "DoGet"), ({"flight": False}, "Query")],
                         ids=["router-socket", "router-flight", "router-grpc"])
def test_counters_move_with_queries_and_errors(observed, way, rpc):
    service, port = observed
    before = scrape(port)
    with Router({"spatial": service.address}, **way) as router:
        pages = list(router.query_pages(TABLE, page_size=7))
        build_id = router.database_info("spatial").build_id
    with grpc.insecure_channel(service.address) as channel, pytest.raises(grpc.RpcError) as missing:
        pb_grpc.TableServiceStub(channel).GetTable(pb.GetTableRequest(name="spatial_no_such_table"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    after = scrape(port)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    rows = sum(p.num_rows for p in pages)
    assert rows > 7 and len(pages) >= 2
    assert moved("cytoatlas_requests_total", rpc=rpc, code="OK") == len(pages)
    assert moved("cytoatlas_requests_total", rpc="GetTable", code="NOT_FOUND") == 1
    assert moved("cytoatlas_rows_served_total", table=TABLE) == rows
    assert moved("cytoatlas_bytes_served_total", table=TABLE) > 0
    assert moved("cytoatlas_request_duration_seconds_count", rpc=rpc) == len(pages)
    assert moved("cytoatlas_request_duration_seconds_sum", rpc=rpc) > 0
    assert after[("cytoatlas_requests_in_flight", (("rpc", rpc),))] == 0
    [(labels, value)] = [(dict(k[1]), v) for k, v in after.items() if k[0] == "cytoatlas_database_info"]
    assert (labels["domain"], labels["build_id"], value) == ("spatial", build_id, 1)


def test_one_json_log_line_per_request_with_the_callers_request_id(observed):
    service, _ = observed
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.TableServiceStub(channel)
        list(stub.Query(pb.QueryRequest(table=TABLE, limit=3), metadata=[("x-request-id", "req-42")]))
        with pytest.raises(grpc.RpcError):
            list(stub.Query(pb.QueryRequest(table=TABLE, columns=["nope"]),
                            metadata=[("x-request-id", "req-43")]))
    deadline = time.monotonic() + 10
    while len(lines := [line for line in request_log(service.log)
                        if line["request_id"] in ("req-42", "req-43")]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ok, bad = sorted(lines, key=lambda line: line["request_id"])
    assert ok.keys() >= {"request_id", "rpc", "table", "rows", "duration_ms", "code"}
    assert (ok["rpc"], ok["table"], ok["rows"], ok["code"]) == ("Query", TABLE, 3, "OK")
    assert (bad["rpc"], bad["rows"], bad["code"]) == ("Query", 0, "INVALID_ARGUMENT")


def test_health_checks_stay_out_of_the_request_log_and_requests_total(observed):
    """Probes call Health/Check every few seconds: they are counted on their own
    (cytoatlas_health_checks_total), never in cytoatlas_requests_total or the request log."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    service, port = observed
    before = scrape(port)
    logged = len(request_log(service.log))
    with grpc.insecure_channel(service.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(5):
            health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        with pytest.raises(grpc.RpcError):
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        pb_grpc.TableServiceStub(channel).ListTables(pb.ListTablesRequest(), timeout=5)
    deadline = time.monotonic() + 5
    while len(request_log(service.log)) < logged + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    after = scrape(port)
    lines = request_log(service.log)[logged:]
    assert [line["rpc"] for line in lines] == ["ListTables"]
    assert not any(rpc == "Check" for (name, labels) in after for key, rpc in labels if key == "rpc")
    assert after[("cytoatlas_health_checks_total", (("code", "OK"),))] - \
        before.get(("cytoatlas_health_checks_total", (("code", "OK"),)), 0) == 5
    assert after[("cytoatlas_health_checks_total", (("code", "NOT_FOUND"),))] >= 1
