"""A service that is down fails a Router call fast, with a message that says what to do."""

import socket
import statistics
import time

import grpc
import pytest

from cytoatlas.client import Router, ServiceUnavailable
from cytoatlas.client.router import addresses_from_env
from cytoatlas.serving.config import DEFAULT_PORTS, Settings
from tests.conftest import closed_address, request_log

DOMAINS = ("atlas", "perturbation", "spatial")
TABLE = "tahoe_drug_effect"
FAST = 0.5  # seconds: a dead service must fail a call well within this


def median_seconds(call, times: int = 3) -> float:
    """Median wall time of `call()` raising ServiceUnavailable."""
    seconds = []
    for _ in range(times):
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            call()
        seconds.append(time.monotonic() - started)
    return statistics.median(seconds)


def test_a_dead_service_fails_a_call_in_well_under_half_a_second(built, start_service):
    dead = {d: closed_address() for d in DOMAINS}

    def new_router_query():  # discovery finds nothing and names the owner from the specs
        with Router(dead, timeout=10) as router:
            router.query(TABLE, limit=1)

    new_router = median_seconds(new_router_query)

    service = start_service("perturbation", built["perturbation"])
    live = {**dead, "perturbation": service.address}
    started = time.monotonic()
    with Router(live, timeout=10) as router:  # a new Router while atlas and spatial are down
        assert router.query(TABLE, limit=1).num_rows == 1
        one_down = time.monotonic() - started
        service.process.kill()  # the owner dies after discovery: the calls themselves fail
        service.process.wait(timeout=10)
        query = median_seconds(lambda: router.query(TABLE, limit=1))
        describe = median_seconds(lambda: router.describe(TABLE))
    print(f"\nFIGURE dead service: new Router query {new_router * 1000:.0f} ms, first query with 2 of 3 "
          f"services down {one_down * 1000:.0f} ms, query after the owner died {query * 1000:.0f} ms, "
          f"describe {describe * 1000:.0f} ms (medians of 3)")
    assert new_router < FAST and one_down < FAST and query < FAST and describe < FAST


def test_a_router_reaches_a_service_back_from_a_long_outage_within_one_reconnect_interval(built, start_service):
    # gRPC's default reconnect backoff (1 s growing 1.6x up to 120 s) left a Router failing calls for
    # seconds after the service it had lost was back (transport.RECONNECT_OPTIONS).
    service = start_service("perturbation", built["perturbation"], "--flight-port", "0")
    port = service.address.rsplit(":", 1)[1]
    with Router({**{d: closed_address() for d in DOMAINS}, "perturbation": service.address}, timeout=10) as router:
        assert router.query(TABLE, limit=1).num_rows == 1
        service.process.kill()
        service.process.wait(timeout=10)
        down_until = time.monotonic() + 6  # the channel keeps trying meanwhile, as after any outage
        while time.monotonic() < down_until:
            with pytest.raises(ServiceUnavailable):
                router.query(TABLE, limit=1)
            time.sleep(0.5)
        again = start_service("perturbation", built["perturbation"], "--port", port, "--flight-port", "0",
                              "--socket-port", "0")
        back, failed = time.monotonic(), 0
        while True:
            try:
                assert router.query(TABLE, limit=1).num_rows == 1
                break
            except ServiceUnavailable:
                failed += 1
                assert time.monotonic() - back < 10, "the Router never reached the service again"
                time.sleep(0.05)
        took = time.monotonic() - back
        # and through the new process's Arrow socket again (a new port and instance id), not over
        # gRPC for the rest of the Router's life: it asks ListTables anew after losing the old one
        while not request_log(again.log, "SocketGet"):
            assert time.monotonic() - back < 10, "the Router stayed on gRPC after the service came back"
            router.query(TABLE, limit=1)
    print(f"\nFIGURE after a 6 s outage the Router answered {took * 1000:.0f} ms after the service listened "
          f"again ({failed} calls failed meanwhile)")
    assert took < 1.2  # one reconnect interval (0.5 s, +20% jitter) and the call; gRPC's defaults: 1.4-3.6 s


def one_sentence_checks(error: ServiceUnavailable, address: str):
    message = str(error)
    assert error.service == "perturbation" and error.address == address, message
    assert message.count("perturbation service") == 1 and message.count(address) == 1, message
    for transport_text in ("::1", "ipv4:", "ipv6:", "last error", "Failed to connect", "UNAVAILABLE"):
        assert transport_text not in message, message  # gRPC's own details are not glued on
    return message


def test_a_refused_connection_is_named_once_with_the_configured_address_and_what_to_do():
    address = "localhost:" + closed_address().rsplit(":", 1)[1]  # localhost: gRPC also tries [::1]
    with Router({"atlas": closed_address(), "spatial": closed_address(), "perturbation": address},
                timeout=10) as router:
        with pytest.raises(ServiceUnavailable) as via_table:
            router.query(TABLE)
        with pytest.raises(ServiceUnavailable) as direct:
            router.database_info("perturbation")
    message = one_sentence_checks(via_table.value, address)
    assert message == (f"table '{TABLE}' belongs to the perturbation service at {address}, which refused the "
                       "connection (nothing is listening there); start it with `cytoatlas serve perturbation "
                       "--db FILE` or set CYTOATLAS_PERTURBATION_ADDR to where it runs")
    assert via_table.value.code == grpc.StatusCode.UNAVAILABLE
    message = one_sentence_checks(direct.value, address)
    assert message.startswith(f"the perturbation service at {address} refused the connection")
    assert "cytoatlas serve perturbation --db FILE" in message and "CYTOATLAS_PERTURBATION_ADDR" in message


def test_a_service_without_a_usable_file_is_named_with_the_file_and_what_to_do(start_service, tmp_path):
    missing = tmp_path / "nowhere" / "perturbation_data.duckdb"
    service = start_service("perturbation", missing)
    with Router({"atlas": closed_address(), "spatial": closed_address(), "perturbation": service.address},
                timeout=10) as router:
        with pytest.raises(ServiceUnavailable) as info:
            router.query(TABLE)
    message = one_sentence_checks(info.value, service.address)
    assert message.startswith(f"table '{TABLE}' belongs to the perturbation service at {service.address}, "
                              "which is running but not serving a usable file (")
    assert "no such file" in message and message.count(str(missing)) == 2  # the problem, then where to publish
    assert f"publish a good file at {missing} (`cytoatlas build perturbation`)" in message
    assert info.value.reason == "DATABASE_UNAVAILABLE"


def test_a_service_that_never_answers_is_named_with_the_deadline():
    with socket.socket() as silent:  # accepts connections (the backlog) and never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with Router({"perturbation": address}, timeout=0.5) as router, \
                pytest.raises(ServiceUnavailable) as info:
            router.database_info("perturbation")
    message = one_sentence_checks(info.value, address)
    assert message == (f"the perturbation service at {address} did not answer within 0.5 s; check that it is up "
                       "and not overloaded (`cytoatlas status`), or give the Router a longer timeout")
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_default_addresses_are_where_cytoatlas_serve_listens_by_default():
    # Not `localhost`, which resolves to ::1 first: the services listen on --host 127.0.0.1.
    assert addresses_from_env({}) == {d: f"{Settings().host}:{DEFAULT_PORTS[d]}" for d in DOMAINS}
    assert addresses_from_env({"CYTOATLAS_SPATIAL_ADDR": "10.0.0.5:50053"})["spatial"] == "10.0.0.5:50053"
