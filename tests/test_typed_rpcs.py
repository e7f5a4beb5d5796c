"""The typed domain RPCs against the real servers, each checked against the same question asked
of DuckDB in-process on the same file; bad input for every RPC; paging; the target lookup."""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import error_details_pb2

from cytoatlas.serving.typed_rpc import alias_targets
from tests.conftest import TYPED_SERVICES as SERVICES
from tests.conftest import assert_rows_equal, call, status_details

CYTOSIG = "signature_type = 'CytoSig'"


# (rpc, request, response field, the equivalent SQL). Pages are sized to hold the whole answer;
# paging itself is tested below. Every SQL has its table key as ORDER BY.
LIST_CASES = {
    "perturbation": [
        ("ListParse10mActivity", {"cytokine": "IL-6", "cell_type": "Classical monocyte", "page_size": 1000},
         "activities", f"SELECT * FROM parse10m_activity WHERE {CYTOSIG} AND cytokine = 'IL-6' "
         "AND cell_type = 'Classical monocyte' ORDER BY signature_type, cytokine, cell_type, donor_id, signature"),
        ("ListParse10mTreatmentEffects", {"cell_type": "Classical monocyte", "signature_type": "SecAct",
                                          "page_size": 10000},
         "treatment_effects", "SELECT * FROM parse10m_treatment_effect WHERE signature_type = 'SecAct' "
         "AND cell_type = 'Classical monocyte' ORDER BY signature_type, cytokine, cell_type, signature"),
        ("ListParse10mGroundTruth", {}, "ground_truth",
         f"SELECT * FROM parse10m_ground_truth WHERE {CYTOSIG} ORDER BY signature_type, cytokine"),
        ("ListParse10mDonorVariability", {"cytokine": "IFN-gamma", "donor_id": "D3", "page_size": 1000},
         "donor_variability", f"SELECT * FROM parse10m_donor_variability WHERE {CYTOSIG} AND cytokine = "
         "'IFN-gamma' AND donor_id = 'D3' ORDER BY cytokine, cell_type, donor_id, signature_type, signature"),
        ("ListParse10mCytokineFamilies", {"family": "Interleukin"}, "cytokine_families",
         "SELECT cytokine, family, subfamily FROM parse10m_cytokine_metadata WHERE family = 'Interleukin' "
         "ORDER BY cytokine"),
        ("ListTahoeActivity", {"drug": "Ruxolitinib", "signature": "IFNG"}, "activities",
         f"SELECT * FROM tahoe_activity WHERE {CYTOSIG} AND drug = 'Ruxolitinib' AND signature = 'IFNG' "
         "ORDER BY signature_type, drug, cell_line, plate, signature"),
        ("ListTahoeDrugEffects", {"cell_line": "A549", "page_size": 1000}, "drug_effects",
         f"SELECT * FROM tahoe_drug_effect WHERE {CYTOSIG} AND cell_line = 'A549' "
         "ORDER BY signature_type, drug, cell_line, signature"),
        ("ListTahoeDoseResponse", {"drug": "Dexamethasone", "signature": "IL6", "page_size": 1000},
         "dose_responses", f"SELECT * FROM tahoe_dose_response WHERE {CYTOSIG} AND drug = 'Dexamethasone' "
         "AND signature = 'IL6' ORDER BY drug, cell_line, signature_type, signature, dose"),
        ("ListTahoePathwayActivation", {"drug": "Ruxolitinib"}, "pathway_activations",
         f"SELECT * FROM tahoe_pathway_activation WHERE {CYTOSIG} AND drug = 'Ruxolitinib' "
         "ORDER BY drug, signature_type, pathway"),
        ("ListTahoeCellLineProfiles", {"cell_line": "K562"}, "cell_line_profiles",
         "SELECT cell_line, signature, avg(mean_activity) AS mean_activity, avg(activity_diff_vs_control) "
         "AS mean_activity_diff_vs_control, count(DISTINCT drug) AS n_drugs FROM tahoe_drug_sensitivity "
         f"WHERE {CYTOSIG} AND cell_line = 'K562' AND drug <> 'DMSO_TF' GROUP BY ALL ORDER BY cell_line, signature"),
    ],
    "spatial": [
        ("ListDatasets", {"technology": "Visium"}, "datasets",
         "SELECT * FROM spatial_dataset_metadata WHERE technology = 'Visium' ORDER BY dataset_id"),
        ("ListSpatialActivity", {"tissue": "lung", "technology": "Visium", "page_size": 1000}, "activities",
         f"SELECT * FROM spatial_activity WHERE {CYTOSIG} AND tissue = 'lung' AND technology = 'Visium' "
         "ORDER BY signature_type, technology, tissue, file, signature"),
        ("ListTissueSummaries", {"signature": "IFNG"}, "tissue_summaries",
         f"SELECT * FROM spatial_tissue_summary WHERE {CYTOSIG} AND signature = 'IFNG' "
         "ORDER BY signature_type, tissue, signature"),
        ("ListNeighborhoodActivity", {"tissue": "liver", "signature_type": "SecAct", "page_size": 2000},
         "neighborhood_activities", "SELECT * FROM spatial_neighborhood WHERE signature_type = 'SecAct' AND "
         "tissue = 'liver' ORDER BY signature_type, tissue, file, cell_type, signature"),
        ("ListTechnologyComparisons", {}, "technology_comparisons",
         f"SELECT * FROM spatial_technology_comparison WHERE {CYTOSIG} "
         "ORDER BY signature_type, tissue, technology_a, technology_b"),
        ("ListGeneCoverage", {"technology": "Xenium"}, "gene_coverage",
         f"SELECT * FROM spatial_gene_coverage WHERE {CYTOSIG} AND technology = 'Xenium' "
         "ORDER BY technology, signature_type"),
        ("ListCoordinates", {"dataset_id": "visium_lung_003", "page_size": 10000}, "coordinates",
         "SELECT * FROM spatial_coordinates WHERE dataset_id = 'visium_lung_003' ORDER BY dataset_id, cell_id"),
        ("ListCoordinateActivity", {"dataset_id": "visium_lung_003", "signature": "IFNG", "page_size": 10000},
         "coordinate_activities",
         "SELECT c.dataset_id, c.cell_id, x, y, cell_type, signature, signature_type, activity "
         "FROM spatial_coordinates c JOIN spatial_coordinate_activity a USING (dataset_id, cell_id) "
         f"WHERE c.dataset_id = 'visium_lung_003' AND a.{CYTOSIG} AND a.signature = 'IFNG' "
         "ORDER BY c.dataset_id, c.cell_id, a.signature_type, a.signature"),
    ],
    "atlas": [
        ("ListActivity", {"atlas": "CIMA", "page_size": 1000}, "activities",
         f"SELECT * FROM activity WHERE {CYTOSIG} AND atlas = 'CIMA' "
         "ORDER BY signature_type, atlas, cell_type, signature"),
        ("ListCorrelations", {"category": "biochemistry", "feature": "ALT"}, "correlations",
         f"SELECT * FROM cima_correlations WHERE {CYTOSIG} AND category = 'biochemistry' AND feature = 'ALT' "
         "ORDER BY signature_type, category, feature, signature"),
        ("ListDiseaseDifferential", {"disease": "COVID", "max_qvalue": 0.5}, "differentials",
         f"SELECT * FROM inflammation_differential WHERE {CYTOSIG} AND disease = 'COVID' AND qvalue <= 0.5 "
         "ORDER BY signature_type, disease, group1, group2, signature"),
        ("ListCellTypeSummaries", {"atlas": "scAtlas_Normal", "cell_type": "Macrophage", "page_size": 1000},
         "cell_type_summaries", f"SELECT * FROM scatlas_celltypes WHERE {CYTOSIG} AND cell_type = 'Macrophage' "
         "ORDER BY signature_type, organ, cell_type, signature"),
        ("QuerySingleCellActivity", {"atlas": "Inflammation", "min_activity": 0.5, "max_activity": 2.0},
         "activities", f"SELECT * EXCLUDE (abs_mean_activity) FROM singlecell_activity WHERE {CYTOSIG} AND atlas = 'Inflammation' "
         "AND mean_activity BETWEEN 0.5 AND 2.0 ORDER BY signature_type, atlas, cohort, cell_type, signature"),
    ],
}
LIST_PARAMS = [pytest.param(d, *case, id=f"{d}.{case[0]}") for d, cases in LIST_CASES.items() for case in cases]


