"""Builder ingest vs DuckDB's own CSV import, each in a fresh process so peak RSS is its own.

Both make one DuckDB file from the perturbation domain's CSV sources (~150 MB at scale 0.25; the
largest, parse10m_pseudobulk_activity.csv, ~100 MB). `python -m bench.ingest builder SOURCE_DIR
OUT_DIR` runs the real builder (typed read, normalisation, key-sorted insert, validation, derived
tables, manifest, verify, atomic publish); `python -m bench.ingest duckdb SOURCE_DIR OUT_DIR` runs
`CREATE TABLE t AS SELECT * FROM read_csv(file)` for each of the same files. Each prints its
elapsed and CPU seconds (imports excluded) and its peak RSS (VmHWM: exec starts it afresh,
unlike ru_maxrss, which would carry the size of the forking bench process).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import time

DOMAIN = "perturbation"


def run_child(way: str, source: pathlib.Path, out: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.ingest", way, str(source), out], stdout=subprocess.PIPE,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    if done.returncode:
        raise SystemExit(f"bench.ingest {way} failed with exit code {done.returncode}")
    seconds, cpu, peak_kib = done.stdout.split()[-3:]
    return {"seconds": float(seconds), "cpu_seconds": float(cpu), "peak_rss_mb": int(peak_kib) / 1024}


def measure(source: pathlib.Path, scratch: pathlib.Path) -> dict[str, dict]:
    """One builder run and one DuckDB run, in shuffled order, each into a fresh directory."""
    import random
    result = {}
    for way in random.sample(["builder", "duckdb"], 2):
        with tempfile.TemporaryDirectory(prefix=f"bench-ingest-{way}-", dir=scratch) as tmp:
            result[way] = run_child(way, source, tmp)
    return result


def csv_sources(source: pathlib.Path) -> list[pathlib.Path]:
    from cytoatlas.domains import DOMAINS
    from builders.ingest import resolve_sources
    return [f.path for t in DOMAINS[DOMAIN].tables if not t.derived_sql for f in resolve_sources(t, source)]


def peak_rss_kib() -> int:
    status = pathlib.Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:", 1)[1].split()[0])


def main() -> None:
    way, source, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    if way == "builder":
        from builders import engine
        started, cpu = time.perf_counter(), time.process_time()
        engine.build_domain(DOMAIN, source, out)
    else:
        import duckdb
        files = csv_sources(source)
        con = duckdb.connect(str(out / "raw.duckdb"))
        started, cpu = time.perf_counter(), time.process_time()
        for i, path in enumerate(files):
            con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv(?)", [str(path)])
        con.execute("CHECKPOINT")
        con.close()
    print(time.perf_counter() - started, time.process_time() - cpu, peak_rss_kib())


if __name__ == "__main__":
    main()
