"""cytoatlas.atlas.v1.ValidationService: the validation pages' RPCs. Each names its tables,
checked filters and output messages; cytoatlas.serving.typed_rpc and the query compiler do the
rest (protos/TYPED_RPCS.md, "ValidationService"). Only scalar arithmetic happens here: the
summary's quality score from a few aggregates and the p of a Spearman rho."""

from __future__ import annotations

import math

import grpc

from cytoatlas.atlas.v1 import validation_service_pb2 as pb
from cytoatlas.atlas.v1 import validation_service_pb2_grpc as pb_grpc
from cytoatlas.requests import to_filters
from cytoatlas.serving.errors import Reason, ServiceError
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import (
    CLOSED_VOCABULARIES, TypedService, TypedServicer, required, signature_type,
)
from cytoatlas.table.v1 import table_service_pb2 as table_pb

ARROW = table_pb.RESULT_FORMAT_ARROW
RECORD_POINTS = (1_000, 10_000)  # (default, maximum) points of a Type 1-4 record per call
SCATTER_POINTS = (10_000, 50_000)  # of a scatter target
WHOLE = 10_000  # a small secondary list returned whole (groups, cell types, categories)
CELLTYPE_LEVEL, RESAMPLED_LEVEL = "donor_l1", "l1"  # the real routes' defaults
# The atlases' names in singlecell_activity, per validation atlas (the real API's mapping).
SINGLECELL_ATLASES = {"cima": ["CIMA"], "inflammation": ["Inflammation"],
                      "scatlas": ["scAtlas_Normal", "scAtlas_Cancer"]}
# The real API's constant (app/schemas/validation.py KNOWN_ASSOCIATIONS): cell types expected to
# show a signature high, for the cell-type page. It differs from the writer's list (Treg, CD4).
EXPECTED_HIGH = {"IL17A": ("Th17",), "IFNG": ("CD8_CTL", "NK"), "TNF": ("Mono",), "IL10": ("CD4_regulatory",),
                 "IL4": ("Th2",), "IL2": ("CD4_helper",), "TGFB1": ("CD4_regulatory",), "IL6": ("Mono",),
                 "CXCL8": ("Mono",), "IL21": ("Tfh",), "IL1B": ("Mono",)}
# GetValidationSummary: the real API's defaults where the data has no figure, grades and advice.
DEFAULTS = {"stability": 0.8, "coverage": 0.85, "r_squared": 0.7, "pb_r": 0.85}
GRADES = ((90, "A", "Excellent inference quality. Results are highly reliable."),
          (80, "B", "Good inference quality. Results are suitable for analysis."),
          (70, "C", "Acceptable quality. Validate key findings independently."),
          (60, "D", "Moderate quality. Interpret with caution."),
          (-math.inf, "F", "Poor quality. Results may not be reliable."))
POINT = ["point_index", "expression_z", "activity", "group_index", "group_name"]
KEYED_TARGET = ["signature_type", "atlas", "level", "signature", "gene", "rho", "pval", "n", "rho_ci_lo",
                "rho_ci_hi", "significant"]  # per-target columns of the keyed scatter tables


def page_size(size: int, limits: tuple[int, int]) -> int:
    """The documented default when unset, capped (not refused) above the maximum; a negative size
    passes through so `page` refuses it as INVALID_ARGUMENT."""
    default, maximum = limits
    return size if size < 0 else min(size or default, maximum)


def spearman_p(rho: float | None, n: int | None) -> float | None:
    """Two-sided p of a Spearman rho over n points (t distribution with n - 2 degrees of freedom,
    as scipy.stats.spearmanr), 3 significant digits like the real single-cell page."""
    if rho is None or n is None or n < 3:
        return None
    if abs(rho) >= 1.0:
        return 0.0
    df = n - 2
    t2 = rho * rho * df / (1.0 - rho * rho)
    return float(f"{_betainc(df / 2.0, 0.5, df / (df + t2)):.2e}")


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) by its continued fraction (Numerical Recipes)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300

    def nonzero(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1.0 / nonzero(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, 500):
        for aa in (m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m))):
            d = 1.0 / nonzero(1.0 + aa * d)
            c = nonzero(1.0 + aa / c)
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _not_found(what: str, where: list) -> ServiceError:
    scope = " and ".join(f"{c} = {v!r}" for c, _, v in where)
    return ServiceError(grpc.StatusCode.NOT_FOUND, Reason.VALUE_NOT_FOUND, f"no {what} where {scope}",
                        metadata={"what": what, "scope": scope}, resource=(what, scope))