@pytest.mark.parametrize("domain,rpc,request_,field,sql", LIST_PARAMS)
def test_list_rpc_matches_duckdb(typed, local, domain, rpc, request_, field, sql):
    want = local[domain].sql(sql).to_arrow_table().to_pylist()
    assert want, "the case must select some rows, or it proves nothing"
    response = call(typed, domain, rpc, request_)
    assert_rows_equal(getattr(response, field), want)
    assert response.next_page_token == ""


NAME_CASES = [
    ("perturbation", "ListParse10mCytokines", "cytokines", "SELECT DISTINCT cytokine FROM parse10m_cytokine_heatmap"),
    ("perturbation", "ListParse10mCellTypes", "cell_types", "SELECT DISTINCT cell_type FROM parse10m_cytokine_heatmap"),
    ("perturbation", "ListTahoeDrugs", "drugs", "SELECT DISTINCT drug FROM tahoe_drug_effect WHERE drug <> 'DMSO_TF'"),
    ("perturbation", "ListTahoeCellLines", "cell_lines", "SELECT cell_line FROM tahoe_cell_line_metadata"),
    ("spatial", "ListTechnologies", "technologies", "SELECT DISTINCT technology FROM spatial_dataset_metadata"),
    ("spatial", "ListTissues", "tissues", "SELECT DISTINCT tissue FROM spatial_dataset_metadata"),
]


