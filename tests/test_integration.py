"""The three real services, built from demo data by the real builders, through the Router and stubs."""

import hashlib
import json
import os
import subprocess

import grpc
import pyarrow as pa
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cytoatlas.domains import DOMAINS as SPECS
from cytoatlas.client import Router, ServiceUnavailable, TableNotFound
from cytoatlas.client.router import decode_arrow
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc
from tests.conftest import BIN, DOMAINS, ServiceProcess


def in_process(local, domain, sql, params=()):
    return local[domain].sql(sql, params=list(params)).to_arrow_table()


def test_each_service_serves_exactly_its_domains_tables_and_none_twice(router):
    owners = router.discover()
    for domain, spec in SPECS.items():
        assert sorted(t for t, d in owners.items() if d == domain) == sorted(t.name for t in spec.tables)
    listed = [t for d in DOMAINS for t in router._stubs[d].ListTables(pb.ListTablesRequest()).tables]
    assert len(listed) == len({t.name for t in listed}) == len(owners)


def test_get_table_reports_the_spec_columns_key_and_exact_row_count(router, local):
    for domain, spec in SPECS.items():
        for table_spec in spec.tables:
            table = router.describe(table_spec.name)
            assert table.domain == domain
            assert [c.name for c in table.columns] == list(table_spec.column_names)
            assert list(table.key_columns) == list(table_spec.key)
            assert table.description == table_spec.description
            assert table.row_count == local[domain].execute(f'SELECT count(*) FROM "{table.name}"').fetchall()[0][0]
            assert table.row_count > 0
            described = {c.name: c for c in table.columns}
            for column in table_spec.columns:
                assert described[column.name].type == column.type
                assert described[column.name].description == column.description


def test_router_query_equals_in_process_duckdb(router, local):
    got = router.query("parse10m_treatment_effect", columns=["cytokine", "cell_type", "signature", "activity_diff"],
                       where=[("signature_type", "=", "CytoSig"), ("activity_diff", ">", 0.5)],
                       order_by=["-activity_diff"])
    want = in_process(local, "perturbation",
                      "SELECT cytokine, cell_type, signature, activity_diff FROM parse10m_treatment_effect "
                      "WHERE signature_type = 'CytoSig' AND activity_diff > 0.5 "
                      "ORDER BY activity_diff DESC, signature_type, cytokine, cell_type, signature")
    assert got.num_rows > 0
    assert got.equals(want)


def test_unordered_results_come_in_key_order(router, local):
    got = router.query("spatial_activity", where={"signature_type": "CytoSig"})
    want = in_process(local, "spatial", "SELECT * FROM spatial_activity WHERE signature_type = 'CytoSig' "
                      "ORDER BY signature_type, technology, tissue, file, signature")
    assert got.equals(want)


def test_paging_returns_every_row_once_in_order(router, local):
    pages = list(router.query_pages("tahoe_drug_effect", where={"signature_type": "CytoSig"}, page_size=997))
    assert len(pages) > 2 and all(p.num_rows == 997 for p in pages[:-1])
    got = pa.concat_tables(pages)
    want = in_process(local, "perturbation", "SELECT * FROM tahoe_drug_effect WHERE signature_type = 'CytoSig' "
                      "ORDER BY signature_type, drug, cell_line, signature")
    assert got.equals(want)
    assert router.query("tahoe_drug_effect", limit=10).num_rows == 10


