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
