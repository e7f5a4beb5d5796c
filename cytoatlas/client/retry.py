"""Asking again when a busy service says so: the Router's retry of RESOURCE_EXHAUSTED refusals.

A service at its `--max-queries` limit refuses a query at once with RESOURCE_EXHAUSTED and a
google.rpc.RetryInfo delay. The Router waits that delay times a random factor in [0.5, 1.5)
(so callers refused together do not come back together), the delay growing 1.5x per refusal up to
MAX_DELAY, and asks again; it never sleeps past the call's deadline and makes at most `max_attempts` attempts, then
raises the server's last error. What is retried:

- RESOURCE_EXHAUSTED with RetryInfo: the server said a retry later will work (AIP-193). Except an
  ErrorInfo limit in NEVER_RETRIED, which no retry can fix. The server also sends RetryInfo with
  a query over its DuckDB memory limit (limit "duckdb_memory_limit"), so that one is retried too:
  it may fit once the queries running beside it end.
- gRPC's own refusal when every worker thread is busy (`maximum_concurrent_rpcs`): the same
  overload one layer down, but gRPC sends no hint, so BUSY_DELAY stands in for one. It is told
  from other hint-less RESOURCE_EXHAUSTED by its text and the missing ErrorInfo (every CytoAtlas
  error carries one).
- Nothing else. A RESOURCE_EXHAUSTED without a hint is a size limit (a row over the message cap,
  a message over the receive limit): the same request fails the same way again. UNAVAILABLE is
  gRPC's retry policy's (table_grpc_service_config.json), except a result stream cut off after
  its first message, which that policy cannot retry: the Router asks for that page once more
  (StreamBroken); and CANCELLED from gRPC itself, with no CytoAtlas details, before the first
  message: a call a server shutting down accepted but never started (a process of a domain
  stopping, its connection's last calls), asked for once more the same way.

The success path costs one function call and one clock read; the status details are only parsed
once a call has failed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 10
GROWTH = 1.5  # each further wait is 1.5x the one before ...
MAX_DELAY = 30.0  # ... up to this many seconds (before jitter)
JITTER = (0.5, 1.5)  # the wait is the delay times uniform(*JITTER)
BUSY_DELAY = 0.5  # seconds, for gRPC's hint-less "every worker is busy" refusal
GRPC_BUSY_DETAILS = "Concurrent RPC limit exceeded!"  # grpc/_server.py, maximum_concurrent_rpcs
NEVER_RETRIED = frozenset({"max_message_bytes"})  # ErrorInfo metadata "limit": the request itself is too big


class StreamBroken(Exception):
    """A result stream failed with UNAVAILABLE after its first message (its server went away)."""

    def __init__(self, error: grpc.RpcError):
        super().__init__(str(error))
        self.error = error


def shut_down_unstarted(err: grpc.RpcError) -> bool:
    """CANCELLED by gRPC, not by a CytoAtlas handler (whose errors carry google.rpc details): the
    server shut down with the call still waiting for a worker. The Router never cancels its own
    calls (its timeout is a deadline), so nothing else sends it."""
    if err.code() != grpc.StatusCode.CANCELLED:
        return False
    try:
        return rpc_status.from_call(err) is None
    except ValueError:
        return False


def busy_delay(err: grpc.RpcError) -> float | None:
    """Seconds the server asked for before a retry if `err` is a busy refusal, else None."""
    if not hasattr(err, "code") or err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    try:
        status = rpc_status.from_call(err) if hasattr(err, "trailing_metadata") else None
    except ValueError:  # details that do not match the status (a proxy rewrote it): no hint to trust
        return None
    if status is None:  # no google.rpc details: not from a CytoAtlas handler
        return BUSY_DELAY if err.details() == GRPC_BUSY_DETAILS else None
    delay = None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.metadata.get("limit") in NEVER_RETRIED:
                return None
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            delay = info.retry_delay.ToNanoseconds() / 1e9
    return delay


class Retry:
    """How one Router asks again; `call` runs an attempt until it answers or must give up."""

    def __init__(self, max_attempts: int = DEFAULT_MAX_ATTEMPTS, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 uniform: Callable[[float, float], float] = random.uniform):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.max_attempts = max_attempts
        self._clock, self._sleep, self._uniform = clock, sleep, uniform

    def call(self, attempt: Callable[[float | None], T], timeout: float | None) -> T:
        """`attempt(seconds left)` until it returns; re-raise its grpc.RpcError when that is not a
        busy refusal, or attempts run out, or the wait would end past `timeout` from now."""
        deadline = None if timeout is None else self._clock() + timeout
        attempts, refusals, reasked = 1, 0, False
        while True:
            try:
                return attempt(timeout)
            except StreamBroken as broken:
                error, delay = broken.error, 0.0
                if reasked or attempts >= self.max_attempts:
                    raise error from None
                reasked = True
            except grpc.RpcError as err:
                error, delay = err, busy_delay(err)
                if delay is None or attempts >= self.max_attempts:
                    raise
                delay = min(delay * GROWTH ** refusals, MAX_DELAY) * self._uniform(*JITTER)
                refusals += 1
            if deadline is not None:
                timeout = deadline - self._clock() - delay
                if timeout <= 0:  # the next attempt would start at or past the deadline
                    raise error
            if delay > 0:
                self._sleep(delay)
            attempts += 1
