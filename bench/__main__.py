"""`make bench`: the service against in-process DuckDB on the same file, side by side in one run.

Measures, interleaved and repeated, for a point query (~12 rows), ~10,000 rows and ~1,000,000
rows: DuckDB in-process (`con.sql(sql, params).to_arrow_table()`, the floor), the service through
a direct stub (Arrow decoded to a pyarrow.Table) and through the Router. Then 16 concurrent
clients issuing point queries for a fixed time, against the same with in-process cursors. Prints
medians, spread (p10-p90) and ratios to in-process; writes the figures as JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import platform
import random
import statistics
import subprocess
import sys
import threading
import time

import duckdb
import grpc

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
DEFAULT_SCALE = 0.25  # parse10m_activity then has > 1M SecAct rows (0.2 is the smallest scale that does)


def prepare(scale: float, seed: int) -> pathlib.Path:
    """Demo sources and the built perturbation file, cached between runs by scale and seed."""
    from builders import demo_data, engine

    source = CACHE / f"source-{scale}-{seed}"
    data = CACHE / f"data-{scale}-{seed}"
    if not (source / ".complete").exists():
        print(f"generating demo data at scale {scale} (cached in {source}) ...", flush=True)
        demo_data.generate(source, scale=scale, seed=seed, domains=("perturbation",))
        (source / ".complete").touch()
    db = data / "perturbation_data.duckdb"
    if not db.exists():
        print("building perturbation_data.duckdb ...", flush=True)
        engine.build_domain("perturbation", source, data)
    return db


def start_service(db: pathlib.Path) -> tuple[subprocess.Popen, str]:
    log = CACHE / "service.log"
    process = subprocess.Popen([str(BIN / "cytoatlas"), "serve", "perturbation", "--db", str(db), "--port", "0"],
                               stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log.read_text()
        if "listening on" in text:
            address = text.split("listening on ", 1)[1].split(",", 1)[0]
            return process, address
        if process.poll() is not None:
            raise SystemExit(f"service failed to start: {text}")
        time.sleep(0.05)
    raise SystemExit("service did not start in 30 s")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def spread(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda p: ordered[min(len(ordered) - 1, int(p * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), pick(0.1), pick(0.9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=15, help="rounds per result size (interleaved)")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each concurrency run")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    from cytoatlas.client import Router
    from cytoatlas.client.router import decode_arrow, to_filters
    from cytoatlas.table.v1 import table_service_pb2 as pb
    from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc

    CACHE.mkdir(parents=True, exist_ok=True)
    db = prepare(args.scale, args.seed)
    con = duckdb.connect(str(db), read_only=True)
    cytokines = [r[0] for r in con.sql("SELECT DISTINCT cytokine FROM parse10m_activity WHERE cytokine <> 'PBS' "
                                       "ORDER BY 1").fetchall()]
    cell_types = [r[0] for r in con.sql("SELECT DISTINCT cell_type FROM parse10m_activity ORDER BY 1").fetchall()]
    signatures = [r[0] for r in con.sql("SELECT DISTINCT signature FROM parse10m_activity "
                                        "WHERE signature_type = 'CytoSig' ORDER BY 1").fetchall()]

    def point_case(rng):
        where = [("signature_type", "=", "CytoSig"), ("cytokine", "=", rng.choice(cytokines)),
                 ("cell_type", "=", rng.choice(cell_types)), ("signature", "=", rng.choice(signatures))]
        return where, 0

    cases = {  # name -> (where, limit); SQL below mirrors them for the in-process floor
        "point (~12 rows)": lambda rng: point_case(rng),
        "~10,000 rows": lambda rng: ([("signature_type", "=", "SecAct"), ("cytokine", "=", rng.choice(cytokines))], 10_000),
        "~1,000,000 rows": lambda rng: ([("signature_type", "=", "SecAct")], 1_000_000),
    }

    def sql_for(where, limit):
        """The statement and its bound parameters, as keyword arguments of `con.sql`."""
        sql = "SELECT * FROM parse10m_activity WHERE " + " AND ".join(f'"{c}" = ?' for c, _, _ in where)
        return {"query": sql + (f" LIMIT {limit}" if limit else ""), "params": [v for _, _, v in where]}

    process, address = start_service(db)
    results = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "scale": args.scale, "machine": platform.platform(), "cases": {}, "concurrency": {}}
    try:
        router = Router({"perturbation": address})
        channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
        stub = pb_grpc.TableServiceStub(channel)
        print(f"service at {address}; file {db} ({db.stat().st_size / 1e6:.0f} MB)\n", flush=True)

        ways = {
            "in-process": lambda w, l: con.sql(**sql_for(w, l)).to_arrow_table(),
            "stub": lambda w, l: decode_arrow(stub.Query(pb.QueryRequest(
                table="parse10m_activity", filters=to_filters(w), limit=l)))[0],
            "router": lambda w, l: router.query("parse10m_activity", where=w, limit=l or None),
        }
        for name, case in cases.items():
            rng = random.Random(1)
            rows = {way: fn(*case(random.Random(0))).num_rows for way, fn in ways.items()}  # warm-up + check
            assert len(set(rows.values())) == 1, f"{name}: the ways disagree on row count: {rows}"
            samples = {way: [] for way in ways}
            for _ in range(args.repeats):
                where, limit = case(rng)
                for way in random.sample(list(ways), len(ways)):  # interleaved, shuffled order
                    samples[way].append(timed(lambda: ways[way](where, limit)))
            results["cases"][name] = {"rows": rows["in-process"],
                                      **{way: dict(zip(("median_ms", "p10_ms", "p90_ms"), spread(s)))
                                         for way, s in samples.items()}}

        def qps(worker_factory) -> float:
            done, stop = [0] * args.clients, threading.Event()

            def loop(i):
                call, rng = worker_factory(), random.Random(i)
                while not stop.is_set():
                    call(*point_case(rng))
                    done[i] += 1

            threads = [threading.Thread(target=loop, args=(i,)) for i in range(args.clients)]
            for t in threads:
                t.start()
            time.sleep(args.seconds)
            stop.set()
            for t in threads:
                t.join()
            return sum(done) / args.seconds

        def in_process_worker():
            cursor = con.cursor()
            return lambda w, l: cursor.sql(**sql_for(w, l)).to_arrow_table()

        results["concurrency"] = {
            "clients": args.clients, "seconds": args.seconds,
            "in-process_qps": qps(in_process_worker),
            "router_qps": qps(lambda: lambda w, l: router.query("parse10m_activity", where=w)),
        }
    finally:
        process.terminate()
        process.wait(timeout=30)

    print(report(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench-{results['when'].replace(':', '')}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\nfigures written to {out.relative_to(ROOT)}")
    return 0


def report(results: dict) -> str:
    lines = [f"{'result':18} {'rows':>9}  {'in-process ms':>14}  {'stub ms':>9} {'ratio':>6}  "
             f"{'router ms':>9} {'ratio':>6}   (median; p10-p90)"]
    for name, case in results["cases"].items():
        base = case["in-process"]["median_ms"]
        cells = [f"{name:18} {case['rows']:>9,}  {base:>14.2f}"]
        for way in ("stub", "router"):
            cells.append(f"{case[way]['median_ms']:>9.2f} {case[way]['median_ms'] / base:>5.2f}x")
        spreads = "; ".join(f"{w} {case[w]['p10_ms']:.1f}-{case[w]['p90_ms']:.1f}" for w in ("in-process", "stub", "router"))
        lines.append("  ".join(cells) + f"   ({spreads})")
    c = results["concurrency"]
    lines.append(f"\n{c['clients']} concurrent clients, point queries, {c['seconds']:.0f} s each: "
                 f"in-process {c['in-process_qps']:,.0f} QPS; router {c['router_qps']:,.0f} QPS "
                 f"({c['router_qps'] / c['in-process_qps']:.2f}x)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
