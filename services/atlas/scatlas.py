"""cytoatlas.atlas.v1.ScAtlasService: the scAtlas pages. Each RPC names its table, filters and
output message; cytoatlas.serving.typed_rpc and the query compiler do the rest (protos/TYPED_RPCS.md).
Name lists beside the records come from cached DISTINCT queries, on the first page only."""

from __future__ import annotations

from cytoatlas.atlas.v1 import atlas_service_pb2 as atlas_pb
from cytoatlas.atlas.v1 import scatlas_service_pb2 as pb
from cytoatlas.atlas.v1 import scatlas_service_pb2_grpc as pb_grpc
from cytoatlas.serving.compiler import Pivot
from cytoatlas.serving.errors import Reason, invalid
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import TypedService, TypedServicer, signature_type
from cytoatlas.table.v1 import table_service_pb2 as table_pb

ARROW = table_pb.RESULT_FORMAT_ARROW
TOP_LIMIT_DEFAULT, TOP_LIMIT_MAX = 10, 50  # /organ-signatures-top: limit 10, 1..50
HEATMAP_TOP_DEFAULT, HEATMAP_TOP_MAX, TOP_CELL_TYPES = 50, 100, 100  # /heatmap/celltype rows; top_cell_types
# summary_stats figures no served table holds (the rest of GetScAtlasSummary is computed).
ATLAS_FIGURES = ("n_cell_types_cancer", "n_cells_normal", "n_cells_cancer", "n_donors_normal", "n_donors_cancer")
ADJACENT_SUMMARY = tuple(pb.ScAtlasAdjacentTissueSummary.DESCRIPTOR.fields_by_name)


