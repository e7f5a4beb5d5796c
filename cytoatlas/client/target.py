"""Cross-domain target lookup: where one signature target is most active, in every domain.

One GetTargetProfile call per domain service, in parallel threads; no cross-database join. A
domain that fails (down, or the target unknown there) is reported in `errors` and the others
are still returned.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import pyarrow as pa

from cytoatlas.atlas.v1 import atlas_service_pb2, atlas_service_pb2_grpc
from cytoatlas.client.errors import CytoAtlasError, from_rpc_error
from cytoatlas.client.retry import Retry
from cytoatlas.perturbation.v1 import perturbation_service_pb2, perturbation_service_pb2_grpc
from cytoatlas.spatial.v1 import spatial_service_pb2, spatial_service_pb2_grpc

_SERVICES = {
    "atlas": (atlas_service_pb2, atlas_service_pb2_grpc.AtlasServiceStub),
    "perturbation": (perturbation_service_pb2, perturbation_service_pb2_grpc.PerturbationServiceStub),
    "spatial": (spatial_service_pb2, spatial_service_pb2_grpc.SpatialServiceStub),
}
# (response field, source table, how to name a row's context, the activity column)
_LISTS = {
    "atlas": [("top_cell_types", "activity", lambda r: f"{r.atlas} / {r.cell_type}", "mean"),
              ("top_organs", "scatlas_organs", lambda r: r.organ, "mean_activity")],
    "perturbation": [("top_cytokine_responses", "parse10m_treatment_effect",
                      lambda r: f"{r.cytokine} -> {r.cell_type}", "activity_diff"),
                     ("top_drug_responses", "tahoe_drug_effect",
                      lambda r: f"{r.drug} -> {r.cell_line}", "activity_diff")],
    "spatial": [("top_tissues", "spatial_tissue_summary", lambda r: r.tissue, "mean_activity"),
                ("top_niches", "spatial_neighborhood",
                 lambda r: f"{r.tissue} / {r.cell_type} ({r.file})", "mean_niche_activity")],
}


@dataclass
class TargetProfile:
    """Per domain, the typed GetTargetProfileResponse; per failed domain, the error."""

    signature: str
    signature_type: str
    results: dict[str, object] = field(default_factory=dict)
    errors: dict[str, CytoAtlasError] = field(default_factory=dict)

    def to_table(self) -> pa.Table:
        """One row per hit: domain, source table, context, measure, value (per list, descending)."""
        rows = []
        for domain, response in self.results.items():
            for list_field, table, context, measure in _LISTS[domain]:
                for row in getattr(response, list_field):
                    rows.append({"domain": domain, "table": table, "context": context(row),
                                 "measure": measure,
                                 "value": getattr(row, measure) if row.HasField(measure) else None})
        schema = pa.schema([("domain", pa.string()), ("table", pa.string()), ("context", pa.string()),
                            ("measure", pa.string()), ("value", pa.float64())])
        return pa.Table.from_pylist(rows, schema=schema)


def target_profile(channels: dict[str, grpc.Channel], addresses: dict[str, str], signature: str,
                   signature_type: str = "", top_n: int = 0, timeout: float | None = 30.0,
                   retry: Retry | None = None) -> TargetProfile:
    """Ask the three services in parallel where `signature` is most active; a busy service is
    asked again as `retry` says (the Router's; default: retry.py's defaults)."""
    retry = retry or Retry()

    def ask(domain: str):
        module, stub = _SERVICES[domain]
        request = module.GetTargetProfileRequest(signature=signature, signature_type=signature_type, top_n=top_n)
        get_target_profile = stub(channels[domain]).GetTargetProfile
        try:
            return domain, retry.call(lambda t: get_target_profile(request, timeout=t), timeout), None
        except grpc.RpcError as err:
            return domain, None, from_rpc_error(err, domain, addresses[domain], timeout=timeout)

    profile = TargetProfile(signature, signature_type or "CytoSig")
    with ThreadPoolExecutor(len(_SERVICES)) as pool:
        for domain, response, error in pool.map(ask, _SERVICES):
            if error is None:
                profile.results[domain] = response
            else:
                profile.errors[domain] = error
    return profile
