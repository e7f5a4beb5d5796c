"""QueryResponse on the wire with its Arrow payload kept out of protobuf, on both sides.

A QueryResponse is `arrow_ipc` (field 1, bytes) plus, on the last message, `next_page_token` and
`stats`. Built and parsed by protobuf, a 1M-row page (~70 MB) is copied three extra times on the
server (into the message, out to bytes, into the joined payload) and twice on the client (into the
parsed message, out as a bytes attribute). Here the server writes field 1's tag and length
itself in front of the Arrow buffers and appends the other fields as protobuf bytes; the client
slices field 1 out of the received bytes as a memoryview (no copy) and parses only the rest.
The bytes on the wire are an ordinary QueryResponse: grpcurl and generated stubs read them as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from cytoatlas.table.v1 import table_service_pb2 as pb

_ARROW_TAG = b"\x0a"  # field 1, wire type 2 (length-delimited)
# An empty next_page_token (field 3) in front pads the header to 8 bytes, so the Arrow payload
# stays 8-byte aligned in the client's buffer (Arrow IPC's alignment); the real token, if any,
# comes later in the message, and protobuf keeps the last value of a field.
_PAD = b"\x1a\x00"


def _length(n: int) -> bytes:
    """`n` as a 5-byte varint (overlong when small, which protobuf parsers accept): a fixed size."""
    if n >= 1 << 35:
        raise ValueError(f"{n} bytes is too large for one message")
    return bytes([(n >> s) & 0x7F | 0x80 for s in (0, 7, 14, 21)] + [n >> 28])


def payload_size(parts: Sequence) -> int:
    return sum(len(p) if isinstance(p, bytes) else p.size for p in parts)


class LastResponse(bytes):
    """The last message of a call, serialized, still answering `stats` and HasField("stats") as
    the QueryResponse would: interceptors (metrics, request logs) read the page figures there."""

    def __new__(cls, data: bytes, stats: pb.QueryStats):
        self = super().__new__(cls, data)
        self.stats = stats
        return self

    def HasField(self, name: str) -> bool:  # noqa: N802 (protobuf's name)
        return name == "stats"


def arrow_response(parts: Sequence, tail: pb.QueryResponse | None = None) -> bytes:
    """A serialized QueryResponse whose arrow_ipc is the concatenation of `parts` (bytes or
    pyarrow Buffers), with `tail`'s other fields (token, stats) after it: one copy of the data
    (the last message, at most one batch, is copied once more into a LastResponse)."""
    data = b"".join([_PAD, _ARROW_TAG, _length(payload_size(parts)), *parts,
                     tail.SerializeToString() if tail is not None else b""])
    return data if tail is None else LastResponse(data, tail.stats)


def serialize_response(message) -> bytes:
    """The server's response serializer for Query: pre-built bytes as they are (gRPC takes exact
    bytes only), messages by protobuf."""
    if type(message) is bytes:
        return message
    return bytes(message) if isinstance(message, bytes) else message.SerializeToString()


class QueryResponseView(NamedTuple):
    """A received QueryResponse: `arrow_ipc` is a memoryview into the received bytes."""

    arrow_ipc: memoryview
    next_page_token: str
    stats: pb.QueryStats
    rows: Sequence


def parse_response(data: bytes) -> QueryResponseView:
    """The client's response deserializer for Query: field 1 sliced out, the rest parsed by
    protobuf. Any layout protobuf allows is read (fields in any order, repeated)."""
    view, arrow, rest, i, end = memoryview(data), [], [], 0, len(data)
    while i < end:
        start = i
        key, i = _varint(data, i)
        wire_type = key & 7
        if wire_type == 2:
            n, i = _varint(data, i)
            i += n
        elif wire_type == 0:
            _, i = _varint(data, i)
        elif wire_type in (1, 5):
            i += 8 if wire_type == 1 else 4
        else:
            return _parsed(pb.QueryResponse.FromString(data))
        if key == 0x0A:
            arrow.append(view[i - n:i])
        else:
            rest.append(view[start:i])
    other = pb.QueryResponse.FromString(b"".join(rest)) if rest else pb.QueryResponse()
    if other.rows or len(arrow) > 1:  # not a layout this fast path is for; let protobuf do it all
        return _parsed(pb.QueryResponse.FromString(data))
    return QueryResponseView(arrow[0] if arrow else memoryview(b""), other.next_page_token, other.stats, ())


def _parsed(message: pb.QueryResponse) -> QueryResponseView:
    return QueryResponseView(memoryview(message.arrow_ipc), message.next_page_token, message.stats, message.rows)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i
        shift += 7
