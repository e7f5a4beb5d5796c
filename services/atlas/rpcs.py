"""cytoatlas.atlas.v1.AtlasService: each RPC names its table, filters and output message;
cytoatlas.serving.typed_rpc and the query compiler do the rest (protos/TYPED_RPCS.md)."""

from __future__ import annotations

from cytoatlas.atlas.v1 import atlas_service_pb2 as pb
from cytoatlas.atlas.v1 import atlas_service_pb2_grpc as pb_grpc
from cytoatlas.serving.errors import Reason, invalid
from cytoatlas.serving.search import ActivitySource, CorrelationSource, SearchIndex, search_service
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import (
    ProfilePart, TargetProfile, TypedService, TypedServicer, required,
)
from cytoatlas.table.v1 import table_service_pb2 as table_pb
from services.atlas import cima, cross_atlas, gene, inflammation, scatlas, validation

# ListCellTypeSummaries: each atlas (named as in `activity`) keeps its cell-type summary in a table
# of its own; scAtlas_Cancer has none. "scAtlas", the name this RPC took first, still means Normal.
CELL_TYPE_TABLES = {"CIMA": "cima_celltype", "Inflammation": "inflammation_celltype",
                    "scAtlas_Normal": "scatlas_celltypes"}
ATLAS_ALIASES = {"scAtlas": "scAtlas_Normal"}
# GetTargetProfile: the atlas cell types and scAtlas organs where the signature is most active.
TARGET_PROFILE = TargetProfile(pb.GetTargetProfileResponse, (
    ProfilePart("top_cell_types", "activity", pb.Activity, "mean"),
    ProfilePart("top_organs", "scatlas_organs", pb.OrganActivity, "mean_activity")))
SINGLE_CELL_DEFAULT_LIMIT, SINGLE_CELL_MAX_LIMIT = 1_000, 50_000  # the real API's limit and cap
ALL_DISEASES = "all"


class AtlasServicer(TypedServicer, pb_grpc.AtlasServiceServicer):
    @handle_errors
    def GetAtlasSummary(self, request, context):
        rows, _ = self.q.page(context, request, "activity", pb.AtlasSummary, group_by=["atlas", "signature_type"],
                              aggregates={"n_cell_types": ("count_distinct", "cell_type"),
                                          "n_signatures": ("count_distinct", "signature"),
                                          "n_rows": ("count", "")},
                              size=0, format=table_pb.RESULT_FORMAT_ARROW)
        return pb.GetAtlasSummaryResponse(atlases=rows)

    @handle_errors
    def ListActivity(self, request, context):
        rows, token = self._rows(context, request, "activity", pb.Activity,
                                 ("signature_type", "atlas", "cell_type", "signature"))
        return pb.ListActivityResponse(activities=rows, next_page_token=token)

    @handle_errors
    def ListCorrelations(self, request, context):
        rows, token = self._rows(context, request, "cima_correlations", pb.Correlation,
                                 ("signature_type", "category", "feature", "signature"))
        return pb.ListCorrelationsResponse(correlations=rows, next_page_token=token)

    @handle_errors
    def ListDiseaseDifferential(self, request, context):
        table = "inflammation_differential"
        # "all" is the real API's word for every disease (its /differential?disease=all).
        where = self.q.filters(table, request, ("signature_type", "disease", "signature"),
                               disease="" if request.disease == ALL_DISEASES else request.disease)
        if request.HasField("max_qvalue"):
            where.append(("qvalue", "<=", request.max_qvalue))
        rows, token = self.q.page(context, request, table, pb.DiseaseDifferential, where)
        return pb.ListDiseaseDifferentialResponse(differentials=rows, next_page_token=token)

    @handle_errors
    def ListCellTypeSummaries(self, request, context):
        asked = required(request, "atlas")
        atlas = ATLAS_ALIASES.get(asked, asked)
        if atlas not in CELL_TYPE_TABLES:
            raise invalid(Reason.INVALID_REQUEST, f"atlas {asked!r} has no cell-type summary; valid "
                          f"values: {', '.join(CELL_TYPE_TABLES)}", "atlas", value=asked)
        rows, token = self._rows(context, request, CELL_TYPE_TABLES[atlas], pb.CellTypeSummary,
                                 ("signature_type", "cell_type", "signature"))
        for row in rows:
            row.atlas = atlas
        return pb.ListCellTypeSummariesResponse(cell_type_summaries=rows, next_page_token=token)

    @handle_errors
    def QuerySingleCellActivity(self, request, context):
        table = "singlecell_activity"
        where = self.q.filters(table, request, ("signature_type", "atlas", "cohort", "cell_type", "signature"))
        if request.HasField("min_activity"):
            where.append(("mean_activity", ">=", request.min_activity))
        if request.HasField("max_activity"):
            where.append(("mean_activity", "<=", request.max_activity))
        rows, token = self.q.page(context, request, table, pb.SingleCellActivity, where,
                                  size=single_cell_page_size(request.limit),
                                  size_field="limit", format=table_pb.RESULT_FORMAT_ARROW)
        return pb.QuerySingleCellActivityResponse(activities=rows, next_page_token=token)

    @handle_errors
    def GetTargetProfile(self, request, context):
        return self._target_profile(context, request, TARGET_PROFILE)


def single_cell_page_size(limit: int) -> int:
    """The documented default when unset, capped (not refused) above the maximum; a negative
    limit passes through so `page` refuses it as INVALID_ARGUMENT."""
    return limit if limit < 0 else min(limit or SINGLE_CELL_DEFAULT_LIMIT, SINGLE_CELL_MAX_LIMIT)


# SearchService over atlas_search_* (protos/TYPED_RPCS.md, SearchService). Activity: a signature's
# mean activity by atlas x cell type (the three cell-type tables, as the real /search/{entity}/activity
# reads them), a LinCytoSig signature's from `activity`, a cell type's signatures by atlas, an organ's
# (scAtlas) and a disease's (differential vs healthy) signatures. Correlations: CIMA's, per signature.
SEARCH = SearchIndex(
    domain="atlas", context_kind="atlas",
    activity=(
        ActivitySource(("cytokine", "protein"), "atlas_celltype_activity", "signature", "mean_activity",
                       group="atlas", context="cell_type"),
        ActivitySource(("lincytosig",), "activity", "signature", "mean", group="atlas", context="cell_type"),
        ActivitySource(("cell_type",), "atlas_celltype_activity", "base_cell_type", "mean_activity",
                       group="atlas", context="signature", signature_type="request"),
        ActivitySource(("organ",), "scatlas_organs", "organ", "mean_activity", context="signature",
                       signature_type="request"),
        ActivitySource(("disease",), "inflammation_differential", "disease", "activity_diff", context="signature",
                       signature_type="request"),
    ),
    correlations=CorrelationSource("gene_correlations"),
)

# The typed services this domain's process serves (cytoatlas/serving/server.py registers them).
SERVICES = (TypedService.of(pb, pb_grpc, "AtlasService", AtlasServicer), cima.SERVICE, inflammation.SERVICE,
            scatlas.SERVICE, validation.SERVICE, cross_atlas.SERVICE, gene.SERVICE, search_service(SEARCH))
