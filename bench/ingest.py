"""Builder ingest vs DuckDB's own CSV import, each in a fresh process so peak RSS is its own.

`python -m bench.ingest builder SOURCE_DIR OUT_DIR` rebuilds parse10m_activity (the largest
source, a ~100 MB CSV at scale 0.25) with the real builder into OUT_DIR, which holds a copy of the
published file (`build_domain(..., tables=[...])`: typed read, validation, key-sorted insert,
manifest, verify, atomic publish). `python -m bench.ingest duckdb CSV OUT_DIR` runs
`CREATE TABLE t AS SELECT * FROM read_csv(CSV)` into a new file there. Each prints its own
elapsed seconds (imports excluded) and its peak RSS (VmHWM: exec starts it afresh, unlike
ru_maxrss, which would carry the forking bench process's own size).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

TABLE = "parse10m_activity"


def run_child(args: list[str]) -> tuple[float, float]:
    """(elapsed seconds the child reports, the child's peak RSS in MB)."""
    done = subprocess.run([sys.executable, "-m", "bench.ingest", *args], stdout=subprocess.PIPE,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    if done.returncode:
        raise SystemExit(f"bench.ingest {args[0]} failed with exit code {done.returncode}")
    seconds, peak_kib = done.stdout.split()[-2:]
    return float(seconds), int(peak_kib) / 1024


def peak_rss_kib() -> int:
    status = pathlib.Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:", 1)[1].split()[0])


def measure(source: pathlib.Path, published: pathlib.Path, csv: pathlib.Path) -> dict[str, tuple[float, float]]:
    """One builder run and one DuckDB run, each into a fresh temporary directory."""
    result = {}
    for way in ("builder", "duckdb"):
        with tempfile.TemporaryDirectory(prefix=f"bench-ingest-{way}-", dir=published.parent.parent) as tmp:
            if way == "builder":
                shutil.copy(published, tmp)
                result[way] = run_child([way, str(source), tmp])
            else:
                result[way] = run_child([way, str(csv), tmp])
    return result


def main() -> None:
    way, source, out = sys.argv[1:4]
    if way == "builder":
        from builders import engine
        started = time.perf_counter()
        engine.build_domain("perturbation", pathlib.Path(source), pathlib.Path(out), tables=[TABLE])
    else:
        import duckdb
        con = duckdb.connect(os.path.join(out, "raw.duckdb"))
        started = time.perf_counter()
        con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM read_csv(?)", [source])
        con.execute("CHECKPOINT")
        con.close()
    print(time.perf_counter() - started, peak_rss_kib())


if __name__ == "__main__":
    main()
