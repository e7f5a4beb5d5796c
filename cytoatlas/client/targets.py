"""Where a domain's channel connects: one service, or every replica of it.

A domain endpoint is `host:port`, a gRPC target URI passed through as is (`dns:///name:port`, which
resolves to every replica behind a headless Service, `ipv4:a:p,b:p`, `unix:path`), or a comma list
of replicas `host1:port,host2:port`. The channel balances calls over all addresses round-robin
(see table_grpc_service_config.json).
"""

from __future__ import annotations

import socket

_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


def channel_target(endpoint: str) -> str:
    """The gRPC target for an endpoint; a comma list becomes an `ipv4:` address list."""
    endpoint = endpoint.strip()
    if "," not in endpoint or endpoint.startswith(_SCHEMES):
        return endpoint
    return "ipv4:" + ",".join(_ipv4(replica.strip()) for replica in endpoint.split(",") if replica.strip())


def replicas(endpoint: str) -> list[str]:
    """The `host:port` of each replica of a comma list; [] for one address or a target URI."""
    endpoint = endpoint.strip()
    if "," not in endpoint or endpoint.startswith(_SCHEMES):
        return []
    return [replica.strip() for replica in endpoint.split(",") if replica.strip()]


def _ipv4(replica: str) -> str:
    """`host:port` with the host resolved now (names in a list are looked up once, at start)."""
    host, sep, port = replica.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"replica {replica!r} is not host:port")
    try:
        infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"replica {replica!r}: cannot resolve {host!r} to an IPv4 address ({exc}); "
                         f"for names that resolve to many replicas use dns:///{replica}") from None
    return f"{infos[0][4][0]}:{port}"
