"""Signals as bytes on a pipe, for a main thread that waits on file descriptors.

signal.set_wakeup_fd writes each arriving signal's number to the pipe, and the handlers do
nothing and take no lock: an Event set from a handler deadlocks when the signal lands while the
main thread holds the Event's own lock (entering or leaving its wait), which a SIGTERM right
after start did under load. The service (server.StopSignals) reads the pipe alone; the
supervisor of several processes (processes.py) waits on it beside its workers' pipes."""

from __future__ import annotations

import os
import signal


class SignalPipe:
    """Install no-op handlers for `signals`; their numbers arrive on `fd`, read by `read()`."""

    def __init__(self, signals: tuple[signal.Signals, ...]):
        self.fd, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end)
        for sig in signals:
            signal.signal(sig, lambda *_: None)  # the wakeup byte is what counts

    def read(self) -> set[int]:
        """The signals that arrived since the last read (blocks until one does)."""
        return set(os.read(self.fd, 64))
