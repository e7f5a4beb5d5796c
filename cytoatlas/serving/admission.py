"""Overload protection: at most --max-queries query RPCs run at once; a few more wait, briefly.

A query that finds every slot taken waits in a bounded queue (--admission-queue calls, at most
--admission-wait-seconds each) for a running one to finish: a burst of many clients is served,
not refused, while the queue cannot grow without end. A query that finds the queue full, or waits
out its time, is refused with RESOURCE_EXHAUSTED and a RetryInfo hint (the Router waits and asks
again). gRPC's own `maximum_concurrent_rpcs` (= max_workers, in server.py) is the backstop for
calls beyond every worker thread; those get RESOURCE_EXHAUSTED from gRPC without a hint. The
defaults leave a worker for every running and waiting query plus 8 (config.py), so that backstop
holds health checks and catalog reads, which are never limited (`limited`).
"""

from __future__ import annotations

import threading

import grpc

from cytoatlas.serving.errors import Reason, ServiceError
from cytoatlas.table.v1 import table_service_pb2

# Health and reflection never touch the database: never limited, never given a build lease.
INFRASTRUCTURE_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
# Catalog reads answer from what the service read at open, without a query: never limited either,
# so a client can still discover tables (the Router's ListTables) while queries are refused.
_TABLE_SERVICE = table_service_pb2.DESCRIPTOR.services_by_name["TableService"].full_name
CATALOG_METHODS = frozenset(f"/{_TABLE_SERVICE}/{m}" for m in ("ListTables", "GetTable", "GetDatabaseInfo"))


def limited(method: str) -> bool:
    """Whether calls of `method` run a query, and so count toward --max-queries."""
    return not method.startswith(INFRASTRUCTURE_PREFIXES) and method not in CATALOG_METHODS


class Admission:
    def __init__(self, max_in_flight: int, retry_after: float, queue: int = 0, wait_seconds: float = 0.0):
        self.max_in_flight, self.retry_after = max_in_flight, retry_after
        self.queue, self.wait_seconds = queue, wait_seconds
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._waiting = 0
        self._lock = threading.Lock()

    def enter(self, context) -> None:
        """Take a slot, waiting in the queue if it has room; or abort the call with
        RESOURCE_EXHAUSTED and a retry hint."""
        try:
            self.admit(context.time_remaining())
        except ServiceError as exc:
            exc.abort(context)

    def admit(self, time_remaining: float | None = None) -> None:
        """Take a slot, waiting in the queue if it has room (at most `time_remaining` seconds, the
        call's deadline, when known); or raise RESOURCE_EXHAUSTED with a retry hint. Shared by the
        gRPC interceptor and the Flight endpoint (flight.py), so both count toward one limit."""
        if self._slots.acquire(blocking=False):
            return
        with self._lock:
            queued = self._waiting < self.queue
            if queued:
                self._waiting += 1
        if queued:
            try:
                wait = self.wait_seconds
                if time_remaining is not None:
                    wait = min(wait, max(0.0, time_remaining))
                if self._slots.acquire(timeout=wait):
                    return
            finally:
                with self._lock:
                    self._waiting -= 1
        raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.RESOURCE_EXHAUSTED,
                           f"the service is busy: {self.max_in_flight} queries are running and "
                           f"{self.queue} waiting; retry in {self.retry_after:g} s",
                           metadata={"limit": "max_queries", "maxQueries": self.max_in_flight,
                                     "admissionQueue": self.queue},
                           retry_after=self.retry_after)

    def leave(self) -> None:
        self._slots.release()
