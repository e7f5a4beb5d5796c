"""`make bench`: the service against in-process DuckDB and its peers on the same file, in one run.

Ways of getting a query's result, all on the same DuckDB file and the same SQL (bench/queries.py):
  in-process   `con.sql(sql, params=...).to_arrow_table()` in this process: the baseline
  router       our service at its DEFAULT settings through the Router as the README shows it
               (reading through each process's Arrow socket): the target
  router-flight  the same service through the Router with socket=False (its Arrow Flight endpoint)
  router-grpc  the same service through the Router with flight=False (TableService.Query)
  stub         the same service, a direct TableService stub, Arrow decoded to a pyarrow.Table
  flight       a standalone Arrow Flight server (pyarrow.flight do_get), read into a pyarrow.Table
  floor        that Flight server sending a result of the same size it holds in memory (the case's
               first query, run once): the round trip alone, what no server over the wire can beat
  json         JSON over HTTP (the CytoAtlas web API's way), decoded to Python rows
For ~12, ~10,000 and ~1,000,000 rows x 8 columns, interleaved in shuffled order and repeated;
then QPS of point queries at 1, 4, 16 and 64 client threads (in-process, the Router at defaults,
the Router against a service tuned for that many clients, the Router against the service at
defaults but --processes 1 (router-1p: what the processes lever gives), the Flight peer; failed
calls counted),
and the Router's QPS with the service pinned to 1 then 2 cores; then builder ingest of the
largest CSV vs DuckDB's own CREATE TABLE AS read_csv, with peak RSS; then start -> SERVING time; then
SearchService latency per domain on scale-1 files (bench/search.py; built once into bench/.cache).
Prints medians, p10-p90 spread and ratios to in-process; writes the figures to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import pathlib
import platform
import random
import shlex
import statistics
import subprocess
import sys
import threading
import time

import duckdb
import grpc

from bench import ingest, search
from bench.queries import TABLE, cases, sql_for

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
DEFAULT_SCALE = 0.25  # parse10m_activity then has > 1M SecAct rows (0.2 is the smallest scale that does)
DOMAIN_NOTE = "perturbation domain's sources into one file"
WAYS = ("in-process", "router", "router-flight", "router-grpc", "stub", "flight", "floor", "json")
CONCURRENT_WAYS = ("in-process", "router", "router-tuned", "router-1p", "flight")
CLIENT_COUNTS = (1, 4, 16, 64)


def prepare(scale: float, seed: int) -> tuple[pathlib.Path, pathlib.Path]:
    """Demo sources and the built perturbation file, cached between runs by scale and seed."""
    from builders import demo_data, engine

    source = CACHE / f"source-{scale}-{seed}"
    data = CACHE / f"data-{scale}-{seed}"
    if not (source / ".complete").exists():
        print(f"generating demo data at scale {scale} (cached in {source}) ...", flush=True)
        demo_data.generate(source, scale=scale, seed=seed, domains=("perturbation",))
        (source / ".complete").touch()
    # built once; a cached file the spec has since changed gets those tables rebuilt
    db = search.ensure_built("perturbation", source, data, "perturbation_data.duckdb", engine,
                             lambda line: print(line, flush=True))
    return source, db


def start(name: str, command: list[str], logs: pathlib.Path = CACHE) -> tuple[subprocess.Popen, str]:
    """Start a server process; return it and the HOST:PORT from its "listening on" line."""
    log = logs / f"{name}.log"
    process = subprocess.Popen(command, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log.read_text()
        if "listening on" in text:
            return process, text.split("listening on ", 1)[1].split(",", 1)[0].split()[0]
        if process.poll() is not None:
            raise SystemExit(f"{name} failed to start: {text}")
        time.sleep(0.02)
    process.kill()
    raise SystemExit(f"{name} did not start in 30 s")


def serve_command(db: pathlib.Path, extra: str = "") -> list[str]:
    return [str(BIN / "cytoatlas"), "serve", "perturbation", "--db", str(db), "--port", "0", "--flight-port", "0",
            "--socket-port", "0", *shlex.split(extra)]


def capacity_flags(clients: int) -> str:
    """The tuned service: a query slot and a worker for every client, so none is ever refused
    (at defaults the service admits 4 x CPUs queries, queues 2 x more, refuses the rest with a
    retry hint the Router waits out)."""
    return f"--max-queries {clients} --max-workers {clients + 8}"


def process_tree(pid: int) -> list[int]:
    """`pid` and its children (a service's processes: --processes), theirs in turn."""
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                pids += [p for child in listing.read().split() for p in process_tree(int(child))]
        except FileNotFoundError:  # a thread that ended since the listing
            pass
    return pids


def pin(pid: int, cores: int) -> None:
    """Let process `pid`, its children and all their threads run on the first `cores` CPUs only."""
    allowed = sorted(os.sched_getaffinity(0))[:cores]
    for process in process_tree(pid):
        for task in os.listdir(f"/proc/{process}/task"):
            try:
                os.sched_setaffinity(int(task), allowed)
            except ProcessLookupError:  # a thread that ended since the listing
                pass


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def spread(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda p: ordered[min(len(ordered) - 1, int(p * len(ordered)))]  # noqa: E731
    return {"median": statistics.median(ordered), "p10": pick(0.1), "p90": pick(0.9), "n": len(ordered)}


def start_to_serving(db: pathlib.Path, runs: int, extra: str = "") -> list[float]:
    """Seconds from spawning `cytoatlas serve` to its health check answering SERVING."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        process, address = start("startup", serve_command(db, extra))
        try:
            with grpc.insecure_channel(address) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    try:
                        status = stub.Check(health_pb2.HealthCheckRequest(), timeout=5, wait_for_ready=True).status
                    except grpc.RpcError:
                        status = None
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                    time.sleep(0.005)
            times.append(time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=15, help="rounds per result size (interleaved)")
    parser.add_argument("--json-1m-repeats", type=int, default=3,
                        help="rounds of JSON on the 1M-row result (seconds per call)")
    parser.add_argument("--seconds", type=float, default=6.0,
                        help="time each way gets at each client count (and each pinning)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds the concurrency time is split in")
    parser.add_argument("--startups", type=int, default=3, help="service starts timed")
    parser.add_argument("--ingests", type=int, default=2, help="builder / DuckDB ingest pairs timed")
    parser.add_argument("--serve-args", default="",
                        help="extra `cytoatlas serve` flags for both services, e.g. '--request-log off' "
                             "(default none: the measured service runs at its defaults)")
    parser.add_argument("--search-rounds", type=int, default=10,
                        help="rounds of the search section's queries (0 = leave the section out)")
    parser.add_argument("--quick", action="store_true",
                        help="iterate fast: --repeats 5 --seconds 2 --rounds 1 --startups 1 --ingests 1 "
                             "--search-rounds 5")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.seconds, args.rounds, args.startups, args.ingests = 5, 2.0, 1, 1, 1
        args.search_rounds = min(args.search_rounds, 5)
        args.json_1m_repeats = 1

    import pyarrow.flight as flight

    from cytoatlas.client import Router
    from cytoatlas.client.router import decode_arrow
    from cytoatlas.requests import to_filters
    from cytoatlas.table.v1 import table_service_pb2 as pb
    from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc

    CACHE.mkdir(parents=True, exist_ok=True)
    source, db = prepare(args.scale, args.seed)
    con = duckdb.connect(str(db), read_only=True)
    queries = cases(con)
    tuned_flags = f"{capacity_flags(max(CLIENT_COUNTS))} {args.serve_args}".strip()
    results = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "scale": args.scale, "machine": platform.platform(), "cpus": len(os.sched_getaffinity(0)),
               "args": vars(args), "tuned_flags": tuned_flags, "file_bytes": db.stat().st_size,
               "cases": {}, "concurrency": {}, "pinned": {}}

    servers = {}
    try:
        for name, command in {"service": serve_command(db, args.serve_args),
                              "one-process": serve_command(db, f"--processes 1 {args.serve_args}"),
                              "tuned": serve_command(db, tuned_flags),
                              "flight": [sys.executable, "-m", "bench.flight_server", str(db)],
                              "json": [sys.executable, "-m", "bench.json_server", str(db)]}.items():
            servers[name] = start(name, command)
        address, tuned_address = servers["service"][1], servers["tuned"][1]
        flight_address, json_address = servers["flight"][1], servers["json"][1]
        # as the README shows it (keep_large_buffers as the `cytoatlas` command has it)
        router = Router({"perturbation": address}, keep_large_buffers=True)
        router_flight = Router({"perturbation": address}, keep_large_buffers=True, socket=False)
        router_grpc = Router({"perturbation": address}, keep_large_buffers=True, flight=False)
        router_tuned = Router({"perturbation": tuned_address}, keep_large_buffers=True)
        # the defaults but one process: what serving from one process per CPU gives
        router_1p = Router({"perturbation": servers["one-process"][1]}, keep_large_buffers=True)
        channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
        stub = pb_grpc.TableServiceStub(channel)
        flight_client = flight.FlightClient(f"grpc://{flight_address}")
        print(f"service {address} (defaults), tuned {tuned_address} ({tuned_flags}), flight {flight_address}, "
              f"json {json_address}; file {db} ({db.stat().st_size / 1e6:.0f} MB)", flush=True)

        def json_call(connection: http.client.HTTPConnection, where, limit):
            connection.request("POST", "/query", json.dumps([where, limit]))
            response = connection.getresponse()
            return json.loads(response.read())

        def ways_for(thread_local: bool):
            """name -> call(where, limit) -> result; cursor and HTTP connection per client thread,
            one Router (and Flight client) shared by all threads, as a service would share it."""
            cursor = con.cursor() if thread_local else con
            connection = http.client.HTTPConnection(json_address)
            return {
                "in-process": lambda w, l: cursor.sql(**sql_for(w, l)).to_arrow_table(),
                "router": lambda w, l: router.query(TABLE, where=w, limit=l or None),
                "router-flight": lambda w, l: router_flight.query(TABLE, where=w, limit=l or None),
                "router-grpc": lambda w, l: router_grpc.query(TABLE, where=w, limit=l or None),
                "router-tuned": lambda w, l: router_tuned.query(TABLE, where=w, limit=l or None),
                "router-1p": lambda w, l: router_1p.query(TABLE, where=w, limit=l or None),
                "stub": lambda w, l: decode_arrow(stub.Query(pb.QueryRequest(
                    table=TABLE, filters=to_filters(w), limit=l)))[0],
                "flight": lambda w, l: flight_client.do_get(flight.Ticket(json.dumps([w, l]))).read_all(),
                "floor": lambda w, l: flight_client.do_get(flight.Ticket(b"held:" + json.dumps([w, l]).encode())).read_all(),
                "json": lambda w, l: json_call(connection, w, l),
            }

        ways = ways_for(False)
        for name, case in queries.items():
            print(f"{name} ...", flush=True)
            first = case(random.Random(0))
            rows = {way: len(ways[way](*first)) for way in WAYS}  # warm-up, and the ways agree
            assert len(set(rows.values())) == 1, f"{name}: the ways disagree on row count: {rows}"
            cap = {"json": args.json_1m_repeats} if rows["in-process"] > 100_000 else {}
            samples = {way: [] for way in WAYS}
            rng = random.Random(1)
            for _ in range(args.repeats):
                where, limit = case(rng)
                for way in random.sample(WAYS, len(WAYS)):  # interleaved, shuffled order
                    if len(samples[way]) < cap.get(way, args.repeats):
                        asked = first if way == "floor" else (where, limit)  # the floor holds the first
                        samples[way].append(timed(lambda: ways[way](*asked)))
            results["cases"][name] = {"rows": rows["in-process"], **{w: spread(s) for w, s in samples.items()}}

        def qps(way: str, clients: int, seconds: float) -> tuple[float, int]:
            """Point queries answered per second by `clients` threads, and calls that failed."""
            done, failed, stop = [0] * clients, [0] * clients, threading.Event()
            calls = [ways_for(True)[way] for _ in range(clients)]

            def loop(i):
                call, rng = calls[i], random.Random(i)
                while not stop.is_set():
                    try:
                        call(*queries["point (~12 rows)"](rng))
                        done[i] += 1
                    except Exception:  # noqa: BLE001 - counted: a failed call is a figure of its own
                        failed[i] += 1

            threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            time.sleep(seconds)
            stop.set()
            for t in threads:
                t.join()
            return sum(done) / seconds, sum(failed)

        for clients in CLIENT_COUNTS:
            print(f"{clients} concurrent client(s) ...", flush=True)
            rounds = {way: [] for way in CONCURRENT_WAYS}
            for _ in range(args.rounds):
                for way in random.sample(CONCURRENT_WAYS, len(CONCURRENT_WAYS)):
                    rounds[way].append(qps(way, clients, args.seconds / args.rounds))
            results["concurrency"][str(clients)] = {
                w: {"qps": statistics.mean(q for q, _ in r), "failed": sum(f for _, f in r),
                    "rounds": [q for q, _ in r]} for w, r in rounds.items()}

        print("service pinned to 1, then 2 cores ...", flush=True)
        process = servers["service"][0]
        for cores in (1, 2):
            if cores > results["cpus"]:
                continue
            pin(process.pid, cores)
            answered, failed = qps("router", 16, args.seconds)
            results["pinned"][str(cores)] = {"qps": answered, "failed": failed}
        pin(process.pid, results["cpus"])
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)

    print("builder ingest vs DuckDB read_csv ...", flush=True)
    runs = [ingest.measure(source, CACHE) for _ in range(args.ingests)]
    results["ingest"] = {"files": len(ingest.csv_sources(source)),
                         "csv_bytes": sum(p.stat().st_size for p in ingest.csv_sources(source)),
                         **{w: {"seconds": spread([r[w]["seconds"] for r in runs]),
                                "cpu_seconds": spread([r[w]["cpu_seconds"] for r in runs]),
                                "peak_rss_mb": max(r[w]["peak_rss_mb"] for r in runs)}
                            for w in ("builder", "duckdb")}}
    print("start -> SERVING ...", flush=True)
    results["startup_seconds"] = spread(start_to_serving(db, args.startups, args.serve_args))

    if args.search_rounds > 0:
        print(f"search at scale {search.SCALE} ...", flush=True)
        files = search.prepare(args.seed, log=lambda line: print(line, flush=True))
        results["search"] = search.measure(files, args.search_rounds, start=start)

    print()
    print(report(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench-{results['when'].replace(':', '')}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\nfigures written to {out.relative_to(ROOT)}")
    return 0


def report(results: dict) -> str:
    lines = [f"scale {results['scale']}, {results['cpus']} CPUs; router/router-flight/router-grpc/stub: the service at its "
             f"defaults{' + ' + results['args']['serve_args'] if results['args'].get('serve_args') else ''}; "
             f"router-tuned: {results['tuned_flags']}\n",
             f"{'result':18} {'way':13} {'rows':>9}  {'median ms':>10}  {'p10-p90 ms':>17}  {'x in-process':>12}"]
    for name, case in results["cases"].items():
        base = case["in-process"]["median"]
        for i, way in enumerate(WAYS):
            s = case[way]
            lines.append(f"{name if i == 0 else '':18} {way:13} {case['rows'] if i == 0 else '':>9}  "
                         f"{s['median']:>10.2f}  {s['p10']:>8.2f}-{s['p90']:<8.2f}  {s['median'] / base:>11.2f}x"
                         + (f"  (n={s['n']})" if s["n"] != case["in-process"]["n"] else ""))
    c = results["concurrency"]
    seconds = results["args"]["seconds"]
    lines.append(f"\npoint queries per second by client threads ({seconds:g} s per way and count, "
                 f"{results['args']['rounds']} interleaved round(s)); x in-process; failed calls:")
    lines.append(f"{'clients':>8}  " + "  ".join(f"{w:>24}" for w in CONCURRENT_WAYS))
    for clients, ways in c.items():
        base = ways["in-process"]["qps"]
        lines.append(f"{clients:>8}  " + "  ".join(
            f"{ways[w]['qps']:>8,.0f} {ways[w]['qps'] / base:>5.2f}x {ways[w]['failed']:>4} fail" for w in CONCURRENT_WAYS))
    if results["pinned"]:
        p = results["pinned"]
        lines.append("router, 16 clients, service pinned: " + ", ".join(
            f"{cores} core{'s' if cores != '1' else ''} {v['qps']:,.0f} QPS ({v['failed']} failed)" for cores, v in p.items())
            + (f"; 2 cores / 1 core = {p['2']['qps'] / p['1']['qps']:.2f}x" if "1" in p and "2" in p else ""))
    g = results["ingest"]
    speed = g["duckdb"]["seconds"]["median"] / g["builder"]["seconds"]["median"]
    cpu_speed = g["duckdb"]["cpu_seconds"]["median"] / g["builder"]["cpu_seconds"]["median"]
    lines.append(f"\ningest of the {DOMAIN_NOTE} ({g['files']} CSV files, {g['csv_bytes'] / 1e6:.0f} MB), "
                 f"median of {g['builder']['seconds']['n']}:")
    for way in ("builder", "duckdb"):
        lines.append(f"  {way:10} {g[way]['seconds']['median']:>6.2f} s  (CPU {g[way]['cpu_seconds']['median']:.2f} s)"
                     f"  peak RSS {g[way]['peak_rss_mb']:>5.0f} MB")
    lines.append(f"  builder speed vs DuckDB: {speed:.2f}x elapsed, {cpu_speed:.2f}x CPU")
    s = results["startup_seconds"]
    lines.append(f"\nstart -> SERVING ({results['file_bytes'] / 1e6:.0f} MB file): median {s['median']:.2f} s "
                 f"({s['p10']:.2f}-{s['p90']:.2f}, n={s['n']})")

    cases_ = results["cases"]
    ratio = lambda case, way="router": cases_[case][way]["median"] / cases_[case]["in-process"]["median"]  # noqa: E731
    checks = [(f"{case} via Router at defaults <= {limit}x (flight peer {ratio(case, 'flight'):.2f}x)",
               f"{ratio(case):.2f}x", ratio(case) <= limit and ratio(case) <= ratio(case, "flight"))
              for case, limit in (("point (~12 rows)", 1.3), ("~10,000 rows", 1.3), ("~1,000,000 rows", 1.5))]
    sixteen = c.get("16")
    if sixteen:
        checks.append((f"16-client QPS via Router at defaults > flight peer ({sixteen['flight']['qps']:,.0f}), 0 failed",
                       f"{sixteen['router']['qps']:,.0f} ({sixteen['router']['failed']} failed)",
                       sixteen["router"]["qps"] > sixteen["flight"]["qps"] and sixteen["router"]["failed"] == 0))
    checks.append(("no failed Router call at any client count",
                   f"{sum(w['failed'] for ways in c.values() for n, w in ways.items() if n.startswith('router'))}",
                   all(w["failed"] == 0 for ways in c.values() for n, w in ways.items() if n.startswith("router"))))
    checks += [
        (f"builder ingest speed >= 0.8x DuckDB (peak RSS {g['builder']['peak_rss_mb']:.0f} MB)", f"{speed:.2f}x",
         speed >= 0.8),
        ("start -> SERVING < 2 s", f"{s['median']:.2f} s", s["median"] < 2.0),
    ]
    if "search" in results:
        lines += search.report(results["search"])
        checks += search.checks(results["search"])
    lines.append("\ntargets:")
    lines += [f"  {'MET ' if ok else 'MISS'}  {text:78} {value}" for text, value, ok in checks]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