def test_a_first_page_without_limit_stops_where_the_limited_one_does(built, local, monkeypatch):
    """The compiler leaves a long first page's LIMIT to the reader (compiler._page_clause): the
    reader must then stop after the page, flag the page that follows and hand its token on."""
    from cytoatlas.requests import to_filters
    from cytoatlas.serving import compiler
    from cytoatlas.serving.config import Settings
    from cytoatlas.serving.database import Database
    from cytoatlas.serving.table_service import open_page

    settings = Settings()
    db = Database.open(str(built["perturbation"]), "perturbation", settings)
    request = pb.QueryRequest(table="tahoe_drug_effect", limit=997, filters=to_filters({"signature_type": "CytoSig"}))

    def pages(reader_stops_from: int):
        monkeypatch.setattr(compiler, "READER_STOPS_FROM_ROWS", reader_stops_from)
        read, statements, token = [], [], None
        while token != "":
            request.page_token = token or ""
            with open_page(db, request, settings, "perturbation", None) as page:
                read.append(pa.Table.from_batches(list(page.batches()), page.schema))
                statements.append(page.query.sql)
                token = page.next_page_token()
        return read, statements

    try:
        unlimited, statements = pages(1)
        assert "LIMIT" not in statements[0] and all("LIMIT 998 OFFSET" in s for s in statements[1:])
        limited, statements = pages(10**9)
        assert statements[0].endswith("LIMIT 998")
    finally:
        db.close()
    assert len(unlimited) > 2 and [p.num_rows for p in unlimited] == [p.num_rows for p in limited]
    assert all(p.num_rows == 997 for p in unlimited[:-1])
    want = in_process(local, "perturbation", "SELECT * FROM tahoe_drug_effect WHERE signature_type = 'CytoSig' "
                      "ORDER BY signature_type, drug, cell_line, signature")
    assert pa.concat_tables(unlimited).equals(want) and pa.concat_tables(limited).equals(want)


def test_group_by_aggregates_run_in_duckdb(router, local):
    got = router.query("spatial_activity", group_by=["technology"], where={"signature": "IFNG"},
                       aggregates={"n": ("count", ""), "mean": ("avg", "mean_activity"),
                                   "tissues": ("count_distinct", "tissue")},
                       order_by=["-n"])
    want = in_process(local, "spatial", "SELECT technology, count(*) AS n, avg(mean_activity) AS mean, "
                      "count(DISTINCT tissue) AS tissues FROM spatial_activity WHERE signature = 'IFNG' "
                      "GROUP BY technology ORDER BY n DESC, technology")
    assert got.column_names == ["technology", "n", "mean", "tissues"]
    assert got.column("technology").equals(want.column("technology"))
    assert got.column("n").equals(want.column("n"))
    assert got.column("mean").to_pylist() == pytest.approx(want.column("mean").to_pylist(), rel=1e-12)


def test_large_results_stream_in_messages_under_4_mib(stubs, local):
    request = pb.QueryRequest(table="parse10m_activity")
    messages = list(stubs["perturbation"].Query(request))
    assert len(messages) > 1
    assert max(m.ByteSize() for m in messages) < 4 * 1024 * 1024
    table, last = decode_arrow(messages)
    assert last.stats.rows_returned == table.num_rows
    assert last.stats.bytes_returned == sum(len(m.arrow_ipc) for m in messages)
    assert not last.next_page_token
    assert table.num_rows == local["perturbation"].execute("SELECT count(*) FROM parse10m_activity").fetchall()[0][0]
    # The concatenated bytes are one valid Arrow IPC stream, for clients in any language.
    assert pa.ipc.open_stream(b"".join(m.arrow_ipc for m in messages)).read_all().equals(table)


def test_empty_result_still_carries_the_schema(router):
    got = router.query("tahoe_drug_effect", where={"drug": "no such drug"})
    assert got.num_rows == 0 and "activity_diff" in got.column_names


def test_rows_format_is_readable_structs(stubs, local):
    messages = list(stubs["atlas"].Query(pb.QueryRequest(
        table="cima_celltype", format=pb.RESULT_FORMAT_ROWS, limit=3,
        columns=["cell_type", "signature", "mean_activity", "n_cells"])))
    rows = [dict(r) for m in messages for r in m.rows]
    want = local["atlas"].sql("SELECT cell_type, signature, mean_activity, n_cells FROM cima_celltype "
                              "ORDER BY signature_type, cell_type, signature LIMIT 3").fetchall()
    assert [(r["cell_type"], r["signature"], r["mean_activity"], r["n_cells"]) for r in rows] == [
        (a, b, c, float(d)) for a, b, c, d in want]
    assert messages[-1].next_page_token


