"""Deadlines, cancellation, the server-side query timeout and overload, with deliberately heavy
queries on a bigger perturbation build (demo scale 0.4: 4.3M rows in parse10m_activity).

Long runs: `make test-reliability`. Every test prints its figures."""

import statistics
import threading
import time

import duckdb
import grpc
import pytest
from google.rpc import error_details_pb2

from builders import demo_data, engine
from cytoatlas.client.router import decode_arrow
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc
from tests.conftest import health_status, serving_pids, status_details

pytestmark = pytest.mark.reliability
HEAVY_SCALE = 0.4
TABLE = "parse10m_activity"


def aggregate(function, column, alias):
    return pb.Aggregate(function=function, column=column, alias=alias)


# Seconds of work (~8 s in-process with 2 threads here): holistic aggregates and a distinct count
# over ~4M rows in ~100K groups, sorted by a result.
HEAVY = pb.QueryRequest(
    table=TABLE, group_by=["donor_id", "cytokine", "cell_type", "signature", "signature_type"], limit=5,
    aggregates=[aggregate(pb.AGGREGATE_FUNCTION_MEDIAN, "activity", "median"),
                aggregate(pb.AGGREGATE_FUNCTION_STDDEV, "activity", "sd"),
                aggregate(pb.AGGREGATE_FUNCTION_COUNT_DISTINCT, "activity", "distinct"),
                aggregate(pb.AGGREGATE_FUNCTION_MEDIAN, "n_cells", "median_cells")],
    order_by=[pb.OrderBy(column="sd", descending=True)])
# A fraction of a second each: what the overload storm sends 64 of at once.
MEDIUM = pb.QueryRequest(
    table=TABLE, group_by=["signature", "cell_type"], limit=20,
    aggregates=[aggregate(pb.AGGREGATE_FUNCTION_MEDIAN, "activity", "median"),
                aggregate(pb.AGGREGATE_FUNCTION_COUNT, "", "n")],
    order_by=[pb.OrderBy(column="signature"), pb.OrderBy(column="cell_type")])
MEDIUM_SQL = ("SELECT signature, cell_type, median(activity) AS median, count(*) AS n FROM parse10m_activity "
              "GROUP BY signature, cell_type ORDER BY signature, cell_type LIMIT 20")
POINT = pb.QueryRequest(table="tahoe_cell_line_metadata", limit=1, format=pb.RESULT_FORMAT_ROWS)


@pytest.fixture(scope="module")
def heavy_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("heavy")
    demo_data.generate(root / "source", scale=HEAVY_SCALE, seed=0, domains=["perturbation"])
    return engine.build_domain("perturbation", root / "source", root / "data")


def retry_info(err) -> error_details_pb2.RetryInfo | None:
    return next(iter(status_details(err, error_details_pb2.RetryInfo)), None)


def seconds_until_admitted(stub, since: float, limit: float = 10.0) -> float:
    """Send a point query until a worker takes it; seconds from `since` until it answered."""
    while time.monotonic() - since < limit:
        try:
            list(stub.Query(POINT, timeout=5))
            return time.monotonic() - since
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            time.sleep(0.01)
    raise AssertionError(f"no worker free {limit} s later")