@pytest.mark.parametrize("domain,rpc,field,sql", NAME_CASES, ids=[c[1] for c in NAME_CASES])
def test_name_list_is_sorted_distinct_and_pages(typed, local, domain, rpc, field, sql):
    want = [r[0] for r in local[domain].sql(sql + " ORDER BY 1").fetchall()]
    assert len(want) > 3
    got, token = [], ""
    while True:  # pages of 3: every page but the last carries a token
        response = call(typed, domain, rpc, {"page_size": 3, "page_token": token})
        got += getattr(response, field)
        token = response.next_page_token
        if not token:
            break
    assert got == want


def test_paging_walks_the_whole_answer_without_overlap(typed, local):
    sql = (f"SELECT * FROM parse10m_treatment_effect WHERE {CYTOSIG} AND cytokine = 'IL-6' "
           "ORDER BY signature_type, cytokine, cell_type, signature")
    want = local["perturbation"].sql(sql).to_arrow_table().to_pylist()
    got, token, pages = [], "", 0
    while True:
        response = call(typed, "perturbation", "ListParse10mTreatmentEffects",
                        {"cytokine": "IL-6", "page_size": 250, "page_token": token})
        got += response.treatment_effects
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert pages == math.ceil(len(want) / 250) and pages > 1
    assert_rows_equal(got, want)
    # A token is bound to its request: another filter with the same token is refused.
    first = call(typed, "perturbation", "ListParse10mTreatmentEffects", {"cytokine": "IL-6", "page_size": 250})
    with pytest.raises(grpc.RpcError) as err:
        call(typed, "perturbation", "ListParse10mTreatmentEffects",
             {"cytokine": "IL-2", "page_size": 250, "page_token": first.next_page_token})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_single_cell_limit_is_capped_not_refused(typed, local):
    total = local["atlas"].sql(f"SELECT count(*) FROM singlecell_activity WHERE {CYTOSIG}").fetchall()[0][0]
    assert 1000 < total < 50_000
    default = call(typed, "atlas", "QuerySingleCellActivity", {})
    assert len(default.activities) == 1000 and default.next_page_token
    capped = call(typed, "atlas", "QuerySingleCellActivity", {"limit": 10_000_000})
    assert len(capped.activities) == total and not capped.next_page_token
    # The demo file has fewer rows than the cap, so the cap itself is checked on its own:
    from services.atlas.rpcs import single_cell_page_size
    assert [single_cell_page_size(n) for n in (0, 1, 50_000, 50_001, 10_000_000, -1)] == \
        [1000, 1, 50_000, 50_000, 50_000, -1]


def matrix_from_duckdb(connection, sql: str) -> tuple[list, list, dict]:
    cells = {(r, c): v for r, c, v in connection.sql(sql).fetchall()}
    return sorted({r for r, _ in cells}), sorted({c for _, c in cells}), cells


