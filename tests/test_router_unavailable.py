"""A service that is down fails a Router call fast, with a message that says what to do."""

import statistics
import time

import pytest

from cytoatlas.client import Router, ServiceUnavailable
from tests.conftest import closed_address

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
