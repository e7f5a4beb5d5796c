"""Arrow Flight peer: the bench's queries from the same file, over pyarrow.flight's `do_get`.

The best-known Arrow-over-gRPC server, run the way its docs show: a ticket names the query, the
server streams DuckDB's record batches (16,384 rows each, as the service reads them) straight
from a RecordBatchReader. Run: `python -m bench.flight_server DB_FILE`; prints "listening on
HOST:PORT". Loopback only; the ticket carries (where, limit), never SQL.
"""

from __future__ import annotations

import json
import sys

import duckdb
import pyarrow.flight as flight

from bench.queries import sql_for


class QueryServer(flight.FlightServerBase):
    def __init__(self, db: str):
        super().__init__("grpc://127.0.0.1:0")
        self.con = duckdb.connect(db, read_only=True, config={"threads": 2})

    def do_get(self, context, ticket):
        where, limit = json.loads(ticket.ticket)
        cursor = self.con.cursor()  # one per request, as in the service
        reader = cursor.sql(**sql_for(where, limit)).to_arrow_reader(16_384)
        return flight.RecordBatchStream(reader)


def main() -> None:
    server = QueryServer(sys.argv[1])
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    server.serve()


if __name__ == "__main__":
    main()
