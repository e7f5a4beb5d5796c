"""Page tokens: opaque, signed, bound to one request shape and one build of the file (AIP-158).

A token is base64url(offset | request fingerprint | build id | HMAC). The fingerprint covers
every request field except `limit` and `page_token`, so the page size may change between pages
but nothing else may.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

import grpc

from cytoatlas.serving.errors import Reason, ServiceError, invalid
from cytoatlas.table.v1 import table_service_pb2 as pb

_LAYOUT = struct.Struct(">Q16s16s")  # offset, request fingerprint, build id digest
_MAC_BYTES = 16


def fingerprint(request: pb.QueryRequest) -> bytes:
    shape = pb.QueryRequest()
    shape.CopyFrom(request)
    shape.ClearField("limit")
    shape.ClearField("page_token")
    shape.ClearField("instance_id")  # which process answers a page is not what the token is bound to
    return hashlib.sha256(shape.SerializeToString(deterministic=True)).digest()[:16]


def _build_digest(build_id: str) -> bytes:
    return hashlib.sha256(build_id.encode()).digest()[:16]


def encode(offset: int, request: pb.QueryRequest, build_id: str, secret: str) -> str:
    body = _LAYOUT.pack(offset, fingerprint(request), _build_digest(build_id))
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def decode(token: str, request: pb.QueryRequest, build_id: str, secret: str) -> int:
    """Return the offset a token continues from, or raise the ServiceError the client deserves."""
    bad = invalid(Reason.INVALID_PAGE_TOKEN,
                  "page_token is not a token this service issued (malformed or altered); "
                  "send the next_page_token of the previous response unchanged",
                  "page_token", table=request.table)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    if len(raw) != _LAYOUT.size + _MAC_BYTES:
        raise bad
    body, mac = raw[:_LAYOUT.size], raw[_LAYOUT.size:]
    if not hmac.compare_digest(mac, hmac.new(secret.encode(), body, hashlib.sha256).digest()[:_MAC_BYTES]):
        raise bad
    offset, request_fingerprint, build_digest = _LAYOUT.unpack(body)
    if build_digest != _build_digest(build_id):
        raise ServiceError(
            grpc.StatusCode.FAILED_PRECONDITION, Reason.STALE_PAGE_TOKEN,
            "page_token was issued for another build of the data (it was rebuilt since, or the "
            "token comes from another service); start again without a page_token",
            metadata={"table": request.table, "buildId": build_id})
    if not hmac.compare_digest(request_fingerprint, fingerprint(request)):
        raise invalid(Reason.INVALID_PAGE_TOKEN,
                      "page_token belongs to a different request: every field except limit must "
                      "match the request that returned it", "page_token", table=request.table)
    return offset
