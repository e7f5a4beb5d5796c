"""The served file as it is now: picks up a newly published build without a restart.

Builders publish by renaming a finished file over the served path, so a new build shows as a new
inode (or size/mtime) at that path. `ServedFile.check()` notices that, opens the new file (which
runs the fast checks of `cytoatlas verify`, see Database.open), and switches `current()` to it. Every RPC holds the build that was current when it started
(`hold`, which the call interceptor takes around each RPC) and sees only that build through `current()`, so requests in
flight finish on the old file, which is closed when the last of them ends.
A file that cannot be served never replaces a good one; with no good one the service answers
UNAVAILABLE naming the file and the problem, and health says NOT_SERVING, until one is published.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from collections.abc import Callable

import grpc

from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import Database, DatabaseError, file_identity
from cytoatlas.serving.errors import Reason, ServiceError

log = logging.getLogger(__name__)


class ServedFile:
    """The `Database` new requests get; swapped when a new build is published at `path`."""

    def __init__(self, path: str, domain: str, settings: Settings,
                 on_status: Callable[[bool], None] = lambda serving: None):
        self.path, self.domain, self.settings = path, domain, settings
        self._on_status = on_status
        self._database: Database | None = None
        self._problem = "not opened yet"
        self._tried: tuple | None = None  # identity of the last file tried, good or bad
        self._lock = threading.Lock()  # one check at a time (poller and SIGHUP)
        self._leases: dict[Database, int] = {}  # RPCs in flight per build
        self._lease_lock = threading.Lock()
        self._held = threading.local()  # the build the RPC running on this worker thread holds
        self._stop = threading.Event()

    def current(self) -> Database:
        """The build this RPC holds (see `hold`), else the newest; UNAVAILABLE if there is none."""
        held = getattr(self._held, "db", None)
        if held is not None:
            return held
        db = self._database
        if db is None:
            raise ServiceError(
                grpc.StatusCode.UNAVAILABLE, Reason.DATABASE_UNAVAILABLE,
                f"the {self.domain} service has no usable database file: {self._problem}; "
                f"it will serve as soon as a good file is published at {self.path}",
                metadata={"service": self.domain, "path": self.path})
        return db

    @contextmanager
    def hold(self):
        """Keep the current build open, and `current()` on this thread pointing at it, until exit."""
        with self._lease_lock:
            db = self._database
            if db is not None:
                self._leases[db] = self._leases.get(db, 0) + 1
        self._held.db = db
        try:
            yield db
        finally:
            self._held.db = None
            if db is not None:
                self._release(db)

    def _release(self, db: Database) -> None:
        with self._lease_lock:  # decided under the lock: a new RPC may lease `db` until it is replaced
            self._leases[db] -= 1
            replaced_and_idle = self._leases[db] == 0 and db is not self._database
            if self._leases[db] == 0:
                del self._leases[db]
        if replaced_and_idle:
            db.close()  # the last RPC on a replaced build has ended

    @property
    def problem(self) -> str:
        return "" if self._database is not None else self._problem

    def check(self, force: bool = False) -> bool:
        """Open the file at `path` if it is new (or `force`); return True if a new build is served."""
        with self._lock:
            try:
                identity = file_identity(os.stat(self.path))
            except OSError as exc:
                identity = None
                problem = f"{self.path}: {exc.strerror.lower() if exc.strerror else exc}"
            served = self._database is not None and identity == self._database.identity
            tried = identity is not None and identity == self._tried
            if served or (tried and not force):  # force retries a file that failed, never the served one
                return False
            self._tried = identity
            if identity is None:
                return self._failed(problem)
            try:
                db = Database.open(self.path, self.domain, self.settings)
            except DatabaseError as exc:
                return self._failed(str(exc))
            with self._lease_lock:
                old, self._database = self._database, db
                close_old = old is not None and old not in self._leases
            if close_old:
                old.close()
            log.info("%s: serving %s (build %s)%s", self.domain, db.path, db.manifest.build_id,
                     f", replacing build {old.manifest.build_id}" if old else "")
            self._on_status(True)
            return True  # otherwise `old` is closed by _release when its last RPC ends

    def _failed(self, problem: str) -> bool:
        if self._database is None:
            self._problem = problem
            self._on_status(False)
            log.error("%s: cannot serve: %s", self.domain, problem)
        else:
            log.error("%s: keeps serving build %s; the new file cannot be served: %s",
                      self.domain, self._database.manifest.build_id, problem)
        return False

    def watch(self) -> None:
        """Poll the path in a daemon thread every reload_poll_seconds (0 = never)."""
        interval = self.settings.reload_poll_seconds
        if interval > 0:
            threading.Thread(target=self._poll, args=(interval,), name=f"{self.domain}-watch",
                             daemon=True).start()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.check()
            except Exception:  # never let the watcher die: the next tick tries again
                log.exception("%s: checking %s failed", self.domain, self.path)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._database is not None:
                self._database.close()
