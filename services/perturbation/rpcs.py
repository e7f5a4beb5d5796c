"""cytoatlas.perturbation.v1.PerturbationService: each RPC names its table, filters and output
message; cytoatlas.serving.typed_rpc and the query compiler do the rest (protos/TYPED_RPCS.md)."""

from __future__ import annotations

from cytoatlas.perturbation.v1 import perturbation_service_pb2 as pb
from cytoatlas.perturbation.v1 import perturbation_service_pb2_grpc as pb_grpc
from cytoatlas.serving.compiler import Pivot
from cytoatlas.serving.search import ActivitySource, SearchIndex, search_service
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import (
    ProfilePart, TargetProfile, TypedService, TypedServicer, signature_type,
)

CONTROL_DRUG = "DMSO_TF"  # Tahoe's vehicle control: not a drug in lists and profiles
NOT_CONTROL = [("drug", "!=", CONTROL_DRUG)]
HEATMAP = "parse10m_cytokine_heatmap"
SENSITIVITY = "tahoe_drug_sensitivity"
# GetTargetProfile: the signature's strongest cytokine and drug responses, activity_diff descending.
TARGET_PROFILE = TargetProfile(pb.GetTargetProfileResponse, (
    ProfilePart("top_cytokine_responses", "parse10m_treatment_effect", pb.Parse10mTreatmentEffect, "activity_diff"),
    ProfilePart("top_drug_responses", "tahoe_drug_effect", pb.TahoeDrugEffect, "activity_diff")))


