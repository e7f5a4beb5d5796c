"""cytoatlas.wire: the hand-built QueryResponse is an ordinary one to protobuf, and the client's
parser reads what protobuf writes."""

import pyarrow as pa

from cytoatlas import wire
from cytoatlas.table.v1 import table_service_pb2 as pb


def ipc_parts():
    batch = pa.record_batch({"x": [1, 2, 3], "s": ["a", "b", None]})
    return [batch.schema.serialize().to_pybytes(), batch.serialize(), b"\xff\xff\xff\xff\x00\x00\x00\x00"]


def test_built_response_parses_as_protobuf_and_back():
    parts = ipc_parts()
    tail = pb.QueryResponse(next_page_token="tok", stats=pb.QueryStats(rows_returned=3, bytes_returned=9))
    data = wire.arrow_response(parts, tail)
    message = pb.QueryResponse.FromString(data)
    payload = b"".join(bytes(p) for p in parts)
    assert message.arrow_ipc == payload and message.next_page_token == "tok" and message.stats.rows_returned == 3
    view = wire.parse_response(data)
    assert bytes(view.arrow_ipc) == payload and view.next_page_token == "tok" and view.stats == tail.stats
    assert pa.ipc.open_stream(pa.py_buffer(view.arrow_ipc)).read_all().num_rows == 3
    assert wire.parse_response(wire.arrow_response(parts)).next_page_token == ""  # the padding field


def test_payload_starts_8_byte_aligned_in_the_message():
    data = wire.arrow_response(ipc_parts())
    view = wire.parse_response(data)
    assert (pa.py_buffer(view.arrow_ipc).address - pa.py_buffer(data).address) % 8 == 0


def test_parser_reads_any_protobuf_layout():
    for message in (pb.QueryResponse(arrow_ipc=b"abc", next_page_token="t"),
                    pb.QueryResponse(stats=pb.QueryStats(rows_returned=1)),
                    pb.QueryResponse()):
        view = wire.parse_response(message.SerializeToString())
        assert bytes(view.arrow_ipc) == message.arrow_ipc
        assert view.next_page_token == message.next_page_token and view.stats == message.stats
    rows = pb.QueryResponse()
    rows.rows.add().update({"a": 1})
    assert wire.parse_response(rows.SerializeToString()).rows[0]["a"] == 1


def test_serializer_passes_bytes_and_serializes_messages():
    assert wire.serialize_response(b"\x0a\x00") == b"\x0a\x00"
    assert wire.serialize_response(pb.QueryResponse(next_page_token="t")) == \
        pb.QueryResponse(next_page_token="t").SerializeToString()


def test_last_message_answers_stats_like_the_message():
    stats = pb.QueryStats(rows_returned=3, bytes_returned=9)
    last = wire.arrow_response(ipc_parts(), pb.QueryResponse(stats=stats))
    assert last.HasField("stats") and last.stats == stats  # what the metrics interceptor reads
    assert type(wire.serialize_response(last)) is bytes
    assert pb.QueryResponse.FromString(wire.serialize_response(last)).stats == stats
