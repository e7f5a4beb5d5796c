"""Typed RPCs through the real grpcurl binary (reflection only, no proto files), and the
cross-domain target lookup through the Router and `cytoatlas target`, with one service down."""

import json
import subprocess

import grpc
import pytest

from cytoatlas.client import Router
from tests.conftest import BIN, ServiceProcess
from tests.test_grpcurl import grpcurl

TYPED = {"atlas": "cytoatlas.atlas.v1.AtlasService",
         "perturbation": "cytoatlas.perturbation.v1.PerturbationService",
         "spatial": "cytoatlas.spatial.v1.SpatialService"}


@pytest.mark.parametrize("domain", list(TYPED))
def test_list_shows_the_typed_service_and_health_reports_it(addresses, domain):
    out = grpcurl(addresses[domain], "list")
    assert out.returncode == 0, out.stderr
    assert TYPED[domain] in out.stdout.split() and "cytoatlas.table.v1.TableService" in out.stdout
    out = grpcurl(addresses[domain], "grpc.health.v1.Health/Check", data={"service": TYPED[domain]})
    assert json.loads(out.stdout) == {"status": "SERVING"}


def test_describe_shows_typed_requests(addresses):
    out = grpcurl(addresses["perturbation"], "describe", "cytoatlas.perturbation.v1.ListParse10mActivityRequest")
    assert out.returncode == 0, out.stderr
    for field in ("string signature_type = 1;", "string cytokine = 2;", "int32 page_size = 6;"):
        assert field in out.stdout


def test_treatment_effects_as_json(addresses, local):
    out = grpcurl(addresses["perturbation"], f"{TYPED['perturbation']}/ListParse10mTreatmentEffects",
                  data={"cytokine": "IL-6", "signature": "IL6", "page_size": 5})
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["treatment_effects"]
    want = local["perturbation"].sql(
        "SELECT cell_type, activity_diff, qvalue FROM parse10m_treatment_effect WHERE signature_type = 'CytoSig' "
        "AND cytokine = 'IL-6' AND signature = 'IL6' ORDER BY cell_type LIMIT 5").fetchall()
    assert [(r["cell_type"], r["activity_diff"], r["qvalue"]) for r in rows] == want


def test_heatmap_as_json(addresses, local):
    out = grpcurl(addresses["perturbation"], f"{TYPED['perturbation']}/GetParse10mHeatmap",
                  data={"cell_type": "Classical monocyte"})
    assert out.returncode == 0, out.stderr
    matrix = json.loads(out.stdout)["matrix"]
    want = local["perturbation"].sql(
        "SELECT cytokine, activity FROM parse10m_cytokine_heatmap WHERE signature_type = 'CytoSig' "
        "AND cell_type = 'Classical monocyte' ORDER BY cytokine").fetchall()
    assert matrix["columns"] == ["Classical monocyte"]
    assert list(zip(matrix["rows"], (v["values"][0] for v in matrix["values"]))) == want


def test_spatial_datasets_and_dataset(addresses, local):
    out = grpcurl(addresses["spatial"], f"{TYPED['spatial']}/ListDatasets", data={"tissue": "brain"})
    assert out.returncode == 0, out.stderr
    want = [r[0] for r in local["spatial"].sql(
        "SELECT dataset_id FROM spatial_dataset_metadata WHERE tissue = 'brain' ORDER BY 1").fetchall()]
    assert [d["dataset_id"] for d in json.loads(out.stdout)["datasets"]] == want
    out = grpcurl(addresses["spatial"], f"{TYPED['spatial']}/GetDataset", data={"dataset_id": "nope"})
    assert "Code: NotFound" in out.stderr and "dataset_id 'nope'" in out.stderr


def test_atlas_single_cell_range_query(addresses, local):
    out = grpcurl(addresses["atlas"], f"{TYPED['atlas']}/QuerySingleCellActivity",
                  data={"atlas": "CIMA", "min_activity": 1.0, "limit": 20})
    assert out.returncode == 0, out.stderr
    got = [(r["cell_type"], r["signature"], r["mean_activity"]) for r in json.loads(out.stdout)["activities"]]
    want = local["atlas"].sql(
        "SELECT cell_type, signature, mean_activity FROM singlecell_activity WHERE signature_type = 'CytoSig' "
        "AND atlas = 'CIMA' AND mean_activity >= 1.0 ORDER BY cell_type, signature LIMIT 20").fetchall()
    assert got == want and got


def test_bad_signature_type_names_the_choices(addresses):
    out = grpcurl(addresses["spatial"], f"{TYPED['spatial']}/ListSpatialActivity", data={"signature_type": "cytosig"})
    assert out.returncode != 0
    assert "Code: InvalidArgument" in out.stderr and "did you mean 'CytoSig'" in out.stderr


# -- cross-domain target lookup -------------------------------------------------------------


def test_router_target_profile_asks_every_domain(router, local):
    profile = router.target_profile("IFNG", top_n=3)
    assert set(profile.results) == {"atlas", "perturbation", "spatial"} and not profile.errors
    best = local["spatial"].sql("SELECT tissue FROM spatial_tissue_summary WHERE signature_type = 'CytoSig' "
                                "AND signature = 'IFNG' ORDER BY mean_activity DESC LIMIT 1").fetchall()[0][0]
    assert profile.results["spatial"].top_tissues[0].tissue == best
    table = profile.to_table()
    assert set(table.column("domain").to_pylist()) == {"atlas", "perturbation", "spatial"}
    assert table.num_rows == 3 * 6  # two lists of three per domain


def test_target_profile_with_a_service_down_returns_the_others(built, addresses, tmp_path):
    spatial = ServiceProcess("spatial", built["spatial"], tmp_path / "spatial.log")
    down = spatial.wait_listening()
    assert spatial.stop() == 0
    with Router({**addresses, "spatial": down}, timeout=10) as router:
        profile = router.target_profile("IFNG")
    assert set(profile.results) == {"atlas", "perturbation"}
    error = profile.errors["spatial"]
    assert error.code == grpc.StatusCode.UNAVAILABLE and down in str(error)


def test_cli_target(addresses):
    flags = [f"--{d}-addr={a}" for d, a in addresses.items()]
    out = subprocess.run([str(BIN / "cytoatlas"), "target", "IFNG", "--top", "2", "--format", "csv", *flags],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "parse10m_treatment_effect" in out.stdout and "spatial_tissue_summary" in out.stdout
    out = subprocess.run([str(BIN / "cytoatlas"), "target", "NOT_A_TARGET", *flags],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "NOT_FOUND" in out.stderr
