"""CPU milliseconds per query, client and server, for in-process DuckDB, the Router (through the
Arrow socket, and through Flight) and Flight.

`python -m bench.cpu [--calls-scale 1.0] [--serve-args '...']`. Wall-clock figures swing 2x on a
shared machine; CPU time per call much less, so this is the figure to judge a lever by. Calls are
sequential; the client's CPU is this process's `time.process_time()`, the server's the server
process's utime + stime from /proc (10 ms ticks, hence many calls). Uses the file `make bench`
cached (run it once first).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import duckdb

from bench.__main__ import CACHE, DEFAULT_SCALE, capacity_flags, process_tree, serve_command, start
from bench.queries import TABLE, cases, sql_for

CALLS = {"point (~12 rows)": 400, "~10,000 rows": 150, "~1,000,000 rows": 10}


def process_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its children (the service's processes) so far."""
    total = 0
    for process in process_tree(pid):
        fields = open(f"/proc/{process}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE)
    parser.add_argument("--calls-scale", type=float, default=1.0, help="multiply the calls per size")
    parser.add_argument("--serve-args", default="")
    args = parser.parse_args()
    import pyarrow.flight as flight

    from cytoatlas.client import Router

    db = CACHE / f"data-{args.scale}-0" / "perturbation_data.duckdb"
    if not db.exists():
        raise SystemExit(f"{db} not built yet: run `make bench` once")
    con = duckdb.connect(str(db), read_only=True)
    service, address = start("cpu-service", serve_command(db, f"{capacity_flags(16)} {args.serve_args}"))
    peer, flight_address = start("cpu-flight", [sys.executable, "-m", "bench.flight_server", str(db)])
    try:
        router = Router({"perturbation": address}, keep_large_buffers=True)  # as before it was opt-in
        router_flight = Router({"perturbation": address}, keep_large_buffers=True, socket=False)
        client = flight.FlightClient(f"grpc://{flight_address}")
        ways = {"in-process": (None, lambda w, l: con.sql(**sql_for(w, l)).to_arrow_table()),
                "router": (service.pid, lambda w, l: router.query(TABLE, where=w, limit=l or None)),
                "router-flight": (service.pid, lambda w, l: router_flight.query(TABLE, where=w, limit=l or None)),
                "flight": (peer.pid, lambda w, l: client.do_get(flight.Ticket(json.dumps([w, l]))).read_all())}
        print(f"{'result':18} {'way':13} {'client ms':>10} {'server ms':>10} {'total ms':>9}   (CPU per call)")
        for name, case in cases(con).items():
            calls = max(2, int(CALLS[name] * args.calls_scale))
            for way, (pid, call) in ways.items():
                rng = random.Random(0)
                queries = [case(rng) for _ in range(calls)]
                call(*queries[0])  # warm-up
                client_started, server_started = time.process_time(), process_cpu(pid) if pid else 0.0
                for query in queries:
                    call(*query)
                client_ms = (time.process_time() - client_started) * 1000 / calls
                server_ms = ((process_cpu(pid) - server_started) * 1000 / calls) if pid else 0.0
                print(f"{name:18} {way:13} {client_ms:>10.3f} {server_ms:>10.3f} {client_ms + server_ms:>9.3f}",
                      flush=True)
    finally:
        for process in (service, peer):
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
