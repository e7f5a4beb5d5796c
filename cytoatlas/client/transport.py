"""How the Router reaches the services: plaintext, TLS, mutual TLS, and/or a bearer token.

Settings come from keyword arguments or the environment: CYTOATLAS_CLIENT_TLS_CA (trust this CA:
TLS on), CYTOATLAS_CLIENT_TLS_CERT + CYTOATLAS_CLIENT_TLS_KEY (present this client certificate:
mutual TLS), CYTOATLAS_CLIENT_TOKEN (send `authorization: Bearer <token>` on every call).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

ENV = {"tls_ca": "CYTOATLAS_CLIENT_TLS_CA", "tls_cert": "CYTOATLAS_CLIENT_TLS_CERT",
       "tls_key": "CYTOATLAS_CLIENT_TLS_KEY", "token": "CYTOATLAS_CLIENT_TOKEN"}

# How soon a channel tries again to connect to a service it lost. gRPC's defaults (1 s growing 1.6x
# up to 120 s) meant a Router failed every call for seconds after a service it could not reach for
# a while came back: its channel was still waiting out the backoff (10 s down: 5.3 s of failures
# after; tests/test_router_unavailable.py). The services are in-cluster and a refused connect
# costs nothing, so a channel tries every 0.1 s at first and at least twice a second.
RECONNECT_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500))


@dataclass(frozen=True)
class Transport:
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    token: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: str | None) -> "Transport":
        """Keyword arguments that are not None win over the environment."""
        environ = os.environ if environ is None else environ
        return cls(**{name: given.get(name) if given.get(name) is not None else environ.get(env, "")
                      for name, env in ENV.items()})

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert)

    def channel(self, address: str, options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
        """A channel to `address`; `options` are gRPC channel arguments, over RECONNECT_OPTIONS."""
        options = list({**dict(RECONNECT_OPTIONS), **dict(options)}.items())
        if bool(self.tls_cert) != bool(self.tls_key):  # checked first: a lone key must not mean plaintext
            raise ValueError("a client certificate needs both tls_cert and tls_key "
                             f"({ENV['tls_cert']}, {ENV['tls_key']})")
        if self.tls:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=read_pem(self.tls_ca), private_key=read_pem(self.tls_key),
                certificate_chain=read_pem(self.tls_cert))
            channel = grpc.secure_channel(address, credentials, options=list(options))
        else:
            channel = grpc.insecure_channel(address, options=list(options))
        if self.token:
            channel = grpc.intercept_channel(channel, _BearerToken(self.token))
        return channel


def read_pem(path: str) -> bytes | None:
    """A PEM file's bytes, None for an unset path."""
    return pathlib.Path(path).read_bytes() if path else None


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call (works with and without TLS)."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details):
        return details._replace(metadata=[*(details.metadata or ()), self._header])

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._with_token(client_call_details), request)