@pytest.mark.parametrize("rpc,request_,sql", [
    ("GetParse10mHeatmap", {},
     f"SELECT cytokine, cell_type, avg(activity) FROM parse10m_cytokine_heatmap WHERE {CYTOSIG} GROUP BY ALL"),
    ("GetParse10mHeatmap", {"signature_type": "SecAct", "cell_type": "Treg"},
     "SELECT cytokine, cell_type, avg(activity) FROM parse10m_cytokine_heatmap WHERE signature_type = 'SecAct' "
     "AND cell_type = 'Treg' GROUP BY ALL"),
    ("GetTahoeSensitivityMatrix", {},
     f"SELECT drug, cell_line, avg(mean_activity) FROM tahoe_drug_sensitivity WHERE {CYTOSIG} "
     "AND drug <> 'DMSO_TF' GROUP BY ALL"),
    ("GetTahoeSensitivityMatrix", {"signature": "IFNG"},
     f"SELECT drug, cell_line, avg(mean_activity) FROM tahoe_drug_sensitivity WHERE {CYTOSIG} "
     "AND signature = 'IFNG' AND drug <> 'DMSO_TF' GROUP BY ALL"),
], ids=["heatmap", "heatmap-secact-treg", "sensitivity", "sensitivity-ifng"])
def test_matrices_match_duckdb(typed, local, rpc, request_, sql):
    rows, columns, cells = matrix_from_duckdb(local["perturbation"], sql)
    matrix = call(typed, "perturbation", rpc, request_).matrix
    assert list(matrix.rows) == rows and list(matrix.columns) == columns and len(rows) > 2
    for r, row in zip(rows, matrix.values):
        for c, value in zip(columns, row.values):
            if (r, c) in cells:
                assert value == pytest.approx(cells[r, c])
            else:
                assert math.isnan(value)


def test_summaries_match_duckdb(typed, local):
    p, s, a = local["perturbation"], local["spatial"], local["atlas"]
    distinct = lambda con, col, table, where="TRUE": [r[0] for r in con.sql(
        f"SELECT DISTINCT {col} FROM {table} WHERE {where} ORDER BY 1").fetchall()]

    summary = call(typed, "perturbation", "GetPerturbationSummary")
    assert summary.total_datasets == 2 and list(summary.signature_types) == ["CytoSig", "SecAct"]
    assert summary.parse_10m == call(typed, "perturbation", "GetParse10mSummary")
    assert summary.tahoe == call(typed, "perturbation", "GetTahoeSummary")
    parse = summary.parse_10m
    assert parse.dataset == "parse_10M"
    assert list(parse.cytokines) == distinct(p, "cytokine", "parse10m_cytokine_heatmap")
    assert list(parse.cell_types) == distinct(p, "cell_type", "parse10m_cytokine_heatmap")
    assert (parse.n_cytokines, parse.n_cell_types) == (len(parse.cytokines), len(parse.cell_types))
    tahoe = summary.tahoe
    assert list(tahoe.drugs) == distinct(p, "drug", "tahoe_drug_effect", "drug <> 'DMSO_TF'")
    assert list(tahoe.cell_lines) == distinct(p, "cell_line", "tahoe_cell_line_metadata")
    assert (tahoe.n_drugs, tahoe.n_cell_lines) == (len(tahoe.drugs), len(tahoe.cell_lines))

    spatial = call(typed, "spatial", "GetSpatialSummary")
    n_datasets, n_cells = s.sql("SELECT count(*), sum(n_cells) FROM spatial_dataset_metadata").fetchall()[0]
    assert (spatial.dataset, spatial.n_datasets, spatial.n_cells) == ("SpatialCorpus-110M", n_datasets, n_cells)
    assert list(spatial.technologies) == distinct(s, "technology", "spatial_dataset_metadata")
    assert list(spatial.tissues) == distinct(s, "tissue", "spatial_dataset_metadata")
    assert (spatial.n_technologies, spatial.n_tissues) == (len(spatial.technologies), len(spatial.tissues))

    atlas = call(typed, "atlas", "GetAtlasSummary").atlases
    want = a.sql("SELECT atlas, signature_type, count(DISTINCT cell_type) AS n_cell_types, count(DISTINCT "
                 "signature) AS n_signatures, count(*) AS n_rows FROM activity GROUP BY ALL ORDER BY 1, 2")
    assert_rows_equal(atlas, want.to_arrow_table().to_pylist())


