"""`make bench`, search section: SearchService latency per domain on scale-1 files (DESIGN.md §5:
search and autocomplete under 20 ms per domain at scale 1).

The three scale-1 files are generated and built once into bench/.cache (like the perturbation file of
the main section); a cached file the current spec no longer matches (e.g. built before the search
index existed) gets the missing tables rebuilt, not the whole file. One service per domain at its
default settings; each query timed through a plain SearchService stub per domain (what one domain
costs) and through the Router (the three asked in parallel and merged).

    python -m bench.search [--rounds N]      # this section alone
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import duckdb
import grpc

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
CACHE = ROOT / "bench" / ".cache"
DOMAINS = ("atlas", "perturbation", "spatial")
SCALE = 1.0
# What people type: names, aliases, spelled-out names, typos, partial words.
QUERIES = ("IL6", "il-6", "interlukin 6", "TNF", "tumour necrosis", "lung", "Imatinib", "CD8", "TGF-beta", "visium")
PREFIXES = ("I", "IL", "il-1", "ifn", "tum", "CD4", "lu", "Ima", "vis", "B_")
TARGET_MS = 20.0


def prepare(seed: int = 0, scale: float = SCALE, log=print) -> dict[str, pathlib.Path]:
    """The three domain files at `scale`, generated and built once into bench/.cache."""
    from builders import demo_data, engine
    from cytoatlas.domains import DOMAINS as SPECS

    source, data = CACHE / f"source-{scale}-{seed}", CACHE / f"data-{scale}-{seed}"
    files = {}
    for domain in DOMAINS:
        done = source / f".complete-{domain}"
        if not done.exists():
            log(f"generating the {domain} demo data at scale {scale} (once; cached in {source}) ...")
            demo_data.generate(source, scale=scale, seed=seed, domains=(domain,))
            done.touch()
        files[domain] = ensure_built(domain, source, data, SPECS[domain].file_name, engine, log)
    return files


def ensure_built(domain: str, source: pathlib.Path, data: pathlib.Path, file_name: str, engine, log=print
                 ) -> pathlib.Path:
    """data/file_name built from `source`: built whole when absent; when the spec has tables (or
    columns, or a column's declared compression) the cached file lacks, only those tables are
    rebuilt (with what derives from them)."""
    from cytoatlas.domains import DOMAINS as SPECS

    db = data / file_name
    if not db.exists():
        log(f"building {file_name} (once; cached in {data}) ...")
        engine.build_domain(domain, source, data)
        return db
    with duckdb.connect(str(db), read_only=True) as con:
        held = {}
        for table, column, kind in con.sql("SELECT table_name, column_name, data_type FROM duckdb_columns() "
                                           "WHERE schema_name = 'main' ORDER BY table_name, column_index").fetchall():
            held.setdefault(table, []).append((column, kind))
        stored = {t.name: engine.stored_compression(con, t.name) for t in SPECS[domain].tables  # declared storage only
                  if t.name in held and any(c.compression for c in t.columns)}
    stale = [t.name for t in SPECS[domain].tables
             if held.get(t.name) != [(c.name, c.type) for c in t.columns]
             or any(c.compression and stored[t.name].get(c.name, set()) - {c.compression.lower()}
                    for c in t.columns)]
    if stale:
        log(f"rebuilding {len(stale)} table(s) of the cached {file_name} the spec changed: {', '.join(stale)} ...")
        engine.build_domain(domain, source, data, tables=stale)
    return db


def _spread(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda p: ordered[min(len(ordered) - 1, int(p * len(ordered)))]  # noqa: E731
    return {"median": statistics.median(ordered), "p10": pick(0.1), "p90": pick(0.9), "n": len(ordered)}


def measure(files: dict[str, pathlib.Path], rounds: int = 10, start=None) -> dict:
    """Median latencies (ms) of Autocomplete and Search per domain (stub) and over the Router."""
    from bench.__main__ import start as start_server
    from cytoatlas.client import Router
    from cytoatlas.requests import to_filters
    from cytoatlas.search.v1 import search_service_pb2 as pb
    from cytoatlas.search.v1 import search_service_pb2_grpc as pb_grpc
    from cytoatlas.table.v1 import table_service_pb2 as table_pb
    from cytoatlas.table.v1 import table_service_pb2_grpc as table_grpc

    start = start or start_server
    servers = {d: start(f"search-{d}", [str(BIN / "cytoatlas"), "serve", d, "--db", str(files[d]), "--port", "0",
                                        "--flight-port", "-1"]) for d in DOMAINS}
    try:
        channels = {d: grpc.insecure_channel(address) for d, (_, address) in servers.items()}
        stubs = {d: (pb_grpc.SearchServiceStub(c), table_grpc.TableServiceStub(c), d) for d, c in channels.items()}
        # the yardstick, in the same run: a one-row TableService point query on the same service
        point = lambda stubs_, text: list(stubs_[1].Query(table_pb.QueryRequest(  # noqa: E731
            table=f"{stubs_[2]}_search_entities", limit=1,
            filters=to_filters([("entity_type", "=", "cytokine"), ("name", "=", text)])), timeout=30))
        calls = {"autocomplete": lambda s, text: s[0].Autocomplete(pb.AutocompleteRequest(prefix=text), timeout=30),
                 "search": lambda s, text: s[0].Search(pb.SearchRequest(query=text), timeout=30),
                 "point": point}
        texts = {"autocomplete": PREFIXES, "search": QUERIES, "point": ("IL6",)}
        samples = {(kind, d): [] for kind in calls for d in DOMAINS}
        per_query = {(kind, d, t): [] for kind in calls for d in DOMAINS for t in texts[kind]}
        with Router({d: a for d, (_, a) in servers.items()}) as router:
            routed = {"autocomplete": lambda text: router.autocomplete(text), "search": lambda text: router.search(text)}
            for kind in routed:  # warm-up: the first call of a query reads its blocks
                for text in texts[kind]:
                    routed[kind](text)
            router_samples = {kind: [] for kind in routed}
            for _ in range(rounds):
                for kind, fn in calls.items():
                    for text in texts[kind]:
                        for d in DOMAINS:
                            began = time.perf_counter()
                            fn(stubs[d], text)
                            elapsed = (time.perf_counter() - began) * 1000
                            samples[(kind, d)].append(elapsed)
                            per_query[(kind, d, text)].append(elapsed)
                        if kind in routed:
                            began = time.perf_counter()
                            routed[kind](text)
                            router_samples[kind].append((time.perf_counter() - began) * 1000)
        terms = {}
        for d in DOMAINS:
            with duckdb.connect(str(files[d]), read_only=True) as con:
                terms[d] = con.sql(f"SELECT count(*) FROM {d}_search_terms").fetchall()[0][0]
        for channel in channels.values():
            channel.close()
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    slowest = {f"{kind}/{d}": max(((statistics.median(v), t) for (k, dd, t), v in per_query.items()
                                   if k == kind and dd == d)) for kind in ("autocomplete", "search") for d in DOMAINS}
    return {"scale": SCALE, "rounds": rounds, "terms": terms,
            **{kind: {d: _spread(samples[(kind, d)]) for d in DOMAINS} for kind in calls},
            "router": {kind: _spread(router_samples[kind]) for kind in routed},
            "slowest_query_median": {k: {"ms": ms, "text": t} for k, (ms, t) in slowest.items()}}


def report(results: dict) -> list[str]:
    lines = [f"\nsearch at scale {results['scale']} (terms: "
             + ", ".join(f"{d} {n:,}" for d, n in results["terms"].items())
             + f"; {len(PREFIXES)} prefixes, {len(QUERIES)} queries x {results['rounds']} rounds), ms per call:",
             f"  {'':13} {'autocomplete median (p10-p90)':>32}  {'search median (p10-p90)':>28}"
             f"  {'point query':>12}  {'search / point':>14}"]
    for d in DOMAINS:
        a, s, p = results["autocomplete"][d], results["search"][d], results["point"][d]
        lines.append(f"  {d:13} {a['median']:>12.2f} ({a['p10']:.2f}-{a['p90']:.2f})       "
                     f"{s['median']:>10.2f} ({s['p10']:.2f}-{s['p90']:.2f})  {p['median']:>12.2f}  "
                     f"{s['median'] / p['median']:>13.1f}x")
    a, s = results["router"]["autocomplete"], results["router"]["search"]
    lines.append(f"  {'Router (3)':13} {a['median']:>12.2f} ({a['p10']:.2f}-{a['p90']:.2f})       "
                 f"{s['median']:>10.2f} ({s['p10']:.2f}-{s['p90']:.2f})")
    slow = results["slowest_query_median"]
    lines.append("  slowest query per domain (median): " + "; ".join(
        f"{k} {v['ms']:.1f} ({v['text']!r})" for k, v in slow.items()))
    return lines


def checks(results: dict) -> list[tuple[str, str, bool]]:
    """Autocomplete under TARGET_MS per domain (issue 11's target), and search too (DESIGN.md §5's)."""
    worst = {kind: max(results[kind][d]["median"] for d in DOMAINS) for kind in ("autocomplete", "search")}
    return [(f"{kind} < {TARGET_MS:.0f} ms per domain at scale 1 (median, worst domain)",
             f"{worst[kind]:.1f} ms", worst[kind] < TARGET_MS) for kind in ("autocomplete", "search")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    results = measure(prepare(args.seed), args.rounds)
    print("\n".join(report(results)))
    for text, value, ok in checks(results):
        print(f"  {'MET ' if ok else 'MISS'}  {text:70} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
