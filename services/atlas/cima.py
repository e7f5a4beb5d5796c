"""cytoatlas.atlas.v1.CimaService: the CIMA atlas page. Each RPC names its table, filters and output
message; cytoatlas.serving.typed_rpc and the query compiler do the rest (protos/TYPED_RPCS.md)."""

from __future__ import annotations

from cytoatlas.atlas.v1 import atlas_service_pb2 as atlas_pb
from cytoatlas.atlas.v1 import cima_service_pb2 as pb
from cytoatlas.atlas.v1 import cima_service_pb2_grpc as pb_grpc
from cytoatlas.requests import to_filters
from cytoatlas.serving.compiler import Pivot
from cytoatlas.serving.errors import Reason, invalid
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import TypedService, TypedServicer, required, signature_type
from cytoatlas.table.v1 import table_service_pb2 as table_pb

ARROW = table_pb.RESULT_FORMAT_ARROW
CATEGORIES = ("age", "bmi", "biochemistry")  # ListCimaCorrelations, GetCimaCorrelationHeatmap
SECTIONS = ("age", "bmi")  # the boxplots
VARIABLES = ("sex", "age", "bmi", "blood_type", "smoking")  # the population stratification
# The real /differential/smoking route asks for "smoking"; the file's comparison is smoking_status.
COMPARISON_ALIASES = {"smoking": "smoking_status"}
BOXPLOTS, MEANS, EFFECTS = "age_bmi_boxplots", "cima_population_stratification_means", "cima_population_stratification"
SCATTER, MARKERS = "cima_biochem_scatter", "cima_biochem_scatter_markers"
# GetCimaSummary: summary_stats' name of each figure -> the response field (the real /summary's).
SUMMARY_FIELDS = {
    "n_samples": "n_samples", "n_cell_types": "n_cell_types", "n_cells": "n_cells",
    "n_cytokines_cytosig": "n_cytosig_signatures", "n_proteins_secact": "n_secact_signatures",
    "n_age_correlations": "n_age_correlations", "n_bmi_correlations": "n_bmi_correlations",
    "n_biochem_correlations": "n_biochem_correlations", "n_metabolite_correlations": "n_metabolite_correlations",
    "n_differential": "n_differential_tests", "significant_age": "significant_age",
    "significant_bmi": "significant_bmi",
}


class _FirstPage:
    """A request with no page token, for the whole-list queries a response embeds."""

    page_token = ""


def choice(request, field: str, choices: tuple[str, ...], default: str = "") -> str:
    """The request's value of a closed vocabulary, or INVALID_ARGUMENT naming the choices."""
    value = getattr(request, field) or default
    if value not in choices:
        got = f", got {value!r}" if value else " (it is required)"
        raise invalid(Reason.INVALID_REQUEST, f"{field} must be one of {', '.join(choices)}{got}", field,
                      value=value)
    return value


