"""The services seen through the real grpcurl binary, with no proto files at hand (reflection)."""

import json
import subprocess

import pytest

from tests.conftest import BIN

GRPCURL = str(BIN / "grpcurl")
TABLE_SERVICE = "cytoatlas.table.v1.TableService"


def grpcurl(address, *args, data=None):
    command = [GRPCURL, "-plaintext", *(["-d", json.dumps(data)] if data is not None else []), address, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("domain", ["atlas", "perturbation", "spatial"])
def test_list_shows_table_service_health_and_reflection(addresses, domain):
    out = grpcurl(addresses[domain], "list")
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) >= {TABLE_SERVICE, "grpc.health.v1.Health",
                                       "grpc.reflection.v1alpha.ServerReflection"}


def test_describe_shows_the_rpcs(addresses):
    out = grpcurl(addresses["perturbation"], "describe", TABLE_SERVICE)
    assert out.returncode == 0, out.stderr
    for rpc in ("ListTables", "GetTable", "Query", "GetDatabaseInfo"):
        assert f"rpc {rpc}" in out.stdout
    assert "stream .cytoatlas.table.v1.QueryResponse" in out.stdout


def test_list_tables(addresses):
    out = grpcurl(addresses["spatial"], f"{TABLE_SERVICE}/ListTables")
    assert out.returncode == 0, out.stderr
    names = {t["name"] for t in json.loads(out.stdout)["tables"]}
    assert "spatial_neighborhood" in names and "parse10m_activity" not in names


def test_rows_query_reads_as_json(addresses, local):
    out = grpcurl(addresses["perturbation"], f"{TABLE_SERVICE}/Query", data={
        "table": "tahoe_drug_effect", "format": "RESULT_FORMAT_ROWS", "limit": 3,
        "columns": ["drug", "cell_line", "signature", "activity_diff"],
        "filters": [{"column": "signature_type", "op": "OP_EQ", "values": [{"string_value": "SecAct"}]}],
        "order_by": [{"column": "activity_diff", "descending": True}]})
    assert out.returncode == 0, out.stderr
    message = json.loads(out.stdout)
    want = local["perturbation"].sql(
        "SELECT drug, cell_line, signature, activity_diff FROM tahoe_drug_effect WHERE signature_type = 'SecAct' "
        "ORDER BY activity_diff DESC, signature_type, drug, cell_line, signature LIMIT 3").fetchall()
    # A Struct is a map: JSON names each value, so compare by column name, not by position.
    columns = ["drug", "cell_line", "signature", "activity_diff"]
    assert [tuple(r[c] for c in columns) for r in message["rows"]] == want
    assert message["next_page_token"] and message["stats"]["rows_returned"] == "3"


def test_health_check(addresses):
    out = grpcurl(addresses["atlas"], "grpc.health.v1.Health/Check", data={"service": TABLE_SERVICE})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"status": "SERVING"}


def test_errors_carry_code_and_details(addresses):
    out = grpcurl(addresses["atlas"], f"{TABLE_SERVICE}/GetTable", data={"name": "cima_celtype"})
    assert out.returncode != 0
    assert "Code: NotFound" in out.stderr and "did you mean 'cima_celltype'" in out.stderr

