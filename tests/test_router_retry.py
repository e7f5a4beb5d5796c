"""The Router rides out the refusals a busy service sends (RESOURCE_EXHAUSTED): it waits as asked
and tries again within the call's deadline, and gives up with the server's error otherwise."""

import collections
import threading
import time
import urllib.request
from concurrent import futures

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cytoatlas.client import CytoAtlasError, Router
from cytoatlas.client.retry import BUSY_DELAY, Retry, StreamBroken
from cytoatlas.serving.errors import Reason, ServiceError
from cytoatlas.table.v1 import table_service_pb2 as pb
from tests.conftest import closed_address, metrics_port

TABLE = "tahoe_drug_effect"
POINT = {"drug": "Bortezomib", "cell_line": "A549"}  # one drug on one cell line: ~80 rows
THREADS = 32
SECONDS = 4.0


def refusals(port: int) -> float:
    """cytoatlas_requests_total{code="RESOURCE_EXHAUSTED"} over every RPC, from /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "cytoatlas_requests_total" and s.labels.get("code") == "RESOURCE_EXHAUSTED")


@pytest.mark.reliability  # seconds of 32-thread load on a busy service: a long run
def test_32_threads_on_one_router_ride_out_a_busy_service_at_default_settings(built, start_service, local):
    # Default settings on 2 CPUs: 2 processes, each running 4 queries at once with 8 more waiting
    # up to 1 s (then RESOURCE_EXHAUSTED + RetryInfo), 20 gRPC workers (then gRPC's own
    # RESOURCE_EXHAUSTED without a hint); the 32 threads' pages spread over both processes.
    service = start_service("perturbation", built["perturbation"], "--metrics-port", "0")
    port = metrics_port(service)
    want = local["perturbation"].sql(
        f"SELECT count(*) FROM {TABLE} WHERE drug = 'Bortezomib' AND cell_line = 'A549'").fetchall()[0][0]
    refused_before = refusals(port)
    answers, failures, slowest, lock = [], [], [0.0], threading.Lock()
    # The other domains point at closed ports: nothing another test runs can answer there.
    addresses = {"atlas": closed_address(), "spatial": closed_address(), "perturbation": service.address}
    with Router(addresses, timeout=30) as router:  # fresh: the 32 threads also discover at once
        stop = time.monotonic() + SECONDS

        def drive():
            while (started := time.monotonic()) < stop:
                try:
                    rows = router.query(TABLE, where=POINT).num_rows
                except Exception as exc:  # noqa: BLE001 - any failure is what this test counts
                    with lock:
                        failures.append(repr(exc))
                else:
                    with lock:
                        answers.append(rows)
                        slowest[0] = max(slowest[0], time.monotonic() - started)

        threads = [threading.Thread(target=drive, daemon=True) for _ in range(THREADS)]  # never hang pytest
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=stop + 20 - time.monotonic())
        assert not any(thread.is_alive() for thread in threads), "a call outlived its retries"
        ended = time.monotonic() - stop + SECONDS
    refused = refusals(port) - refused_before
    print(f"\nFIGURE busy service, {THREADS} Router threads for {SECONDS:g} s: {len(answers)} answered, "
          f"{len(failures)} failed; the service refused {refused:.0f} calls (RESOURCE_EXHAUSTED); "
          f"slowest answer {slowest[0]:.2f} s; last thread done after {ended:.2f} s")
    assert failures == [], f"{len(failures)} failed, e.g. {failures[:3]}"
    assert answers and set(answers) == {want}
    assert refused > 0, "no refusal happened: the test did not load the service enough"


# -- the policy, with a fake clock ----------------------------------------------------------------

class Refusal(grpc.RpcError):
    """A failed call as gRPC raises it: code, details and the google.rpc status in the trailers."""

    def __init__(self, code=grpc.StatusCode.RESOURCE_EXHAUSTED, *, retry_after=None, limit=None,
                 message="the service is busy", rich=True):
        self._code, self._message = code, message
        self._trailers = ()
        if rich:
            error = ServiceError(code, Reason.RESOURCE_EXHAUSTED, message, retry_after=retry_after,
                                 metadata={"limit": limit} if limit else None)
            self._trailers = (("grpc-status-details-bin", error.to_status().SerializeToString()),)

    def code(self):
        return self._code

    def details(self):
        return self._message

    def trailing_metadata(self):
        return self._trailers


class FakeTime:
    def __init__(self):
        self.now, self.slept = 100.0, []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def run(errors, *, timeout=300.0, max_attempts=10, factor=1.0):
    """Retry.call over an attempt that raises `errors` in turn, then answers (jitter factor fixed):
    (the answer or the error raised, the waits, the timeout each attempt was given)."""
    fake, given, errors = FakeTime(), [], list(errors)

    def attempt(seconds_left):
        given.append(seconds_left)
        if errors:
            raise errors.pop(0)
        return "answer"

    retry = Retry(max_attempts, clock=fake.clock, sleep=fake.sleep, uniform=lambda low, high: factor)
    try:
        return retry.call(attempt, timeout), fake.slept, given
    except grpc.RpcError as err:
        return err, fake.slept, given


def test_a_refusal_with_retry_info_is_asked_again_after_the_hinted_delay_growing_per_attempt():
    result, slept, given = run([Refusal(retry_after=1.0)] * 3)
    assert result == "answer" and slept == pytest.approx([1.0, 1.5, 2.25])
    assert given == pytest.approx([300.0, 299.0, 297.5, 295.25])  # every attempt gets what is left
    _, slept, _ = run([Refusal(retry_after=1.0)], factor=0.5)  # the jitter scales the wait
    assert slept == [0.5]


def test_jitter_spreads_the_wait_between_half_and_one_and_a_half_times_the_delay():
    waits, refusals = [], []
    retry = Retry(2, sleep=waits.append)  # the real random jitter

    def attempt(_):
        if refusals:
            raise refusals.pop()
        return "ok"

    for _ in range(200):
        refusals.append(Refusal(retry_after=0.01))
        assert retry.call(attempt, None) == "ok"
    assert 0.005 <= min(waits) < 0.007 and 0.013 < max(waits) <= 0.015


def test_gives_up_with_the_servers_error_after_max_attempts_or_before_the_deadline():
    refusal = Refusal(retry_after=1.0)
    result, slept, given = run([refusal] * 20, max_attempts=4)
    assert result is refusal and len(given) == 4 and len(slept) == 3
    result, slept, given = run([refusal] * 20, timeout=3.0)  # waits 1, 1.5 fit; 2.25 would end past it
    assert result is refusal and slept == pytest.approx([1.0, 1.5]) and sum(slept) < 3.0
    result, slept, given = run([refusal] * 20, timeout=0.9)  # the first wait would already be too long
    assert result is refusal and slept == [] and given == [0.9]
    result, slept, _ = run([refusal] * 20, timeout=None, max_attempts=3)  # no deadline: attempts bound it
    assert result is refusal and len(slept) == 2


def test_what_no_retry_can_fix_is_raised_at_once():
    too_big = Refusal(limit="max_message_bytes", message="one row encodes to 5000000 bytes")  # no RetryInfo
    hinted_but_too_big = Refusal(limit="max_message_bytes", retry_after=1.0)
    no_hint = Refusal(message="some limit, no hint")
    bare = Refusal(message="Received message larger than max (5 vs. 4)", rich=False)  # gRPC's own
    unavailable = Refusal(grpc.StatusCode.UNAVAILABLE, retry_after=1.0, message="down")
    for error in (too_big, hinted_but_too_big, no_hint, bare, unavailable):
        result, slept, given = run([error])
        assert result is error and slept == [] and len(given) == 1, error.details()


def test_grpcs_own_busy_refusal_is_retried_without_a_hint():
    busy = Refusal(message="Concurrent RPC limit exceeded!", rich=False)
    result, slept, _ = run([busy, busy])
    assert result == "answer" and slept == pytest.approx([BUSY_DELAY, BUSY_DELAY * 1.5])


def test_a_stream_cut_off_mid_answer_is_asked_for_once_more_at_once():
    cut = Refusal(grpc.StatusCode.UNAVAILABLE, message="Socket closed", rich=False)
    result, slept, given = run([StreamBroken(cut)])
    assert result == "answer" and slept == [] and len(given) == 2
    result, _, given = run([StreamBroken(cut), StreamBroken(cut)])
    assert result is cut and len(given) == 2


# -- every Router call goes through it --------------------------------------------------------------

class AlwaysBusy(grpc.GenericRpcHandler):
    """Lists one table, refuses every other call with RESOURCE_EXHAUSTED + RetryInfo; counts calls."""

    def __init__(self):
        self.calls = collections.Counter()

    def service(self, handler_call_details):
        method = handler_call_details.method.rsplit("/", 1)[-1]
        self.calls[method] += 1
        if method == "ListTables":
            tables = pb.ListTablesResponse(tables=[pb.Table(name="busy_table", domain="perturbation")])
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: tables, response_serializer=pb.ListTablesResponse.SerializeToString)

        def refuse(request, context):
            ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.RESOURCE_EXHAUSTED, "busy",
                         retry_after=0.01).abort(context)
            yield  # a generator: Query is server-streaming

        if method == "Query":
            return grpc.unary_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(lambda request, context: next(refuse(request, context)))


def test_every_router_call_retries_a_busy_refusal_then_raises_it(tmp_path):
    handler = AlwaysBusy()
    server = grpc.server(futures.ThreadPoolExecutor(4), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    addresses = {"atlas": closed_address(), "spatial": closed_address(), "perturbation": f"127.0.0.1:{port}"}
    try:
        with Router(addresses, max_attempts=3, timeout=10) as router:
            for call in (lambda: router.query("busy_table"), lambda: router.describe("busy_table"),
                         lambda: router.database_info("perturbation")):
                with pytest.raises(CytoAtlasError) as info:
                    call()
                assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in str(info.value)
            profile = router.target_profile("IFNG")
            assert profile.errors["perturbation"].code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop(None)
    assert {m: handler.calls[m] for m in ("Query", "GetTable", "GetDatabaseInfo", "GetTargetProfile")} == \
        {"Query": 3, "GetTable": 3, "GetDatabaseInfo": 3, "GetTargetProfile": 3}
