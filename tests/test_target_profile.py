"""GetTargetProfile, declared once (typed_rpc.TargetProfile) and shared by the three domains: a
signature type that only one of a profile's tables holds answers that table's list and an empty
other list, instead of failing the whole profile."""

from __future__ import annotations

import csv
import shutil

import grpc
import pytest

from builders import engine
from cytoatlas.domains import DOMAINS
from cytoatlas.perturbation.v1 import perturbation_service_pb2 as pb
from cytoatlas.perturbation.v1 import perturbation_service_pb2_grpc as pb_grpc

DRUG_EFFECTS = "results/tahoe/tahoe_drug_vs_control.csv"


@pytest.fixture(scope="module")
def cytosig_only_drug_effects(source_dir, tmp_path_factory):
    """The demo perturbation file rebuilt by the real builder from sources whose drug effects hold
    CytoSig rows only (SecAct stays in the cytokine responses)."""
    root = tmp_path_factory.mktemp("one-sided")
    for table in DOMAINS["perturbation"].tables:
        if table.source:
            (root / "source" / table.source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source_dir / table.source, root / "source" / table.source)
    path = root / "source" / DRUG_EFFECTS
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, [r for r in reader if r["signature_type"].lower() == "cytosig"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return engine.build_domain("perturbation", root / "source", root / "data")


def test_a_signature_type_in_one_table_only_answers_that_table(cytosig_only_drug_effects, start_service, local):
    service = start_service("perturbation", cytosig_only_drug_effects)
    signature = local["perturbation"].sql(
        "SELECT signature FROM parse10m_treatment_effect WHERE signature_type = 'SecAct' "
        "ORDER BY signature LIMIT 1").fetchall()[0][0]
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.PerturbationServiceStub(channel)
        profile = stub.GetTargetProfile(pb.GetTargetProfileRequest(signature=signature, signature_type="SecAct"),
                                        timeout=30)
        assert profile.top_cytokine_responses and not profile.top_drug_responses
        assert {r.signature for r in profile.top_cytokine_responses} == {signature}
        # A type neither table holds is still refused, naming the types both hold.
        with pytest.raises(grpc.RpcError) as err:
            stub.GetTargetProfile(pb.GetTargetProfileRequest(signature=signature, signature_type="Secact"),
                                  timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "did you mean 'SecAct'" in err.value.details()
