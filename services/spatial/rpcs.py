"""cytoatlas.spatial.v1.SpatialService: each RPC names its table, filters and output message;
cytoatlas.serving.typed_rpc and the query compiler do the rest (protos/TYPED_RPCS.md)."""

from __future__ import annotations

from cytoatlas.requests import to_filters
from cytoatlas.serving.search import ActivitySource, SearchIndex, search_service
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import (
    ProfilePart, TargetProfile, TypedService, TypedServicer, required,
)
from cytoatlas.spatial.v1 import spatial_service_pb2 as pb
from cytoatlas.spatial.v1 import spatial_service_pb2_grpc as pb_grpc
from cytoatlas.table.v1 import table_service_pb2 as table_pb

CATALOG = "spatial_dataset_metadata"
COORDINATES = "spatial_coordinates"
POINT_ACTIVITY = "spatial_coordinate_activity"
# GetTargetProfile: the tissues and niches where the signature is most active.
TARGET_PROFILE = TargetProfile(pb.GetTargetProfileResponse, (
    ProfilePart("top_tissues", "spatial_tissue_summary", pb.TissueSummary, "mean_activity"),
    ProfilePart("top_niches", "spatial_neighborhood", pb.NeighborhoodActivity, "mean_niche_activity")))


class SpatialServicer(TypedServicer, pb_grpc.SpatialServiceServicer):
    @handle_errors
    def GetSpatialSummary(self, request, context):
        counts = self.q.aggregate(CATALOG, (), n_datasets=("count", ""),
                                  n_technologies=("count_distinct", "technology"),
                                  n_tissues=("count_distinct", "tissue"), n_cells=("sum", "n_cells"))
        return pb.GetSpatialSummaryResponse(
            dataset="SpatialCorpus-110M", description="Spatial transcriptomics: 251 datasets, 8 technologies",
            **{k: v or 0 for k, v in counts.items()},
            technologies=self.q.distinct(CATALOG, "technology"), tissues=self.q.distinct(CATALOG, "tissue"),
            signature_types=self.q.distinct("spatial_activity", "signature_type"))

    @handle_errors
    def ListTechnologies(self, request, context):
        names, token = self.q.names_page(context, request, CATALOG, "technology")
        return pb.ListTechnologiesResponse(technologies=names, next_page_token=token)

    @handle_errors
    def ListTissues(self, request, context):
        names, token = self.q.names_page(context, request, CATALOG, "tissue")
        return pb.ListTissuesResponse(tissues=names, next_page_token=token)

    @handle_errors
    def ListDatasets(self, request, context):
        rows, token = self._rows(context, request, CATALOG, pb.Dataset, ("technology", "tissue", "species"))
        return pb.ListDatasetsResponse(datasets=rows, next_page_token=token)

    @handle_errors
    def GetDataset(self, request, context):
        # As the real API: the dataset id, else the file name (visium_lung_003.h5ad); neither is
        # NOT_FOUND with the dataset ids closest to the name.
        asked = required(request, "dataset_id")
        column = next((c for c in ("dataset_id", "filename") if asked in self.q.distinct(CATALOG, c)), None)
        if column is None:
            self.q.check(CATALOG, "dataset_id", asked)  # raises NOT_FOUND with close matches
        [dataset], _ = self.q.page(context, request, CATALOG, pb.Dataset, [(column, "=", asked)], size=1)
        return pb.GetDatasetResponse(dataset=dataset)

    @handle_errors
    def ListSpatialActivity(self, request, context):
        rows, token = self._rows(context, request, "spatial_activity", pb.SpatialActivity,
                                 ("signature_type", "technology", "tissue", "signature"))
        return pb.ListSpatialActivityResponse(activities=rows, next_page_token=token)

    @handle_errors
    def ListTissueSummaries(self, request, context):
        rows, token = self._rows(context, request, "spatial_tissue_summary", pb.TissueSummary,
                                 ("signature_type", "tissue", "signature"))
        return pb.ListTissueSummariesResponse(tissue_summaries=rows, next_page_token=token)

    @handle_errors
    def ListNeighborhoodActivity(self, request, context):
        rows, token = self._rows(context, request, "spatial_neighborhood", pb.NeighborhoodActivity,
                                 ("signature_type", "tissue", "cell_type", "signature"))
        return pb.ListNeighborhoodActivityResponse(neighborhood_activities=rows, next_page_token=token)

    @handle_errors
    def ListTechnologyComparisons(self, request, context):
        rows, token = self._rows(context, request, "spatial_technology_comparison", pb.TechnologyComparison,
                                 ("signature_type", "tissue"))
        return pb.ListTechnologyComparisonsResponse(technology_comparisons=rows, next_page_token=token)

    @handle_errors
    def ListGeneCoverage(self, request, context):
        rows, token = self._rows(context, request, "spatial_gene_coverage", pb.GeneCoverage,
                                 ("signature_type", "technology"))
        return pb.ListGeneCoverageResponse(gene_coverage=rows, next_page_token=token)

    @handle_errors
    def ListCoordinates(self, request, context):
        self.q.check(COORDINATES, "dataset_id", required(request, "dataset_id"))
        rows, token = self._rows(context, request, COORDINATES, pb.Coordinate, ("dataset_id", "cell_type"))
        return pb.ListCoordinatesResponse(coordinates=rows, next_page_token=token)

    @handle_errors
    def ListCoordinateActivity(self, request, context):
        dataset = required(request, "dataset_id")
        self.q.check(COORDINATES, "dataset_id", dataset)
        points = table_pb.QueryRequest(table=COORDINATES, columns=["dataset_id", "cell_id", "x", "y", "cell_type"],
                                       filters=to_filters([("dataset_id", "=", dataset)]))
        where = self.q.filters(POINT_ACTIVITY, request, ("dataset_id", "signature_type", "signature"))
        activity = table_pb.QueryRequest(
            table=POINT_ACTIVITY, filters=to_filters(where),
            columns=["dataset_id", "cell_id", "signature", "signature_type", "activity"])
        rows, token = self.q.joined_page(context, request, points, activity, ("dataset_id", "cell_id"),
                                         pb.CoordinateActivity)
        return pb.ListCoordinateActivityResponse(coordinate_activities=rows, next_page_token=token)

    @handle_errors
    def GetTargetProfile(self, request, context):
        return self._target_profile(context, request, TARGET_PROFILE)


# The typed services this domain's process serves (cytoatlas/serving/server.py registers them).
# SearchService over spatial_search_* (protos/TYPED_RPCS.md, SearchService). Activity: a signature's
# tissue summaries, a tissue's signatures, a dataset's or technology's mean activity by tissue x
# signature, a cell type's niche activity by dataset x signature. No correlations (NOT_FOUND).
SEARCH = SearchIndex(
    domain="spatial", context_kind="technology",
    activity=(
        ActivitySource(("cytokine", "protein"), "spatial_tissue_summary", "signature", "mean_activity",
                       group="tissue"),
        ActivitySource(("tissue",), "spatial_tissue_summary", "tissue", "mean_activity", context="signature",
                       signature_type="request"),
        ActivitySource(("dataset",), "spatial_activity", "file", "mean_activity", group="tissue",
                       context="signature", signature_type="request"),
        ActivitySource(("technology",), "spatial_activity", "technology", "mean_activity", group="file",
                       context="signature", signature_type="request"),
        ActivitySource(("cell_type",), "spatial_neighborhood", "cell_type", "mean_niche_activity", group="file",
                       context="signature", signature_type="request"),
    ),
)

SERVICES = (TypedService.of(pb, pb_grpc, "SpatialService", SpatialServicer), search_service(SEARCH))