class PerturbationServicer(TypedServicer, pb_grpc.PerturbationServiceServicer):
    # -- summaries -----------------------------------------------------------------------

    @handle_errors
    def GetPerturbationSummary(self, request, context):
        return pb.GetPerturbationSummaryResponse(
            parse_10m=self._parse10m_summary(), tahoe=self._tahoe_summary(), total_datasets=2,
            signature_types=self.q.distinct("parse10m_treatment_effect", "signature_type"))

    @handle_errors
    def GetParse10mSummary(self, request, context):
        return self._parse10m_summary()

    @handle_errors
    def GetTahoeSummary(self, request, context):
        return self._tahoe_summary()

    def _parse10m_summary(self) -> pb.GetParse10mSummaryResponse:
        cytokines, cell_types = self.q.distinct(HEATMAP, "cytokine"), self.q.distinct(HEATMAP, "cell_type")
        counts = self.q.aggregate(HEATMAP, (), n_cytokines=("count_distinct", "cytokine"),
                                  n_cell_types=("count_distinct", "cell_type"))
        return pb.GetParse10mSummaryResponse(
            dataset="parse_10M", description="Cytokine stimulation of PBMCs: 12 donors x 90 cytokines + PBS",
            **counts, cytokines=cytokines,
            cell_types=cell_types, signature_types=self.q.distinct(HEATMAP, "signature_type"))

    def _tahoe_summary(self) -> pb.GetTahoeSummaryResponse:
        drugs = self.q.aggregate("tahoe_drug_effect", NOT_CONTROL, n_drugs=("count_distinct", "drug"))
        lines = self.q.aggregate("tahoe_cell_line_metadata", (), n_cell_lines=("count_distinct", "cell_line"))
        return pb.GetTahoeSummaryResponse(
            dataset="Tahoe", description="Tahoe-100M: drug response of cancer cell lines",
            **drugs, **lines,
            drugs=self.q.distinct("tahoe_drug_effect", "drug", NOT_CONTROL),
            cell_lines=self.q.distinct("tahoe_cell_line_metadata", "cell_line"),
            signature_types=self.q.distinct("tahoe_drug_effect", "signature_type"))

    # -- name lists ----------------------------------------------------------------------

    @handle_errors
    def ListParse10mCytokines(self, request, context):
        names, token = self.q.names_page(context, request, HEATMAP, "cytokine")
        return pb.ListParse10mCytokinesResponse(cytokines=names, next_page_token=token)

    @handle_errors
    def ListParse10mCellTypes(self, request, context):
        names, token = self.q.names_page(context, request, HEATMAP, "cell_type")
        return pb.ListParse10mCellTypesResponse(cell_types=names, next_page_token=token)

    @handle_errors
    def ListTahoeDrugs(self, request, context):
        names, token = self.q.names_page(context, request, "tahoe_drug_effect", "drug", NOT_CONTROL)
        return pb.ListTahoeDrugsResponse(drugs=names, next_page_token=token)

    @handle_errors
    def ListTahoeCellLines(self, request, context):
        names, token = self.q.names_page(context, request, "tahoe_cell_line_metadata", "cell_line")
        return pb.ListTahoeCellLinesResponse(cell_lines=names, next_page_token=token)

    # -- parse_10M -----------------------------------------------------------------------

    @handle_errors
    def ListParse10mActivity(self, request, context):
        rows, token = self._rows(context, request, "parse10m_activity", pb.Parse10mActivity,
                                 ("signature_type", "cytokine", "cell_type", "donor_id", "signature"))
        return pb.ListParse10mActivityResponse(activities=rows, next_page_token=token)

    @handle_errors
    def ListParse10mTreatmentEffects(self, request, context):
        rows, token = self._rows(context, request, "parse10m_treatment_effect", pb.Parse10mTreatmentEffect,
                                 ("signature_type", "cytokine", "cell_type", "signature"))
        return pb.ListParse10mTreatmentEffectsResponse(treatment_effects=rows, next_page_token=token)

    @handle_errors
    def ListParse10mGroundTruth(self, request, context):
        rows, token = self._rows(context, request, "parse10m_ground_truth", pb.Parse10mGroundTruth,
                                 ("signature_type", "cytokine"))
        return pb.ListParse10mGroundTruthResponse(ground_truth=rows, next_page_token=token)

    @handle_errors
    def GetParse10mHeatmap(self, request, context):
        where = self.q.filters(HEATMAP, request, ("signature_type", "cell_type"))
        matrix = self.q.matrix(context, HEATMAP, where, Pivot("cytokine", "cell_type", "activity"),
                               pb.Matrix, pb.MatrixRow)
        return pb.GetParse10mHeatmapResponse(signature_type=signature_type(request),
                                             cell_type=request.cell_type, matrix=matrix)

    @handle_errors
    def ListParse10mDonorVariability(self, request, context):
        rows, token = self._rows(context, request, "parse10m_donor_variability", pb.Parse10mDonorVariability,
                                 ("signature_type", "cytokine", "cell_type", "donor_id"))
        return pb.ListParse10mDonorVariabilityResponse(donor_variability=rows, next_page_token=token)

    @handle_errors
    def ListParse10mCytokineFamilies(self, request, context):
        rows, token = self._rows(context, request, "parse10m_cytokine_metadata", pb.CytokineFamily, ("family",))
        return pb.ListParse10mCytokineFamiliesResponse(cytokine_families=rows, next_page_token=token)

    # -- Tahoe ---------------------------------------------------------------------------

    @handle_errors
    def ListTahoeActivity(self, request, context):
        rows, token = self._rows(context, request, "tahoe_activity", pb.TahoeActivity,
                                 ("signature_type", "drug", "cell_line", "signature", "plate"))
        return pb.ListTahoeActivityResponse(activities=rows, next_page_token=token)

    @handle_errors
    def ListTahoeDrugEffects(self, request, context):
        rows, token = self._rows(context, request, "tahoe_drug_effect", pb.TahoeDrugEffect,
                                 ("signature_type", "drug", "cell_line", "signature"))
        return pb.ListTahoeDrugEffectsResponse(drug_effects=rows, next_page_token=token)

    @handle_errors
    def GetTahoeSensitivityMatrix(self, request, context):
        where = self.q.filters(SENSITIVITY, request, ("signature_type", "signature")) + NOT_CONTROL
        matrix = self.q.matrix(context, SENSITIVITY, where, Pivot("drug", "cell_line", "mean_activity"),
                               pb.Matrix, pb.MatrixRow)
        return pb.GetTahoeSensitivityMatrixResponse(signature_type=signature_type(request),
                                                    signature=request.signature, matrix=matrix)

    @handle_errors
    def ListTahoeDoseResponse(self, request, context):
        # The table's key is (drug, cell_line, signature_type, signature, dose): dose ascending.
        rows, token = self._rows(context, request, "tahoe_dose_response", pb.TahoeDoseResponse,
                                 ("signature_type", "drug", "cell_line", "signature"))
        return pb.ListTahoeDoseResponseResponse(dose_responses=rows, next_page_token=token)

    @handle_errors
    def ListTahoePathwayActivation(self, request, context):
        rows, token = self._rows(context, request, "tahoe_pathway_activation", pb.TahoePathwayActivation,
                                 ("signature_type", "drug"))
        return pb.ListTahoePathwayActivationResponse(pathway_activations=rows, next_page_token=token)

    @handle_errors
    def ListTahoeCellLineProfiles(self, request, context):
        where = self.q.filters(SENSITIVITY, request, ("signature_type", "cell_line", "signature")) + NOT_CONTROL
        rows, token = self.q.page(context, request, SENSITIVITY, pb.TahoeCellLineProfile, where,
                                  group_by=["cell_line", "signature"], aggregates={
                                      "mean_activity": ("avg", "mean_activity"),
                                      "mean_activity_diff_vs_control": ("avg", "activity_diff_vs_control"),
                                      "n_drugs": ("count_distinct", "drug")})
        return pb.ListTahoeCellLineProfilesResponse(cell_line_profiles=rows, next_page_token=token)

    # -- target lookup -----------------------------------------------------------------------

    @handle_errors
    def GetTargetProfile(self, request, context):
        return self._target_profile(context, request, TARGET_PROFILE)


# The typed services this domain's process serves (cytoatlas/serving/server.py registers them).
# SearchService over perturbation_search_* (protos/TYPED_RPCS.md, SearchService). Activity: a
# signature's treatment effects by stimulation x cell type (an unmapped stimulation such as CCL2:
# its effect on every signature by cell type), a drug's effects by cell line x signature, a cell
# line's by drug, a parse_10M cell type's by stimulation. No correlations (NOT_FOUND naming atlas).
SEARCH = SearchIndex(
    domain="perturbation", context_kind="dataset",
    activity=(
        ActivitySource(("cytokine", "protein"), "parse10m_treatment_effect", "signature", "activity_diff",
                       group="cytokine", context="cell_type"),
        ActivitySource(("cytokine",), "parse10m_treatment_effect", "cytokine", "activity_diff",
                       group="signature", context="cell_type", signature_type="request"),
        ActivitySource(("drug",), "tahoe_drug_effect", "drug", "activity_diff", group="cell_line",
                       context="signature", signature_type="request"),
        ActivitySource(("cell_line",), "tahoe_drug_effect", "cell_line", "activity_diff", group="drug",
                       context="signature", signature_type="request"),
        ActivitySource(("cell_type",), "parse10m_treatment_effect", "cell_type", "activity_diff", group="cytokine",
                       context="signature", signature_type="request"),
    ),
)

SERVICES = (TypedService.of(pb, pb_grpc, "PerturbationService", PerturbationServicer), search_service(SEARCH))
