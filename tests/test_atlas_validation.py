"""ValidationService against the running atlas service: every RPC's answer equals the same question
asked of DuckDB in-process (SQL written here), bad input gets the right code and names the problem,
lists and points page; grpcurl for a few; the demo sources' invariants on the built tables."""

from __future__ import annotations

import json
import math

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from cytoatlas.atlas.v1 import validation_service_pb2 as pb
from cytoatlas.atlas.v1 import validation_service_pb2_grpc as pb_grpc
from services.atlas.validation import page_size, spearman_p
from tests.conftest import status_details
from tests.test_grpcurl import grpcurl
from tests.conftest import field_value

SERVICE = "cytoatlas.atlas.v1.ValidationService"
CYTOSIG = "signature_type = 'CytoSig'"


@pytest.fixture(scope="module")
def stub(addresses):
    with grpc.insecure_channel(addresses["atlas"]) as channel:
        yield pb_grpc.ValidationServiceStub(channel)


@pytest.fixture(scope="module")
def db(local):
    return local["atlas"]


def call(stub, rpc: str, request: dict | None = None):
    message = json_format.ParseDict(request or {}, getattr(pb, rpc + "Request")())
    return getattr(stub, rpc)(message, timeout=60)


def rows(db, sql: str, params=None) -> list[dict]:
    return db.sql(sql, params=params or []).to_arrow_table().to_pylist()


def same(messages, expected: list[dict], skip=()):
    """Each message carries the expected row's values (unset optional = NULL)."""
    assert len(messages) == len(expected), (len(messages), len(expected))
    for got, want in zip(messages, expected):
        for column, value in want.items():
            if column in skip or column not in got.DESCRIPTOR.fields_by_name:
                continue
            found = field_value(got, column)
            assert found == (pytest.approx(value) if isinstance(value, float) else value), (column, found, value)


def walk(stub, rpc: str, request: dict, field: str, size: int) -> tuple[list, int]:
    """Every page of `field` at page_size `size`: (all items, pages)."""
    got, token, pages = [], "", 0
    while True:
        response = call(stub, rpc, {**request, "page_size": size, "page_token": token})
        got += getattr(response, field)
        pages += 1
        token = response.next_page_token
        if not token:
            return got, pages


# -- lists of rows: (rpc, request, response field, SQL in key order) ----------------------------

SCATTER_TARGET = ("signature_type, source, atlas, level, signature, gene, rho, pval, n, rho_ci_lo, rho_ci_hi, "
                  "significant, matched_rho, matched_pval, matched_n, lincytosig_celltype, matched_atlas_celltypes, "
                  "n_groups")
KEYED_TARGET = ("SELECT DISTINCT signature_type, atlas, level, signature, gene, rho, pval, n, rho_ci_lo, rho_ci_hi, "
                "significant FROM {table} WHERE {where} ORDER BY signature")
LIST_CASES = [
    ("ListValidationGeneCoverage", {"atlas": "cima", "page_size": 1000}, "coverages",
     f"SELECT * FROM validation_gene_coverage WHERE {CYTOSIG} AND atlas = 'cima' ORDER BY signature"),
    ("ListValidationCvStability", {"atlas": "scatlas", "signature_type": "SecAct", "page_size": 1000}, "stabilities",
     "SELECT * FROM validation_cv_stability WHERE signature_type = 'SecAct' AND atlas = 'scatlas' ORDER BY signature"),
    ("GetValidationBiologicalAssociations", {"atlas": "inflammation", "signature_type": "LinCytoSig"}, "results",
     "SELECT * FROM validation_biological_associations WHERE signature_type = 'LinCytoSig' AND atlas = 'inflammation' "
     "ORDER BY result_index"),
    ("ListValidationBulkTargets", {"dataset": "gtex", "page_size": 1000}, "targets",
     f"SELECT {SCATTER_TARGET} FROM scatter_targets WHERE {CYTOSIG} AND source = 'bulk_rnaseq' AND atlas = 'gtex' "
     "ORDER BY signature"),
    ("ListValidationBulkTargets", {"dataset": "tcga", "signature_type": "LinCytoSig", "page_size": 1000}, "targets",
     "SELECT 'tcga' AS atlas, level, signature, signature_type, gene, rho, pval, n, significant, lincytosig_celltype "
     "FROM bulk_validation WHERE dataset = 'tcga' AND signature_type = 'LinCytoSig' ORDER BY level, signature"),
    ("ListValidationBulkDonorLevel", {"dataset": "tcga", "level": "primary_by_cancer", "page_size": 1000}, "records",
     f"SELECT * FROM bulk_validation WHERE {CYTOSIG} AND dataset = 'tcga' AND level = 'primary_by_cancer' "
     "ORDER BY signature"),
    ("ListValidationDonorTargets", {"atlas": "cima", "signature_type": "LinCytoSig"}, "targets",
     f"SELECT {SCATTER_TARGET} FROM scatter_targets WHERE signature_type = 'LinCytoSig' AND source = 'donor' "
     "AND atlas = 'cima' ORDER BY signature"),
    ("ListValidationCellTypeTargets", {"atlas": "cima"}, "targets",
     f"SELECT {SCATTER_TARGET} FROM scatter_targets WHERE {CYTOSIG} AND source = 'celltype' AND atlas = 'cima' "
     "AND level = 'donor_l1' ORDER BY signature"),
    ("ListValidationCellTypeTargets", {"atlas": "scatlas_normal", "level": "celltype", "signature_type": "SecAct"},
     "targets", KEYED_TARGET.format(table="celltype_only_scatter", where="signature_type = 'SecAct' AND "
                                    "atlas = 'scatlas_normal' AND level = 'celltype'")),
    ("ListValidationResampledTargets", {"atlas": "inflammation_main"}, "targets",
     KEYED_TARGET.format(table="validation_resampled_scatter", where=f"{CYTOSIG} AND atlas = 'inflammation_main' "
                         "AND level = 'l1'")),
    ("ListValidationSingleCellSignatures", {"atlas": "scatlas", "page_size": 1000}, "signatures",
     "SELECT s.signature, s.signature_type, n_total_cells, n_expressing, expressing_fraction, sampled_rho "
     "FROM validation_singlecell s JOIN validation_singlecell_spearman USING (signature_type, atlas, signature) "
     f"WHERE s.{CYTOSIG} AND s.atlas = 'scatlas' ORDER BY s.signature"),
    ("ListValidationSingleCellCellTypes", {"atlas": "inflammation", "signature": "IL6"}, "cell_types",
     "SELECT cell_type, count(*) AS n_cells, count(*) FILTER (WHERE is_expressing) AS n_expressing, "
     "avg(CASE WHEN is_expressing THEN 1.0 ELSE 0.0 END) AS expressing_fraction, "
     "avg(activity) FILTER (WHERE is_expressing) AS mean_activity_expressing, "
     "avg(activity) FILTER (WHERE NOT is_expressing) AS mean_activity_non_expressing "
     f"FROM validation_singlecell_points WHERE {CYTOSIG} AND atlas = 'inflammation' AND signature = 'IL6' "
     "GROUP BY cell_type ORDER BY cell_type NULLS LAST"),
    ("GetValidationSummaryBoxplot", {"signature": "IFNG", "signature_type": "CytoSig"}, "rhos",
     f"SELECT signature, category, rho_index, rho FROM validation_corr_boxplot WHERE {CYTOSIG} AND signature = 'IFNG' "
     "ORDER BY category, rho_index"),
]


