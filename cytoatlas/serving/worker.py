"""One of several processes serving a domain (`--processes N`), started by processes.py.

`python -m cytoatlas.serving.worker FD`: FD is this process's end of a socket pair with the
supervisor, carrying pickled messages (multiprocessing.connection). The supervisor sends the
settings and this process's index; the worker starts a whole service (server.start_server) on
the shared gRPC port, with its own Flight and Arrow socket ports (the first process the domain's,
the others any free ones: a client must reach each process's), and answers

  ("ready", index, flight_port, instance_id, socket_port, status)
                                          listening; status a processes.WorkerStatus
  ("failed", index, message)              could not start (the message says why)
  ("status", index, status)               after each check of the file (hot swap)

then receives ("processes", [(flight_port, instance_id, socket_port), ...]): every process of the domain,
which ListTables returns. No worker outlives its supervisor: on Linux the kernel kills it the
moment the supervisor dies (PR_SET_PDEATHSIG), so `kill -9` of the service ends all of it at
once, as it ends a single process; and when the supervisor's end of the pair closes, the worker
stops as on SIGTERM.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection

from cytoatlas.serving import security
from cytoatlas.serving.database import DatabaseError
from cytoatlas.serving.processes import WorkerStatus
from cytoatlas.serving.server import RunningServer, StopSignals, start_server
from cytoatlas.table.v1 import table_service_pb2 as pb

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def status(running: RunningServer) -> WorkerStatus:
    """What this process serves now, or why it serves nothing."""
    if running.files.problem:
        return WorkerStatus(serving=False, problem=running.files.problem)
    db = running.files.current()
    return WorkerStatus(serving=True, path=str(db.path), build_id=db.manifest.build_id,
                        built_at=db.manifest.built_at, tables=len(db.tables))


def die_with_supervisor() -> None:
    """Ask Linux to SIGKILL this process when its parent, the supervisor, dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the reader below still stops it
        pass


def run(conn: Connection) -> int:
    die_with_supervisor()
    domain, settings, index = conn.recv()  # EOFError if the supervisor died before the call above
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)s %(name)s (process {index}): %(message)s")
    sending = threading.Lock()  # the status callback runs on the watcher's and SIGHUP's threads

    def send(message) -> None:
        with sending:
            try:
                conn.send(message)
            except OSError:  # the supervisor is gone: the reader below stops this process
                pass

    holder: dict[str, RunningServer] = {}
    try:
        running = start_server(domain, settings, shared_port=True, on_status=lambda serving: (
            send(("status", index, status(holder["running"]))) if "running" in holder else None))
    except (DatabaseError, security.SecurityError) as exc:
        send(("failed", index, str(exc)))
        return 2
    holder["running"] = running
    running.observer.process = index
    signals = StopSignals(running.files, domain)
    instance = running.flight.instance_id if running.flight is not None else ""
    send(("ready", index, running.flight_port or 0, instance, running.socket_port or 0, status(running)))

    def listen() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                os.kill(os.getpid(), signal.SIGTERM)  # the supervisor is gone: stop, gracefully
                return
            if message[0] == "processes":
                running.tables.processes = [pb.ServiceProcess(flight_port=port, instance_id=instance_id,
                                                              socket_port=socket_port)
                                            for port, instance_id, socket_port in message[1]]

    threading.Thread(target=listen, name=f"{domain}-supervisor", daemon=True).start()
    signals.wait()
    running.stop(settings.grace_seconds)
    return 0


if __name__ == "__main__":
    code = run(Connection(int(sys.argv[1])))
    # Ended without the interpreter's teardown, as multiprocessing ends its children: the reader
    # thread still holds the stopped service, which nanobind (DuckDB's bindings) reports as leaked.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)
