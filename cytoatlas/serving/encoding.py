"""Result encodings: Arrow IPC messages under a byte cap, and google.protobuf.Struct rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import struct_pb2

from cytoatlas.serving.errors import Reason, ServiceError

# End-of-stream marker of the Arrow IPC streaming format.
IPC_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def schema_bytes(schema: pa.Schema) -> bytes:
    return schema.serialize().to_pybytes()


def ipc_messages(batches: Iterable[pa.RecordBatch], max_bytes: int) -> Iterator[pa.Buffer]:
    """Encapsulated IPC record-batch messages, each at most `max_bytes` (batches split by rows)."""
    for batch in batches:
        yield from _split(batch, max_bytes)


def _split(batch: pa.RecordBatch, max_bytes: int) -> Iterator[pa.Buffer]:
    encoded = batch.serialize()
    if encoded.size <= max_bytes:
        yield encoded
    elif batch.num_rows > 1:
        half = batch.num_rows // 2
        yield from _split(batch.slice(0, half), max_bytes)
        yield from _split(batch.slice(half), max_bytes)
    else:
        raise ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.RESOURCE_EXHAUSTED,
                           f"one row encodes to {encoded.size} bytes, more than the "
                           f"{max_bytes}-byte message limit; project fewer columns",
                           metadata={"limit": "max_message_bytes"})


def _json_compatible(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Cast the columns google.protobuf.Value cannot hold (dates, decimals, binary) to strings."""
    columns = []
    for column in batch.columns:
        t = column.type
        if pa.types.is_temporal(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            column = pc.cast(column, pa.string())
        elif pa.types.is_decimal(t):
            column = pc.cast(column, pa.float64())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def struct_rows(batch: pa.RecordBatch) -> list[struct_pb2.Struct]:
    """Rows as Structs: per-row Python, so only for the ROWS format, whose page size is small."""
    rows = []
    for record in _json_compatible(batch).to_pylist():
        row = struct_pb2.Struct()
        row.update(record)
        rows.append(row)
    return rows
