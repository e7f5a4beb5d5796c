"""cytoatlas.atlas.v1.CrossAtlasService: the cross-atlas page, one RPC per need of the real
/cross-atlas router, each a few queries through cytoatlas.serving.typed_rpc (protos/TYPED_RPCS.md)."""

from __future__ import annotations

from cytoatlas.atlas.v1 import cross_atlas_service_pb2 as pb
from cytoatlas.atlas.v1 import cross_atlas_service_pb2_grpc as pb_grpc
from cytoatlas.requests import to_filters
from cytoatlas.serving.errors import Reason, invalid
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import TypedService, TypedServicer, signature_type, to_messages
from cytoatlas.table.v1 import table_service_pb2 as table_pb

POINTS, STATS, COMPARISON = "cross_atlas", "cross_atlas_pair_stats", "cross_atlas_comparison"
SUMMARY, CONSERVED, RELIABILITY = "cross_atlas_summary", "cross_atlas_conserved", "cross_atlas_reliability"
META, MAPPING = "cross_atlas_meta_analysis", "cross_atlas_celltype_mapping"
PATHWAYS, PATHWAY_GENES = "cross_atlas_pathways", "cross_atlas_pathway_genes"
ATLASES = ("CIMA", "Inflammation", "scAtlas")  # a pair is stored in this order
VIEWS = ("pseudobulk", "singlecell", "integrated")
LEVELS = {"pseudobulk": ("coarse", "fine"), "singlecell": ("coarse", "fine"), "integrated": ("common",)}
STATS_VIEWS, STATS_LEVELS = (*VIEWS, "agnostic"), ("coarse", "fine", "common", "atlas_mean")
MAPPING_LEVELS = ("coarse", "fine")
# The Sankey's lineage groups (the real router's), coarse lineages and, at level fine, the fine
# types of those lineages: each fine type in the group of its lineage (the real prefix match left
# Tfh out and put NKT and ILC in two groups). Progenitors are in no group: "all" shows them.
LINEAGES = {
    "T_cell": {"coarse": ("CD4_T", "CD8_T", "Unconventional_T"),
               "fine": ("CD4_Naive", "CD4_Memory", "CD4_Effector", "Treg", "Tfh", "CD8_Naive", "CD8_Memory",
                        "CD8_Effector", "CD8_Trm", "MAIT", "gdT", "NKT", "ILC")},
    "Myeloid": {"coarse": ("Myeloid",),
                "fine": ("Mono_Classical", "Mono_NonClassical", "Macrophage", "cDC1", "cDC2", "pDC", "Neutrophil",
                         "Mast")},
    "B_cell": {"coarse": ("B", "Plasma"),
               "fine": ("B_Naive", "B_Memory", "B_Transitional", "B_GC", "Plasmablast", "Plasma")},
    "NK_ILC": {"coarse": ("NK",), "fine": ("NK_CD56bright", "NK_CD56dim", "NK_other")},
}


def _one_of(request, field: str, valid, default: str | None = None) -> str:
    value = getattr(request, field) or default
    if value not in valid:
        raise invalid(Reason.INVALID_REQUEST, f"{field} {value!r} is not valid; valid values: {', '.join(valid)}",
                      field, value=str(value))
    return value


def _view_level(request) -> tuple[str, str]:
    """The request's view and level, defaulted (pseudobulk, coarse; integrated: common) and checked."""
    view = _one_of(request, "view", VIEWS, "pseudobulk")
    return view, _one_of(request, "level", LEVELS[view], LEVELS[view][0])


