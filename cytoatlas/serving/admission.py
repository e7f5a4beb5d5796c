"""Overload protection: a fixed number of query RPCs run at once; the next is refused at once.

A refused call gets RESOURCE_EXHAUSTED with a RetryInfo hint instead of waiting in a queue that
could grow without end. gRPC's own `maximum_concurrent_rpcs` (set to max_workers in server.py)
is the backstop for calls that would otherwise wait for a worker thread; those are refused by
gRPC itself, with RESOURCE_EXHAUSTED but no hint. Health, reflection and catalog reads are never limited.
"""

from __future__ import annotations

import threading

import grpc

from cytoatlas.serving.errors import Reason, ServiceError
from cytoatlas.table.v1 import table_service_pb2

# Health and reflection never touch the database: never limited here, never given a build lease (swap.py).
INFRASTRUCTURE_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
# Catalog reads answer from what the service read at open, without a query: never limited either,
# so a client can still discover tables (the Router's ListTables) while queries are refused.
_TABLE_SERVICE = table_service_pb2.DESCRIPTOR.services_by_name["TableService"].full_name
CATALOG_METHODS = frozenset(f"/{_TABLE_SERVICE}/{m}" for m in ("ListTables", "GetTable", "GetDatabaseInfo"))


class AdmissionInterceptor(grpc.ServerInterceptor):
    def __init__(self, max_in_flight: int, retry_after: float):
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(INFRASTRUCTURE_PREFIXES) or method in CATALOG_METHODS:
            return handler
        if handler.request_streaming:  # no client-streaming RPCs exist; leave any future one alone
            return handler
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream), handler.request_deserializer,
                handler.response_serializer)
        return grpc.unary_unary_rpc_method_handler(
            self._unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer)

    def _admit(self, context) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.RESOURCE_EXHAUSTED,
                     f"the service is busy: {self.max_in_flight} queries are already running; "
                     f"retry in {self.retry_after:g} s",
                     metadata={"limit": "max_queries", "maxQueries": self.max_in_flight},
                     retry_after=self.retry_after).abort(context)
        return False  # abort raises; kept for readers

    def _unary(self, behavior):
        def admitted(request, context):
            self._admit(context)
            try:
                return behavior(request, context)
            finally:
                self._slots.release()
        return admitted

    def _streaming(self, behavior):
        def admitted(request, context):
            self._admit(context)
            try:  # the slot is held until the last message is sent (or the client goes away)
                yield from behavior(request, context)
            finally:
                self._slots.release()
        return admitted
