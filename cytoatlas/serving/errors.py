"""The error model: one exception type, turned into a gRPC status with google.rpc details.

Every error carries exactly one ErrorInfo (reason = an ErrorReason name, domain ERROR_DOMAIN),
plus BadRequest for INVALID_ARGUMENT, ResourceInfo for NOT_FOUND and RetryInfo when a retry
later will work (AIP-193).
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from cytoatlas.suggestions import close_matches
from cytoatlas.table.v1 import error_reason_pb2

ERROR_DOMAIN = "cytoatlas.org"
# Errors echo what the client sent; clipped so a giant name cannot push the status past gRPC's
# 16 KiB metadata limit (the client would then see only "Stream removed").
MAX_MESSAGE_CHARS = 2000
MAX_METADATA_CHARS = 256


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 30] + f"… ({len(text):,} characters)"
Reason = error_reason_pb2.ErrorReason


class ServiceError(Exception):
    """A request failure with its gRPC code, a message for people and details for programs."""

    def __init__(self, code: grpc.StatusCode, reason: int, message: str, *,
                 metadata: dict[str, str] | None = None,
                 field: str | None = None, resource: tuple[str, str] | None = None,
                 retry_after: float | None = None):
        message = clip(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = {k: clip(str(v), MAX_METADATA_CHARS) for k, v in (metadata or {}).items()}
        self.field = field and clip(field, MAX_METADATA_CHARS)  # BadRequest field path, e.g. "filters[2].values"
        # (type, name) for ResourceInfo
        self.resource = resource and (resource[0], clip(resource[1], MAX_METADATA_CHARS))
        self.retry_after = retry_after  # seconds, for RetryInfo (RESOURCE_EXHAUSTED)

    def to_status(self) -> status_pb2.Status:
        details = [error_details_pb2.ErrorInfo(
            reason=Reason.Name(self.reason), domain=ERROR_DOMAIN, metadata=self.metadata)]
        if self.code == grpc.StatusCode.INVALID_ARGUMENT:
            details.append(error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=self.field or "", description=self.message)]))
        if self.resource:
            details.append(error_details_pb2.ResourceInfo(
                resource_type=self.resource[0], resource_name=self.resource[1], description=self.message))
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after * 1e9))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        packed = []
        for detail in details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return status_pb2.Status(code=getattr(code_pb2, self.code.name), message=self.message, details=packed)

    def abort(self, context: grpc.ServicerContext):
        context.abort_with_status(rpc_status.to_status(self.to_status()))


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    matches = close_matches(name, choices)
    return f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""


def invalid(reason: int, message: str, field: str, **metadata) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, reason, message, field=field, metadata=metadata)


def table_not_found(name: str, tables: Iterable[str], service: str) -> ServiceError:
    tables = sorted(tables)
    matches = close_matches(name, tables)
    hint = did_you_mean(name, tables) if matches else f"; this service has: {', '.join(tables)}"
    return ServiceError(
        grpc.StatusCode.NOT_FOUND, Reason.TABLE_NOT_FOUND,
        f"table {name!r} is not served by the {service} service{hint}",
        metadata={"table": name, "service": service, "suggestions": ",".join(matches)},
        resource=("table", name))


def column_not_found(column: str, table: str, columns: Iterable[str], field: str) -> ServiceError:
    columns = list(columns)
    hint = did_you_mean(column, columns) or f"; columns are: {', '.join(columns)}"
    return invalid(Reason.COLUMN_NOT_FOUND, f"{field}: table {table!r} has no column {column!r}{hint}",
                   field, table=table, column=column,
                   suggestions=",".join(close_matches(column, columns)))