class ScAtlasServicer(TypedServicer, pb_grpc.ScAtlasServiceServicer):
    # -- lists beside the records ---------------------------------------------------------

    def _signatures(self, table: str, kind: str, where=()) -> list:
        return self.q.distinct(table, "signature", [("signature_type", "=", kind), *where])

    def _variable_cell_types(self, context, organ: str, size: int) -> list:
        """Cell types by the sample SD of their CytoSig mean_activity (in `organ` when set), largest
        first: GROUP BY cell_type ORDER BY stddev DESC in DuckDB."""
        where = [("signature_type", "=", "CytoSig"), *([("organ", "=", organ)] if organ else [])]
        result, _ = self.q.page(context, _First, "scatlas_celltypes", None, where, group_by=["cell_type"],
                                aggregates={"sd": ("stddev", "mean_activity")}, order_by=["-sd"], size=size,
                                format=ARROW)
        return result.column("cell_type").to_pylist()

    def _all(self, context, table: str, message: type, where=()) -> list:
        """Every row of a small table (one ARROW page)."""
        rows, _ = self.q.page(context, _First, table, message, where, size=0, format=ARROW)
        return rows

    # -- /summary, name lists ---------------------------------------------------------------

    @handle_errors
    def GetScAtlasSummary(self, request, context):
        q = self.q
        organs = q.aggregate("scatlas_organs", (), n_organs=("count_distinct", "organ"), n_organ_signatures=("count", ""))
        cells = q.aggregate("scatlas_celltypes", (), n_cell_types=("count_distinct", "cell_type"),
                            n_celltype_signatures=("count", ""))
        cancer = q.aggregate("cancer_types", (), n_cancer_types=("count_distinct", "cancer_type"),
                             n_cancer_type_signatures=("count", ""))
        counts = {
            **organs, **cells, **cancer, "n_cell_types_normal": cells["n_cell_types"],
            "n_tumor_adjacent": q.aggregate("adjacent_tissue", [("category", "=", "tumor_vs_adjacent")],
                                            n=("count", ""))["n"],
            "n_organ_cancer_matrix": q.aggregate("organ_cancer_matrix", (), n=("count", ""))["n"],
            "n_immune_infiltration": q.aggregate("immune_infiltration", (), n=("count", ""))["n"],
            "n_tcell_state": q.aggregate("exhaustion", (), n=("count", ""))["n"],
            "n_exhaustion_comparison": q.aggregate("exhaustion_comparison", (), n=("count", ""))["n"],
            "n_exhaustion_signatures": q.aggregate("exhaustion", [("signature_type", "=", "CytoSig")],
                                                   n=("count_distinct", "signature"))["n"],
            "n_caf_signatures": q.aggregate("caf_signatures", (), n=("count", ""))["n"],
        }
        figures, _ = q.page(context, _First, "summary_stats", None,
                            [("atlas", "=", "scatlas"), ("ordinal", "=", 0), ("stat", "in", list(ATLAS_FIGURES))],
                            columns=["stat", "value"], size=0, format=ARROW)
        counts.update({stat: int(value) for stat, value in zip(figures.column("stat").to_pylist(),
                                                               figures.column("value").to_pylist()) if value is not None})
        return pb.GetScAtlasSummaryResponse(
            **counts, organs=q.distinct("scatlas_organs", "organ"), cancer_types=q.distinct("cancer_types", "cancer_type"),
            cytosig_signatures=self._signatures("scatlas_celltypes", "CytoSig"),
            secact_signatures=self._signatures("scatlas_celltypes", "SecAct"))

    @handle_errors
    def ListScAtlasOrgans(self, request, context):
        names, token = self.q.names_page(context, request, "scatlas_organs", "organ")
        return pb.ListScAtlasOrgansResponse(organs=names, next_page_token=token)

    @handle_errors
    def ListScAtlasCellTypes(self, request, context):
        where = self.q.filters("scatlas_celltypes", request, ("organ",))
        names, token = self.q.names_page(context, request, "scatlas_celltypes", "cell_type", where)
        return pb.ListScAtlasCellTypesResponse(cell_types=names, next_page_token=token)

    @handle_errors
    def ListScAtlasCancerTypes(self, request, context):
        names, token = self.q.names_page(context, request, "cancer_types", "cancer_type")
        return pb.ListScAtlasCancerTypesResponse(cancer_types=names, next_page_token=token)

    # -- normal organs and cell types -------------------------------------------------------

    @handle_errors
    def ListScAtlasOrganSignatures(self, request, context):
        rows, token = self._rows(context, request, "scatlas_organs", pb.ScAtlasOrganSignature,
                                 ("signature_type", "organ", "signature"))
        return pb.ListScAtlasOrganSignaturesResponse(organ_signatures=rows, next_page_token=token)

    @handle_errors
    def ListScAtlasOrganTopSignatures(self, request, context):
        if not 0 <= request.limit <= TOP_LIMIT_MAX:
            raise invalid(Reason.INVALID_REQUEST, f"limit must be 0 (default {TOP_LIMIT_DEFAULT}) or 1 to "
                          f"{TOP_LIMIT_MAX}, got {request.limit}", "limit")
        table = "scatlas_organs_top"
        where = self.q.filters(table, request, ("signature_type", "organ"))
        where.append(("rank", "<=", request.limit or TOP_LIMIT_DEFAULT))
        rows, token = self.q.page(context, request, table, pb.ScAtlasOrganTopSignature, where,
                                  order_by=["organ", "rank"])
        return pb.ListScAtlasOrganTopSignaturesResponse(top_signatures=rows, next_page_token=token)

    @handle_errors
    def ListScAtlasCellTypeSignatures(self, request, context):
        table = "scatlas_celltypes"
        rows, token = self._rows(context, request, table, pb.ScAtlasCellTypeSignature,
                                 ("signature_type", "organ", "cell_type", "signature"))
        response = pb.ListScAtlasCellTypeSignaturesResponse(cell_type_signatures=rows, next_page_token=token)
        if not request.page_token:
            lists = {kind: self._signatures(table, kind) for kind in ("CytoSig", "SecAct")}
            response.all_cell_types.extend(self.q.distinct(table, "cell_type"))
            response.top_cell_types.extend(self._variable_cell_types(context, "", TOP_CELL_TYPES))
            response.organs.extend(self.q.distinct(table, "organ"))
            response.cytosig_signatures.extend(lists["CytoSig"])
            response.secact_signatures.extend(lists["SecAct"])
            response.signature_counts.update({kind: len(names) for kind, names in lists.items()})
        return response

    @handle_errors
    def GetScAtlasOrganHeatmap(self, request, context):
        table = "scatlas_organs"
        where = self.q.filters(table, request, ("signature_type",))
        matrix = self.q.matrix(context, table, where, Pivot("organ", "signature", "mean_activity"),
                               atlas_pb.AtlasMatrix, atlas_pb.AtlasMatrixRow)
        return pb.GetScAtlasOrganHeatmapResponse(signature_type=signature_type(request), matrix=matrix)

    @handle_errors
    def GetScAtlasCellTypeHeatmap(self, request, context):
        if request.top_n < 0:
            raise invalid(Reason.INVALID_REQUEST, f"top_n must be 0 (default {HEATMAP_TOP_DEFAULT}) or positive, "
                          f"got {request.top_n}", "top_n")
        table = "scatlas_celltypes"
        where = self.q.filters(table, request, ("signature_type", "organ"))
        order = self._variable_cell_types(context, request.organ,
                                          min(request.top_n or HEATMAP_TOP_DEFAULT, HEATMAP_TOP_MAX))
        response = pb.GetScAtlasCellTypeHeatmapResponse(signature_type=signature_type(request), organ=request.organ,
                                                        cell_type_order=order)
        if order:  # an IN list needs at least one value
            response.matrix.CopyFrom(self.q.matrix(
                context, table, [*where, ("cell_type", "in", order)], Pivot("cell_type", "signature", "mean_activity"),
                atlas_pb.AtlasMatrix, atlas_pb.AtlasMatrixRow))
        return response

    # -- cancer types and the paired comparison ---------------------------------------------

    @handle_errors
    def ListScAtlasCancerComparisons(self, request, context):
        table = "cancer_comparison"
        rows, token = self._rows(context, request, table, pb.ScAtlasCancerComparison,
                                 ("signature_type", "cell_type", "signature"))
        response = pb.ListScAtlasCancerComparisonsResponse(cancer_comparisons=rows, next_page_token=token)
        if not request.page_token:
            response.cell_types.extend(self.q.distinct(table, "cell_type"))
            response.cytosig_signatures.extend(self._signatures(table, "CytoSig"))
            response.secact_signatures.extend(self._signatures(table, "SecAct"))
            response.n_paired_donors = self.q.aggregate(table, (), n=("max", "n_paired_donors"))["n"] or 0
            response.analysis_type = next(iter(self.q.distinct(table, "analysis_type")), "")
        return response

    @handle_errors
    def GetScAtlasCancerComparisonHeatmap(self, request, context):
        table = "cancer_comparison"
        where = self.q.filters(table, request, ("signature_type",))
        matrix = self.q.matrix(context, table, where, Pivot("cell_type", "signature", "mean_difference"),
                               atlas_pb.AtlasMatrix, atlas_pb.AtlasMatrixRow)
        donors = self.q.aggregate(table, (), n=("max", "n_paired_donors"))["n"] or 0
        return pb.GetScAtlasCancerComparisonHeatmapResponse(signature_type=signature_type(request),
                                                            n_paired_donors=donors, matrix=matrix)

    @handle_errors
    def ListScAtlasCancerTypeSignatures(self, request, context):
        table = "cancer_types"
        rows, token = self._rows(context, request, table, pb.ScAtlasCancerTypeSignature,
                                 ("signature_type", "cancer_type", "signature"))
        response = pb.ListScAtlasCancerTypeSignaturesResponse(cancer_type_signatures=rows, next_page_token=token)
        if not request.page_token:
            labels, _ = self.q.page(context, _First, "cancer_type_labels", None, columns=["cancer_type", "label"],
                                    size=0, format=ARROW)
            organs, _ = self.q.page(context, _First, "adjacent_tissue_organ_map", None,
                                    columns=["cancer_type", "organ"], size=0, format=ARROW)
            response.cancer_types.extend(self.q.distinct(table, "cancer_type"))
            response.cancer_labels.update(_pairs(labels, "cancer_type", "label"))
            response.cancer_to_organ.update(_pairs(organs, "cancer_type", "organ"))
            response.cytosig_signatures.extend(self._signatures(table, "CytoSig"))
            response.secact_signatures.extend(self._signatures(table, "SecAct"))
            response.total_secact = len(response.secact_signatures)
        return response

    @handle_errors
    def ListScAtlasOrganCancerComparisons(self, request, context):
        table = "organ_cancer_matrix"
        rows, token = self._rows(context, request, table, pb.ScAtlasOrganCancerComparison,
                                 ("signature_type", "organ", "cancer_type", "signature"))
        response = pb.ListScAtlasOrganCancerComparisonsResponse(comparisons=rows, next_page_token=token)
        if not request.page_token:
            response.normal_organs.extend(self.q.distinct(table, "organ"))
            response.cancer_types.extend(self.q.distinct(table, "cancer_type"))
        return response

    # -- immune infiltration, exhaustion, CAFs ------------------------------------------------

    @handle_errors
    def GetScAtlasImmuneInfiltrationOverview(self, request, context):
        table = "immune_infiltration"
        return pb.GetScAtlasImmuneInfiltrationOverviewResponse(
            tme_summaries=self._all(context, "immune_infiltration_tme_summary", pb.ScAtlasTmeSummary),
            compositions=self._all(context, "immune_infiltration_composition", pb.ScAtlasImmuneComposition),
            cytosig_signatures=self._signatures(table, "CytoSig"), secact_signatures=self._signatures(table, "SecAct"),
            cancer_types=self.q.distinct(table, "cancer_type"),
            immune_categories=self.q.distinct("immune_infiltration_composition", "cell_category"))

    @handle_errors
    def ListScAtlasImmuneInfiltration(self, request, context):
        rows, token = self._rows(context, request, "immune_infiltration", pb.ScAtlasImmuneInfiltration,
                                 ("signature_type", "cancer_type", "signature"))
        return pb.ListScAtlasImmuneInfiltrationResponse(immune_infiltrations=rows, next_page_token=token)

    @handle_errors
    def ListScAtlasTCellStates(self, request, context):
        table = "exhaustion"
        rows, token = self._rows(context, request, table, pb.ScAtlasTCellState,
                                 ("signature_type", "cancer_type", "exhaustion_state", "signature"))
        response = pb.ListScAtlasTCellStatesResponse(tcell_states=rows, next_page_token=token)
        if not request.page_token:
            self._exhaustion_lists(response, table, request)
            response.exhaustion_states.extend(self.q.distinct(table, "exhaustion_state"))
        return response

    @handle_errors
    def ListScAtlasExhaustionComparisons(self, request, context):
        table = "exhaustion_comparison"
        rows, token = self._rows(context, request, table, pb.ScAtlasExhaustionComparison,
                                 ("signature_type", "cancer_type", "signature"))
        response = pb.ListScAtlasExhaustionComparisonsResponse(exhaustion_comparisons=rows, next_page_token=token)
        if not request.page_token:
            self._exhaustion_lists(response, table, request)
        return response

    def _exhaustion_lists(self, response, table: str, request) -> None:
        response.cancer_types.extend(self.q.distinct(table, "cancer_type",
                                                     [("signature_type", "=", signature_type(request))]))
        response.cytosig_signatures.extend(self._signatures(table, "CytoSig"))
        response.secact_signatures.extend(self._signatures(table, "SecAct"))

    @handle_errors
    def ListScAtlasCafSignatures(self, request, context):
        rows, token = self._rows(context, request, "caf_signatures", pb.ScAtlasCafSignature,
                                 ("signature_type", "cancer_type", "signature"))
        return pb.ListScAtlasCafSignaturesResponse(caf_signatures=rows, next_page_token=token)

    @handle_errors
    def ListScAtlasCafSubtypes(self, request, context):
        table = "caf_signatures_subtypes"
        where = self.q.filters(table, request, ("signature_type", "cancer_type", "caf_subtype", "caf_class", "signature"))
        rows, token = self.q.page(context, request, table, pb.ScAtlasCafSubtype, where)
        response = pb.ListScAtlasCafSubtypesResponse(caf_subtypes=rows, next_page_token=token)
        if not request.page_token:
            kind = [w for w in where if w[0] == "signature_type"]
            scope = [*kind, *(w for w in where if w[0] == "cancer_type")]
            response.proportions.extend(self._all(context, "caf_signatures_class_proportions",
                                                  pb.ScAtlasCafClassProportion, scope))
            response.cancer_types.extend(self.q.distinct(table, "cancer_type", kind))
            response.signatures.extend(self.q.distinct(table, "signature", kind))
            response.caf_classes.extend(self.q.distinct(table, "caf_class"))
        return response

    # -- tumour vs adjacent tissue ------------------------------------------------------------

    @handle_errors
    def ListScAtlasAdjacentTissue(self, request, context):
        table = "adjacent_tissue"
        where = self.q.filters(table, request, ("signature_type", "category", "cancer_type", "signature"))
        if request.organ:
            organ_map = "adjacent_tissue_organ_map"
            self.q.check(organ_map, "organ", request.organ)
            where.append(("cancer_type", "in", self.q.distinct(organ_map, "cancer_type",
                                                               [("organ", "=", request.organ)])))
        rows, token = self.q.page(context, request, table, pb.ScAtlasAdjacentTissue, where)
        return pb.ListScAtlasAdjacentTissueResponse(adjacent_tissues=rows, next_page_token=token)

    @handle_errors
    def ListScAtlasAdjacentTissueBoxplots(self, request, context):
        table = "adjacent_tissue_boxplots"
        rows, token = self._rows(context, request, table, pb.ScAtlasAdjacentTissueBoxplot,
                                 ("signature_type", "cancer_type", "tissue", "signature"))
        response = pb.ListScAtlasAdjacentTissueBoxplotsResponse(boxplots=rows, next_page_token=token)
        if not request.page_token:
            response.signatures.extend(self._signatures(table, signature_type(request), [("cancer_type", "=", "all")]))
            response.cancer_types.extend(self.q.distinct(table, "cancer_type", [("cancer_type", "<>", "all")]))
            figures, _ = self.q.page(context, _First, "adjacent_tissue_summary", None,
                                     [("stat", "in", list(ADJACENT_SUMMARY))], columns=["stat", "value"], size=0,
                                     format=ARROW)
            response.summary.CopyFrom(pb.ScAtlasAdjacentTissueSummary(**_pairs(figures, "stat", "value")))
        return response


class _First:
    """A request on its first page (for the side queries of a paged RPC)."""

    page_token = ""


def _pairs(result, key: str, value: str) -> dict:
    """{key: value} from two columns of a query result (NULL values left out)."""
    return {k: v for k, v in zip(result.column(key).to_pylist(), result.column(value).to_pylist()) if v is not None}


SERVICE = TypedService.of(pb, pb_grpc, "ScAtlasService", ScAtlasServicer)
