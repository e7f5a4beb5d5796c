"""cytoatlas.atlas.v1.InflammationService: the Inflammation atlas pages. Each RPC names its
table, filters, order and message; cytoatlas.serving.typed_rpc and the query compiler do the rest
(protos/TYPED_RPCS.md).

A nested list (a ROC curve's points, a population's top signatures, a program's diseases) is a
second query restricted to the page's rows by their id, in SQL order; its rows are only copied
into the page's messages."""

from __future__ import annotations

from collections import defaultdict

from cytoatlas.atlas.v1 import atlas_service_pb2 as atlas_pb
from cytoatlas.atlas.v1 import inflammation_service_pb2 as pb
from cytoatlas.atlas.v1 import inflammation_service_pb2_grpc as pb_grpc
from cytoatlas.serving.compiler import Pivot
from cytoatlas.serving.errors import Reason, invalid
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import TypedService, TypedServicer, required, signature_type, to_messages
from cytoatlas.table.v1 import table_service_pb2 as table_pb

SUMMARY_LISTS = ("diseases", "disease_groups", "cell_types", "cohorts")
COHORTS = ("main", "validation", "external")  # what the real API answers whatever the file holds
CELL_DRIVER_SETS = ("diseases", "cell_types", "cytokines", "secact_proteins")
DEFAULT_MIN_DISEASES, DEFAULT_MODEL, TOP_SIGNATURES = 3, "Random Forest", 5
TEMPORAL_SECTIONS = ("timepoint_distribution", "disease_timepoints", "treatment_by_timepoint")
# age_bmi_boxplots holds both atlases (the CIMA helper's table): this atlas's rows, and 'All' for
# the sample level.
BOXPLOTS, ATLAS, SAMPLE_LEVEL, SECTIONS = "age_bmi_boxplots", "inflammation", "All", {"age": 0, "bmi": 1}
# Heatmap `value`s: the table and column each one reads; the first is the default.
DISEASE_HEATMAP = {"mean_activity": ("inflammation_disease", "mean_activity"),
                   "activity_diff": ("inflammation_differential", "activity_diff")}
CELL_TYPE_DISEASE_HEATMAP = {"mean_activity": ("inflammation_disease", "mean_activity"),
                             "effect": ("inflammation_cell_drivers", "effect")}


class _FirstPage:
    page_token = ""