class CrossAtlasServicer(TypedServicer, pb_grpc.CrossAtlasServiceServicer):
    def _all(self, context, table: str, message, where=(), size: int | None = None, **kw):
        """Every matching row (at most the ROWS maximum, or `size`): lists the real API returns whole."""
        rows, _ = self.q.page(context, _NoPage, table, message, where, size=size or self.settings.rows_max_limit,
                              **kw)
        return rows

    def _values(self, table: str, column: str, where) -> list:
        """Sorted distinct values of `column` over the rows matching `where` (not cached: per request)."""
        rows = self._all(None, table, None, where, group_by=[column], order_by=[column],
                         format=table_pb.RESULT_FORMAT_ARROW)
        return rows.column(column).to_pylist()

    # -- summary -------------------------------------------------------------------------

    @handle_errors
    def GetCrossAtlasSummary(self, request, context):
        totals = self.q.aggregate(SUMMARY, (), total_cells=("sum", "cells"), total_samples=("sum", "samples"),
                                  total_cell_types=("sum", "cell_types"))
        compared = self.q.distinct(STATS, "atlas1") + self.q.distinct(STATS, "atlas2")
        counts = self._all(context, POINTS, pb.CrossAtlasSignatureCount, group_by=["signature_type"],
                           aggregates={"n_signatures": ("count_distinct", "signature")})
        return pb.GetCrossAtlasSummaryResponse(
            atlas_summaries=self._all(context, SUMMARY, pb.CrossAtlasAtlasSummary),
            **{k: v or 0 for k, v in totals.items()}, compared_atlases=list(dict.fromkeys(compared)),
            signature_counts=counts)

    @handle_errors
    def GetCrossAtlasCellTypeSankey(self, request, context):
        level = _one_of(request, "level", MAPPING_LEVELS, "coarse")
        lineage = "" if request.lineage in ("", "all") else _one_of(request, "lineage", tuple(LINEAGES))
        where = [("level", "=", level)]
        if lineage:
            where.append(("harmonized_type", "in", list(LINEAGES[lineage][level])))
        links = self._all(context, MAPPING, pb.CrossAtlasCellTypeLink, where, group_by=["harmonized_type", "atlas"],
                          aggregates={"total_cells": ("sum", "n_cells"), "n_types": ("count", "")})
        cell_types = self._all(context, MAPPING, pb.CrossAtlasCellTypeMapping, where,
                               order_by=["harmonized_type", "atlas", "-n_cells", "cell_type"])
        types = self._all(context, MAPPING, pb.CrossAtlasHarmonizedType, [*where, ("n_cells", ">", 0)],
                          group_by=["harmonized_type"], order_by=["-total_cells"],
                          aggregates={"n_atlases": ("count_distinct", "atlas"), "total_cells": ("sum", "n_cells")})
        return pb.GetCrossAtlasCellTypeSankeyResponse(level=level, lineage=lineage, links=links,
                                                      cell_types=cell_types, harmonized_types=types)

    # -- one atlas pair ------------------------------------------------------------------

    @handle_errors
    def GetCrossAtlasPairwiseScatter(self, request, context):
        asked = (_one_of(request, "atlas1", ATLASES, "CIMA"), _one_of(request, "atlas2", ATLASES, "Inflammation"))
        if asked[0] == asked[1]:
            raise invalid(Reason.INVALID_REQUEST, f"atlas1 and atlas2 are both {asked[0]!r}: a pair needs two "
                          f"atlases", "atlas2", value=asked[1])
        atlas1, atlas2 = sorted(asked, key=ATLASES.index)
        swapped = (atlas1, atlas2) != asked
        view, level = _view_level(request)
        where = self.q.filters(POINTS, request, ("signature_type", "view", "level", "atlas1", "atlas2", "signature",
                                                 "cell_type"), view=view, level=level, atlas1=atlas1, atlas2=atlas2)
        points, token = self.q.page(context, request, POINTS, None, where,
                                    columns=[f for f in pb.CrossAtlasScatterPoint.DESCRIPTOR.fields_by_name])
        pair = [w for w in where if w[0] not in ("signature", "cell_type")]
        stats, _ = self.q.page(context, _NoPage, STATS, None, pair, size=1,
                               columns=[f for f in pb.CrossAtlasPairStats.DESCRIPTOR.fields_by_name])
        if swapped:  # the file holds the pair the other way round: x is atlas2's, y atlas1's
            points = points.rename_columns([_SWAP.get(c, c) for c in points.column_names])
            stats = stats.rename_columns([_SWAP.get(c, c) for c in stats.column_names])
        [stats] = to_messages(stats, pb.CrossAtlasPairStats) or [None]
        return pb.GetCrossAtlasPairwiseScatterResponse(
            atlas1=asked[0], atlas2=asked[1], signature_type=signature_type(request), level=level, view=view,
            pair_stats=stats, points=to_messages(points, pb.CrossAtlasScatterPoint), next_page_token=token)

    @handle_errors
    def ListCrossAtlasCorrelations(self, request, context):
        for field, valid in (("view", STATS_VIEWS), ("level", STATS_LEVELS)):
            if getattr(request, field):
                _one_of(request, field, valid)
        where = self.q.filters(STATS, request, ("signature_type", "view", "level"))
        atlases = [_one_of(request, f, ATLASES) if getattr(request, f) else "" for f in ("atlas1", "atlas2")]
        if all(atlases):  # a pair, asked in either order
            atlases = sorted(atlases, key=ATLASES.index)
        where += [(f, "=", a) for f, a in zip(("atlas1", "atlas2"), atlases) if a]
        return pb.ListCrossAtlasCorrelationsResponse(correlations=self._all(context, STATS, pb.CrossAtlasPairStats,
                                                                             where))

    # -- per signature -------------------------------------------------------------------

    @handle_errors
    def ListCrossAtlasSignatureReliability(self, request, context):
        where = self.q.filters(RELIABILITY, request, ("signature_type", "category", "signature"))
        rows, token = self.q.page(context, request, RELIABILITY, pb.CrossAtlasSignatureReliability, where,
                                  order_by=["-n_pairs_with_data", "-mean_correlation", "signature"])
        counts = self._all(context, RELIABILITY, pb.CrossAtlasReliabilityCount, where[:1], group_by=["category"],
                           aggregates={"n_signatures": ("count", "")})
        return pb.ListCrossAtlasSignatureReliabilityResponse(
            signature_type=signature_type(request), signatures=rows, category_counts=counts, next_page_token=token)

    @handle_errors
    def ListCrossAtlasMetaAnalysis(self, request, context):
        where = self.q.filters(META, request, ("signature_type", "analysis", "signature", "atlas"))
        rows, token = self.q.page(context, request, META, pb.CrossAtlasMetaAnalysis, where,
                                  order_by=["analysis", "-abs_pooled_effect", "signature", "atlas"])
        signatures = ("count_distinct", "signature")
        count = lambda *extra: self.q.aggregate(META, [*where, *extra], n=signatures)["n"]  # noqa: E731
        n = count()
        summary = pb.CrossAtlasMetaAnalysisSummary(
            n_signatures=n, n_significant=count(("abs_pooled_effect", ">", 0.1)),
            n_consistent_direction=n - count(("consistent_direction", "=", False)),
            n_heterogeneous=count(("i2", ">", 50.0)))
        return pb.ListCrossAtlasMetaAnalysisResponse(rows=rows, summary=summary, next_page_token=token)

    @handle_errors
    def ListCrossAtlasConservedSignatures(self, request, context):
        where = self.q.filters(CONSERVED, request, ("signature_type", "signature"))
        least = request.min_atlases if request.HasField("min_atlases") else (1 if request.signature else 2)
        if not 0 <= least <= 3:
            raise invalid(Reason.INVALID_REQUEST, f"min_atlases must be 0 to 3 (atlases), got {least}",
                          "min_atlases", value=str(least))
        rows, token = self.q.page(context, request, CONSERVED, pb.CrossAtlasConservedSignature,
                                  [*where, ("n_atlases", ">=", least)], order_by=["-n_atlases", "signature"])
        return pb.ListCrossAtlasConservedSignaturesResponse(signatures=rows, next_page_token=token)

    @handle_errors
    def ListCrossAtlasPathwayEnrichment(self, request, context):
        where = self.q.filters(PATHWAYS, request, ("signature_type", "database"))
        if not request.signature:
            rows, token = self.q.page(context, request, PATHWAYS, pb.CrossAtlasPathwayEnrichment, where,
                                      order_by=["database", "-neg_log_fdr", "pathway"])
            return pb.ListCrossAtlasPathwayEnrichmentResponse(pathways=rows, next_page_token=token)
        genes = self.q.filters(PATHWAY_GENES, request, ("signature_type", "signature"))
        columns = [f for f in pb.CrossAtlasPathwayEnrichment.DESCRIPTOR.fields_by_name]
        left = table_pb.QueryRequest(table=PATHWAYS, columns=columns, filters=to_filters(where))
        right = table_pb.QueryRequest(table=PATHWAY_GENES, columns=["signature_type", "database", "pathway", "signature"],
                                      filters=to_filters(genes))
        rows, token = self.q.joined_page(context, request, left, right, ("signature_type", "database", "pathway"),
                                         pb.CrossAtlasPathwayEnrichment)
        return pb.ListCrossAtlasPathwayEnrichmentResponse(pathways=rows, next_page_token=token)

    # -- the three atlases side by side --------------------------------------------------

    @handle_errors
    def ListCrossAtlasComparisons(self, request, context):
        view, level = _view_level(request)
        where = self.q.filters(COMPARISON, request, ("signature_type", "view", "level", "cell_type", "signature"),
                               view=view, level=level)
        rows, token = self.q.page(context, request, COMPARISON, pb.CrossAtlasComparison, where,
                                  order_by=["cell_type", "signature"])
        scope = where[:3]  # signature_type, view, level
        counts = self.q.aggregate(COMPARISON, where, n_common_signatures=("count_distinct", "signature"),
                                  n_common_cell_types=("count_distinct", "cell_type"))
        mean = self.q.aggregate(STATS, scope, mean_correlation=("avg", "correlation"))
        top = self._all(context, CONSERVED, None, [scope[0], ("n_atlases", ">=", 2)], order_by=["-n_atlases", "signature"],
                        columns=["signature"], size=5)
        summary = pb.CrossAtlasComparisonSummary(**counts, top_conserved=top.column("signature").to_pylist(),
                                                 **{k: v for k, v in mean.items() if v is not None})
        return pb.ListCrossAtlasComparisonsResponse(
            comparisons=rows, cell_types=self._values(COMPARISON, "cell_type", scope),
            signatures=self._values(COMPARISON, "signature", where), summary=summary, next_page_token=token)

    @handle_errors
    def ListCrossAtlasSignatureActivity(self, request, context):
        view, level = _view_level(request)
        where = self.q.filters(COMPARISON, request, ("signature_type", "view", "level"), view=view, level=level)
        rows, token = self.q.page(context, request, COMPARISON, pb.CrossAtlasSignatureActivity, where,
                                  group_by=["signature"], aggregates={
                                      "cima_mean": ("avg", "cima_activity"),
                                      "inflammation_mean": ("avg", "inflammation_activity"),
                                      "scatlas_mean": ("avg", "scatlas_activity"), "n_cell_types": ("count", "")})
        return pb.ListCrossAtlasSignatureActivityResponse(signatures=rows, next_page_token=token)

    @handle_errors
    def ListCrossAtlasCellTypeMappings(self, request, context):
        level = _one_of(request, "level", MAPPING_LEVELS, "coarse")
        where = self.q.filters(MAPPING, request, ("level", "atlas", "harmonized_type"), level=level)
        rows, token = self.q.page(context, request, MAPPING, pb.CrossAtlasCellTypeMapping, where)
        return pb.ListCrossAtlasCellTypeMappingsResponse(mappings=rows, next_page_token=token)


class _NoPage:
    page_token = ""


# Reading a pair the other way round than the file stores it: swap what belongs to each atlas.
_SWAP = {"x": "y", "y": "x", "n_samples_x": "n_samples_y", "n_samples_y": "n_samples_x",
         "n_cells_x": "n_cells_y", "n_cells_y": "n_cells_x", "atlas1": "atlas2", "atlas2": "atlas1",
         "n_cells_atlas1": "n_cells_atlas2", "n_cells_atlas2": "n_cells_atlas1"}

SERVICE = TypedService.of(pb, pb_grpc, "CrossAtlasService", CrossAtlasServicer)