class ValidationServicer(TypedServicer, pb_grpc.ValidationServiceServicer):
    # -- shared steps ------------------------------------------------------------------------

    def _where(self, table: str, checks, fixed=()) -> list:
        """Equality filters for (field, value[, column]) checks that are set, each value checked
        against `table` first: a closed vocabulary (atlas, signature type) among the rows matching
        `fixed`, anything else among the rows matching every filter before it, so an unknown
        signature is named with the atlas and type it was looked up in."""
        where = list(fixed)
        for field, value, *column in checks:
            if value in ("", None):
                continue
            column = column[0] if column else field
            self.q.check(table, field, value, column=column, where=list(fixed) if field in CLOSED_VOCABULARIES else where)
            where.append((column, "=", value))
        return where

    def _one(self, context, table: str, message: type, where: list, what: str, columns=None):
        rows, _ = self.q.page(context, None, table, message, where, columns=columns, size=1)
        if not rows:
            raise _not_found(what, where)
        return rows[0]

    def _list(self, context, request, table: str, message: type, where=(), **kw):
        return self.q.page(context, request, table, message, where, **kw)

    def _whole(self, context, table: str, message, where=(), **kw):
        rows, _ = self.q.page(context, None, table, message, where, size=WHOLE, **kw)
        return rows

    def _record_with_points(self, context, request, table: str, points_table: str, message: type,
                            point: type, response: type, what: str, **extra):
        where = self._where(table, [("signature_type", signature_type(request)), ("atlas", required(request, "atlas")),
                                    ("signature", required(request, "signature"))])
        record = self._one(context, table, message, where, what)
        for field, value in extra.items():
            getattr(record, field).extend(value(record))
        points, token = self.q.page(context, request, points_table, point, where,
                                    size=page_size(request.page_size, RECORD_POINTS))
        return response(record=record, points=points, next_page_token=token)

    def _singlecell_record(self, context, request):
        where = self._where("validation_singlecell", [
            ("signature_type", signature_type(request)), ("atlas", required(request, "atlas")),
            ("signature", required(request, "signature"))])
        record = self._one(context, "validation_singlecell", pb.ValidationSingleCell, where, "single-cell record")
        spearman = self._one(context, "validation_singlecell_spearman", pb.ValidationSingleCell, where,
                             "single-cell record")
        record.MergeFrom(spearman)
        p = spearman_p(record.sampled_rho if record.HasField("sampled_rho") else None, record.n_sampled)
        if p is not None:
            record.sampled_pval = p
        return record, where

    def _scatter(self, context, request, table: str, target_where: list, what: str, grouped: bool = True,
                 source: str | None = None):
        """A scatter's target, groups and page of points. scatter_targets: the target row names the
        level its groups and points are under; a keyed table holds all three in its point rows."""
        size = page_size(request.page_size, SCATTER_POINTS)
        if table == "scatter_targets":
            target = self._one(context, table, pb.ValidationScatterTarget, target_where, what)
            scope = [("signature_type", "=", target.signature_type), ("source", "=", target.source),
                     ("atlas", "=", target.atlas), ("level", "=", target.level)]
            groups = self._whole(context, "validation_scatter_groups", pb.ValidationScatterGroup, scope) if grouped else []
            points, token = self.q.page(context, request, "scatter_points", pb.ValidationScatterPoint,
                                        scope + [("signature", "=", target.signature)], size=size, format=ARROW)
        else:
            targets, _ = self._keyed_targets(context, None, table, target_where, size=1)
            if not targets:
                raise _not_found(what, target_where)
            target = targets[0]
            groups = self._whole(context, table, pb.ValidationScatterGroup, target_where,
                                 group_by=["group_index", "group_name"])
            points, token = self.q.page(context, request, table, pb.ValidationScatterPoint, target_where,
                                        columns=POINT, size=size, format=ARROW)
        return target, groups, points, token

    def _keyed_targets(self, context, request, table: str, where: list, size: int | None = None):
        """Targets of celltype_only_scatter / validation_resampled_scatter: their per-target
        columns grouped over the point rows."""
        return self.q.page(context, request, table, pb.ValidationScatterTarget, where, group_by=KEYED_TARGET,
                           size=size)

    def _level(self, request, default: str) -> str:
        return request.level or default

    # -- validation report ---------------------------------------------------------------------

    @handle_errors
    def ListValidationAtlases(self, request, context):
        atlases, token = self.q.names_page(context, request, "validation_atlases", "atlas")
        return pb.ListValidationAtlasesResponse(atlases=atlases, next_page_token=token)

    @handle_errors
    def ListValidationSignatures(self, request, context):
        table = "validation_gene_coverage"
        where = self._where(table, [("signature_type", signature_type(request)), ("atlas", required(request, "atlas"))])
        signatures, token = self.q.names_page(context, request, table, "signature", where)
        return pb.ListValidationSignaturesResponse(signatures=signatures, next_page_token=token)

    def _summary(self, atlas: str, kind: str) -> pb.GetValidationSummaryResponse:
        w = [("signature_type", "=", kind), ("atlas", "=", atlas)]
        bio = self.q.aggregate("validation_biological_associations", w, n=("count", ""))["n"]
        validated = self.q.aggregate("validation_biological_associations", w + [("is_validated", "=", True)],
                                     n=("count", ""))["n"]
        cv = self.q.aggregate("validation_cv_stability", w, mean=("avg", "stability_score"))
        cov = self.q.aggregate("validation_gene_coverage", w, mean=("avg", "coverage_pct"),
                               low=("min", "coverage_pct"), n=("count", ""))
        pb_r = self.q.aggregate("validation_pb_vs_sc", w, mean=("avg", "mean_pearson_r"))["mean"]
        sample, celltype = (self._ifng_r_squared(table, w) for table in ("validation_sample_level",
                                                                           "validation_celltype_level"))
        rate = validated / bio if bio else 0.0
        stability = DEFAULTS["stability"] if cv["mean"] is None else cv["mean"]
        coverage = DEFAULTS["coverage"] if cov["mean"] is None else cov["mean"] / 100
        score = 20 * (sample + celltype + coverage + stability + rate)
        _, grade, interpretation = next(g for g in GRADES if score >= g[0])
        advice = [text for ok, text in (
            (sample >= 0.5, "Low expression-activity correlation. Consider using pseudobulk analysis."),
            (coverage >= 0.7, "Low gene coverage. Some signatures may be unreliable."),
            (stability >= 0.7, "High variance in predictions. Results may be unstable."),
            (rate >= 0.7, "Some predictions don't match known biology. Validate carefully.")) if not ok]
        return pb.GetValidationSummaryResponse(
            atlas=atlas, signature_type=kind, sample_level_median_r=sample, sample_level_mean_r=sample,
            n_signatures_sample_valid=cov["n"], celltype_level_median_r=celltype, celltype_level_mean_r=celltype,
            n_signatures_celltype_valid=cov["n"], pb_vs_sc_median_r=DEFAULTS["pb_r"] if pb_r is None else pb_r,
            mean_gene_coverage=coverage * 100, min_gene_coverage=cov["low"] or 0.0, biological_validation_rate=rate,
            mean_stability_score=stability, quality_score=score, quality_grade=grade, interpretation=interpretation,
            recommendations=advice or ["Results can be used with confidence."])

    def _ifng_r_squared(self, table: str, where: list) -> float:
        """r squared of IFNG's record of this atlas and type (the real API's example signature)."""
        rows, _ = self.q.page(None, None, table, None, where + [("signature", "=", "IFNG")], columns=["r_squared"],
                              size=1)
        if not rows.num_rows:
            return DEFAULTS["r_squared"]
        return rows.column("r_squared")[0].as_py() or 0.0

    @handle_errors
    def GetValidationSummary(self, request, context):
        atlas, kind = required(request, "atlas"), signature_type(request)
        self._where("validation_atlases", [("signature_type", kind), ("atlas", atlas)])
        return self._summary(atlas, kind)

    @handle_errors
    def CompareValidationAtlases(self, request, context):
        kind = signature_type(request)
        self._where("validation_atlases", [("signature_type", kind)])
        comparisons = []
        for atlas in self.q.distinct("validation_atlases", "atlas"):
            s = self._summary(atlas, kind)
            comparisons.append(pb.ValidationAtlasComparison(
                atlas=atlas, quality_score=s.quality_score, quality_grade=s.quality_grade,
                sample_level_r=s.sample_level_mean_r, celltype_level_r=s.celltype_level_mean_r,
                gene_coverage=s.mean_gene_coverage, stability=s.mean_stability_score,
                biological_concordance=s.biological_validation_rate))
        best = max(comparisons, key=lambda c: c.quality_score).atlas if comparisons else None
        return pb.CompareValidationAtlasesResponse(signature_type=kind, comparisons=comparisons, best_atlas=best)

    @handle_errors
    def GetValidationSampleLevel(self, request, context):
        return self._record_with_points(context, request, "validation_sample_level", "validation_sample_points",
                                        pb.ValidationSampleLevel, pb.ValidationSamplePoint,
                                        pb.GetValidationSampleLevelResponse, "sample-level record")

    @handle_errors
    def GetValidationCellTypeLevel(self, request, context):
        return self._record_with_points(context, request, "validation_celltype_level", "validation_celltype_points",
                                        pb.ValidationCellTypeLevel, pb.ValidationCellTypePoint,
                                        pb.GetValidationCellTypeLevelResponse, "cell-type-level record",
                                        expected_high_cell_types=lambda r: EXPECTED_HIGH.get(r.signature, ()))

    @handle_errors
    def GetValidationPseudobulkVsSingleCell(self, request, context):
        return self._record_with_points(context, request, "validation_pb_vs_sc", "validation_pb_vs_sc_points",
                                        pb.ValidationPseudobulkVsSingleCell, pb.ValidationPseudobulkPoint,
                                        pb.GetValidationPseudobulkVsSingleCellResponse, "pseudobulk record")

    @handle_errors
    def GetValidationSingleCellDirect(self, request, context):
        record, where = self._singlecell_record(context, request)
        points, token = self.q.page(context, request, "validation_singlecell_points", pb.ValidationSingleCellPoint,
                                    where, size=page_size(request.page_size, RECORD_POINTS))
        return pb.GetValidationSingleCellDirectResponse(record=record, points=points, next_page_token=token)

    @handle_errors
    def GetValidationSingleCellDistribution(self, request, context):
        record, where = self._singlecell_record(context, request)
        table = "validation_singlecell_points"
        lists = {}
        for expressing in (True, False):
            rows, _ = self.q.page(context, None, table, None, where + [("is_expressing", "=", expressing)],
                                  columns=["activity"], size=500)
            lists[expressing] = rows.column("activity").to_pylist()
        medians, _ = self.q.page(context, None, table, None, where, group_by=["is_expressing"],
                                 aggregates={"median": ("median", "activity")}, size=2)
        median = dict(zip(medians.column("is_expressing").to_pylist(), medians.column("median").to_pylist()))
        value = lambda field: getattr(record, field) if record.HasField(field) else None  # noqa: E731
        return pb.GetValidationSingleCellDistributionResponse(
            atlas=record.atlas, signature=record.signature, signature_type=record.signature_type,
            expressing_activities=[a for a in lists[True] if a is not None],
            non_expressing_activities=[a for a in lists[False] if a is not None],
            n_expressing=value("n_expressing"), n_non_expressing=value("n_non_expressing"),
            mean_expressing=value("mean_activity_expressing"), mean_non_expressing=value("mean_activity_non_expressing"),
            median_expressing=median.get(True), median_non_expressing=median.get(False),
            p_value=value("activity_p_value"))

    @handle_errors
    def GetValidationBiologicalAssociations(self, request, context):
        table = "validation_biological_associations"
        atlas, kind = required(request, "atlas"), signature_type(request)
        where = self._where(table, [("signature_type", kind), ("atlas", atlas)])
        results, token = self._list(context, request, table, pb.ValidationBiologicalAssociation, where,
                                    order_by=["result_index"])
        tested = self.q.aggregate(table, where, n=("count", ""))["n"]
        validated = self.q.aggregate(table, where + [("is_validated", "=", True)], n=("count", ""))["n"]
        return pb.GetValidationBiologicalAssociationsResponse(
            atlas=atlas, signature_type=kind, results=results, n_tested=tested, n_validated=validated,
            validation_rate=validated / tested if tested else 0.0, next_page_token=token)

    @handle_errors
    def GetValidationGeneCoverage(self, request, context):
        table = "validation_gene_coverage"
        where = self._where(table, [("signature_type", signature_type(request)), ("atlas", required(request, "atlas")),
                                    ("signature", required(request, "signature"))])
        return pb.GetValidationGeneCoverageResponse(
            coverage=self._one(context, table, pb.ValidationGeneCoverage, where, "gene coverage record"))

    @handle_errors
    def ListValidationGeneCoverage(self, request, context):
        table = "validation_gene_coverage"
        where = self._where(table, [("signature_type", signature_type(request)), ("atlas", required(request, "atlas"))])
        rows, token = self._list(context, request, table, pb.ValidationGeneCoverage, where)
        return pb.ListValidationGeneCoverageResponse(coverages=rows, next_page_token=token)

    @handle_errors
    def ListValidationCvStability(self, request, context):
        table = "validation_cv_stability"
        where = self._where(table, [("signature_type", signature_type(request)), ("atlas", required(request, "atlas"))])
        rows, token = self._list(context, request, table, pb.ValidationCvStability, where)
        return pb.ListValidationCvStabilityResponse(stabilities=rows, next_page_token=token)

    # -- bulk RNA-seq -----------------------------------------------------------------------------

    @handle_errors
    def ListValidationBulkDatasets(self, request, context):
        datasets, token = self.q.names_page(context, request, "validation_bulk_datasets", "dataset")
        return pb.ListValidationBulkDatasetsResponse(datasets=datasets, next_page_token=token)

    @handle_errors
    def GetValidationBulkSummary(self, request, context):
        dataset, kind = required(request, "dataset"), signature_type(request)
        where = self._where("validation_bulk_datasets", [("dataset", dataset)])
        self._where("validation_bulk_summary", [("signature_type", kind)])
        record = self._one(context, "validation_bulk_datasets", pb.GetValidationBulkSummaryResponse, where, "dataset")
        for kind_field in ("tissue_types", "cancer_types"):
            rows = self._whole(context, "validation_bulk_groups", None, where + [("group_kind", "=", kind_field)],
                               columns=["group_name"])
            getattr(record, kind_field).extend(rows.column("group_name").to_pylist())
        summary = self._whole(context, "validation_bulk_summary", pb.GetValidationBulkSummaryResponse,
                              where + [("signature_type", "=", kind)])
        if summary:
            record.MergeFrom(summary[0])
        record.signature_type = kind
        return record

    @handle_errors
    def ListValidationBulkTargets(self, request, context):
        dataset, kind = required(request, "dataset"), signature_type(request)
        self._where("validation_bulk_datasets", [("dataset", dataset)])
        self._where("scatter_targets", [("signature_type", kind)])
        where = [("source", "=", "bulk_rnaseq"), ("atlas", "=", dataset), ("signature_type", "=", kind)]
        if self.q.aggregate("scatter_targets", where, n=("count", ""))["n"]:
            rows, token = self._list(context, request, "scatter_targets", pb.ValidationScatterTarget, where)
        else:  # no scatter for this type: the donor-level rows, as the real API falls back
            rows, token = self._list(context, request, "bulk_validation", pb.ValidationScatterTarget,
                                     [("dataset", "=", dataset), ("signature_type", "=", kind)])
            for row in rows:
                row.atlas = dataset
        return pb.ListValidationBulkTargetsResponse(targets=rows, next_page_token=token)

    @handle_errors
    def GetValidationBulkScatter(self, request, context):
        where = self._where("scatter_targets", [
            ("signature_type", signature_type(request)), ("dataset", required(request, "dataset"), "atlas"),
            ("signature", required(request, "signature"))], fixed=[("source", "=", "bulk_rnaseq")])
        target, groups, points, token = self._scatter(context, request, "scatter_targets", where, "bulk scatter target")
        return pb.GetValidationBulkScatterResponse(target=target, groups=groups, points=points, next_page_token=token)

    @handle_errors
    def ListValidationBulkDonorLevel(self, request, context):
        table = "bulk_validation"
        where = self._where(table, [("signature_type", signature_type(request)), ("dataset", required(request, "dataset")),
                                    ("level", request.level)])
        rows, token = self._list(context, request, table, pb.ValidationBulkDonorLevel, where)
        return pb.ListValidationBulkDonorLevelResponse(records=rows, next_page_token=token)

    # -- donor scatter ------------------------------------------------------------------------------

    @handle_errors
    def ListValidationDonorAtlases(self, request, context):
        atlases, token = self.q.names_page(context, request, "scatter_targets", "atlas", [("source", "=", "donor")])
        return pb.ListValidationDonorAtlasesResponse(atlases=atlases, next_page_token=token)

    @handle_errors
    def ListValidationDonorTargets(self, request, context):
        where = self._where("scatter_targets", [("signature_type", signature_type(request)),
                                                ("atlas", required(request, "atlas"))],
                            fixed=[("source", "=", "donor"), ("level", "=", "")])
        rows, token = self._list(context, request, "scatter_targets", pb.ValidationScatterTarget, where)
        return pb.ListValidationDonorTargetsResponse(targets=rows, next_page_token=token)

    @handle_errors
    def GetValidationDonorScatter(self, request, context):
        where = self._where("scatter_targets", [
            ("signature_type", signature_type(request)), ("atlas", required(request, "atlas")),
            ("signature", required(request, "signature"))], fixed=[("source", "=", "donor"), ("level", "=", "")])
        target, _, points, token = self._scatter(context, request, "scatter_targets", where, "donor scatter target",
                                                 grouped=False)
        return pb.GetValidationDonorScatterResponse(target=target, points=points, next_page_token=token)

    # -- cell-type and resampled scatter -----------------------------------------------------------

    def _celltype_scope(self, request) -> tuple[str, list]:
        """The table holding the atlas's level, and the filters that select the level's targets."""
        levels = "validation_celltype_levels"
        where = self._where(levels, [("signature_type", signature_type(request)), ("atlas", required(request, "atlas")),
                                     ("level", self._level(request, CELLTYPE_LEVEL))])
        table = self._whole(None, levels, None, where, columns=["source_table"]).column("source_table")[0].as_py()
        return table, where + ([("source", "=", "celltype")] if table == "scatter_targets" else [])

    @handle_errors
    def ListValidationCellTypeLevels(self, request, context):
        table = "validation_celltype_levels"
        where = self._where(table, [("atlas", required(request, "atlas"))])
        levels, token = self.q.names_page(context, request, table, "level", where)
        return pb.ListValidationCellTypeLevelsResponse(levels=levels, next_page_token=token)

    @handle_errors
    def ListValidationCellTypeTargets(self, request, context):
        table, where = self._celltype_scope(request)
        if table == "scatter_targets":
            rows, token = self._list(context, request, table, pb.ValidationScatterTarget, where)
            cell_types = self._whole(context, "validation_scatter_groups", None, where, columns=["group_name"])
        else:
            rows, token = self._keyed_targets(context, request, table, where)
            cell_types = self._whole(context, table, None, where + [("group_name", "is not null")],
                                     group_by=["group_index", "group_name"], columns=["group_name"])
        return pb.ListValidationCellTypeTargetsResponse(targets=rows, celltypes=cell_types.column("group_name").to_pylist(),
                                                        next_page_token=token)

    @handle_errors
    def GetValidationCellTypeScatter(self, request, context):
        table, where = self._celltype_scope(request)
        signature = required(request, "signature")
        where = self._where(table, [("signature", signature)], fixed=where)
        target, groups, points, token = self._scatter(context, request, table, where, "cell-type scatter target")
        return pb.GetValidationCellTypeScatterResponse(target=target, groups=groups, points=points,
                                                       next_page_token=token)

    @handle_errors
    def ListValidationResampledAtlases(self, request, context):
        atlases, token = self.q.names_page(context, request, "validation_resampled_scatter", "atlas")
        return pb.ListValidationResampledAtlasesResponse(atlases=atlases, next_page_token=token)

    @handle_errors
    def ListValidationResampledLevels(self, request, context):
        table = "validation_resampled_scatter"
        where = self._where(table, [("atlas", required(request, "atlas"))])
        levels, token = self.q.names_page(context, request, table, "level", where)
        return pb.ListValidationResampledLevelsResponse(levels=levels, next_page_token=token)

    def _resampled_where(self, request, *signature) -> list:
        return self._where("validation_resampled_scatter", [
            ("signature_type", signature_type(request)), ("atlas", required(request, "atlas")),
            ("level", self._level(request, RESAMPLED_LEVEL)), *signature])

    @handle_errors
    def ListValidationResampledTargets(self, request, context):
        rows, token = self._keyed_targets(context, request, "validation_resampled_scatter",
                                          self._resampled_where(request))
        return pb.ListValidationResampledTargetsResponse(targets=rows, next_page_token=token)

    @handle_errors
    def GetValidationResampledScatter(self, request, context):
        where = self._resampled_where(request, ("signature", required(request, "signature")))
        target, groups, points, token = self._scatter(context, request, "validation_resampled_scatter", where,
                                                      "resampled scatter target")
        return pb.GetValidationResampledScatterResponse(target=target, groups=groups, points=points,
                                                        next_page_token=token)

    # -- single-cell tab ----------------------------------------------------------------------------

    @handle_errors
    def ListValidationSingleCellSignatures(self, request, context):
        where = self._where("validation_singlecell", [("signature_type", signature_type(request)),
                                                      ("atlas", required(request, "atlas"))])
        key = ["signature_type", "atlas", "signature"]
        left = table_pb.QueryRequest(table="validation_singlecell", filters=_filters(where),
                                     columns=key + ["n_total_cells", "n_expressing", "expressing_fraction"])
        right = table_pb.QueryRequest(table="validation_singlecell_spearman", filters=_filters(where),
                                      columns=key + ["sampled_rho"])
        rows, token = self.q.joined_page(context, request, left, right, tuple(key), pb.ValidationSingleCellSignature)
        return pb.ListValidationSingleCellSignaturesResponse(signatures=rows, next_page_token=token)

    @handle_errors
    def ListValidationSingleCellCellTypes(self, request, context):
        table = "validation_singlecell_points"
        where = self._where(table, [("signature_type", signature_type(request)), ("atlas", required(request, "atlas")),
                                    ("signature", required(request, "signature"))])
        rows, token = self._list(context, request, table, pb.ValidationSingleCellCellType, where,
                                 group_by=["cell_type"], order_by=["cell_type"],
                                 aggregates={"n_cells": ("count", ""), "n_expressing": ("sum", "expressing"),
                                             "expressing_fraction": ("avg", "expressing"),
                                             "mean_activity_expressing": ("avg", "activity_expressing"),
                                             "mean_activity_non_expressing": ("avg", "activity_non_expressing")})
        return pb.ListValidationSingleCellCellTypesResponse(cell_types=rows, next_page_token=token)

    @handle_errors
    def GetValidationSingleCellFullScatter(self, request, context):
        record, where = self._singlecell_record(context, request)
        points_table = "validation_singlecell_points"
        points, token = self.q.page(context, request, points_table, pb.ValidationSingleCellPoint, where,
                                    size=page_size(request.page_size, RECORD_POINTS))
        cell_types = self._whole(context, points_table, None, where + [("cell_type", "is not null")],
                                 group_by=["cell_type"], order_by=["cell_type"]).column("cell_type").to_pylist()
        labels = SINGLECELL_ATLASES.get(record.atlas, [record.atlas])
        stats = self._whole(context, "singlecell_activity", pb.ValidationSingleCellActivityStat,
                            [("signature_type", "=", record.signature_type), ("atlas", "in", labels),
                             ("signature", "=", record.signature)], order_by=["-abs_mean_activity"])
        diff = None
        if record.HasField("mean_activity_expressing") and record.HasField("mean_activity_non_expressing"):
            diff = round(record.mean_activity_expressing - record.mean_activity_non_expressing, 4)
        return pb.GetValidationSingleCellFullScatterResponse(record=record, activity_diff=diff, cell_types=cell_types,
                                                             points=points, celltype_stats=stats, next_page_token=token)

    # -- summary boxplot --------------------------------------------------------------------------

    @handle_errors
    def GetValidationSummaryBoxplot(self, request, context):
        table = "validation_corr_boxplot"
        where = self._where(table, [("signature_type", signature_type(request)), ("signature", request.signature)])
        categories = self._whole(context, "validation_corr_boxplot_categories", pb.ValidationBoxplotCategory,
                                 order_by=["category_index"])
        rhos, token = self._list(context, request, table, pb.ValidationBoxplotRho, where)
        return pb.GetValidationSummaryBoxplotResponse(categories=categories, rhos=rhos, next_page_token=token)

    @handle_errors
    def ListValidationSummaryBoxplotTargets(self, request, context):
        table = "validation_corr_boxplot"
        where = self._where(table, [("signature_type", signature_type(request))])
        signatures, token = self.q.names_page(context, request, table, "signature", where)
        return pb.ListValidationSummaryBoxplotTargetsResponse(signatures=signatures, next_page_token=token)


def _filters(where: list) -> list:
    return to_filters(where)


SERVICE = TypedService.of(pb, pb_grpc, "ValidationService", ValidationServicer)
