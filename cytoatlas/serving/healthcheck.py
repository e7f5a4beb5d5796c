"""Container health check: `python -m cytoatlas.serving.healthcheck [PORT]` exits 0 when the local
service answers grpc.health.v1.Health/Check with SERVING, 1 otherwise. PORT defaults to
CYTOATLAS_PORT (the compose file and the Kubernetes manifests set it per service; the image
does not, so without it and without PORT the check fails with a message)."""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    port = argv[0] if argv else os.environ.get("CYTOATLAS_PORT", "")
    if not port.isdigit():
        print("healthcheck: give the service port as argument or CYTOATLAS_PORT", file=sys.stderr)
        return 1
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3).status
        except grpc.RpcError as err:
            print(f"healthcheck: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(status))
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