class CimaServicer(TypedServicer, pb_grpc.CimaServiceServicer):
    def _where(self, table: str, request, fields, **values) -> list:
        """Equality filters for the request fields that are set (signature_type always, defaulted;
        `values` overrides), each value checked among the rows the filters before it select: a
        value that occurs nowhere there is NOT_FOUND (INVALID_ARGUMENT for a closed vocabulary),
        so a call that passes the checks never selects nothing."""
        where = []
        for field in fields:
            value = values[field] if field in values else (
                signature_type(request) if field == "signature_type" else getattr(request, field))
            if value in ("", None):
                continue
            self.q.check(table, field, value, where=list(where))
            where.append((field, "=", value))
        return where

    def _list(self, context, request, table: str, message: type, fields, values=None, **page):
        where = self._where(table, request, fields, **(values or {}))
        return self.q.page(context, request, table, message, where, **page)

    def _matrix(self, context, table: str, where, pivot: Pivot):
        return self.q.matrix(context, table, where, pivot, atlas_pb.AtlasMatrix, atlas_pb.AtlasMatrixRow)

    def _all(self, context, table: str, message: type | None, where=(), **kw):
        """Every row (ARROW page limits: one page), for lists a response embeds whole."""
        rows, _ = self.q.page(context, _FirstPage, table, message, where, size=0, format=ARROW, **kw)
        return rows

    # -- summary and name lists -------------------------------------------------------------

    @handle_errors
    def GetCimaSummary(self, request, context):
        stats = self._all(context, "summary_stats", pb.CimaSummaryFigure,
                          [("atlas", "=", "cima"), ("ordinal", "=", 0), ("value", "is not null")])
        figures = {SUMMARY_FIELDS[s.stat]: int(s.value) for s in stats if s.stat in SUMMARY_FIELDS}
        if "n_cell_types" not in figures:  # the pipeline writes none: count them
            figures.update(self.q.aggregate("cima_celltype", (), n_cell_types=("count_distinct", "cell_type")))
        return pb.GetCimaSummaryResponse(**figures, figures=stats)

    @handle_errors
    def ListCimaCellTypes(self, request, context):
        names, token = self.q.names_page(context, request, "cima_celltype", "cell_type")
        return pb.ListCimaCellTypesResponse(cell_types=names, next_page_token=token)

    @handle_errors
    def ListCimaSignatures(self, request, context):
        where = self._where("cima_celltype", request, ("signature_type",))
        names, token = self.q.names_page(context, request, "cima_celltype", "signature", where)
        return pb.ListCimaSignaturesResponse(signatures=names, next_page_token=token)

    @handle_errors
    def ListCimaBiochemVariables(self, request, context):
        where = self._where("cima_correlations", request, ("signature_type", "category"), category="biochemistry")
        names, token = self.q.names_page(context, request, "cima_correlations", "feature", where)
        return pb.ListCimaBiochemVariablesResponse(biochem_variables=names, next_page_token=token)

    @handle_errors
    def ListCimaComparisons(self, request, context):
        where = self._where("cima_differential", request, ("signature_type",)) + [("activity_diff", "is not null")]
        names, token = self.q.names_page(context, request, "cima_differential", "comparison", where)
        return pb.ListCimaComparisonsResponse(comparisons=names, next_page_token=token)

    # -- activity and correlations ------------------------------------------------------------

    @handle_errors
    def ListCimaCellTypeActivity(self, request, context):
        rows, token = self._list(context, request, "cima_celltype", pb.CimaCellTypeActivity,
                                 ("signature_type", "cell_type", "signature"))
        return pb.ListCimaCellTypeActivityResponse(activities=rows, next_page_token=token)

    @handle_errors
    def ListCimaCorrelations(self, request, context):
        category = choice(request, "category", CATEGORIES)
        if category == "biochemistry" or request.cell_type == "All":  # sample level
            table, fields = "cima_correlations", ("signature_type", "category", "cell_type", "feature", "signature")
        else:
            if request.feature:
                raise invalid(Reason.INVALID_REQUEST, f"feature applies to the biochemistry correlations; the "
                              f"{category} correlations per cell type name none", "feature", value=request.feature)
            table, fields = "cima_celltype_correlations", ("signature_type", "category", "cell_type", "signature")
        rows, token = self._list(context, request, table, pb.CimaCorrelation, fields, {"category": category})
        return pb.ListCimaCorrelationsResponse(correlations=rows, next_page_token=token)

    @handle_errors
    def ListCimaMetaboliteCorrelations(self, request, context):
        rows, token = self._list(context, request, "cima_metabolites_top", pb.CimaMetaboliteCorrelation,
                                 ("signature_type", "signature", "feature"), order_by=["rank"])
        return pb.ListCimaMetaboliteCorrelationsResponse(correlations=rows, next_page_token=token)

    @handle_errors
    def GetCimaCellTypeCorrelationMatrix(self, request, context):
        table = "cima_celltype_similarity"
        matrix = self._matrix(context, table, self._where(table, request, ("signature_type",)),
                              Pivot("cell_type_1", "cell_type_2", "correlation"))
        return pb.GetCimaCellTypeCorrelationMatrixResponse(signature_type=signature_type(request), matrix=matrix)

    @handle_errors
    def ListCimaDifferential(self, request, context):
        table = "cima_differential"
        comparison = COMPARISON_ALIASES.get(request.comparison, request.comparison)
        where = self._where(table, request, ("signature_type", "comparison", "cell_type", "group1", "group2",
                                             "signature"), comparison=comparison)
        where.append(("activity_diff", "is not null"))
        if request.HasField("max_qvalue"):
            where.append(("qvalue", "<=", request.max_qvalue))
        rows, token = self.q.page(context, request, table, pb.CimaDifferential, where)
        return pb.ListCimaDifferentialResponse(differentials=rows, next_page_token=token)

    # -- age and BMI boxplots -----------------------------------------------------------------

    @handle_errors
    def ListCimaAgeBmiBoxplots(self, request, context):
        section, _ = choice(request, "section", SECTIONS), required(request, "signature")
        where = self._where(BOXPLOTS, request, ("signature_type", "atlas", "section", "cell_type", "signature"),
                            atlas="cima", section=section, cell_type=request.cell_type or "All")
        rows, token = self.q.page(context, request, BOXPLOTS, pb.CimaAgeBmiBoxplot, where, order_by=["bin_low"])
        return pb.ListCimaAgeBmiBoxplotsResponse(boxplots=rows, next_page_token=token)

    @handle_errors
    def GetCimaAgeBmiHeatmap(self, request, context):
        section, signature = choice(request, "section", SECTIONS), required(request, "signature")
        where = self._where(BOXPLOTS, request, ("signature_type", "atlas", "section", "signature"),
                            atlas="cima", section=section)
        matrix = self._matrix(context, BOXPLOTS, where + [("cell_type", "!=", "All")],
                              Pivot("cell_type", "bin", "median", column_order="bin_low"))
        return pb.GetCimaAgeBmiHeatmapResponse(section=section, signature=signature,
                                               signature_type=signature_type(request), matrix=matrix)

    # -- biochemistry scatter -----------------------------------------------------------------

    @handle_errors
    def GetCimaBiochemScatter(self, request, context):
        signature, feature = required(request, "signature"), required(request, "feature")
        kind = signature_type(request)
        left = table_pb.QueryRequest(table=SCATTER, columns=["sample", "signature_type", "signature", "activity",
                                                             "age", "sex", "bmi"],
                                     filters=to_filters(self._where(SCATTER, request, ("signature_type", "signature"))))
        right = table_pb.QueryRequest(table=MARKERS, columns=["sample", "feature", "value"],
                                      filters=to_filters(self._where(MARKERS, request, ("feature",))))
        points, token = self.q.joined_page(context, request, left, right, ("sample",), pb.CimaBiochemPoint)
        correlation = self._all(context, "cima_correlations", pb.CimaCorrelation, [
            ("signature_type", "=", kind), ("category", "=", "biochemistry"), ("feature", "=", feature),
            ("signature", "=", signature)])
        response = pb.GetCimaBiochemScatterResponse(signature=signature, signature_type=kind, feature=feature,
                                                    points=points, next_page_token=token)
        if correlation:
            response.correlation.CopyFrom(correlation[0])
        return response

    @handle_errors
    def GetCimaBiochemSamples(self, request, context):
        features = self._all(context, MARKERS, None, group_by=["feature", "feature_order"], order_by=["feature_order"])
        return pb.GetCimaBiochemSamplesResponse(
            biochem_variables=features.column("feature").to_pylist(),
            cytokines=self.q.distinct(SCATTER, "signature", [("signature_type", "=", "CytoSig")]),
            secact_proteins=self.q.distinct(SCATTER, "signature", [("signature_type", "=", "SecAct")]),
            samples=self._all(context, SCATTER, pb.CimaBiochemSample, group_by=["sample", "age", "sex", "bmi"]))

    # -- population stratification ------------------------------------------------------------

    @handle_errors
    def GetCimaPopulationStratification(self, request, context):
        if request.variable:
            choice(request, "variable", VARIABLES)
        where = self._where(MEANS, request, ("signature_type", "variable"))
        kind = signature_type(request)
        return pb.GetCimaPopulationStratificationResponse(
            signature_type=kind, signatures=self.q.distinct(MEANS, "signature", [("signature_type", "=", kind)]),
            group_means=self._all(context, MEANS, pb.CimaPopulationGroupMean, where,
                                  order_by=["variable", "group_order", "signature"]),
            effects=self._all(context, EFFECTS, pb.CimaPopulationEffect, where))

    @handle_errors
    def GetCimaStratification(self, request, context):
        signature, variable = required(request, "signature"), choice(request, "variable", VARIABLES, "sex")
        where = self._where(MEANS, request, ("signature_type", "variable", "signature"), variable=variable)
        response = pb.GetCimaStratificationResponse(
            signature=signature, signature_type=signature_type(request), variable=variable,
            groups=self._all(context, MEANS, pb.CimaPopulationGroupMean, where, order_by=["group_order"]))
        effect = self._all(context, EFFECTS, pb.CimaPopulationEffect, where)
        if effect:
            response.effect.CopyFrom(effect[0])
        return response

    # -- eQTLs --------------------------------------------------------------------------------

    @handle_errors
    def GetCimaEqtlSummary(self, request, context):
        table = "cima_eqtl" if request.full else "cima_eqtl_top"
        counts = self.q.aggregate(table, (), total_eqtls=("count", ""), n_cell_types=("count_distinct", "cell_type"),
                                  n_genes=("count_distinct", "gene"))
        return pb.GetCimaEqtlSummaryResponse(**counts, cell_types=self.q.distinct(table, "cell_type"),
                                             genes=self.q.distinct(table, "gene"))

    @handle_errors
    def ListCimaEqtls(self, request, context):
        table = "cima_eqtl" if request.full else "cima_eqtl_top"
        where = self._where(table, request, ("cell_type", "gene", "variant"))
        if request.HasField("max_pvalue"):
            where.append(("pvalue", "<=", request.max_pvalue))
        rows, token = self.q.page(context, request, table, pb.CimaEqtl, where, order_by=["pvalue"])
        return pb.ListCimaEqtlsResponse(eqtls=rows, next_page_token=token)

    # -- heatmaps -----------------------------------------------------------------------------

    @handle_errors
    def GetCimaActivityHeatmap(self, request, context):
        matrix = self._matrix(context, "cima_celltype", self._where("cima_celltype", request, ("signature_type",)),
                              Pivot("cell_type", "signature", "mean_activity"))
        return pb.GetCimaActivityHeatmapResponse(signature_type=signature_type(request), matrix=matrix)

    @handle_errors
    def GetCimaCorrelationHeatmap(self, request, context):
        category = choice(request, "category", CATEGORIES)
        table, rows = (("cima_correlations", "feature") if category == "biochemistry"
                       else ("cima_celltype_correlations", "cell_type"))
        where = self._where(table, request, ("signature_type", "category"), category=category)
        matrix = self._matrix(context, table, where, Pivot(rows, "signature", "rho"))
        return pb.GetCimaCorrelationHeatmapResponse(category=category, signature_type=signature_type(request),
                                                    matrix=matrix)


SERVICE = TypedService.of(pb, pb_grpc, "CimaService", CimaServicer)
