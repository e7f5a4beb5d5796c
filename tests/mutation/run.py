"""The mutation run over the query path: each plausible one-line bug of tests/mutation/mutations.py
is applied, alone, to a copy of the tree, and the suite's query-path tests are run against it —
services started by those tests run the mutated code too (PYTHONPATH puts the copy first). A
mutant is killed when a test fails; the kill rate (killed / (total - equivalent)), every survivor
and every mutant marked equivalent, with the reason, are printed.

`python -m tests.mutation.run [--only SUBSTRING[,SUBSTRING...]] [--jobs N]` (`make test-reliability` runs it
through tests/test_mutation.py). The demo data are generated and built once, in the copy's
session fixtures' place (CYTOATLAS_TEST_DATA), since no mutant touches the builders.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Fast unit tests first, so most mutants die in seconds; then the services.
TESTS = ["tests/test_compiler.py", "tests/test_wire.py", "tests/test_requests.py", "tests/test_differential.py",
         "tests/test_typed_rpcs.py", "tests/test_typed_differential.py", "tests/test_integration.py",
         "tests/test_bad_input.py", "tests/test_router_arguments.py", "tests/test_router_rebuild.py",
         "tests/test_atlas_inflammation.py", "tests/test_atlas_cima.py", "tests/test_typed_gaps.py"]
# A mutant of these files is most likely caught by these tests: they run first (then the rest), so
# a typed-RPC or Router mutant does not wait for the whole compiler suite before it dies.
FIRST = {
    "cytoatlas/serving/typed_rpc.py": ["tests/test_typed_rpcs.py", "tests/test_typed_differential.py"],
    "services/atlas/rpcs.py": ["tests/test_typed_differential.py", "tests/test_typed_rpcs.py"],
    "cytoatlas/client/router.py": ["tests/test_router_arguments.py", "tests/test_integration.py",
                                   "tests/test_router_rebuild.py", "tests/test_flight.py"],
    "cytoatlas/client/flight_reader.py": ["tests/test_router_arguments.py", "tests/test_flight.py"],
    "cytoatlas/serving/flight.py": ["tests/test_flight.py"],
    "cytoatlas/client/socket_reader.py": ["tests/test_arrow_socket.py"],
    "cytoatlas/serving/arrow_socket.py": ["tests/test_arrow_socket.py"],
}


def tests_for(mutation) -> list[str]:
    return list(dict.fromkeys([*FIRST.get(mutation.file, []), *TESTS]))


@dataclass(frozen=True)
class Outcome:
    mutation: object
    killed: bool
    seconds: float
    detail: str


def copy_tree(target: Path) -> None:
    """The tracked files and the generated code, without .venv, .git or caches."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    files += [str(p.relative_to(ROOT)) for package in ("table", "atlas", "perturbation", "spatial", "search")
              for p in (ROOT / "cytoatlas" / package).rglob("*.py")]
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def prepare_data(work: Path) -> Path:
    """Demo sources and the three built files, made once for every mutant."""
    data = work / "data"
    subprocess.run([sys.executable, "-c", (
        "import pathlib, sys; from builders import demo_data, engine; "
        "root = pathlib.Path(sys.argv[1]); "
        "demo_data.generate(root / 'source', scale=demo_data.MIN_SCALE, seed=0); "
        "engine.build_all(root / 'source', root / 'built')"), str(data)], cwd=ROOT, check=True,
        capture_output=True)
    return data


def run_one(mutation, data: Path, tests: list[str], timeout: float) -> Outcome:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        mutation.apply(tree)
        env = {**os.environ, "PYTHONPATH": str(tree), "CYTOATLAS_TEST_DATA": str(data),
               "PYTHONDONTWRITEBYTECODE": "1"}
        existing = [t for t in tests if (tree / t).exists()]
        try:
            result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                     "-o", "addopts=", "-m", "not reliability", *existing],
                                    cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Outcome(mutation, True, time.monotonic() - started, "timed out (counted as killed)")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    failed = next((line for line in lines if line.startswith(("FAILED ", "ERROR ")) and "::" in line), "")
    return Outcome(mutation, result.returncode != 0, time.monotonic() - started,
                   failed or (lines[-1] if lines else result.stderr.strip()[-200:]))


def main(argv: list[str] | None = None) -> int:
    from tests.mutation.mutations import MUTATIONS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="run only mutations whose id contains this "
                                                    "(or one of several, comma-separated)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if any(part in m.id for part in args.only.split(","))]
    for mutation in mutations:  # every mutation must still apply to the code as it is
        mutation.check(ROOT)
    with tempfile.TemporaryDirectory(prefix="mutation-run-") as work:
        data = prepare_data(Path(work))
        print(f"mutation run: {len(mutations)} mutants of the query path, {args.jobs} at a time", flush=True)
        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = []
            # Printed as they come (in list order), so a CI log shows progress during the run.
            for o in pool.map(lambda m: run_one(m, data, tests_for(m), args.timeout), mutations):
                outcomes.append(o)
                state = "killed " if o.killed else "equival" if o.mutation.equivalent else "SURVIVED"
                # the test that killed it, or the last line of a run that passed
                print(f"{state} {o.seconds:5.1f} s  {o.mutation.id}: {o.mutation.description}\n         {o.detail}",
                      flush=True)
    # An equivalent mutant is still run: one that a test kills is no longer equivalent (its reason
    # is wrong), or a flaky test failed; printed loudly, but not failing the run (a flake would).
    wrong = [o for o in outcomes if o.mutation.equivalent and o.killed]
    counted = [o for o in outcomes if not o.mutation.equivalent]
    killed = sum(o.killed for o in counted)
    survivors = [o.mutation.id for o in counted if not o.killed]
    for o in outcomes:
        if o.mutation.equivalent:
            print(f"EQUIVALENT {o.mutation.id}: {o.mutation.equivalent}")
    for o in wrong:
        print(f"WRONGLY EQUIVALENT? {o.mutation.id}: a test failed on it ({o.detail}): either its `equivalent` "
              "reason is wrong (drop it) or that test is flaky (rerun with --only)")
    print(f"MUTATION kill rate {killed}/{len(counted)} = {killed / max(1, len(counted)):.0%} "
          f"({len(outcomes)} mutants, {len(outcomes) - len(counted)} equivalent); "
          f"survivors: {', '.join(survivors) or 'none'}", flush=True)
    return 0 if killed >= 0.9 * len(counted) else 1


if __name__ == "__main__":
    sys.exit(main())
