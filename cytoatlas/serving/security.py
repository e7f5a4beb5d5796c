"""Transport security and the optional shared token.

TLS when --tls-cert/--tls-key are set; mutual TLS when --tls-client-ca is set too (clients must
present a certificate signed by that CA). For deployments without mTLS, --auth-token makes every
call carry `authorization: Bearer <token>`; health and reflection stay open if listed in
--auth-exempt, so probes and grpcurl discovery keep working.
"""

from __future__ import annotations

import hmac
import pathlib
from dataclasses import dataclass

import grpc

from cytoatlas.serving.config import Settings
from cytoatlas.serving.errors import Reason, ServiceError

EXEMPTABLE = {"health": ("/grpc.health.",), "reflection": ("/grpc.reflection.",)}


class SecurityError(Exception):
    """The TLS or token settings are unusable; the message names the setting."""


def _read(path: str, setting: str) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise SecurityError(f"--{setting} {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM bytes the TLS settings name: what the gRPC server and the Flight endpoint serve."""

    cert: bytes
    key: bytes
    client_ca: bytes | None  # set: mutual TLS, client certificates must be signed by it


def tls_material(settings: Settings) -> TlsMaterial | None:
    """The TLS settings read from their files, or None for plaintext."""
    if not (settings.tls_cert or settings.tls_key or settings.tls_client_ca):
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise SecurityError("TLS needs both --tls-cert and --tls-key (--tls-client-ca adds mutual TLS)")
    client_ca = _read(settings.tls_client_ca, "tls-client-ca") if settings.tls_client_ca else None
    return TlsMaterial(_read(settings.tls_cert, "tls-cert"), _read(settings.tls_key, "tls-key"), client_ca)


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings, or None for plaintext."""
    tls = tls_material(settings)
    if tls is None:
        return None
    return grpc.ssl_server_credentials([(tls.key, tls.cert)], root_certificates=tls.client_ca,
                                       require_client_auth=tls.client_ca is not None)


def exempt_prefixes(settings: Settings) -> tuple[str, ...]:
    names = [n.strip() for n in settings.auth_exempt.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXEMPTABLE]
    if unknown:
        raise SecurityError(f"--auth-exempt: unknown service {', '.join(unknown)}; "
                            f"choose from {', '.join(EXEMPTABLE)}")
    return tuple(p for n in names for p in EXEMPTABLE[n])


class TokenCheck:
    """Refuse calls without the shared bearer token with UNAUTHENTICATED (interceptor.py asks)."""

    def __init__(self, token: str, exempt: tuple[str, ...]):
        self._expected = f"Bearer {token}".encode()
        self._exempt = exempt

    def applies_to(self, method: str) -> bool:
        return not method.startswith(self._exempt)

    def check(self, context) -> None:
        """Abort the call unless its metadata carries the token."""
        sent = next((value for key, value in context.invocation_metadata() if key == "authorization"), "")
        try:
            self.verify(sent)
        except ServiceError as exc:
            exc.abort(context)

    def verify(self, sent: str | bytes) -> None:
        """Raise UNAUTHENTICATED unless `sent` (the `authorization` header's value) is the token."""
        sent = sent.encode() if isinstance(sent, str) else sent
        if hmac.compare_digest(sent, self._expected):
            return
        problem = "no bearer token was sent" if not sent else "the bearer token is not valid"
        raise ServiceError(grpc.StatusCode.UNAUTHENTICATED, Reason.UNAUTHENTICATED,
                           f"{problem}; send metadata `authorization: Bearer <token>`")
