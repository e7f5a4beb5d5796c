"""`make demo`: generate demo data, build the three files, serve them, print how to query them.

Runs the whole stack locally (no Docker) and stops it cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
DOMAINS = {"atlas": 50051, "perturbation": 50052, "spatial": 50053}


def run(*args: str) -> None:
    subprocess.run([str(BIN / "cytoatlas"), *args], check=True)


def wait_serving(router, deadline: float) -> None:
    from cytoatlas.client import CytoAtlasError

    for domain in DOMAINS:
        while True:
            try:
                if router.health(domain) == "SERVING":
                    break
            except CytoAtlasError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the {domain} service did not become SERVING; see its log above")
            time.sleep(0.1)


def examples(host: str) -> str:
    grpcurl = BIN / "grpcurl"
    p = f"{host}:{DOMAINS['perturbation']}"
    s = f"{host}:{DOMAINS['spatial']}"
    a = f"{host}:{DOMAINS['atlas']}"
    cli = BIN / "cytoatlas"
    return f"""
The stack is up: atlas {a}, perturbation {p}, spatial {s}. Try, in another terminal:

  {grpcurl} -plaintext {p} list
  {grpcurl} -plaintext {p} describe cytoatlas.table.v1.TableService
  {grpcurl} -plaintext {p} cytoatlas.table.v1.TableService/ListTables
  {grpcurl} -plaintext -d '{{"table": "parse10m_treatment_effect", "format": "RESULT_FORMAT_ROWS", "limit": 3,
      "filters": [{{"column": "cytokine", "op": "OP_EQ", "values": [{{"string_value": "IL-6"}}]}},
                  {{"column": "signature", "op": "OP_EQ", "values": [{{"string_value": "IL6"}}]}}]}}' \\
      {p} cytoatlas.table.v1.TableService/Query
  {grpcurl} -plaintext -d '{{"service": ""}}' {s} grpc.health.v1.Health/Check

Typed domain RPCs (protos/TYPED_RPCS.md lists them all):

  {grpcurl} -plaintext {p} describe cytoatlas.perturbation.v1.PerturbationService
  {grpcurl} -plaintext -d '{{"cytokine": "IL-6", "signature": "IL6"}}' \\
      {p} cytoatlas.perturbation.v1.PerturbationService/ListParse10mTreatmentEffects
  {grpcurl} -plaintext -d '{{"cell_type": "Classical monocyte"}}' \\
      {p} cytoatlas.perturbation.v1.PerturbationService/GetParse10mHeatmap
  {grpcurl} -plaintext -d '{{"signature": "IFNG"}}' {p} cytoatlas.perturbation.v1.PerturbationService/GetTahoeSensitivityMatrix
  {grpcurl} -plaintext -d '{{"tissue": "lymph node", "signature": "IFNG", "page_size": 5}}' \\
      {s} cytoatlas.spatial.v1.SpatialService/ListNeighborhoodActivity
  {grpcurl} -plaintext -d '{{"atlas": "CIMA", "min_activity": 1.5, "limit": 10}}' \\
      {a} cytoatlas.atlas.v1.AtlasService/QuerySingleCellActivity
  {grpcurl} -plaintext -d '{{"cytokine": "IL6"}}' {p} cytoatlas.perturbation.v1.PerturbationService/ListParse10mActivity   # NOT_FOUND: did you mean 'IL-6'?

  {cli} status
  {cli} tables
  {cli} describe tahoe_drug_effect
  {cli} query parse10m_treatment_effect --where cytokine=IL-6 --where signature_type=CytoSig --order-by activity_diff:desc --limit 10
  {cli} query spatial_activity --group-by tissue --aggregate avg:mean_activity --aggregate count --where signature=IFNG
  {cli} query activity --where atlas=CIMA --where signature=IL6 --columns cell_type,median,n --format csv
  {cli} target IFNG --top 3

Press Ctrl-C to stop the three services.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default="demo", help="where demo sources and built files go")
    parser.add_argument("--scale", type=float, default=None, help="demo-data scale (default: the demo scale)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    from builders.demo_data import DEFAULT_SCALE
    from cytoatlas.client import Router

    scale = args.scale if args.scale is not None else DEFAULT_SCALE
    base = pathlib.Path(args.dir).resolve()
    source, data = base / "source", base / "data"
    started = time.monotonic()
    stamp = source / ".generated"
    if stamp.exists() and stamp.read_text() == f"{scale} {args.seed}":
        print(f"demo sources already in {source} (scale {scale}, seed {args.seed})", flush=True)
    else:
        run("demo-data", "--output", str(source), "--scale", str(scale), "--seed", str(args.seed))
        stamp.write_text(f"{scale} {args.seed}")
    run("build", "all", "--source", str(source), "--output", str(data))

    env = {**os.environ, "CYTOATLAS_HOST": args.host}
    services = {d: subprocess.Popen([str(BIN / "cytoatlas"), "serve", d, "--db",
                                     str(data / f"{d}_data.duckdb"), "--port", str(port)], env=env)
                for d, port in DOMAINS.items()}
    stop = False

    def request_stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        with Router({d: f"{args.host}:{port}" for d, port in DOMAINS.items()}) as router:
            wait_serving(router, time.monotonic() + 30)
        print(examples(args.host), flush=True)
        print(f"(demo data generated, built and served in {time.monotonic() - started:.0f} s)", flush=True)
        while not stop:
            for domain, process in services.items():
                if process.poll() is not None:
                    print(f"the {domain} service exited with code {process.returncode}", file=sys.stderr)
                    stop = True
            time.sleep(0.2)
    finally:
        for process in services.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in services.values():
            process.wait(timeout=30)
        print("stopped the three services", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
