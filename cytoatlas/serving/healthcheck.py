"""Container health check: `python -m cytoatlas.serving.healthcheck [PORT]` exits 0 when the local
service answers grpc.health.v1.Health/Check with SERVING, 1 otherwise. PORT defaults to
CYTOATLAS_PORT (the compose file and the Kubernetes manifests set it per service; the image
does not, so without it and without PORT the check fails with a message).

It runs beside the service, with the service's environment, and reaches it the way the service
demands:
- with TLS (CYTOATLAS_TLS_CERT set) it trusts CYTOATLAS_CLIENT_TLS_CA if set, else the client CA
  of mutual TLS (CYTOATLAS_TLS_CLIENT_CA, one CA for both sides), else the service's own
  certificate (self-signed); it checks the name the certificate was issued to (its first DNS
  name), not 127.0.0.1;
- with mutual TLS it presents CYTOATLAS_CLIENT_TLS_CERT/KEY if set, else the service's own
  certificate and key;
- with a token (CYTOATLAS_AUTH_TOKEN) it sends the token, so health need not be exempt.
"""

from __future__ import annotations

import os
import pathlib
import ssl
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cytoatlas.serving import config


def main(argv: list[str]) -> int:
    port = argv[0] if argv else os.environ.get("CYTOATLAS_PORT", "")
    if not port.isdigit():
        print("healthcheck: give the service port as argument or CYTOATLAS_PORT", file=sys.stderr)
        return 1
    settings = config.from_sources()
    try:
        channel = _channel(f"127.0.0.1:{port}", settings)
    except OSError as exc:
        print(f"healthcheck: cannot read a TLS file: {exc}", file=sys.stderr)
        return 1
    metadata = [("authorization", f"Bearer {settings.auth_token}")] if settings.auth_token else None
    with channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=3, metadata=metadata).status
        except grpc.RpcError as err:
            print(f"healthcheck: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(status))
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1


def _channel(address: str, settings: config.Settings) -> grpc.Channel:
    if not settings.tls_cert:
        return grpc.insecure_channel(address)
    environ = os.environ
    roots = environ.get("CYTOATLAS_CLIENT_TLS_CA") or settings.tls_client_ca or settings.tls_cert
    cert, key = environ.get("CYTOATLAS_CLIENT_TLS_CERT", ""), environ.get("CYTOATLAS_CLIENT_TLS_KEY", "")
    if not (cert and key) and settings.tls_client_ca:
        cert, key = settings.tls_cert, settings.tls_key
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pathlib.Path(roots).read_bytes(),
        private_key=pathlib.Path(key).read_bytes() if key else None,
        certificate_chain=pathlib.Path(cert).read_bytes() if cert else None)
    options = []
    if name := _certified_name(settings.tls_cert):
        options.append(("grpc.ssl_target_name_override", name))
    return grpc.secure_channel(address, credentials, options=options)


def _certified_name(cert_path: str) -> str:
    """The first DNS name (else the common name) the service's certificate was issued to."""
    try:
        decoded = ssl._ssl._test_decode_cert(cert_path)  # the standard library's PEM reader
    except (AttributeError, ssl.SSLError, OSError):
        return ""
    dns = [value for kind, value in decoded.get("subjectAltName", ()) if kind == "DNS"]
    if dns:
        return dns[0]
    return next((value for rdn in decoded.get("subject", ()) for key, value in rdn if key == "commonName"), "")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
