"""Client-side errors: one typed exception per situation a caller handles differently."""

from __future__ import annotations

import re

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
    """The owning service cannot be reached (down, or not serving a usable file).

    The message is one sentence: the domain, its address as configured, what happened (`problem`)
    and what to do (`remedy`)."""

    def __init__(self, message: str, *, problem: str = "", remedy: str = "", **kw):
        super().__init__(message, **kw)
        self.problem = problem
        self.remedy = remedy

    @classmethod
    def of(cls, service: str, address: str, problem: str, remedy: str, **kw) -> "ServiceUnavailable":
        return cls(f"the {service} service at {address} {problem}; {remedy}", problem=problem, remedy=remedy,
                   service=service, address=address, **kw)

    def for_table(self, table: str) -> "ServiceUnavailable":
        """The same failure, said of the table the caller asked for."""
        message = (f"table {table!r} belongs to the {self.service} service at {self.address}, which "
                   f"{self.problem}; {self.remedy}")
        return ServiceUnavailable(message, problem=self.problem, remedy=self.remedy, code=self.code,
                                  reason=self.reason, metadata=self.metadata, service=self.service,
                                  address=self.address)


# gRPC's text for a failed connection: "... last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to ...".
_LAST_ERROR = re.compile(r"last error: (?:[A-Z_]+: )?(?:(?:ipv4|ipv6|unix|unix-abstract|vsock):\S+: )?(.*)$")
# The server's DATABASE_UNAVAILABLE texts (serving/swap.py, serving/table_service.py).
_FILE_PROBLEM = re.compile(r"database file: (.*?)(?:; it will serve as soon as .*)?$", re.DOTALL)


def from_rpc_error(err: grpc.RpcError, service: str, address: str, *,
                   timeout: float | None = None) -> CytoAtlasError:
    """The typed error for a failed call to `service` at `address` (as the caller configured it);
    `timeout`: the call's deadline in seconds, named when it expired."""
    code = err.code() if hasattr(err, "code") else None
    reason, metadata = "", {}
    try:
        status = rpc_status.from_call(err) if hasattr(err, "trailing_metadata") else None
    except ValueError:  # details that do not match the status (a proxy rewrote it): the code still holds
        status = None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
    details = err.details() if hasattr(err, "details") else str(err)
    details = details or ""
    kw = {"code": code, "reason": reason, "metadata": metadata}
    if code == grpc.StatusCode.UNAVAILABLE or (code == grpc.StatusCode.DEADLINE_EXCEEDED and not reason):
        problem, remedy = _unavailable(code, reason, metadata, details, service, timeout)
        return ServiceUnavailable.of(service, address, problem, remedy, **kw)
    return CytoAtlasError(f"{service} service ({address}): {code.name if code else 'error'}: {details}",
                          service=service, address=address, **kw)


def _unavailable(code, reason: str, metadata: dict[str, str], details: str, service: str,
                 timeout: float | None) -> tuple[str, str]:
    """(what happened, what to do) for a service that cannot answer."""
    env = f"CYTOATLAS_{service.upper()}_ADDR"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        within = f"within {timeout:g} s" if timeout else "before the deadline"
        return (f"did not answer {within}",
                "check that it is up and not overloaded (`cytoatlas status`), or give the Router a longer timeout")
    if reason == "DATABASE_UNAVAILABLE":
        match = _FILE_PROBLEM.search(details)
        where = metadata.get("path") or "its --db path"
        return (f"is running but not serving a usable file ({match.group(1) if match else details})",
                f"publish a good file at {where} (`cytoatlas build {service}`); it is served without a restart")
    if reason:
        return f"is unavailable ({details})", "check it with `cytoatlas status`"
    if "Connection refused" in details:
        return ("refused the connection (nothing is listening there)",
                f"start it with `cytoatlas serve {service} --db FILE` or set {env} to where it runs")
    if "errors resolving" in details or "DNS resolution failed" in details:
        return "cannot be found (its host name does not resolve)", f"check the address or set {env}"
    if "handshake failed" in details.lower():
        return ("failed the TLS handshake (TLS on one side only, or a certificate not trusted)",
                "make the CYTOATLAS_CLIENT_TLS_* settings match the service's --tls-* settings")
    match = _LAST_ERROR.search(details)
    return (f"cannot be reached ({match.group(1) if match else details})",
            f"check that it is running (`cytoatlas status`) and that {env} names it")
