"""`python -m bench.transport_floor`: what a round trip costs on each transport, nothing else.

A server holding a result in memory (the first rows of the bench file's table) answers a
200-byte request with it, on three transports, Python at both ends, interleaved in rounds:

  do_get     Arrow Flight DoGet, one gRPC stream per request (what the Router reads through)
  exchange   Arrow Flight DoExchange: one stream left open, a request and its answer (Arrow IPC
             bytes) as app_metadata messages on it
  socket     a plain TCP connection left open: a length-prefixed request, a length-prefixed
             Arrow IPC stream back (no HTTP/2, no gRPC)

No query runs: this is the part of a served query that no server code can make smaller, per
transport (docs/performance.md, "Measured, not kept").
"""

from __future__ import annotations

import argparse
import random
import socket
import socketserver
import statistics
import struct
import threading
import time

import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc as ipc

from bench.__main__ import DEFAULT_SCALE, prepare
from bench.queries import TABLE

REQUEST = b"x" * 200  # about a serialized point QueryRequest
LENGTH = struct.Struct("<I")


def ipc_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


class HeldFlight(flight.FlightServerBase):
    def __init__(self, held: pa.Table):
        super().__init__("grpc://127.0.0.1:0")
        self.held = held

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.held)

    def do_exchange(self, context, descriptor, reader, writer):
        while True:
            try:
                reader.read_chunk()
            except StopIteration:
                return
            writer.write_metadata(ipc_bytes(self.held))


def receive(sock: socket.socket, size: int) -> bytearray:
    data = bytearray(size)
    view, got = memoryview(data), 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if not n:
            raise ConnectionError("closed")
        got += n
    return data


def send(sock: socket.socket, *parts) -> None:
    """The parts in as few segments as the kernel takes (one for a small answer): sendmsg, again
    with the rest after a partial send."""
    views = [memoryview(part).cast("B") for part in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if views:
            views[0] = views[0][sent:]


def socket_server(held: pa.Table) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                try:
                    (size,) = LENGTH.unpack(receive(self.request, LENGTH.size))
                    receive(self.request, size)
                except ConnectionError:
                    return
                answer = ipc_bytes(held)
                send(self.request, LENGTH.pack(answer.size), answer)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=300, help="round trips per way and round")
    args = parser.parse_args()
    _, db = prepare(args.scale, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        results = {rows: con.sql(f"SELECT * FROM {TABLE} LIMIT {rows}").to_arrow_table() for rows in (12, 10_000)}
    for rows, held in results.items():
        server = HeldFlight(held)
        client = flight.FlightClient(f"grpc://127.0.0.1:{server.port}")
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_command(b"pages"))
        plain = socket_server(held)
        conn = socket.create_connection(plain.server_address)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def exchange():
            writer.write_metadata(REQUEST)
            return ipc.open_stream(reader.read_chunk().app_metadata).read_all()

        def over_socket():
            conn.sendall(LENGTH.pack(len(REQUEST)) + REQUEST)
            (size,) = LENGTH.unpack(receive(conn, LENGTH.size))
            return ipc.open_stream(pa.py_buffer(receive(conn, size))).read_all()

        ways = {"do_get": lambda: client.do_get(flight.Ticket(REQUEST)).read_all(),
                "exchange": exchange, "socket": over_socket}
        for name, way in ways.items():
            assert way().equals(held), name
        times = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name in random.sample(list(ways), len(ways)):
                started = time.perf_counter()
                for _ in range(args.calls):
                    ways[name]()
                times[name].append((time.perf_counter() - started) / args.calls * 1000)
        base = statistics.median(times["do_get"])
        print(f"{rows:>6} rows: " + "  ".join(
            f"{name} {statistics.median(t):.3f} ms ({statistics.median(t) / base:.2f}x)" for name, t in times.items()),
            flush=True)
        writer.done_writing()
        conn.close()
        plain.shutdown()
        client.close()
        server.shutdown()


if __name__ == "__main__":
    main()