def test_get_dataset_matches_the_catalog(typed, local):
    want = local["spatial"].sql("SELECT * FROM spatial_dataset_metadata WHERE dataset_id = 'xenium_breast_001'")
    assert_rows_equal([call(typed, "spatial", "GetDataset", {"dataset_id": "xenium_breast_001"}).dataset],
                      want.to_arrow_table().to_pylist())


@pytest.mark.parametrize("domain,lists", [
    ("perturbation", [("top_cytokine_responses", "parse10m_treatment_effect", "activity_diff"),
                      ("top_drug_responses", "tahoe_drug_effect", "activity_diff")]),
    ("spatial", [("top_tissues", "spatial_tissue_summary", "mean_activity"),
                 ("top_niches", "spatial_neighborhood", "mean_niche_activity")]),
    ("atlas", [("top_cell_types", "activity", "mean"), ("top_organs", "scatlas_organs", "mean_activity")]),
])
@pytest.mark.parametrize("top_n", [4, 0, 1000])  # 0 = the default 10; above the maximum = 100
def test_target_profile_rpc_matches_duckdb(typed, local, built, domain, lists, top_n):
    response = call(typed, domain, "GetTargetProfile", {"signature": "IFNG", "top_n": top_n})
    rows = {4: 4, 0: 10, 1000: 100}[top_n]
    for field, table, measure in lists:
        key = ", ".join(built_key(local[domain], table))
        want = local[domain].sql(f"SELECT * FROM {table} WHERE {CYTOSIG} AND signature = 'IFNG' "
                                 f"ORDER BY {measure} DESC NULLS LAST, {key} LIMIT {rows}").to_arrow_table().to_pylist()
        available = local[domain].sql(f"SELECT count(*) FROM {table} WHERE {CYTOSIG} AND signature = 'IFNG'").fetchall()[0][0]
        assert len(want) == min(rows, available) and available > 4  # the page is cut by top_n, not the data
        assert_rows_equal(getattr(response, field), want)


def built_key(connection, table: str) -> list[str]:
    return list(connection.sql("SELECT key_columns FROM _cytoatlas_tables WHERE table_name = ?",
                               params=[table]).fetchall()[0][0])


# -- bad input: every RPC, the right code, and a message that says what was wrong -------------

