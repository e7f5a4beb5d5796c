"""Arrow Flight peer: the bench's queries from the same file, over pyarrow.flight's `do_get`.

The best-known Arrow-over-gRPC server, run the way its docs show: a ticket names the query, the
server streams DuckDB's record batches (16,384 rows each, as the service reads them) straight
from a RecordBatchReader. Run: `python -m bench.flight_server DB_FILE`; prints "listening on
HOST:PORT". Loopback only; the ticket carries (where, limit), never SQL.

A ticket starting with `held:` is answered from memory: the query's result, run once on the first
such call and kept. Timed, that is the transport's floor for a result of that size: a Flight round
trip between two Python processes with no query in it (the bench's `floor` way).
"""

from __future__ import annotations

import json
import sys

import duckdb
import pyarrow.flight as flight

from bench.queries import sql_for


HELD = b"held:"


class QueryServer(flight.FlightServerBase):
    def __init__(self, db: str):
        super().__init__("grpc://127.0.0.1:0")
        self.con = duckdb.connect(db, read_only=True, config={"threads": 2})
        self.held: dict[bytes, object] = {}

    def do_get(self, context, ticket):
        if ticket.ticket.startswith(HELD):
            held = self.held.get(ticket.ticket)
            if held is None:
                held = self.held.setdefault(ticket.ticket, self._reader(ticket.ticket[len(HELD):]).read_all())
            return flight.RecordBatchStream(held)
        return flight.RecordBatchStream(self._reader(ticket.ticket))

    def _reader(self, ticket: bytes):
        where, limit = json.loads(ticket)
        cursor = self.con.cursor()  # one per request, as in the service
        return cursor.sql(**sql_for(where, limit)).to_arrow_reader(16_384)


def main() -> None:
    server = QueryServer(sys.argv[1])
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    server.serve()


if __name__ == "__main__":
    main()
