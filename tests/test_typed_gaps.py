"""Typed RPCs on a spatial file with the gaps real data have and the demo data do not: a dataset
whose tissue is not recorded (NULL) and a signature found in only one of GetTargetProfile's two
tables. Built by the real builder from the demo sources with those rows changed."""

from __future__ import annotations

import shutil

import duckdb
import grpc
import pytest

from builders import engine
from cytoatlas.domains.signature_aliases import MAPPING_SOURCE
from cytoatlas.serving.config import Settings
from cytoatlas.serving.server import start_server
from cytoatlas.serving.typed_rpc import RESOLVED_METADATA
from cytoatlas.spatial.v1 import spatial_service_pb2 as pb
from cytoatlas.spatial.v1 import spatial_service_pb2_grpc as pb_grpc

SPATIAL = "results/spatial"


@pytest.fixture(scope="module")
def gaps(source_dir, tmp_path_factory):
    """(stub, connection, the dataset without tissue, the signature only in spatial_neighborhood)."""
    root = tmp_path_factory.mktemp("gaps")
    source, built = root / "source", root / "built"
    shutil.copytree(source_dir / SPATIAL, source / SPATIAL)
    (source / MAPPING_SOURCE).parent.mkdir(parents=True)
    shutil.copy(source_dir / MAPPING_SOURCE, source / MAPPING_SOURCE)
    metadata = source / SPATIAL / "spatial_dataset_metadata.csv"
    summary = source / SPATIAL / "spatial_activity_by_tissue_summary.csv"
    with duckdb.connect() as con:
        dataset = con.sql(f"SELECT min(dataset_id) FROM '{metadata}'").fetchall()[0][0]
        signature = con.sql(f"SELECT min(signature) FROM '{summary}' WHERE signature_type = 'CytoSig'").fetchall()[0][0]
        con.sql(f"COPY (SELECT * REPLACE (CASE WHEN dataset_id = '{dataset}' THEN NULL ELSE tissue END AS tissue) "
                f"FROM '{metadata}') TO '{metadata}.new' (HEADER)")
        con.sql(f"COPY (SELECT * FROM '{summary}' WHERE NOT (signature_type = 'CytoSig' AND signature = "
                f"'{signature}')) TO '{summary}.new' (HEADER)")
    for path in (metadata, summary):
        path.with_name(path.name + ".new").replace(path)
    engine.build_domain("spatial", source, built, log=lambda line: None)
    server = start_server("spatial", Settings(db=str(built / "spatial_data.duckdb"), port=0, request_log="off"))
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    local = duckdb.connect(str(built / "spatial_data.duckdb"), read_only=True)
    try:
        yield pb_grpc.SpatialServiceStub(channel), local, dataset, signature
    finally:
        local.close()
        channel.close()
        server.stop(0)


def test_a_name_list_leaves_out_a_missing_name(gaps):
    stub, local, dataset, _ = gaps
    assert local.sql(f"SELECT tissue FROM spatial_dataset_metadata WHERE dataset_id = '{dataset}'").fetchall() == [(None,)]
    want = [r[0] for r in local.sql("SELECT DISTINCT tissue FROM spatial_dataset_metadata WHERE tissue IS NOT NULL "
                                    "ORDER BY 1").fetchall()]
    assert list(stub.ListTissues(pb.ListTissuesRequest(page_size=1000), timeout=30).tissues) == want


def test_a_target_profile_needs_its_signature_in_one_of_its_tables_only(gaps):
    stub, local, _, signature = gaps
    niches = local.sql("SELECT count(*) FROM spatial_neighborhood WHERE signature_type = 'CytoSig' AND signature = ?",
                       params=[signature]).fetchall()[0][0]
    assert niches  # in the niches, not in the tissue summaries
    answer, call = stub.GetTargetProfile.with_call(pb.GetTargetProfileRequest(signature=signature), timeout=30)
    assert answer.signature == signature and list(answer.top_tissues) == []
    assert len(answer.top_niches) == min(niches, 10)
    # found as asked: no resolution reported (a name missing from one table is no other spelling)
    assert [k for k, _ in call.trailing_metadata() or () if k == RESOLVED_METADATA] == []