@pytest.mark.parametrize("rpc,request_,field,sql", LIST_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LIST_CASES)])
def test_list_rpcs_match_duckdb(stub, db, rpc, request_, field, sql):
    want = rows(db, sql)
    assert want, "the case must select rows, or it proves nothing"
    response = call(stub, rpc, request_)
    same(getattr(response, field), want)
    assert response.next_page_token == ""


NAME_CASES = [
    ("ListValidationAtlases", {}, "atlases", "SELECT DISTINCT atlas FROM validation_atlases"),
    ("ListValidationSignatures", {"atlas": "inflammation", "signature_type": "LinCytoSig"}, "signatures",
     "SELECT signature FROM validation_gene_coverage WHERE signature_type = 'LinCytoSig' AND atlas = 'inflammation'"),
    ("ListValidationBulkDatasets", {}, "datasets", "SELECT dataset FROM validation_bulk_datasets"),
    ("ListValidationDonorAtlases", {}, "atlases", "SELECT DISTINCT atlas FROM scatter_targets WHERE source = 'donor'"),
    ("ListValidationCellTypeLevels", {"atlas": "cima"}, "levels",
     "SELECT DISTINCT level FROM validation_celltype_levels WHERE atlas = 'cima'"),
    ("ListValidationResampledAtlases", {}, "atlases", "SELECT DISTINCT atlas FROM validation_resampled_scatter"),
    ("ListValidationResampledLevels", {"atlas": "cima"}, "levels",
     "SELECT DISTINCT level FROM validation_resampled_scatter WHERE atlas = 'cima'"),
    ("ListValidationSummaryBoxplotTargets", {"signature_type": "SecAct"}, "signatures",
     "SELECT DISTINCT signature FROM validation_corr_boxplot WHERE signature_type = 'SecAct'"),
]


