"""JSON-over-HTTP peer: the bench's queries from the same file, as the CytoAtlas web API serves
them today — rows as a JSON array of objects over HTTP/1.1 keep-alive.

Standard library only (http.server, one thread per connection). POST /query with body
[where, limit]. Run: `python -m bench.json_server DB_FILE`; prints "listening on HOST:PORT".
Loopback only; the body carries (where, limit), never SQL.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb

from bench.queries import sql_for


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per client, as a real client pools
    disable_nagle_algorithm = True  # else small replies wait ~40 ms on the client's delayed ACK

    def do_POST(self):
        where, limit = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cursor = self.server.con.cursor()
        try:
            rows = cursor.sql(**sql_for(where, limit)).to_arrow_table().to_pylist()
        finally:
            cursor.close()
        body = json.dumps(rows).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # no line per request
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 resets some of 16 clients connecting at once


def main() -> None:
    server = Server(("127.0.0.1", 0), Handler)
    server.con = duckdb.connect(sys.argv[1], read_only=True, config={"threads": 2})
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