def test_deadline_cancel_and_server_timeout_free_the_worker(heavy_file, start_service, tmp_path):
    # One query slot: the point query can only run once the heavy one has really stopped.
    # The heavy query needs more than memory_limit: these services may spill to a temp directory.
    spill = ("--duckdb-temp-directory", str(tmp_path / "spill"))
    service = start_service("perturbation", heavy_file, "--max-queries", "1", "--query-timeout-seconds", "0", *spill)
    timed = start_service("perturbation", heavy_file, "--max-queries", "1", "--query-timeout-seconds", "1", *spill)
    figures = []
    with grpc.insecure_channel(service.address) as channel, grpc.insecure_channel(timed.address) as timed_channel:
        stub, timed_stub = pb_grpc.TableServiceStub(channel), pb_grpc.TableServiceStub(timed_channel)
        started = time.monotonic()
        list(stub.Query(HEAVY, timeout=120))
        full = time.monotonic() - started
        assert full > 3.0, f"the heavy query took only {full:.2f} s; it must outlast the deadline"

        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            list(stub.Query(HEAVY, timeout=1.0))
        deadline = started + 1.0
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        free = seconds_until_admitted(stub, deadline)
        figures.append(f"deadline 1 s: DEADLINE_EXCEEDED, worker free {free:.2f} s after the deadline")
        assert free < 1.0

        call = stub.Query(HEAVY, timeout=120)
        timer = threading.Timer(1.0, call.cancel)
        timer.start()
        with pytest.raises(grpc.RpcError) as info:
            list(call)
        cancelled_at = time.monotonic()
        assert info.value.code() == grpc.StatusCode.CANCELLED
        free = seconds_until_admitted(stub, cancelled_at)
        figures.append(f"cancel after 1 s: CANCELLED, worker free {free:.2f} s after the cancel")
        assert free < 1.0

        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            list(timed_stub.Query(HEAVY))  # no client deadline: the server's 1 s limit applies
        answered = time.monotonic() - started
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "longer than this service's limit of 1 s" in info.value.details()
        free = seconds_until_admitted(timed_stub, started + 1.0)
        figures.append(f"server timeout 1 s, no client deadline: DEADLINE_EXCEEDED after {answered:.2f} s, "
                       f"worker free {free:.2f} s after the limit")
        assert free < 1.5
    assert health_status(service.address) == health_status(timed.address) == "SERVING"
    print(f"\nFIGURE deadlines: heavy query alone {full:.2f} s; " + "; ".join(figures))


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_64_concurrent_heavy_queries_are_refused_fast_or_answered_right(heavy_file, start_service):
    limit_mb = 512
    service = start_service("perturbation", heavy_file, "--max-queries", "4", "--max-workers", "80",
                            "--duckdb-memory-limit", f"{limit_mb}MB", "--retry-after-seconds", "0.5")
    with duckdb.connect(str(heavy_file), read_only=True) as local:
        want = local.sql(MEDIUM_SQL).to_arrow_table()
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(64)

    def heavy():
        with grpc.insecure_channel(service.address) as channel:
            stub = pb_grpc.TableServiceStub(channel)
            list(stub.ListTables(pb.ListTablesRequest(), timeout=10).tables)  # connected before the storm
            barrier.wait()
            started = time.monotonic()
            try:
                table, _ = decode_arrow(list(stub.Query(MEDIUM, timeout=120)))
                outcome = ("ok", table.equals(want), None)
            except grpc.RpcError as err:
                outcome = (err.code().name, False, retry_info(err))
            with lock:
                results.append((*outcome, time.monotonic() - started))

    threads = [threading.Thread(target=heavy) for _ in range(64)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    with grpc.insecure_channel(service.address) as channel:  # a point query during the storm
        stub = pb_grpc.TableServiceStub(channel)
        point_started, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            try:
                rows = list(stub.Query(POINT, timeout=10))
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                hint = retry_info(err)
                time.sleep(hint.retry_delay.ToTimedelta().total_seconds() / 10)  # sooner than asked, to count
        point_latency = time.monotonic() - point_started
        storm_health = health_status(service.address)
        # Catalog reads are never refused: a client can still discover tables during the storm.
        storm_tables = len(stub.ListTables(pb.ListTablesRequest(), timeout=10).tables)
    for t in threads:
        t.join(timeout=300)
    assert rows[-1].stats.rows_returned == 1 and storm_health == "SERVING" and storm_tables > 0

    accepted = [r for r in results if r[0] == "ok"]
    refused = [r for r in results if r[0] == "RESOURCE_EXHAUSTED"]
    assert len(results) == 64 and len(accepted) + len(refused) == 64, {r[0] for r in results}
    assert accepted and all(correct for _, correct, _, _ in accepted)
    assert refused and all(hint is not None and hint.retry_delay.ToTimedelta().total_seconds() == 0.5
                           for _, _, hint, _ in refused)
    refusal_times = sorted(r[3] for r in refused)
    assert refusal_times[-1] < 2.0, "refusals must not wait for a slot"
    peak = max(peak_rss_mb(pid) for pid in serving_pids(service))
    # DuckDB keeps its buffers under memory_limit; each process adds Python, gRPC and Arrow copies.
    assert peak < limit_mb + 400, peak
    assert health_status(service.address) == "SERVING"

    # One query too big for the memory limit is refused, and the service carries on.
    with grpc.insecure_channel(service.address) as channel, pytest.raises(grpc.RpcError) as info:
        list(pb_grpc.TableServiceStub(channel).Query(HEAVY, timeout=120))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "more memory" in info.value.details()
    assert health_status(service.address) == "SERVING"
    memory_outcome = info.value.code().name
    print(f"\nFIGURE overload: 64 concurrent heavy queries, max-queries 4 in each of "
          f"{len(serving_pids(service))} processes: {len(accepted)} accepted "
          f"(all correct), {len(refused)} refused RESOURCE_EXHAUSTED with RetryInfo 0.5 s; refusal latency "
          f"median {statistics.median(refusal_times) * 1000:.0f} ms, max {refusal_times[-1] * 1000:.0f} ms; "
          f"accepted latency max {max(r[3] for r in accepted):.2f} s; point query during the storm answered "
          f"after {point_latency:.2f} s ({attempts} attempts); health during/after: {storm_health}/SERVING; "
          f"peak RSS {peak:.0f} MB with duckdb memory_limit {limit_mb} MB; "
          f"holistic group-by over the limit: {memory_outcome}")