BAD_INPUT = [
    ("perturbation", "ListParse10mActivity", {"cytokine": "IL6"}, "NOT_FOUND", "did you mean 'IL-6'"),
    ("perturbation", "ListParse10mTreatmentEffects", {"signature_type": "cytosig"}, "INVALID_ARGUMENT",
     "valid values: CytoSig, SecAct"),
    ("perturbation", "ListParse10mGroundTruth", {"signature_type": "LinCytoSig"}, "INVALID_ARGUMENT",
     "valid values: CytoSig, SecAct"),
    ("perturbation", "GetParse10mHeatmap", {"cell_type": "CD14 monocyte"}, "NOT_FOUND", "Classical monocyte"),
    ("perturbation", "ListParse10mDonorVariability", {"donor_id": "D99"}, "NOT_FOUND", "donor_id 'D99'"),
    ("perturbation", "ListParse10mCytokineFamilies", {"family": "Interleukins"}, "NOT_FOUND",
     "did you mean 'Interleukin'"),
    ("perturbation", "ListParse10mCytokines", {"page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("perturbation", "ListParse10mCellTypes", {"page_token": "garbage"}, "INVALID_ARGUMENT", "page_token"),
    ("perturbation", "ListTahoeDrugs", {"page_size": -5}, "INVALID_ARGUMENT", "page_size"),
    ("perturbation", "ListTahoeCellLines", {"page_token": "AAAA"}, "INVALID_ARGUMENT", "page_token"),
    ("perturbation", "ListTahoeActivity", {"plate": 99}, "NOT_FOUND", "plate 99"),
    ("perturbation", "ListTahoeDrugEffects", {"drug": "imatinib"}, "NOT_FOUND", "drug 'imatinib'"),
    ("perturbation", "GetTahoeSensitivityMatrix", {"signature": "IFN-gamma"}, "NOT_FOUND", "signature"),
    ("perturbation", "ListTahoeDoseResponse", {"drug": "Ruxolitinib"}, "NOT_FOUND", "Bortezomib"),
    ("perturbation", "ListTahoePathwayActivation", {"signature_type": "secact"}, "INVALID_ARGUMENT", "SecAct"),
    ("perturbation", "ListTahoeCellLineProfiles", {"cell_line": "A-549"}, "NOT_FOUND", "did you mean 'A549'"),
    ("perturbation", "GetTargetProfile", {}, "INVALID_ARGUMENT", "`signature` is required"),
    ("perturbation", "GetTargetProfile", {"signature": "IFNGG"}, "NOT_FOUND", "did you mean 'IFNG'"),
    ("spatial", "ListTechnologies", {"page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("spatial", "ListTissues", {"page_token": "x"}, "INVALID_ARGUMENT", "page_token"),
    ("spatial", "ListDatasets", {"technology": "visium"}, "NOT_FOUND", "did you mean 'Visium'"),
    ("spatial", "GetDataset", {"dataset_id": "visium_lung_999"}, "NOT_FOUND", "visium_lung_999"),
    ("spatial", "GetDataset", {}, "INVALID_ARGUMENT", "`dataset_id` is required"),
    ("spatial", "ListSpatialActivity", {"tissue": "Lung"}, "NOT_FOUND", "did you mean 'lung'"),
    ("spatial", "ListTissueSummaries", {"signature_type": "LinCytoSig"}, "INVALID_ARGUMENT", "CytoSig, SecAct"),
    ("spatial", "ListNeighborhoodActivity", {"cell_type": "Hepatocytes"}, "NOT_FOUND", "Hepatocyte"),
    ("spatial", "ListTechnologyComparisons", {"tissue": "spleen"}, "NOT_FOUND", "tissue 'spleen'"),
    ("spatial", "ListGeneCoverage", {"technology": "Visium HD"}, "NOT_FOUND", "Visium"),
    ("spatial", "ListCoordinates", {"dataset_id": "nope"}, "NOT_FOUND", "dataset_id 'nope'"),
    ("spatial", "ListCoordinateActivity", {"dataset_id": "visium_lung_003", "signature": "IFNG",
                                           "page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("spatial", "GetTargetProfile", {"signature": "IFNG", "top_n": -1}, "INVALID_ARGUMENT", "top_n"),
    ("atlas", "GetAtlasSummary", None, None, None),  # takes no input: nothing can be wrong
    ("atlas", "ListActivity", {"atlas": "cima"}, "INVALID_ARGUMENT", "did you mean 'CIMA'"),
    ("atlas", "ListCorrelations", {"category": "metabolites"}, "INVALID_ARGUMENT", "age, biochemistry, bmi"),
    ("atlas", "ListDiseaseDifferential", {"disease": "Covid-19"}, "NOT_FOUND", "disease 'Covid-19'"),
    ("atlas", "ListCellTypeSummaries", {"atlas": "scAtlas_Cancer"}, "INVALID_ARGUMENT",
     "CIMA, Inflammation, scAtlas_Normal"),
    ("atlas", "QuerySingleCellActivity", {"limit": -1}, "INVALID_ARGUMENT", "limit"),
    ("atlas", "GetTargetProfile", {"signature": "IFNG", "signature_type": "Cytosig"}, "INVALID_ARGUMENT",
     "did you mean 'CytoSig'"),
]


@pytest.mark.parametrize("domain,rpc,request_,code,text", [c for c in BAD_INPUT if c[3]],
                         ids=[f"{c[1]}-{c[3]}" for c in BAD_INPUT if c[3]])
def test_bad_input_gets_the_right_code_and_names_the_problem(typed, domain, rpc, request_, code, text):
    with pytest.raises(grpc.RpcError) as err:
        call(typed, domain, rpc, request_)
    assert err.value.code().name == code
    assert text in err.value.details()
    infos = status_details(err.value, error_details_pb2.ErrorInfo)
    assert len(infos) == 1  # the error model of TableService: exactly one ErrorInfo


def test_every_rpc_is_covered_by_the_tests():
    """A new RPC must come with a DuckDB comparison and a bad-input case here."""
    covered = {(d, c[0]) for d, cases in LIST_CASES.items() for c in cases}
    covered |= {(d, rpc) for d, rpc, *_ in NAME_CASES}
    covered |= {("perturbation", r) for r in ("GetParse10mHeatmap", "GetTahoeSensitivityMatrix",
                                               "GetPerturbationSummary", "GetParse10mSummary", "GetTahoeSummary")}
    covered |= {("spatial", "GetSpatialSummary"), ("spatial", "GetDataset"), ("atlas", "GetAtlasSummary")}
    covered |= {(d, "GetTargetProfile") for d in SERVICES}
    bad = {(d, rpc) for d, rpc, *_ in BAD_INPUT}
    for domain, (module, _, service) in SERVICES.items():
        for rpc in module.DESCRIPTOR.services_by_name[service].methods_by_name:
            assert (domain, rpc) in covered, rpc
            summary = rpc.endswith("Summary") and rpc.startswith("Get")
            assert (domain, rpc) in bad or summary, rpc


@pytest.mark.parametrize("domain,rpc,table", [
    ("perturbation", "GetTargetProfile", "parse10m_treatment_effect"),
    ("perturbation", "ListTahoeDrugEffects", "tahoe_drug_effect"),
])
def test_a_signature_of_another_signature_type_is_not_found(typed, local, domain, rpc, table):
    """A SecAct-only signature asked under the default CytoSig must not be an empty success."""
    secact_only = local[domain].sql(
        f"SELECT signature FROM {table} WHERE signature_type = 'SecAct' EXCEPT "
        f"SELECT signature FROM {table} WHERE signature_type = 'CytoSig' ORDER BY 1 LIMIT 1").fetchall()[0][0]
    with pytest.raises(grpc.RpcError) as err:
        call(typed, domain, rpc, {"signature": secact_only})
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"signature {secact_only!r} is not in" in err.value.details()
    assert "signature_type = 'CytoSig'" in err.value.details()
    assert call(typed, domain, rpc, {"signature": secact_only, "signature_type": "SecAct"})  # and is there


def test_cell_type_summaries_take_the_atlas_names_of_list_activity(typed, local):
    """Every atlas ListActivity names has its cell-type summaries under the same name (scAtlas_Cancer
    has no such table: refused naming the valid ones); "scAtlas" still means scAtlas_Normal."""
    atlases = [a for (a,) in local["atlas"].sql("SELECT DISTINCT atlas FROM activity ORDER BY 1").fetchall()]
    assert "scAtlas_Normal" in atlases
    for atlas in atlases:
        if atlas == "scAtlas_Cancer":
            with pytest.raises(grpc.RpcError) as err:
                call(typed, "atlas", "ListCellTypeSummaries", {"atlas": atlas})
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            continue
        rows = call(typed, "atlas", "ListCellTypeSummaries", {"atlas": atlas}).cell_type_summaries
        assert rows and {r.atlas for r in rows} == {atlas}
    legacy = call(typed, "atlas", "ListCellTypeSummaries", {"atlas": "scAtlas"}).cell_type_summaries
    assert legacy and {r.atlas for r in legacy} == {"scAtlas_Normal"}


def test_an_alias_stands_for_the_gene_symbol_in_a_gene_field_and_the_signature_elsewhere(local):
    # The demo data cannot show this through an RPC (it would need a CytoSig name that is also a
    # gene of the gene tables while its own symbol is not), so the rule is checked on the built
    # file's own alias rows: TNF is CytoSig's TNFA as a signature and stays TNF as a gene.
    rows = [dict(zip(("signature_type", "signature", "hgnc_symbol"), r)) for r in local["atlas"].sql(
        "SELECT signature_type, signature, hgnc_symbol FROM signature_aliases WHERE alias_key = 'tnf'").fetchall()]
    assert rows == [{"signature_type": "CytoSig", "signature": "TNFA", "hgnc_symbol": "TNF"}]
    assert alias_targets(rows, "gene") == {"TNF"}
    assert alias_targets(rows, "signature") == {"TNFA"}
