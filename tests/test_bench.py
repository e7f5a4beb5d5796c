"""The bench's peers answer the bench's queries with the same rows as in-process DuckDB, so the
side-by-side figures compare like with like."""

import http.client
import json
import random
import sys

import pyarrow.flight as flight
import pytest

from bench.__main__ import start
from bench.queries import cases, sql_for


@pytest.fixture(scope="module")
def peers(built, local, tmp_path_factory):
    logs = tmp_path_factory.mktemp("bench-peers")
    db = str(built["perturbation"])
    running = [start(name, [sys.executable, "-m", f"bench.{name}", db], logs)
               for name in ("flight_server", "json_server")]
    yield {"flight": running[0][1], "json": running[1][1]}
    for process, _ in running:
        process.terminate()
        process.wait(timeout=30)


def test_flight_and_json_peers_return_the_in_process_rows(peers, local):
    con = local["perturbation"]
    client = flight.FlightClient(f"grpc://{peers['flight']}")
    connection = http.client.HTTPConnection(peers["json"])
    for name, case in cases(con).items():
        where, limit = case(random.Random(3))
        expected = con.sql(**sql_for(where, limit)).to_arrow_table()
        assert expected.num_rows > 0, name
        got = client.do_get(flight.Ticket(json.dumps([where, limit]))).read_all()
        assert got.equals(expected), name
        held = flight.Ticket(b"held:" + json.dumps([where, limit]).encode())  # the floor: kept after one run
        assert client.do_get(held).read_all().equals(expected), name
        assert client.do_get(held).read_all().equals(expected), name
        connection.request("POST", "/query", json.dumps([where, limit]))
        assert json.loads(connection.getresponse().read()) == expected.to_pylist(), name


def test_bench_queries_are_only_column_equals_value():  # what the peers accept off the wire
    with pytest.raises(ValueError, match="column = value"):
        sql_for([("x; DROP TABLE y", "=", 1)], 0)
    with pytest.raises(ValueError, match="column = value"):
        sql_for([("activity", ">", 1)], 0)