def test_database_info_is_the_build_manifest(router, built, source_dir):
    for domain in DOMAINS:
        info = router.database_info(domain)
        assert info.domain == domain and info.build_id and info.schema_version == 1
        assert info.file_path == str(built[domain])
        assert {t.table for t in info.table_row_counts} == {t.name for t in SPECS[domain].tables}
        assert info.source_files
        for source in info.source_files:
            assert source.sha256 == hashlib.sha256((source_dir / source.path).read_bytes()).hexdigest()


def test_health_reports_serving_overall_and_per_service(addresses):
    for address in addresses.values():
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("", "cytoatlas.table.v1.TableService"):
                assert stub.Check(health_pb2.HealthCheckRequest(service=service)).status == \
                    health_pb2.HealthCheckResponse.SERVING


def test_unknown_table_is_table_not_found_with_close_names(router):
    with pytest.raises(TableNotFound) as info:
        router.query("parse10m_activty")
    assert "parse10m_activity" in info.value.suggestions
    assert "did you mean 'parse10m_activity'" in str(info.value)


def test_a_down_service_is_named_with_its_address(addresses):
    with Router({**addresses, "spatial": "127.0.0.1:1"}, timeout=5) as router:
        with pytest.raises(ServiceUnavailable) as info:
            router.query("spatial_activity", limit=1)
        assert info.value.service == "spatial" and "127.0.0.1:1" in str(info.value)
        assert router.query("tahoe_drug_effect", limit=1).num_rows == 1  # the others keep working


def cli(addresses, *args):
    env = {**os.environ, **{f"CYTOATLAS_{d.upper()}_ADDR": a for d, a in addresses.items()}}
    return subprocess.run([str(BIN / "cytoatlas"), *args], capture_output=True, text=True, env=env, timeout=60)


def test_cli_tables_describe_query_status(addresses, local):
    out = cli(addresses, "tables", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert "parse10m_activity" in out.stdout and "spatial_neighborhood" in out.stdout and "activity" in out.stdout

    out = cli(addresses, "describe", "tahoe_drug_effect")
    assert out.returncode == 0 and "activity_diff" in out.stdout and "key (default order)" in out.stdout

    out = cli(addresses, "query", "tahoe_drug_effect", "--where", "signature_type=CytoSig", "--where",
              "activity_diff<-1", "--columns", "drug,cell_line,signature,activity_diff", "--order-by",
              "activity_diff", "--limit", "5", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    want = local["perturbation"].sql(
        "SELECT drug, cell_line, signature, activity_diff FROM tahoe_drug_effect WHERE signature_type = 'CytoSig' "
        "AND activity_diff < -1 ORDER BY activity_diff, signature_type, drug, cell_line, signature LIMIT 5").fetchall()
    assert [tuple(r.values()) for r in rows] == want

    out = cli(addresses, "query", "parse10m_treatment_effect", "--where", "n_treated=abc")
    assert out.returncode == 1 and "column 'n_treated' is BIGINT" in out.stderr and "'abc'" in out.stderr

    out = cli(addresses, "status")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("SERVING") == 3


def test_sigterm_lets_in_flight_calls_finish(built, tmp_path):
    service = ServiceProcess("perturbation", built["perturbation"], tmp_path / "p.log", "--batch-rows", "1000")
    address = service.wait_listening()
    with grpc.insecure_channel(address) as channel:
        stream = pb_grpc.TableServiceStub(channel).Query(pb.QueryRequest(table="parse10m_activity"))
        first = next(stream)
        assert service.process.poll() is None
        service.process.send_signal(15)
        rest = list(stream)  # the call completes despite the shutdown under way
    table, last = decode_arrow([first, *rest])
    assert table.num_rows == last.stats.rows_returned > 1000
    assert service.process.wait(timeout=30) == 0
