"""Capacity from the machine (affinity and cgroup CPU quota) and the admission queue: a burst a
little beyond --max-queries waits and is served; beyond the queue, or past the wait, it is
refused with a retry hint."""

from __future__ import annotations

import math
import threading
import time

import grpc
import pytest

from cytoatlas.serving import machine
from cytoatlas.serving.admission import Admission
from cytoatlas.serving.config import Settings


@pytest.mark.parametrize("files,cpus", [
    ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs of quota -> 2
    ({"cpu.max": "max 100000\n"}, None),  # no quota: the affinity mask decides
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_usable_cpus_follow_the_cgroup_quota(tmp_path, files, cpus):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = machine.usable_cpus(tmp_path / "none")
    assert machine.usable_cpus(tmp_path) == (min(cpus, affinity) if cpus else affinity)


def test_sizes_left_at_zero_come_from_the_machine():
    cpus = machine.usable_cpus()
    settings = Settings()
    # 4 query slots per CPU for the service, shared out among its processes (one per CPU)
    per_process = math.ceil(4 * cpus / settings.processes)
    assert settings.processes == cpus
    assert (settings.max_queries, settings.admission_queue, settings.duckdb_threads) == (
        per_process, 2 * per_process, cpus)
    alone = Settings(processes=1)
    assert (alone.max_queries, alone.admission_queue) == (4 * cpus, 8 * cpus)
    assert settings.max_workers == settings.max_queries + settings.admission_queue + 8
    explicit = Settings(max_queries=3, admission_queue=0, max_workers=5, duckdb_threads=1)
    assert (explicit.max_queries, explicit.admission_queue, explicit.max_workers, explicit.duckdb_threads) == (3, 0, 5, 1)


class Refused(Exception):
    pass


class Context:
    """The two things Admission asks of a gRPC context: its deadline and how to abort."""

    def __init__(self, remaining=None):
        self.remaining = remaining

    def time_remaining(self):
        return self.remaining

    def abort_with_status(self, status):
        raise Refused(status)


def test_a_query_waits_in_the_queue_for_a_slot_and_beyond_the_queue_is_refused():
    admission = Admission(1, retry_after=0.25, queue=1, wait_seconds=5.0)
    admission.enter(Context())  # the one running query
    admitted = threading.Event()
    waiter = threading.Thread(target=lambda: (admission.enter(Context()), admitted.set()))
    waiter.start()
    deadline = time.monotonic() + 5
    while admission._waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(Refused) as refused:  # the queue (1) is full: refused at once
        started = time.monotonic()
        admission.enter(Context())
    assert time.monotonic() - started < 0.5
    status = refused.value.args[0]
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "1 queries are running and 1 waiting" in status.details
    assert not admitted.is_set()
    admission.leave()  # the running query ends: the waiting one gets its slot
    waiter.join(5)
    assert admitted.is_set()
    admission.leave()


def test_a_queued_query_is_refused_after_its_wait_or_its_deadline():
    admission = Admission(1, retry_after=0.25, queue=4, wait_seconds=0.2)
    admission.enter(Context())
    for context, most in ((Context(), 0.2), (Context(remaining=0.05), 0.05)):
        started = time.monotonic()
        with pytest.raises(Refused):
            admission.enter(context)
        assert most - 0.01 <= time.monotonic() - started < most + 0.5
    assert admission._waiting == 0
