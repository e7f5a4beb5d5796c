"""Overload protection: a fixed number of query RPCs run at once; the next is refused at once.

A refused call gets RESOURCE_EXHAUSTED with a RetryInfo hint instead of waiting in a queue that
could grow without end. gRPC's own `maximum_concurrent_rpcs` (set to max_workers in server.py)
is the backstop for calls that would otherwise wait for a worker thread; those are refused by
gRPC itself, with RESOURCE_EXHAUSTED but no hint. Health, reflection and catalog reads are never
limited (`limited`); the call interceptor (interceptor.py) asks `enter`/`leave` around the rest.
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
    def __init__(self, max_in_flight: int, retry_after: float):
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def enter(self, context) -> None:
        """Take a slot, or abort the call with RESOURCE_EXHAUSTED and a retry hint."""
        if self._slots.acquire(blocking=False):
            return
        ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.RESOURCE_EXHAUSTED,
                     f"the service is busy: {self.max_in_flight} queries are already running; "
                     f"retry in {self.retry_after:g} s",
                     metadata={"limit": "max_queries", "maxQueries": self.max_in_flight},
                     retry_after=self.retry_after).abort(context)

    def leave(self) -> None:
        self._slots.release()
