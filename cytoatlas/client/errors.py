"""Client-side errors: one typed exception per situation a caller handles differently."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class CytoAtlasError(Exception):
    """A failed call, with the gRPC code and the server's ErrorInfo reason and metadata."""

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, reason: str = "",
                 metadata: dict[str, str] | None = None, service: str = "", address: str = ""):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.metadata = metadata or {}
        self.service = service
        self.address = address


class TableNotFound(CytoAtlasError, LookupError):
    """No service serves the table; `suggestions` holds close names."""

    def __init__(self, table: str, suggestions: list[str], **kw):
        hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"no CytoAtlas service serves a table named {table!r}{hint}",
                         reason="TABLE_NOT_FOUND", **kw)
        self.table = table
        self.suggestions = suggestions


class ServiceUnavailable(CytoAtlasError):
    """The owning service cannot be reached (down, or not serving a usable file)."""


def from_rpc_error(err: grpc.RpcError, service: str, address: str) -> CytoAtlasError:
    code = err.code() if hasattr(err, "code") else None
    reason, metadata = "", {}
    status = rpc_status.from_call(err) if hasattr(err, "trailing_metadata") else None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
    details = err.details() if hasattr(err, "details") else str(err)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not reason:
        message = f"the {service} service at {address} is unavailable: {details}"
        return ServiceUnavailable(message, code=code, service=service, address=address)
    cls = ServiceUnavailable if code == grpc.StatusCode.UNAVAILABLE else CytoAtlasError
    return cls(f"{service} service ({address}): {code.name if code else 'error'}: {details}",
               code=code, reason=reason, metadata=metadata, service=service, address=address)