class InflammationServicer(TypedServicer, pb_grpc.InflammationServiceServicer):

    # -- helpers ------------------------------------------------------------------------------

    def _all(self, context, table: str, message, where=(), *, order_by=(), columns=None, **kw):
        """Every row (an unpaged answer: a diagram, a list of stages, a few sets)."""
        rows, _ = self.q.page(context, _FirstPage, table, message, where, order_by=order_by, columns=columns,
                              size=self.settings.arrow_max_limit, format=table_pb.RESULT_FORMAT_ARROW, **kw)
        return rows

    def _values(self, context, table: str, column: str, where, order_by) -> list:
        return self._all(context, table, None, where, order_by=order_by, columns=[column]).column(column).to_pylist()

    def _children(self, context, table: str, where, key: str, ids: list, columns, order_by) -> dict:
        """Rows of `table` for the parents `ids` (their `key`), grouped by parent, in SQL order."""
        grouped = defaultdict(list)
        if ids:
            for row in self._all(context, table, None, [*where, (key, "in", ids)], order_by=order_by,
                                 columns=[key, *columns]).to_pylist():
                grouped[row[key]].append(row)
        return grouped

    def _matrix(self, context, table: str, where, pivot: Pivot):
        return self.q.matrix(context, table, where, pivot, atlas_pb.AtlasMatrix, atlas_pb.AtlasMatrixRow)

    @staticmethod
    def _choice(request, field: str, choices: dict, default: bool = True) -> str:
        value = getattr(request, field) or (next(iter(choices)) if default else required(request, field))
        if value not in choices:
            raise invalid(Reason.INVALID_REQUEST, f"{field} {value!r} is not one of {', '.join(choices)}",
                          field, value=value)
        return value

    # -- summary and names --------------------------------------------------------------------

    @handle_errors
    def GetInflammationSummary(self, request, context):
        scope = [("atlas", "=", "inflammation")]
        figures = {row["stat"]: row["value"] for row in self._all(
            context, "summary_stats", None, [*scope, ("ordinal", "=", 0)], columns=["stat", "value"]).to_pylist()}
        lists = {name: self._values(context, "summary_stats", "text", [*scope, ("stat", "=", name),
                                                                         ("ordinal", ">=", 1)], ["ordinal"])
                 for name in SUMMARY_LISTS}
        # The real file may lack the lists: then the tables give them (the real API gives none).
        diseases = lists["diseases"] or self.q.distinct("inflammation_disease", "disease")
        groups = lists["disease_groups"] or self.q.distinct("inflammation_disease", "disease_group")
        cell_types = lists["cell_types"] or self.q.distinct("inflammation_celltype", "cell_type")
        return pb.GetInflammationSummaryResponse(
            n_samples=int(figures.get("n_samples") or 0), n_cells=int(figures.get("n_cells") or 0),
            n_cell_types=int(figures.get("n_cell_types") or len(cell_types)),
            n_diseases=len(diseases), n_disease_groups=len(groups), diseases=diseases, disease_groups=groups,
            cell_types=cell_types, cohorts=lists["cohorts"] or COHORTS,
            signature_types=self.q.distinct("inflammation_celltype", "signature_type"))

    def _diseases(self, context, request, where, **kw):
        return self.q.page(context, request, "inflammation_disease", pb.InflammationDisease, where,
                           group_by=["disease", "disease_group"], order_by=["disease"],
                           aggregates={"n_cell_types": ("count_distinct", "cell_type")}, **kw)

    @handle_errors
    def ListInflammationDiseases(self, request, context):
        rows, token = self._diseases(context, request, self.q.filters("inflammation_disease", request,
                                                                     ("signature_type",)))
        return pb.ListInflammationDiseasesResponse(diseases=rows, next_page_token=token)

    @handle_errors
    def ListInflammationCellTypes(self, request, context):
        table = "inflammation_celltype"
        names, token = self.q.names_page(context, request, table, "cell_type",
                                         self.q.filters(table, request, ("signature_type",)))
        return pb.ListInflammationCellTypesResponse(cell_types=names, next_page_token=token)

    @handle_errors
    def ListInflammationSignatures(self, request, context):
        table = "inflammation_celltype"
        names, token = self.q.names_page(context, request, table, "signature",
                                         self.q.filters(table, request, ("signature_type",)))
        return pb.ListInflammationSignaturesResponse(signatures=names, next_page_token=token)

    # -- disease activity ---------------------------------------------------------------------

    @handle_errors
    def ListInflammationDiseaseActivity(self, request, context):
        rows, token = self._rows(context, request, "inflammation_disease", pb.InflammationDiseaseActivity,
                                 ("signature_type", "disease", "disease_group", "cell_type", "signature"))
        return pb.ListInflammationDiseaseActivityResponse(disease_activities=rows, next_page_token=token)

    @handle_errors
    def GetInflammationDiseaseActivitySummary(self, request, context):
        table = "inflammation_disease"
        where = self.q.filters(table, request, ("signature_type",))
        diseases, _ = self._diseases(context, _FirstPage, where, size=self.settings.arrow_max_limit,
                                     format=table_pb.RESULT_FORMAT_ARROW)
        return pb.GetInflammationDiseaseActivitySummaryResponse(
            signature_type=signature_type(request),
            heatmap=self._matrix(context, table, where, Pivot("disease", "signature", "mean_activity")),
            diseases=diseases, disease_groups=self.q.distinct(table, "disease_group", where),
            signatures=self.q.distinct(table, "signature", where), cell_types=self.q.distinct(table, "cell_type", where))

    @handle_errors
    def ListInflammationDiseaseGroupActivity(self, request, context):
        rows, token = self._rows(context, request, "inflammation_disease_group_activity",
                                 pb.InflammationDiseaseGroupActivity,
                                 ("signature_type", "signature", "disease_group", "cell_type"))
        return pb.ListInflammationDiseaseGroupActivityResponse(disease_group_activities=rows, next_page_token=token)

    # -- cell drivers -------------------------------------------------------------------------

    @handle_errors
    def ListInflammationCellDrivers(self, request, context):
        table = "inflammation_cell_drivers"
        where = self.q.filters(table, request, ("signature_type", "disease", "cell_type", "signature"))
        if request.driving_only:
            where.append(("is_driving", "=", True))
        rows, token = self.q.page(context, request, table, pb.InflammationCellDriver, where)
        return pb.ListInflammationCellDriversResponse(cell_drivers=rows, next_page_token=token)

    @handle_errors
    def GetInflammationCellDriverSets(self, request, context):
        return pb.GetInflammationCellDriverSetsResponse(**{
            name: self._values(context, "inflammation_cell_driver_sets", "value", [("list_name", "=", name)],
                               ["ordinal"]) for name in CELL_DRIVER_SETS})

    @handle_errors
    def ListInflammationDrivingPopulations(self, request, context):
        table = "inflammation_cell_drivers"
        where = self.q.filters(table, request, ("signature_type", "disease"))
        rows, token = self.q.page(context, request, table, None, [*where, ("is_driving", "=", True)],
                                  group_by=["disease", "cell_type", "population"], order_by=["-n_signatures"],
                                  aggregates={"n_signatures": ("count", ""),
                                              "mean_activity_diff": ("avg", "abs_effect")})
        top = self._children(context, table, [("signature_type", "=", signature_type(request)),
                                              ("driving_rank", "<=", TOP_SIGNATURES)],
                             "population", rows.column("population").to_pylist(), ["signature"],
                             ["population", "driving_rank"])
        populations = to_messages(rows, pb.InflammationDrivingPopulation)
        for message, population in zip(populations, rows.column("population").to_pylist()):
            message.top_signatures.extend(row["signature"] for row in top[population])
        return pb.ListInflammationDrivingPopulationsResponse(driving_populations=populations, next_page_token=token)

    @handle_errors
    def ListInflammationConservedPrograms(self, request, context):
        if request.min_diseases < 0 or request.min_diseases == 1:
            raise invalid(Reason.INVALID_REQUEST, f"min_diseases must be 0 (default {DEFAULT_MIN_DISEASES}) or at "
                          f"least 2, got {request.min_diseases}", "min_diseases", value=str(request.min_diseases))
        kind = signature_type(request)
        self.q.check("inflammation_disease", "signature_type", kind)  # the programs' source, not the programs
        where = [("signature_type", "=", kind), ("n_diseases", ">=", request.min_diseases or DEFAULT_MIN_DISEASES)]
        rows, token = self.q.page(context, request, "inflammation_conserved_programs", None, where,
                                  order_by=["-n_diseases"], columns=["signature", "signature_type", "n_diseases",
                                                                     "mean_activity_diff", "consistency_score"])
        signatures = rows.column("signature").to_pylist()
        diseases = self._children(context, "inflammation_conserved_program_diseases",
                                  [("signature_type", "=", kind)], "signature", signatures, ["disease"],
                                  ["signature", "disease"])
        programs = to_messages(rows, pb.InflammationConservedProgram)
        for message, signature in zip(programs, signatures):
            message.diseases.extend(row["disease"] for row in diseases[signature])
        return pb.ListInflammationConservedProgramsResponse(conserved_programs=programs, next_page_token=token)

    # -- treatment response -------------------------------------------------------------------

    @handle_errors
    def ListInflammationTreatmentResponses(self, request, context):
        rows, token = self._rows(context, request, "treatment_response", pb.InflammationTreatmentResponse,
                                 ("signature_type", "disease", "model"))
        return pb.ListInflammationTreatmentResponsesResponse(treatment_responses=rows, next_page_token=token)

    @handle_errors
    def ListInflammationRocCurves(self, request, context):
        table = "treatment_response"
        where = self.q.filters(table, request, ("signature_type", "disease", "model"))
        rows, token = self.q.page(context, request, table, None, where,
                                  columns=["disease", "model", "signature_type", "curve", "auc", "n_samples"])
        curves = rows.column("curve").to_pylist()
        points = self._children(context, "treatment_response_roc", [("signature_type", "=", signature_type(request))],
                                "curve", curves, ["fpr", "tpr"], ["curve", "point"])
        messages = to_messages(rows, pb.InflammationRocCurve)
        for message, curve in zip(messages, curves):
            message.fpr.extend(row["fpr"] for row in points[curve])
            message.tpr.extend(row["tpr"] for row in points[curve])
        return pb.ListInflammationRocCurvesResponse(roc_curves=messages, next_page_token=token)

    @handle_errors
    def ListInflammationFeatureImportance(self, request, context):
        table = "treatment_response_features"
        where = self.q.filters(table, request, ("signature_type", "disease", "model"),
                              model=request.model or DEFAULT_MODEL)
        rows, token = self.q.page(context, request, table, pb.InflammationFeatureImportance, where,
                                  order_by=["-importance"])
        return pb.ListInflammationFeatureImportanceResponse(features=rows, next_page_token=token)

    @handle_errors
    def ListInflammationTreatmentPredictions(self, request, context):
        rows, token = self._rows(context, request, "treatment_response_predictions",
                                 pb.InflammationTreatmentPrediction, ("signature_type", "disease", "model", "response"))
        return pb.ListInflammationTreatmentPredictionsResponse(predictions=rows, next_page_token=token)

    # -- cohorts and samples ------------------------------------------------------------------

    @handle_errors
    def ListInflammationCohortValidation(self, request, context):
        rows, token = self._rows(context, request, "cohort_validation", pb.InflammationCohortCorrelation,
                                 ("signature_type", "signature"))
        consistency = self._all(context, "cohort_validation_consistency", pb.InflammationCohortConsistency,
                                [("signature_type", "=", signature_type(request))])
        return pb.ListInflammationCohortValidationResponse(correlations=rows, consistency=consistency,
                                                           next_page_token=token)

    @handle_errors
    def GetInflammationSankey(self, request, context):
        nodes = "disease_sankey_nodes"
        return pb.GetInflammationSankeyResponse(
            nodes=self._all(context, nodes, pb.InflammationSankeyNode),
            links=self._all(context, "disease_sankey", pb.InflammationSankeyLink),
            **{field: self._values(context, nodes, "name", [("type", "=", kind)], ["node_index"])
               for field, kind in (("cohorts", "cohort"), ("diseases", "disease"),
                                   ("disease_groups", "disease_group"))})

    @handle_errors
    def ListInflammationCorrelations(self, request, context):
        rows, token = self._rows(context, request, "inflammation_celltype_correlations", pb.InflammationCorrelation,
                                 ("signature_type", "category", "cell_type", "signature"))
        return pb.ListInflammationCorrelationsResponse(correlations=rows, next_page_token=token)

    @handle_errors
    def ListInflammationSampleCorrelations(self, request, context):
        rows, token = self._rows(context, request, "inflammation_correlations", pb.InflammationSampleCorrelation,
                                 ("signature_type", "category", "signature"))
        return pb.ListInflammationSampleCorrelationsResponse(correlations=rows, next_page_token=token)

    # -- heatmaps -----------------------------------------------------------------------------

    @handle_errors
    def GetInflammationActivityHeatmap(self, request, context):
        table = "inflammation_celltype"
        where = self.q.filters(table, request, ("signature_type",))
        return pb.GetInflammationActivityHeatmapResponse(
            signature_type=signature_type(request),
            matrix=self._matrix(context, table, where, Pivot("cell_type", "signature", "mean_activity")))

    @handle_errors
    def GetInflammationDiseaseHeatmap(self, request, context):
        value = self._choice(request, "value", DISEASE_HEATMAP)
        table, column = DISEASE_HEATMAP[value]
        where = self.q.filters(table, request, ("signature_type",))
        return pb.GetInflammationDiseaseHeatmapResponse(
            signature_type=signature_type(request), value=value,
            matrix=self._matrix(context, table, where, Pivot("disease", "signature", column)))

    @handle_errors
    def GetInflammationCellTypeDiseaseHeatmap(self, request, context):
        disease = required(request, "disease")
        value = self._choice(request, "value", CELL_TYPE_DISEASE_HEATMAP)
        table, column = CELL_TYPE_DISEASE_HEATMAP[value]
        where = self.q.filters(table, request, ("signature_type", "disease"))
        return pb.GetInflammationCellTypeDiseaseHeatmapResponse(
            disease=disease, signature_type=signature_type(request), value=value,
            matrix=self._matrix(context, table, where, Pivot("cell_type", "signature", column)))

    # -- severity -----------------------------------------------------------------------------

    @handle_errors
    def ListInflammationSeverity(self, request, context):
        table = "inflammation_severity"
        where = self.q.filters(table, request, ("signature_type", "disease", "severity", "signature"))
        rows, token = self.q.page(context, request, table, pb.InflammationSeverity, where,
                                  order_by=["disease", "severity_order", "signature"])
        return pb.ListInflammationSeverityResponse(severities=rows, next_page_token=token)

    @handle_errors
    def ListInflammationSeverityDiseases(self, request, context):
        names, token = self.q.names_page(context, request, "inflammation_severity", "disease")
        return pb.ListInflammationSeverityDiseasesResponse(diseases=names, next_page_token=token)

    @handle_errors
    def ListInflammationSeverityLevels(self, request, context):
        required(request, "disease")
        table = "inflammation_severity"
        levels = self._all(context, table, pb.InflammationSeverityLevel, self.q.filters(table, request, ("disease",)),
                           group_by=["severity"], aggregates={"severity_order": ("min", "severity_order")},
                           order_by=["severity_order"])
        return pb.ListInflammationSeverityLevelsResponse(levels=levels)

    @handle_errors
    def GetInflammationSeverityHeatmap(self, request, context):
        disease = required(request, "disease")
        table = "inflammation_severity"
        where = self.q.filters(table, request, ("signature_type", "disease"))
        return pb.GetInflammationSeverityHeatmapResponse(
            disease=disease, signature_type=signature_type(request),
            matrix=self._matrix(context, table, where, Pivot("severity", "signature", "mean_activity",
                                                             row_order="severity_order")))

    # -- timepoints ---------------------------------------------------------------------------

    @handle_errors
    def GetInflammationTemporal(self, request, context):
        info = {row["name"]: row["value"] for row in self._all(
            context, "inflammation_longitudinal_info", None, columns=["name", "value"]).to_pylist()}
        counts = {section: self._all(context, "inflammation_longitudinal_counts", pb.InflammationTemporalCount,
                                     [("section", "=", section)]) for section in TEMPORAL_SECTIONS}
        return pb.GetInflammationTemporalResponse(has_longitudinal=info.get("has_longitudinal") == "true",
                                                  note=info.get("note") or "", **counts)

    @handle_errors
    def ListInflammationTemporalActivity(self, request, context):
        table = "inflammation_longitudinal"
        where = self.q.filters(table, request, ("signature_type", "disease", "timepoint", "signature"))
        rows, token = self.q.page(context, request, table, pb.InflammationTimepointActivity, where,
                                  order_by=["disease", "timepoint_num", "signature"])
        return pb.ListInflammationTemporalActivityResponse(timepoint_activities=rows, next_page_token=token)

    @handle_errors
    def ListInflammationTemporalDiseases(self, request, context):
        names, token = self.q.names_page(context, request, "inflammation_longitudinal", "disease",
                                         [("n_timepoints", ">", 1)])
        return pb.ListInflammationTemporalDiseasesResponse(diseases=names, next_page_token=token)

    @handle_errors
    def GetInflammationTemporalHeatmap(self, request, context):
        disease = required(request, "disease")
        table = "inflammation_longitudinal"
        where = self.q.filters(table, request, ("signature_type", "disease"))
        return pb.GetInflammationTemporalHeatmapResponse(
            disease=disease, signature_type=signature_type(request),
            matrix=self._matrix(context, table, where, Pivot("timepoint", "signature", "mean_activity",
                                                             row_order="timepoint_num")))

    # -- age and BMI boxplots (age_bmi_boxplots, atlas 'inflammation') -------------------------

    def _boxplot_scope(self, request, cell_type: str | None) -> list:
        """This atlas's rows of the section, signature type and signature (each checked within this
        atlas's rows), and of the cell type when one is given."""
        section = self._choice(request, "section", SECTIONS, default=False)
        signature = required(request, "signature")
        kind = signature_type(request)
        where = [("atlas", "=", ATLAS), ("section", "=", section)]
        self.q.check(BOXPLOTS, "signature_type", kind, where=where)
        where.append(("signature_type", "=", kind))
        self.q.check(BOXPLOTS, "signature", signature, where=where)
        where.append(("signature", "=", signature))
        if cell_type is not None:
            self.q.check(BOXPLOTS, "cell_type", cell_type, where=where)
            where.append(("cell_type", "=", cell_type))
        return where

    @handle_errors
    def ListInflammationAgeBmiBoxplots(self, request, context):
        where = self._boxplot_scope(request, request.cell_type or SAMPLE_LEVEL)
        rows, token = self.q.page(context, request, BOXPLOTS, pb.InflammationAgeBmiBoxplot, where,
                                  order_by=["bin_low", "bin"])
        return pb.ListInflammationAgeBmiBoxplotsResponse(boxplots=rows, next_page_token=token)

    @handle_errors
    def GetInflammationAgeBmiHeatmap(self, request, context):
        where = self._boxplot_scope(request, None) + [("cell_type", "!=", SAMPLE_LEVEL)]
        return pb.GetInflammationAgeBmiHeatmapResponse(
            section=request.section, signature=request.signature, signature_type=signature_type(request),
            matrix=self._matrix(context, BOXPLOTS, where, Pivot("cell_type", "bin", "median", column_order="bin_low")))


SERVICE = TypedService.of(pb, pb_grpc, "InflammationService", InflammationServicer)