@pytest.mark.parametrize("rpc,request_,field,sql", NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_name_lists_are_sorted_distinct_and_page(stub, db, rpc, request_, field, sql):
    want = [r[0] for r in db.execute(sql + " ORDER BY 1").fetchall()]
    assert want
    got, pages = walk(stub, rpc, request_, field, 2)
    assert got == want and pages == max(1, math.ceil(len(want) / 2))


# -- records with their points ----------------------------------------------------------------

RECORD_CASES = [  # (rpc, request, record table, points table, points key SQL column)
    ("GetValidationSampleLevel", {"atlas": "inflammation", "signature": "IFNG"}, "validation_sample_level",
     "validation_sample_points"),
    ("GetValidationCellTypeLevel", {"atlas": "scatlas", "signature": "IL6", "signature_type": "SecAct"},
     "validation_celltype_level", "validation_celltype_points"),
    ("GetValidationPseudobulkVsSingleCell", {"atlas": "cima", "signature": "TNF", "signature_type": "LinCytoSig"},
     "validation_pb_vs_sc", "validation_pb_vs_sc_points"),
    ("GetValidationSingleCellDirect", {"atlas": "scatlas", "signature": "IFNG"}, "validation_singlecell",
     "validation_singlecell_points"),
    ("GetValidationSingleCellFullScatter", {"atlas": "cima", "signature": "IL1B"}, "validation_singlecell",
     "validation_singlecell_points"),
]


def _key(request: dict) -> tuple[str, list]:
    where = "signature_type = ? AND atlas = ? AND signature = ?"
    return where, [request.get("signature_type", "CytoSig"), request["atlas"], request["signature"]]


@pytest.mark.parametrize("rpc,request_,table,points", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_records_and_their_points_match_duckdb(stub, db, rpc, request_, table, points):
    where, params = _key(request_)
    record = rows(db, f"SELECT * FROM {table} WHERE {where}", params)
    want_points = rows(db, f"SELECT * FROM {points} WHERE {where} ORDER BY point_index", params)
    assert len(record) == 1 and len(want_points) > 5
    response = call(stub, rpc, request_)
    same([response.record], record)
    same(response.points, want_points)
    assert response.next_page_token == ""
    # the same points in pages of 4, none repeated or skipped
    paged, pages = walk(stub, rpc, request_, "points", 4)
    assert [p.point_index for p in paged] == [p["point_index"] for p in want_points]
    assert pages == math.ceil(len(want_points) / 4)


def test_cell_type_level_names_the_expected_cell_types(stub):
    record = call(stub, "GetValidationCellTypeLevel", {"atlas": "cima", "signature": "IFNG"}).record
    assert list(record.expected_high_cell_types) == ["CD8_CTL", "NK"]
    assert list(call(stub, "GetValidationCellTypeLevel", {"atlas": "cima", "signature": "BDNF"})
                .record.expected_high_cell_types) == []


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho with average ranks, in numpy (independent of the build's SQL)."""
    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(v.size)
        r[order] = np.arange(1, v.size + 1)
        for value in np.unique(v):
            tied = v == value
            r[tied] = r[tied].mean()
        return r
    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def test_single_cell_records_carry_the_spearman_rho_of_their_sampled_cells(stub, db):
    request = {"atlas": "cima", "signature": "IL1B"}
    points = db.execute(f"SELECT expression, activity FROM validation_singlecell_points WHERE {CYTOSIG} "
                        "AND atlas = 'cima' AND signature = 'IL1B'").fetchnumpy()
    rho = round(_spearman(points["expression"], points["activity"]), 4)
    for rpc in ("GetValidationSingleCellDirect", "GetValidationSingleCellFullScatter"):
        record = call(stub, rpc, request).record
        assert record.sampled_rho == pytest.approx(rho, abs=1e-4) and record.n_sampled == len(points["activity"])
        assert record.sampled_pval == spearman_p(record.sampled_rho, record.n_sampled)


def test_single_cell_full_scatter_adds_cell_types_and_single_cell_activity(stub, db):
    response = call(stub, "GetValidationSingleCellFullScatter", {"atlas": "inflammation", "signature": "IFNG"})
    cell_types = [r[0] for r in db.execute(
        f"SELECT DISTINCT cell_type FROM validation_singlecell_points WHERE {CYTOSIG} AND atlas = 'inflammation' "
        "AND signature = 'IFNG' AND cell_type IS NOT NULL ORDER BY 1").fetchall()]
    assert list(response.cell_types) == cell_types
    stats = rows(db, f"SELECT atlas, cohort, cell_type, mean_activity, std_activity, n_cells FROM singlecell_activity "
                     f"WHERE {CYTOSIG} AND atlas IN ('Inflammation') AND signature = 'IFNG' "
                     "ORDER BY abs(mean_activity) DESC, atlas, cohort, cell_type")
    assert {s["cohort"] for s in stats} == {"main", "val", "ext"}  # every Inflammation cohort, told apart
    same(response.celltype_stats, stats)
    record = response.record
    assert response.activity_diff == round(record.mean_activity_expressing - record.mean_activity_non_expressing, 4)
    scatlas = call(stub, "GetValidationSingleCellFullScatter", {"atlas": "scatlas", "signature": "IFNG"})
    assert {s.atlas for s in scatlas.celltype_stats} == {"scAtlas_Normal", "scAtlas_Cancer"}
    lin = call(stub, "GetValidationSingleCellFullScatter", {"atlas": "cima", "signature": "IFNG",
                                                            "signature_type": "LinCytoSig"})
    assert not lin.celltype_stats and not lin.cell_types  # synthetic records: no cell metadata


def test_single_cell_distribution_matches_duckdb(stub, db):
    request = {"atlas": "scatlas", "signature": "TNFA"}
    where, params = _key(request)
    response = call(stub, "GetValidationSingleCellDistribution", request)
    for flag, field in ((True, "expressing_activities"), (False, "non_expressing_activities")):
        want = [r[0] for r in db.execute(f"SELECT activity FROM validation_singlecell_points WHERE {where} AND "
                                         f"is_expressing = {flag} ORDER BY point_index LIMIT 500", params).fetchall()]
        assert list(getattr(response, field)) == pytest.approx(want) and want
        median = db.execute(f"SELECT median(activity) FROM validation_singlecell_points WHERE {where} "
                            f"AND is_expressing = {flag}", params).fetchall()[0][0]
        assert getattr(response, "median_" + ("expressing" if flag else "non_expressing")) == pytest.approx(median)
    record = rows(db, f"SELECT * FROM validation_singlecell WHERE {where}", params)[0]
    assert (response.n_expressing, response.mean_expressing, response.p_value) == (
        record["n_expressing"], pytest.approx(record["mean_activity_expressing"]),
        pytest.approx(record["activity_p_value"]))


def test_gene_coverage_record_matches_duckdb(stub, db):
    want = rows(db, "SELECT * FROM validation_gene_coverage WHERE signature_type = 'SecAct' AND atlas = 'cima' "
                    "AND signature = 'IL6'")
    same([call(stub, "GetValidationGeneCoverage", {"atlas": "cima", "signature": "IL6",
                                                   "signature_type": "SecAct"}).coverage], want)


# -- scatter plots ------------------------------------------------------------------------------

def _scatter_points(db, table: str, where: str, params: list) -> list[dict]:
    return rows(db, f"SELECT point_index, expression_z, activity, group_index, group_name FROM {table} "
                    f"WHERE {where} ORDER BY point_index", params)


SCATTER_CASES = [  # rpc, request, target SQL, points table + filter, groups SQL (None: no groups)
    ("GetValidationDonorScatter", {"atlas": "inflammation_val", "signature": "IL6"},
     f"SELECT {SCATTER_TARGET} FROM scatter_targets WHERE {CYTOSIG} AND source = 'donor' AND atlas = "
     "'inflammation_val' AND signature = 'IL6'",
     ("scatter_points", f"{CYTOSIG} AND source = 'donor' AND atlas = 'inflammation_val' AND signature = 'IL6'"), None),
    ("GetValidationBulkScatter", {"dataset": "tcga", "signature": "IFNG", "signature_type": "SecAct"},
     f"SELECT {SCATTER_TARGET} FROM scatter_targets WHERE signature_type = 'SecAct' AND source = 'bulk_rnaseq' AND "
     "atlas = 'tcga' AND signature = 'IFNG'",
     ("scatter_points", "signature_type = 'SecAct' AND source = 'bulk_rnaseq' AND atlas = 'tcga' AND signature = 'IFNG'"),
     "SELECT group_index, group_name FROM validation_scatter_groups WHERE signature_type = 'SecAct' AND "
     "source = 'bulk_rnaseq' AND atlas = 'tcga' ORDER BY group_index"),
    ("GetValidationCellTypeScatter", {"atlas": "scatlas_normal", "level": "donor_organ", "signature": "TNFA"},
     f"SELECT {SCATTER_TARGET} FROM scatter_targets WHERE {CYTOSIG} AND source = 'celltype' AND atlas = "
     "'scatlas_normal' AND level = 'donor_organ' AND signature = 'TNFA'",
     ("scatter_points", f"{CYTOSIG} AND source = 'celltype' AND atlas = 'scatlas_normal' AND level = 'donor_organ' "
      "AND signature = 'TNFA'"),
     f"SELECT group_index, group_name FROM validation_scatter_groups WHERE {CYTOSIG} AND source = 'celltype' AND "
     "atlas = 'scatlas_normal' AND level = 'donor_organ' ORDER BY group_index"),
    ("GetValidationCellTypeScatter", {"atlas": "cima", "level": "l2", "signature": "IL10"},
     KEYED_TARGET.format(table="celltype_only_scatter", where=f"{CYTOSIG} AND atlas = 'cima' AND level = 'l2' AND "
                         "signature = 'IL10'"),
     ("celltype_only_scatter", f"{CYTOSIG} AND atlas = 'cima' AND level = 'l2' AND signature = 'IL10'"),
     f"SELECT DISTINCT group_index, group_name FROM celltype_only_scatter WHERE {CYTOSIG} AND atlas = 'cima' AND "
     "level = 'l2' AND signature = 'IL10' ORDER BY group_index"),
    ("GetValidationResampledScatter", {"atlas": "scatlas_normal", "level": "celltype", "signature": "Monocyte__TNF",
                                       "signature_type": "LinCytoSig"},
     KEYED_TARGET.format(table="validation_resampled_scatter", where="signature_type = 'LinCytoSig' AND atlas = "
                         "'scatlas_normal' AND level = 'celltype' AND signature = 'Monocyte__TNF'"),
     ("validation_resampled_scatter", "signature_type = 'LinCytoSig' AND atlas = 'scatlas_normal' AND level = "
      "'celltype' AND signature = 'Monocyte__TNF'"),
     "SELECT DISTINCT group_index, group_name FROM validation_resampled_scatter WHERE signature_type = 'LinCytoSig' "
     "AND atlas = 'scatlas_normal' AND level = 'celltype' AND signature = 'Monocyte__TNF' ORDER BY group_index"),
]


@pytest.mark.parametrize("rpc,request_,target_sql,points,groups_sql", SCATTER_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SCATTER_CASES)])
def test_scatter_rpcs_match_duckdb_and_page_their_points(stub, db, rpc, request_, target_sql, points, groups_sql):
    target = rows(db, target_sql)
    want = _scatter_points(db, points[0], points[1], [])
    assert len(target) == 1 and len(want) >= 6
    response = call(stub, rpc, request_)
    same([response.target], target)
    same(response.points, want)
    if groups_sql:
        same(response.groups, rows(db, groups_sql))
    paged, pages = walk(stub, rpc, request_, "points", 5)
    same(paged, want)
    assert pages == math.ceil(len(want) / 5)


def test_cell_type_targets_list_the_level_cell_types_once(stub, db):
    response = call(stub, "ListValidationCellTypeTargets", {"atlas": "cima"})
    assert list(response.celltypes) == [r[0] for r in db.execute(
        f"SELECT group_name FROM validation_scatter_groups WHERE {CYTOSIG} AND source = 'celltype' AND atlas = 'cima' "
        "AND level = 'donor_l1' ORDER BY group_index").fetchall()]
    keyed = call(stub, "ListValidationCellTypeTargets", {"atlas": "cima", "level": "l1"})
    assert list(keyed.celltypes) == [r[1] for r in db.execute(
        f"SELECT DISTINCT group_index, group_name FROM celltype_only_scatter WHERE {CYTOSIG} AND atlas = 'cima' "
        "AND level = 'l1' ORDER BY group_index").fetchall()]


def test_scatter_targets_page(stub, db):
    want = rows(db, f"SELECT signature FROM scatter_targets WHERE {CYTOSIG} AND source = 'donor' AND atlas = 'gtex' "
                    "ORDER BY signature")
    got, pages = walk(stub, "ListValidationDonorTargets", {"atlas": "gtex"}, "targets", 10)
    assert [t.signature for t in got] == [w["signature"] for w in want] and pages == math.ceil(len(want) / 10)


# -- summaries ----------------------------------------------------------------------------------

def _expected_summary(db, atlas: str, kind: str) -> dict:
    """The real API's formula, from figures read here."""
    p = [kind, atlas]
    w = "signature_type = ? AND atlas = ?"
    one = lambda sql: db.execute(sql, p).fetchall()[0]  # noqa: E731
    tested, validated = one(f"SELECT count(*), count(*) FILTER (WHERE is_validated) FROM "
                            f"validation_biological_associations WHERE {w}")
    (stability,) = one(f"SELECT avg(stability_score) FROM validation_cv_stability WHERE {w}")
    coverage, low, n = one(f"SELECT avg(coverage_pct), min(coverage_pct), count(*) FROM validation_gene_coverage "
                           f"WHERE {w}")
    r2 = []
    for table in ("validation_sample_level", "validation_celltype_level"):
        found = db.execute(f"SELECT r_squared FROM {table} WHERE {w} AND signature = 'IFNG'", p).fetchall()
        r2.append(found[0][0] if found else 0.7)
    (pb_r,) = one(f"SELECT avg(mean_pearson_r) FROM validation_pb_vs_sc WHERE {w}")
    rate = validated / tested if tested else 0.0
    stability = 0.8 if stability is None else stability
    coverage = 0.85 if coverage is None else coverage / 100
    score = 20 * (r2[0] + r2[1] + coverage + stability + rate)
    grade = "A" if score >= 90 else "B" if score >= 80 else "C" if score >= 70 else "D" if score >= 60 else "F"
    return {"sample_level_median_r": r2[0], "sample_level_mean_r": r2[0], "celltype_level_mean_r": r2[1],
            "n_signatures_sample_valid": n, "pb_vs_sc_median_r": 0.85 if pb_r is None else pb_r,
            "mean_gene_coverage": coverage * 100, "min_gene_coverage": low or 0.0, "biological_validation_rate": rate,
            "mean_stability_score": stability, "quality_score": score, "quality_grade": grade}


@pytest.mark.parametrize("atlas,kind", [("cima", "CytoSig"), ("scatlas", "SecAct"), ("inflammation", "LinCytoSig")])
def test_summary_matches_the_formula_over_duckdb(stub, db, atlas, kind):
    response = call(stub, "GetValidationSummary", {"atlas": atlas, "signature_type": kind})
    expected = _expected_summary(db, atlas, kind)
    same([response], [expected])
    assert response.recommendations


def test_compare_atlases_is_each_summary_and_the_best(stub, db):
    atlases = [r[0] for r in db.execute("SELECT DISTINCT atlas FROM validation_atlases ORDER BY 1").fetchall()]
    response = call(stub, "CompareValidationAtlases", {"signature_type": "SecAct"})
    assert [c.atlas for c in response.comparisons] == atlases
    scores = {}
    for c in response.comparisons:
        expected = _expected_summary(db, c.atlas, "SecAct")
        assert c.quality_score == pytest.approx(expected["quality_score"])
        assert c.gene_coverage == pytest.approx(expected["mean_gene_coverage"])
        assert c.biological_concordance == pytest.approx(expected["biological_validation_rate"])
        scores[c.atlas] = c.quality_score
    assert response.best_atlas == max(scores, key=scores.get)


def test_biological_associations_count_per_signature_type(stub, db):
    response = call(stub, "GetValidationBiologicalAssociations", {"atlas": "cima", "page_size": 5})
    tested, validated = db.execute(
        f"SELECT count(*), count(*) FILTER (WHERE is_validated) FROM validation_biological_associations "
        f"WHERE {CYTOSIG} AND atlas = 'cima'").fetchall()[0]
    assert (response.n_tested, response.n_validated) == (tested, validated) == (12, validated)
    assert response.validation_rate == pytest.approx(validated / tested) and len(response.results) == 5
    assert response.next_page_token


def test_bulk_summary_matches_duckdb(stub, db):
    response = call(stub, "GetValidationBulkSummary", {"dataset": "tcga", "signature_type": "SecAct"})
    want = rows(db, "SELECT d.dataset, n_samples, n_targets, n_significant, median_rho, mean_rho, pct_positive "
                    "FROM validation_bulk_datasets d JOIN validation_bulk_summary s USING (dataset) "
                    "WHERE dataset = 'tcga' AND signature_type = 'SecAct'")
    same([response], want)
    cancers = [r[0] for r in db.execute("SELECT group_name FROM validation_bulk_groups WHERE dataset = 'tcga' "
                                        "AND group_kind = 'cancer_types' ORDER BY group_index").fetchall()]
    assert list(response.cancer_types) == cancers and not response.tissue_types


def test_summary_boxplot_lists_every_category_and_pages_rhos(stub, db):
    categories = rows(db, "SELECT * FROM validation_corr_boxplot_categories ORDER BY category_index")
    response = call(stub, "GetValidationSummaryBoxplot", {"page_size": 50})
    same(response.categories, categories)
    want = rows(db, f"SELECT signature, category, rho_index FROM validation_corr_boxplot WHERE {CYTOSIG} "
                    "ORDER BY signature, category, rho_index LIMIT 120")
    got, token = list(response.rhos), response.next_page_token
    while len(got) < 120:
        page = call(stub, "GetValidationSummaryBoxplot", {"page_size": 50, "page_token": token})
        got += page.rhos
        token = page.next_page_token
    same(got[:120], want)


# -- bad input: every RPC, the right code and a message that names the problem ----------------

BAD_INPUT = [
    ("ListValidationAtlases", {"page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("ListValidationSignatures", {"atlas": "CIMA"}, "INVALID_ARGUMENT", "did you mean 'cima'"),
    ("ListValidationSignatures", {}, "INVALID_ARGUMENT", "`atlas` is required"),
    ("GetValidationSummary", {"atlas": "cima", "signature_type": "cytosig"}, "INVALID_ARGUMENT",
     "did you mean 'CytoSig'"),
    ("GetValidationSampleLevel", {"atlas": "cima", "signature": "IFNGG"}, "NOT_FOUND",
     "signature 'IFNGG' is not in validation_sample_level where signature_type = 'CytoSig' and atlas = 'cima'"),
    ("GetValidationSampleLevel", {"atlas": "cima"}, "INVALID_ARGUMENT", "`signature` is required"),
    ("GetValidationCellTypeLevel", {"atlas": "cima", "signature": "TNFX"}, "NOT_FOUND", "did you mean 'TNFA'"),
    ("GetValidationPseudobulkVsSingleCell", {"atlas": "cima", "signature": "IL6", "page_size": -2},
     "INVALID_ARGUMENT", "page_size"),
    ("GetValidationSingleCellDirect", {"atlas": "blood", "signature": "IL6"}, "INVALID_ARGUMENT",
     "valid values: cima, inflammation, scatlas"),
    ("GetValidationSingleCellDistribution", {"atlas": "cima", "signature": "IL6", "signature_type": "secact"},
     "INVALID_ARGUMENT", "did you mean 'SecAct'"),
    ("GetValidationBiologicalAssociations", {"atlas": "cima", "page_token": "garbage"}, "INVALID_ARGUMENT",
     "page_token"),
    ("GetValidationGeneCoverage", {"atlas": "cima", "signature": "Monocyte__TNF", "signature_type": "LinCytoSig"},
     "NOT_FOUND", "signature 'Monocyte__TNF'"),
    ("ListValidationGeneCoverage", {"atlas": "scatlas_normal"}, "INVALID_ARGUMENT", "did you mean 'scatlas'"),
    ("ListValidationCvStability", {"atlas": "cima", "page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("CompareValidationAtlases", {"signature_type": "Cytosig"}, "INVALID_ARGUMENT", "did you mean 'CytoSig'"),
    ("ListValidationBulkDatasets", {"page_token": "AAAA"}, "INVALID_ARGUMENT", "page_token"),
    ("GetValidationBulkSummary", {"dataset": "GTEx"}, "NOT_FOUND", "did you mean 'gtex'"),
    ("ListValidationBulkTargets", {"dataset": "gtex", "signature_type": "cytosig"}, "INVALID_ARGUMENT",
     "did you mean 'CytoSig'"),
    ("GetValidationBulkScatter", {"dataset": "gtex", "signature": "IFNX"}, "NOT_FOUND",
     "where source = 'bulk_rnaseq' and signature_type = 'CytoSig' and atlas = 'gtex'"),
    ("ListValidationBulkDonorLevel", {"dataset": "gtex", "level": "by_cancer"}, "NOT_FOUND",
     "level 'by_cancer' is not in bulk_validation where signature_type = 'CytoSig' and dataset = 'gtex'"),
    ("ListValidationDonorAtlases", {"page_size": -3}, "INVALID_ARGUMENT", "page_size"),
    ("ListValidationDonorTargets", {"atlas": "inflammation"}, "INVALID_ARGUMENT", "inflammation_main"),
    ("GetValidationDonorScatter", {"atlas": "cima", "signature": "IFNGX"}, "NOT_FOUND", "did you mean 'IFNG'"),
    ("ListValidationCellTypeLevels", {"atlas": "scatlas"}, "INVALID_ARGUMENT", "scatlas_normal"),
    ("ListValidationCellTypeTargets", {"atlas": "cima", "level": "donor_l9"}, "NOT_FOUND",
     "valid values: donor_l1, donor_l2, l1, l2"),
    ("GetValidationCellTypeScatter", {"atlas": "cima", "level": "l1", "signature": "IFNG", "signature_type": "SecActs"},
     "INVALID_ARGUMENT", "did you mean 'SecAct'"),
    ("ListValidationResampledAtlases", {"page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("ListValidationResampledLevels", {"atlas": "gtex"}, "INVALID_ARGUMENT", "validation_resampled_scatter"),
    ("ListValidationResampledTargets", {"atlas": "cima", "level": "l2"}, "NOT_FOUND", "level 'l2'"),
    ("GetValidationResampledScatter", {"atlas": "cima", "signature": "NOPE"}, "NOT_FOUND", "signature 'NOPE'"),
    ("ListValidationSingleCellSignatures", {"atlas": "cima", "signature_type": "cytosig"}, "INVALID_ARGUMENT",
     "did you mean 'CytoSig'"),
    ("ListValidationSingleCellCellTypes", {"atlas": "cima", "signature": "IL-6"}, "NOT_FOUND", "did you mean 'IL6'"),
    ("GetValidationSingleCellFullScatter", {"atlas": "cima", "signature": "IL6", "page_size": -1}, "INVALID_ARGUMENT",
     "page_size"),
    ("GetValidationSummaryBoxplot", {"signature_type": "LinCytoSig"}, "INVALID_ARGUMENT",
     "valid values: CytoSig, SecAct"),
    ("ListValidationSummaryBoxplotTargets", {"page_token": "x"}, "INVALID_ARGUMENT", "page_token"),
]


@pytest.mark.parametrize("rpc,request_,code,text", BAD_INPUT, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_INPUT)])
def test_bad_input_gets_the_right_code_and_names_the_problem(stub, rpc, request_, code, text):
    with pytest.raises(grpc.RpcError) as err:
        call(stub, rpc, request_)
    assert err.value.code().name == code, err.value.details()
    assert text in err.value.details()
    assert len(status_details(err.value, error_details_pb2.ErrorInfo)) == 1


def test_a_point_token_is_bound_to_its_target(stub):
    first = call(stub, "GetValidationDonorScatter", {"atlas": "cima", "signature": "IFNG", "page_size": 3})
    with pytest.raises(grpc.RpcError) as err:
        call(stub, "GetValidationDonorScatter", {"atlas": "cima", "signature": "IL6", "page_size": 3,
                                                 "page_token": first.next_page_token})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_every_rpc_is_covered_by_the_tests():
    """A new RPC must come with a DuckDB comparison and a bad-input case here."""
    covered = {c[0] for c in LIST_CASES + NAME_CASES + RECORD_CASES + SCATTER_CASES}
    covered |= {"GetValidationSummary", "CompareValidationAtlases", "GetValidationSingleCellDistribution",
                "GetValidationGeneCoverage", "GetValidationBulkSummary"}
    methods = set(pb.DESCRIPTOR.services_by_name["ValidationService"].methods_by_name)
    assert methods - covered == set()
    assert methods - {c[0] for c in BAD_INPUT} == set()


# -- arithmetic the handlers do ---------------------------------------------------------------

def test_spearman_p_follows_the_t_distribution():
    # t = 2.306004 with 8 degrees of freedom is the two-sided 5% point; 1.959964 with ~10,000 too
    for t, df in ((2.306004, 8), (1.959964, 10_000), (3.355387, 8)):
        rho = t / math.sqrt(t * t + df)
        assert spearman_p(rho, df + 2) == pytest.approx(0.05 if t < 3 else 0.01, rel=2e-3)
    assert spearman_p(1.0, 30) == 0.0 and spearman_p(0.0, 30) == 1.0 and spearman_p(0.5, 2) is None
    assert [page_size(n, (1000, 10_000)) for n in (0, 5, 10_001, -1)] == [1000, 5, 10_000, -1]


# -- grpcurl --------------------------------------------------------------------------------------

def test_grpcurl_lists_the_service_and_reads_a_scatter(addresses, db):
    out = grpcurl(addresses["atlas"], "list")
    assert out.returncode == 0 and SERVICE in out.stdout.split()
    out = grpcurl(addresses["atlas"], f"{SERVICE}/GetValidationDonorScatter",
                  data={"atlas": "tcga", "signature": "IL6", "page_size": 4})
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    want = db.execute(f"SELECT expression_z, activity FROM scatter_points WHERE {CYTOSIG} AND source = 'donor' AND "
                      "atlas = 'tcga' AND signature = 'IL6' ORDER BY point_index LIMIT 4").fetchall()
    assert [(p.get("expression_z", 0.0), p.get("activity", 0.0)) for p in answer["points"]] == want
    assert answer["target"]["signature"] == "IL6" and answer["next_page_token"]
    out = grpcurl(addresses["atlas"], f"{SERVICE}/ListValidationCellTypeLevels", data={"atlas": "cimma"})
    assert "Code: InvalidArgument" in out.stderr and "did you mean 'cima'" in out.stderr


# -- demo invariants, on the built tables ---------------------------------------------------------

def _none(db, sql: str) -> None:
    found = db.execute(sql).fetchall()
    assert found in ([], [(0,)]), found[:3]


def test_singlecell_activity_has_three_inflammation_cohorts_and_ordered_ranges(db):
    _none(db, "SELECT count(*) FROM singlecell_activity WHERE NOT (min_activity <= mean_activity "
              "AND mean_activity <= max_activity)")
    cohorts = db.execute("SELECT atlas, list(DISTINCT cohort ORDER BY cohort) FROM singlecell_activity GROUP BY 1 "
                         "ORDER BY 1").fetchall()
    assert cohorts == [("CIMA", [""]), ("Inflammation", ["ext", "main", "val"]), ("scAtlas_Cancer", [""]),
                       ("scAtlas_Normal", [""])]
    _none(db, "SELECT count(*) FROM singlecell_activity v WHERE cohort IN ('val', 'ext') AND cell_type NOT IN "
              "(SELECT cell_type FROM singlecell_activity WHERE cohort = 'main')")


def test_cross_sample_levels_have_an_all_row_per_target_and_empty_unmappable_rows(db):
    _none(db, "SELECT count(*) FROM (SELECT atlas, level, signature_type, signature FROM cross_sample_correlations "
              "GROUP BY ALL HAVING count(*) FILTER (WHERE celltype = 'all') <> 1)")
    _none(db, "SELECT count(*) FROM cross_sample_correlations WHERE celltype = 'unmappable' AND "
              "(spearman_rho IS NOT NULL OR n_samples <> 0)")
    assert db.execute("SELECT count(DISTINCT source_file) FROM cross_sample_correlations").fetchall()[0][0] == 9


def test_bulk_tables_are_the_cross_sample_all_rows(db):
    _none(db, """
        SELECT count(*) FROM bulk_validation b FULL JOIN (
            SELECT * FROM cross_sample_correlations WHERE celltype = 'all' AND atlas IN ('gtex', 'tcga')) c
          ON c.atlas = b.dataset AND c.level = b.level AND c.signature = b.signature
         AND b.signature_type = c.signature_type
        WHERE b.dataset IS NULL OR c.atlas IS NULL OR abs(b.rho - c.spearman_rho) > 0.00005
           OR abs(b.pval - c.spearman_pval) > 0.000001 OR b.n <> c.n_samples
           OR b.significant <> coalesce(c.spearman_pval < 0.05, false)""")  # Python's round() vs DuckDB's
    _none(db, """
        SELECT count(*) FROM validation_bulk_summary s JOIN (
            SELECT atlas, signature_type, count(*) AS n, count(*) FILTER (WHERE spearman_pval < 0.05) AS k,
                   round(median(spearman_rho), 4) AS med, round(100.0 * count(*) FILTER (WHERE spearman_rho > 0)
                   / count(spearman_rho), 2) AS pct
            FROM cross_sample_correlations WHERE celltype = 'all' AND atlas IN ('gtex', 'tcga') GROUP BY ALL) c
          ON c.atlas = s.dataset AND c.signature_type = s.signature_type
        WHERE s.n_targets <> c.n OR s.n_significant <> c.k OR s.median_rho <> c.med OR s.pct_positive <> c.pct""")
    assert db.execute("SELECT count(*) FROM validation_bulk_summary").fetchall() == [(6,)]


def test_scatter_targets_agree_with_their_points(db):
    _none(db, "SELECT count(*) FROM scatter_targets t LEFT JOIN (SELECT target_id, count(*) AS n FROM scatter_points "
              "GROUP BY 1) p USING (target_id) WHERE p.n IS DISTINCT FROM t.n")
    _none(db, "SELECT count(*) FROM scatter_targets WHERE significant <> coalesce(pval < 0.05, false)")
    # bulk scatter is the cell-type scatter of the same samples; matched figures come from the CSV
    _none(db, """
        SELECT count(*) FROM scatter_points b JOIN scatter_points c ON c.source = 'celltype' AND c.atlas = b.atlas
         AND c.level = b.level AND c.signature_type = b.signature_type AND c.signature = b.signature
         AND c.point_index = b.point_index
        WHERE b.source = 'bulk_rnaseq' AND (b.expression_z <> c.expression_z OR b.group_name <> c.group_name)""")
    _none(db, """
        SELECT count(*) FROM scatter_targets t JOIN cross_sample_correlations c ON c.celltype = 'matched'
         AND c.atlas = t.atlas AND c.signature = t.signature AND c.signature_type = t.signature_type
        WHERE t.source = 'donor' AND (t.matched_rho IS DISTINCT FROM round(c.spearman_rho, 4)
           OR t.matched_n IS DISTINCT FROM c.n_samples)""")
    assert db.execute("SELECT count(*) FROM scatter_targets WHERE matched_rho IS NOT NULL").fetchall()[0][0] > 0
    sample = db.execute("SELECT target_id, rho FROM scatter_targets WHERE source = 'celltype' ORDER BY target_id "
                        "LIMIT 5").fetchall()
    for target_id, rho in sample:
        p = db.execute("SELECT expression_z, activity FROM scatter_points WHERE target_id = ?", [target_id]).fetchnumpy()
        assert rho == pytest.approx(round(_spearman(p["expression_z"], p["activity"]), 4), abs=1e-4)


def test_validation_records_derive_from_the_cell_type_tables(db):
    _none(db, """
        SELECT count(*) FROM validation_celltype_points p JOIN cima_celltype c ON p.atlas = 'cima'
         AND c.signature_type = p.signature_type AND c.signature = p.signature AND c.cell_type = p.cell_type
        WHERE p.activity <> c.mean_activity""")
    assert db.execute("SELECT count(*) FROM validation_celltype_points WHERE atlas = 'cima' AND signature_type = "
                      "'CytoSig'").fetchall()[0][0] == db.execute(
        "SELECT count(*) FROM cima_celltype WHERE signature_type = 'CytoSig'").fetchall()[0][0]
    _none(db, "SELECT count(*) FROM validation_pb_vs_sc_points WHERE signature_type <> 'LinCytoSig' AND "
              "abs(sc_activity_median - 0.95 * sc_activity_mean) > 1e-12")  # LinCytoSig: the writer's fallback
    _none(db, "SELECT count(*) FROM (SELECT atlas, signature_type, signature FROM validation_pb_vs_sc_points "
              "GROUP BY ALL HAVING count(*) > 15)")
    _none(db, "SELECT count(*) FROM validation_singlecell WHERE abs(activity_fold_change - (mean_activity_expressing "
              "- mean_activity_non_expressing)) > 1e-12 OR n_expressing + n_non_expressing <> n_total_cells")
    assert db.execute("SELECT list(DISTINCT n ORDER BY n) FROM (SELECT count(*) AS n FROM "
                      "validation_biological_associations GROUP BY atlas, signature_type)").fetchall() == [([12],)]
    _none(db, "SELECT count(*) FROM validation_biological_associations WHERE is_validated <> (observed_rank <= 3)")
    _none(db, """
        SELECT count(*) FROM validation_celltype_level l WHERE expression_source IS NOT NULL AND observed_top_cell_type_1 <> (
            SELECT arg_max(cell_type, activity) FROM validation_celltype_points p WHERE p.atlas = l.atlas
               AND p.signature_type = l.signature_type AND p.signature = l.signature)""")


def test_keyed_scatter_and_boxplot_shapes(db):
    for table in ("celltype_only_scatter", "validation_resampled_scatter"):
        _none(db, f"SELECT count(*) FROM (SELECT signature_type, atlas, level, signature, any_value(n) AS n, count(*) "
                  f"AS points FROM {table} GROUP BY ALL) WHERE n <> points")
    _none(db, "SELECT count(*) FROM (SELECT signature_type, signature, category FROM validation_corr_boxplot "
              "GROUP BY ALL HAVING count(*) > 50)")
    levels = {r[0] for r in db.execute("SELECT DISTINCT level FROM celltype_only_scatter").fetchall()}
    assert levels == {"l1", "l2", "celltype"}  # scripts/14's split files beside them are left out
