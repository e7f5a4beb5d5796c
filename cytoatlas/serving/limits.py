"""The server-side query timeout: interrupts a query that runs past query_timeout_seconds.

It covers clients that set no deadline (or a longer one); a shorter client deadline interrupts the
query first through the context callback in table_service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc

from cytoatlas.serving.errors import Reason, ServiceError


class QueryTimeout:
    def __init__(self, seconds: float, context: grpc.ServicerContext, interrupt: Callable[[], None]):
        self.seconds = seconds
        self.fired = False
        self._timer = None
        remaining = context.time_remaining()
        if seconds > 0 and (remaining is None or remaining > seconds):
            self._timer = threading.Timer(seconds, self._fire, args=(interrupt,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, interrupt: Callable[[], None]) -> None:
        self.fired = True
        interrupt()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def error(self, table: str) -> ServiceError:
        return ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, Reason.QUERY_INTERRUPTED,
                            f"the query ran longer than this service's limit of {self.seconds:g} s "
                            f"(query_timeout_seconds) and was stopped; narrow it with filters or a limit",
                            metadata={"table": table, "limit": "query_timeout_seconds"})
