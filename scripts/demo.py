"""`make demo`: generate demo data, build the three files, serve them, print how to query them.

Runs the whole stack locally (no Docker). A service that dies is reported while the other two
keep serving (Enter starts it again); Ctrl-C stops the three cleanly.

Ports: 50051-50053 unless `--ports A,P,S` (`make demo PORTS=50061,50062,50063`), `--ports auto`
(any free ones), or CYTOATLAS_ATLAS_ADDR / CYTOATLAS_PERTURBATION_ADDR / CYTOATLAS_SPATIAL_ADDR
(host:port, the client's settings) say otherwise. A port that is taken is reported before
anything is built.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import select
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
DOMAINS = {"atlas": 50051, "perturbation": 50052, "spatial": 50053}
PORTS_HINT = ("choose other ports: make demo PORTS=50061,50062,50063 (atlas,perturbation,spatial), "
              "PORTS=auto for any free ones, or set CYTOATLAS_ATLAS_ADDR, CYTOATLAS_PERTURBATION_ADDR, "
              "CYTOATLAS_SPATIAL_ADDR (host:port)")


class StartFailed(SystemExit):
    pass


def run(*args: str) -> None:
    subprocess.run([str(BIN / "cytoatlas"), *args], check=True)


def choose_ports(value: str | None, environ=os.environ) -> dict[str, int]:
    """The port of each service: --ports A,P,S or 'auto', else CYTOATLAS_<DOMAIN>_ADDR, else the default."""
    if value == "auto":
        return {d: 0 for d in DOMAINS}
    if value:
        parts = value.split(",")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise SystemExit(f"--ports / PORTS takes three ports, atlas,perturbation,spatial (e.g. "
                             f"50061,50062,50063), or auto; got {value!r}")
        return {d: int(p) for d, p in zip(DOMAINS, parts)}
    ports = {}
    for domain, default in DOMAINS.items():
        address = environ.get(f"CYTOATLAS_{domain.upper()}_ADDR", "")
        port = address.rpartition(":")[2]
        if address and not port.isdigit():
            raise SystemExit(f"CYTOATLAS_{domain.upper()}_ADDR={address!r}: the demo needs host:port")
        ports[domain] = int(port) if address else default
    return ports


def claim_ports(host: str, ports: dict[str, int]) -> dict[str, int]:
    """Check that each port is free (picking one where it is 0); SystemExit naming a taken one."""
    chosen = {}
    for domain, port in ports.items():
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError as exc:
                raise SystemExit(f"demo: port {port} for the {domain} service on {host} is taken "
                                 f"({exc.strerror}: another `make demo`, or another program); {PORTS_HINT}") from None
            chosen[domain] = s.getsockname()[1]
    return chosen


class Stack:
    """The three `cytoatlas serve` processes of the demo."""

    def __init__(self, data: pathlib.Path, host: str, ports: dict[str, int]):
        self.data, self.host, self.ports = data, host, ports
        self.env = {**os.environ, "CYTOATLAS_HOST": host}
        self.processes: dict[str, subprocess.Popen] = {}
        self.dead: dict[str, int] = {}

    def address(self, domain: str) -> str:
        return f"{self.host}:{self.ports[domain]}"

    def start(self, domain: str) -> None:
        self.processes[domain] = subprocess.Popen(
            [str(BIN / "cytoatlas"), "serve", domain, "--db", str(self.data / f"{domain}_data.duckdb"),
             "--port", str(self.ports[domain])], env=self.env)
        self.dead.pop(domain, None)

    def wait_serving(self, router, domains, timeout: float, stopping) -> None:
        """Until each of `domains` is SERVING; StartFailed at once if its process exits."""
        from cytoatlas.client import CytoAtlasError

        deadline = time.monotonic() + timeout
        for domain in domains:
            process = self.processes[domain]
            while not stopping():
                if process.poll() is not None:
                    raise StartFailed(f"demo: the {domain} service exited at start with code "
                                      f"{process.returncode}; its error is above. If it could not listen "
                                      f"on {self.address(domain)}, {PORTS_HINT}")
                try:
                    if router.health(domain) == "SERVING":
                        break
                except CytoAtlasError:
                    pass
                if time.monotonic() > deadline:
                    raise StartFailed(f"demo: the {domain} service did not become SERVING within "
                                      f"{timeout:.0f} s; see its log above")
                time.sleep(0.1)

    def exited(self) -> list[str]:
        """Services that died since the last look (each reported once)."""
        gone = []
        for domain, process in self.processes.items():
            if domain not in self.dead and process.poll() is not None:
                self.dead[domain] = process.returncode
                gone.append(domain)
        return gone

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def exit_text(code: int) -> str:
    return f"was killed by signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exited with code {code}"


def examples(stack: Stack) -> str:
    grpcurl = BIN / "grpcurl"
    p, s, a = (stack.address(d) for d in ("perturbation", "spatial", "atlas"))
    cli = BIN / "cytoatlas"
    env = ""
    if any(stack.ports[d] != port for d, port in DOMAINS.items()) or stack.host != "127.0.0.1":
        env = ("  export " + " ".join(f"CYTOATLAS_{d.upper()}_ADDR={stack.address(d)}" for d in DOMAINS)
               + "   # first: where the cytoatlas commands find the services\n")
    pids = ", ".join(f"{d} {stack.processes[d].pid}" for d in DOMAINS)
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
  {grpcurl} -plaintext -d '{{"tissue": "lung", "signature": "IFNG", "page_size": 5}}' \\
      {s} cytoatlas.spatial.v1.SpatialService/ListNeighborhoodActivity
  {grpcurl} -plaintext -d '{{"atlas": "CIMA", "min_activity": 1.5, "limit": 10}}' \\
      {a} cytoatlas.atlas.v1.AtlasService/QuerySingleCellActivity
  {grpcurl} -plaintext -d '{{"cytokine": "IL6"}}' {p} cytoatlas.perturbation.v1.PerturbationService/ListParse10mActivity   # NOT_FOUND: did you mean 'IL-6'?

The atlas pages (CIMA, Inflammation, scAtlas, validation, cross-atlas, gene) and name resolution:

  {grpcurl} -plaintext -d '{{"signature": "TNF", "top_n": 3}}' {a} cytoatlas.atlas.v1.AtlasService/GetTargetProfile   # TNF is TNFA
  {grpcurl} -plaintext -d '{{"category": "age", "page_size": 3}}' {a} cytoatlas.atlas.v1.CimaService/ListCimaCorrelations
  {grpcurl} -plaintext {a} cytoatlas.atlas.v1.InflammationService/GetInflammationSummary
  {grpcurl} -plaintext -d '{{"organ": "Lung", "limit": 3}}' {a} cytoatlas.atlas.v1.ScAtlasService/ListScAtlasOrganTopSignatures
  {grpcurl} -plaintext -d '{{"atlas": "cima"}}' {a} cytoatlas.atlas.v1.ValidationService/GetValidationSummary
  {grpcurl} -plaintext -d '{{"signature": "ifng"}}' {a} cytoatlas.atlas.v1.GeneService/GetGeneOverview

{env}  {cli} status
  {cli} tables
  {cli} describe tahoe_drug_effect
  {cli} query parse10m_treatment_effect --where cytokine=IL-6 --where signature_type=CytoSig --order-by -activity_diff --limit 10
  {cli} query spatial_activity --group-by tissue --aggregate avg:mean_activity --aggregate count --where signature=IFNG
  {cli} query activity --where atlas=CIMA --where signature=IL6 --columns cell_type,median,n --format csv
  {cli} target IFNG --top 3
  {cli} search "interlukin 6" --limit 5

Service processes: {pids}. Stop one (kill PID) to watch its domain fail while the other two
keep serving; press Enter here to start it again. Ctrl-C stops the three services.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="demo", help="where demo sources and built files go")
    parser.add_argument("--scale", type=float, default=None, help="demo-data scale (default: the demo scale)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ports", default=None,
                        help="atlas,perturbation,spatial ports (e.g. 50061,50062,50063) or auto")
    args = parser.parse_args()
    try:
        return demo(args)
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr, flush=True)
        return 130


def demo(args) -> int:
    from builders.demo_data import DEFAULT_SCALE
    from cytoatlas.client import Router

    ports = claim_ports(args.host, choose_ports(args.ports))  # before minutes of building, not after
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

    stack = Stack(data, args.host, ports)
    stop = False

    def request_stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    watch_stdin = True
    try:
        for domain in DOMAINS:
            stack.start(domain)
        with Router({d: stack.address(d) for d in DOMAINS}) as router:
            stack.wait_serving(router, DOMAINS, 60, lambda: stop)
            if stop:
                return 130
            print(examples(stack), flush=True)
            print(f"(demo data generated, built and served in {time.monotonic() - started:.0f} s)", flush=True)
            while not stop:
                for domain in stack.exited():
                    others = [d for d in DOMAINS if d not in stack.dead]
                    print(f"\ndemo: the {domain} service (pid {stack.processes[domain].pid}) "
                          f"{exit_text(stack.dead[domain])}; "
                          + (f"{' and '.join(others)} keep serving. " if others else "")
                          + ("Press Enter to start it again, " if watch_stdin else "")
                          + "Ctrl-C to stop the demo.", file=sys.stderr, flush=True)
                ready = []
                if watch_stdin:
                    try:
                        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
                    except (OSError, ValueError):
                        watch_stdin = False
                else:
                    time.sleep(0.2)
                if ready:
                    line = sys.stdin.readline()
                    if not line:  # no terminal (stdin closed): nothing to read a restart from
                        watch_stdin = False
                    elif stack.dead and not stop:
                        restart = list(stack.dead)
                        for domain in restart:
                            print(f"demo: starting the {domain} service again", file=sys.stderr, flush=True)
                            stack.start(domain)
                        try:
                            stack.wait_serving(router, restart, 60, lambda: stop)
                        except StartFailed as failed:
                            print(failed, file=sys.stderr, flush=True)
                            stack.exited()
                            continue
                        if not stop:
                            print(f"demo: {' and '.join(restart)} serving again at "
                                  f"{', '.join(stack.address(d) for d in restart)}", file=sys.stderr, flush=True)
    finally:
        stack.stop()
        print("stopped the three services", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
