"""The server-side query timeout: interrupts a query that runs past query_timeout_seconds.

It covers clients that set no deadline (or a longer one); a shorter client deadline interrupts the
query first through the context callback in table_service.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator

import duckdb
import grpc

from cytoatlas.serving.errors import Reason, ServiceError

log = logging.getLogger(__name__)


class _Watchdog:
    """One thread for every query timeout of the process. A threading.Timer per query started
    and ended an OS thread on every call (~0.1 ms of CPU and GIL hand-offs per point query).
    Entries sit in a heap by deadline; cancelling blanks one, and blanks are dropped as they
    surface (or all at once when many pile up)."""

    def __init__(self):
        self._heap: list = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, seconds: float, fire: Callable[[], None]) -> list:
        """Call `fire` in `seconds` unless the returned entry is cancelled (entry[0] = None)."""
        entry = [fire]
        with self._wake:
            if len(self._heap) > 4096:  # mostly cancelled entries: compact
                self._heap = [e for e in self._heap if e[2][0] is not None]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), entry))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="query-timeouts", daemon=True)
                self._thread.start()
            if self._heap[0][2] is entry:  # the earliest deadline now: the thread must wake sooner
                self._wake.notify()
        return entry

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][2][0] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, _, entry = self._heap[0]
                if deadline > time.monotonic():
                    self._wake.wait(deadline - time.monotonic())
                    continue
                heapq.heappop(self._heap)
                fire, entry[0] = entry[0], None
                if fire is not None:
                    self._wake.release()
                    try:
                        fire()
                    except Exception:  # this thread serves every timeout: one failure must not end it
                        log.exception("query timeout: interrupting a query failed")
                    finally:
                        self._wake.acquire()


_WATCHDOG = _Watchdog()


class QueryTimeout:
    def __init__(self, seconds: float, context: grpc.ServicerContext | None, interrupt: Callable[[], None]):
        self.seconds = seconds
        self.fired = False
        self._entry = None
        remaining = context.time_remaining() if context is not None else None
        if seconds > 0 and (remaining is None or remaining > seconds):
            self._entry = _WATCHDOG.schedule(seconds, lambda: self._fire(interrupt))

    def _fire(self, interrupt: Callable[[], None]) -> None:
        self.fired = True
        interrupt()

    def cancel(self) -> None:
        if self._entry is not None:
            self._entry[0] = None

    def error(self, table: str) -> ServiceError:
        return ServiceError(grpc.StatusCode.DEADLINE_EXCEEDED, Reason.QUERY_INTERRUPTED,
                            f"the query ran longer than this service's limit of {self.seconds:g} s "
                            f"(query_timeout_seconds) and was stopped; narrow it with filters or a limit",
                            metadata={"table": table, "limit": "query_timeout_seconds"})


@contextlib.contextmanager
def query_cursor(db, context: grpc.ServicerContext | None, timeout_seconds: float,
                 table: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh cursor for one statement, interrupted when the client cancels, its deadline passes
    (the context callback) or the server's query timeout fires; the last is answered
    DEADLINE_EXCEEDED naming that limit. Used by TableService and the typed RPCs alike."""
    cursor = db.cursor()
    finished = False

    def interrupt():  # client gone or time up: stop DuckDB, free the worker
        if not finished:
            with contextlib.suppress(duckdb.ConnectionException):  # closed meanwhile: nothing to stop
                cursor.interrupt()

    if context is not None:
        context.add_callback(interrupt)
    timeout = QueryTimeout(timeout_seconds, context, interrupt)
    try:
        yield cursor
    except duckdb.InterruptException:
        if timeout.fired:
            raise timeout.error(table) from None
        raise
    finally:
        finished = True
        timeout.cancel()
        cursor.close()
