"""ScAtlasService (the scAtlas pages) against the real atlas server: every RPC's answer equals the
same question asked of DuckDB in-process (SQL written here, not taken from the handlers), bad input
gets the right code and a message naming the problem, lists page; and the demo's scAtlas tables are
consistent with the tables they derive from."""

from __future__ import annotations

import json
import math

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from cytoatlas.atlas.v1 import scatlas_service_pb2 as pb
from cytoatlas.atlas.v1 import scatlas_service_pb2_grpc as pb_grpc
from tests.conftest import field_value as value, status_details
from tests.test_grpcurl import grpcurl

SERVICE = "cytoatlas.atlas.v1.ScAtlasService"
CYTOSIG = "signature_type = 'CytoSig'"
SECACT = "signature_type = 'SecAct'"


@pytest.fixture(scope="module")
def stub(addresses):
    with grpc.insecure_channel(addresses["atlas"]) as channel:
        yield pb_grpc.ScAtlasServiceStub(channel)


@pytest.fixture(scope="module")
def con(local):
    return local["atlas"]


def call(stub, rpc: str, request: dict | None = None):
    method = pb.DESCRIPTOR.services_by_name["ScAtlasService"].methods_by_name[rpc]
    message = json_format.ParseDict(request or {}, getattr(pb, method.input_type.name)())
    return getattr(stub, rpc)(message, timeout=60)


def rows(con, sql: str) -> list[dict]:
    return con.sql(sql).to_arrow_table().to_pylist()


def one(con, sql: str):
    return con.sql(sql).fetchall()[0][0]


def column(con, sql: str) -> list:
    return [r[0] for r in con.sql(sql).fetchall()]


def assert_rows_equal(messages, expected: list[dict]):
    assert len(messages) == len(expected)
    for got, want in zip(messages, expected):
        for name, v in want.items():
            assert value(got, name) == (pytest.approx(v) if isinstance(v, float) else v), name


# (rpc, request, response field, the same question in SQL, key order). Pages hold the whole answer.
LIST_CASES = [
    ("ListScAtlasOrganSignatures", {"organ": "Lung"}, "organ_signatures",
     f"SELECT * FROM scatlas_organs WHERE {CYTOSIG} AND organ = 'Lung' ORDER BY signature"),
    ("ListScAtlasOrganSignatures", {"signature": "IL6", "signature_type": "SecAct"}, "organ_signatures",
     f"SELECT * FROM scatlas_organs WHERE {SECACT} AND signature = 'IL6' ORDER BY organ"),
    ("ListScAtlasOrganTopSignatures", {"limit": 3}, "top_signatures",
     f"SELECT * FROM scatlas_organs_top WHERE {CYTOSIG} AND rank <= 3 ORDER BY organ, rank"),
    ("ListScAtlasOrganTopSignatures", {"organ": "Liver", "signature_type": "SecAct"}, "top_signatures",
     f"SELECT * FROM scatlas_organs_top WHERE {SECACT} AND organ = 'Liver' ORDER BY rank"),
    ("ListScAtlasCellTypeSignatures", {"organ": "Lung", "cell_type": "AT2", "page_size": 1000},
     "cell_type_signatures",
     f"SELECT * FROM scatlas_celltypes WHERE {CYTOSIG} AND organ = 'Lung' AND cell_type = 'AT2' ORDER BY signature"),
    ("ListScAtlasCellTypeSignatures", {"cell_type": "B cell", "signature": "IFNG"}, "cell_type_signatures",
     f"SELECT * FROM scatlas_celltypes WHERE {CYTOSIG} AND cell_type = 'B cell' AND signature = 'IFNG' ORDER BY organ"),
    ("ListScAtlasCancerComparisons", {"cell_type": "CD8T05_Tex_PDCD1", "signature_type": "SecAct"},
     "cancer_comparisons",
     "SELECT cell_type, signature, signature_type, mean_tumor, mean_adjacent, mean_difference, std_difference, "
     f"n_pairs, p_value FROM cancer_comparison WHERE {SECACT} AND cell_type = 'CD8T05_Tex_PDCD1' ORDER BY signature"),
    ("ListScAtlasCancerTypeSignatures", {"cancer_type": "HCC"}, "cancer_type_signatures",
     f"SELECT * FROM cancer_types WHERE {CYTOSIG} AND cancer_type = 'HCC' ORDER BY signature"),
    ("ListScAtlasCancerTypeSignatures", {"signature": "TGFB1"}, "cancer_type_signatures",
     f"SELECT * FROM cancer_types WHERE {CYTOSIG} AND signature = 'TGFB1' ORDER BY cancer_type"),
    ("ListScAtlasImmuneInfiltration", {"cancer_type": "CRC"}, "immune_infiltrations",
     f"SELECT * FROM immune_infiltration WHERE {CYTOSIG} AND cancer_type = 'CRC' ORDER BY signature"),
    ("ListScAtlasTCellStates", {"exhaustion_state": "exhausted", "signature": "IFNG"}, "tcell_states",
     f"SELECT * FROM exhaustion WHERE {CYTOSIG} AND exhaustion_state = 'exhausted' AND signature = 'IFNG' "
     "ORDER BY cancer_type"),
    ("ListScAtlasTCellStates", {"cancer_type": "HCC", "signature_type": "SecAct", "page_size": 1000}, "tcell_states",
     f"SELECT * FROM exhaustion WHERE {SECACT} AND cancer_type = 'HCC' ORDER BY exhaustion_state, signature"),
    ("ListScAtlasExhaustionComparisons", {"cancer_type": "CRC"}, "exhaustion_comparisons",
     f"SELECT * FROM exhaustion_comparison WHERE {CYTOSIG} AND cancer_type = 'CRC' ORDER BY signature"),
    ("ListScAtlasCafSignatures", {"signature": "TGFB1"}, "caf_signatures",
     f"SELECT * FROM caf_signatures WHERE {CYTOSIG} AND signature = 'TGFB1' ORDER BY cancer_type"),
    ("ListScAtlasCafSubtypes", {"caf_class": "iCAF", "page_size": 1000}, "caf_subtypes",
     f"SELECT * FROM caf_signatures_subtypes WHERE {CYTOSIG} AND caf_class = 'iCAF' "
     "ORDER BY cancer_type, caf_subtype, signature"),
    ("ListScAtlasAdjacentTissue", {"category": "tumor_vs_adjacent", "signature_type": "SecAct"}, "adjacent_tissues",
     f"SELECT * FROM adjacent_tissue WHERE {SECACT} AND category = 'tumor_vs_adjacent' ORDER BY signature"),
    ("ListScAtlasAdjacentTissue", {"organ": "Liver", "page_size": 1000}, "adjacent_tissues",
     f"SELECT * FROM adjacent_tissue WHERE {CYTOSIG} AND cancer_type IN "
     "(SELECT cancer_type FROM adjacent_tissue_organ_map WHERE organ = 'Liver') ORDER BY category, cancer_type, signature"),
    ("ListScAtlasAdjacentTissue", {"cancer_type": "all", "signature": "IL6"}, "adjacent_tissues",
     f"SELECT * FROM adjacent_tissue WHERE {CYTOSIG} AND cancer_type = 'all' AND signature = 'IL6'"),
    ("ListScAtlasAdjacentTissueBoxplots", {"cancer_type": "CRC", "tissue": "Tumor"}, "boxplots",
     f"SELECT * FROM adjacent_tissue_boxplots WHERE {CYTOSIG} AND cancer_type = 'CRC' AND tissue = 'Tumor' "
     "ORDER BY signature"),
    ("ListScAtlasAdjacentTissueBoxplots", {"signature": "IL6"}, "boxplots",
     f"SELECT * FROM adjacent_tissue_boxplots WHERE {CYTOSIG} AND signature = 'IL6' ORDER BY cancer_type, tissue"),
    ("ListScAtlasOrganCancerComparisons", {"organ": "Liver", "page_size": 1000}, "comparisons",
     "SELECT * FROM organ_cancer_matrix WHERE organ = 'Liver' ORDER BY cancer_type, signature"),
]


@pytest.mark.parametrize("rpc,request_,field,sql", LIST_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LIST_CASES)])
def test_list_rpc_matches_duckdb(stub, con, rpc, request_, field, sql):
    want = rows(con, sql)
    assert want, "the case must select some rows, or it proves nothing"
    response = call(stub, rpc, request_)
    assert_rows_equal(getattr(response, field), want)
    assert response.next_page_token == ""


NAME_CASES = [
    ("ListScAtlasOrgans", {}, "organs", "SELECT DISTINCT organ FROM scatlas_organs"),
    ("ListScAtlasCellTypes", {}, "cell_types", "SELECT DISTINCT cell_type FROM scatlas_celltypes"),
    ("ListScAtlasCellTypes", {"organ": "Lung"}, "cell_types",
     "SELECT DISTINCT cell_type FROM scatlas_celltypes WHERE organ = 'Lung'"),
    ("ListScAtlasCancerTypes", {}, "cancer_types", "SELECT DISTINCT cancer_type FROM cancer_types"),
]


@pytest.mark.parametrize("rpc,request_,field,sql", NAME_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(NAME_CASES)])
def test_name_lists_are_sorted_distinct_and_page(stub, con, rpc, request_, field, sql):
    want = column(con, sql + " ORDER BY 1")
    assert len(want) > 3
    got, token = [], ""
    while True:  # pages of 2: every page but the last carries a token
        response = call(stub, rpc, {**request_, "page_size": 2, "page_token": token})
        got += getattr(response, field)
        token = response.next_page_token
        if not token:
            break
    assert got == want


def test_paging_walks_the_answer_and_side_lists_come_on_the_first_page(stub, con):
    want = rows(con, f"SELECT * FROM scatlas_celltypes WHERE {CYTOSIG} AND organ = 'Lung' ORDER BY cell_type, signature")
    got, token, pages = [], "", []
    while True:
        response = call(stub, "ListScAtlasCellTypeSignatures", {"organ": "Lung", "page_size": 150, "page_token": token})
        got += response.cell_type_signatures
        pages.append(response)
        token = response.next_page_token
        if not token:
            break
    assert len(pages) == math.ceil(len(want) / 150) > 1
    assert_rows_equal(got, want)
    assert pages[0].organs and all(not p.organs and not p.top_cell_types for p in pages[1:])
    # A token is bound to its request: another filter with it is refused.
    with pytest.raises(grpc.RpcError) as err:
        call(stub, "ListScAtlasCellTypeSignatures", {"organ": "Liver", "page_size": 150,
                                                     "page_token": pages[0].next_page_token})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def signatures(con, table: str, kind: str, where: str = "TRUE") -> list:
    return column(con, f"SELECT DISTINCT signature FROM {table} WHERE signature_type = '{kind}' AND {where} ORDER BY 1")


def test_cell_type_signature_lists(stub, con):
    response = call(stub, "ListScAtlasCellTypeSignatures", {"cell_type": "AT2"})
    assert list(response.all_cell_types) == column(con, "SELECT DISTINCT cell_type FROM scatlas_celltypes ORDER BY 1")
    assert list(response.organs) == column(con, "SELECT DISTINCT organ FROM scatlas_celltypes ORDER BY 1")
    top = column(con, f"SELECT cell_type FROM scatlas_celltypes WHERE {CYTOSIG} GROUP BY cell_type "
                      "ORDER BY stddev_samp(mean_activity) DESC NULLS LAST, cell_type LIMIT 100")
    assert list(response.top_cell_types) == top
    assert list(response.cytosig_signatures) == signatures(con, "scatlas_celltypes", "CytoSig")
    assert list(response.secact_signatures) == signatures(con, "scatlas_celltypes", "SecAct")
    assert dict(response.signature_counts) == {"CytoSig": 43, "SecAct": len(response.secact_signatures)}


def test_cancer_side_lists(stub, con):
    comparison = call(stub, "ListScAtlasCancerComparisons", {"cell_type": "CD8T05_Tex_PDCD1"})
    assert list(comparison.cell_types) == column(con, "SELECT DISTINCT cell_type FROM cancer_comparison ORDER BY 1")
    assert list(comparison.secact_signatures) == signatures(con, "cancer_comparison", "SecAct")
    assert comparison.n_paired_donors == one(con, "SELECT max(n_paired_donors) FROM cancer_comparison") > 0
    assert comparison.analysis_type == "paired_singlecell"

    types = call(stub, "ListScAtlasCancerTypeSignatures", {"cancer_type": "CRC"})
    assert list(types.cancer_types) == column(con, "SELECT DISTINCT cancer_type FROM cancer_types ORDER BY 1")
    assert dict(types.cancer_labels) == dict(con.sql("SELECT cancer_type, label FROM cancer_type_labels").fetchall())
    assert dict(types.cancer_to_organ) == dict(con.sql("SELECT * FROM adjacent_tissue_organ_map").fetchall())
    assert types.cancer_labels["HCC"] == "Hepatocellular Carcinoma" and types.cancer_to_organ["HNSC"] == "Oral"
    assert list(types.secact_signatures) == signatures(con, "cancer_types", "SecAct")
    assert types.total_secact == len(types.secact_signatures) > 0

    states = call(stub, "ListScAtlasTCellStates", {"signature_type": "SecAct"})
    assert list(states.cancer_types) == column(con, f"SELECT DISTINCT cancer_type FROM exhaustion WHERE {SECACT} ORDER BY 1")
    assert list(states.exhaustion_states) == column(con, "SELECT DISTINCT exhaustion_state FROM exhaustion ORDER BY 1")
    assert list(states.cytosig_signatures) == signatures(con, "exhaustion", "CytoSig")
    comparisons = call(stub, "ListScAtlasExhaustionComparisons", {})
    assert list(comparisons.cancer_types) == column(
        con, f"SELECT DISTINCT cancer_type FROM exhaustion_comparison WHERE {CYTOSIG} ORDER BY 1")

    cafs = call(stub, "ListScAtlasCafSubtypes", {"cancer_type": "HCC", "signature_type": "SecAct"})
    assert_rows_equal(cafs.proportions, rows(con, "SELECT cancer_type, caf_class, n_cells, proportion FROM "
                                                  f"caf_signatures_class_proportions WHERE {SECACT} "
                                                  "AND cancer_type = 'HCC' ORDER BY caf_class"))
    assert list(cafs.cancer_types) == column(
        con, f"SELECT DISTINCT cancer_type FROM caf_signatures_subtypes WHERE {SECACT} ORDER BY 1")
    assert list(cafs.signatures) == signatures(con, "caf_signatures_subtypes", "SecAct")
    assert list(cafs.caf_classes) == ["Other", "apCAF", "iCAF", "myCAF"]

    boxes = call(stub, "ListScAtlasAdjacentTissueBoxplots", {"signature_type": "SecAct"})
    assert list(boxes.signatures) == signatures(con, "adjacent_tissue_boxplots", "SecAct", "cancer_type = 'all'")
    assert list(boxes.cancer_types) == column(
        con, "SELECT DISTINCT cancer_type FROM adjacent_tissue_boxplots WHERE cancer_type <> 'all' ORDER BY 1")
    figures = dict(con.sql("SELECT stat, value FROM adjacent_tissue_summary").fetchall())
    assert json_format.MessageToDict(boxes.summary, preserving_proto_field_name=True) == {
        k: str(v) for k, v in figures.items() if v}
    assert boxes.summary.n_significant_secact == one(
        con, f"SELECT count(*) FROM adjacent_tissue WHERE {SECACT} AND category = 'tumor_vs_adjacent' AND qvalue < 0.05")

    organs = call(stub, "ListScAtlasOrganCancerComparisons", {})
    assert list(organs.normal_organs) == column(con, "SELECT DISTINCT organ FROM organ_cancer_matrix ORDER BY 1")
    assert list(organs.cancer_types) == column(con, "SELECT DISTINCT cancer_type FROM organ_cancer_matrix ORDER BY 1")


def test_summary_matches_duckdb(stub, con):
    got = call(stub, "GetScAtlasSummary")
    figures = dict(con.sql("SELECT stat, value FROM summary_stats WHERE atlas = 'scatlas' AND ordinal = 0").fetchall())
    counts = {
        "n_organs": "SELECT count(DISTINCT organ) FROM scatlas_organs",
        "n_organ_signatures": "SELECT count(*) FROM scatlas_organs",
        "n_cell_types": "SELECT count(DISTINCT cell_type) FROM scatlas_celltypes",
        "n_cell_types_normal": "SELECT count(DISTINCT cell_type) FROM scatlas_celltypes",
        "n_celltype_signatures": "SELECT count(*) FROM scatlas_celltypes",
        "n_cancer_types": "SELECT count(DISTINCT cancer_type) FROM cancer_types",
        "n_cancer_type_signatures": "SELECT count(*) FROM cancer_types",
        "n_tumor_adjacent": "SELECT count(*) FROM adjacent_tissue WHERE category = 'tumor_vs_adjacent'",
        "n_organ_cancer_matrix": "SELECT count(*) FROM organ_cancer_matrix",
        "n_immune_infiltration": "SELECT count(*) FROM immune_infiltration",
        "n_tcell_state": "SELECT count(*) FROM exhaustion",
        "n_exhaustion_comparison": "SELECT count(*) FROM exhaustion_comparison",
        "n_exhaustion_signatures": f"SELECT count(DISTINCT signature) FROM exhaustion WHERE {CYTOSIG}",
        "n_caf_signatures": "SELECT count(*) FROM caf_signatures",
    }
    for field, sql in counts.items():
        assert getattr(got, field) == one(con, sql) > 0, field
    for field in ("n_cell_types_cancer", "n_cells_normal", "n_cells_cancer", "n_donors_normal", "n_donors_cancer"):
        assert getattr(got, field) == figures[field] > 0, field
    assert list(got.organs) == column(con, "SELECT DISTINCT organ FROM scatlas_organs ORDER BY 1")
    assert list(got.cancer_types) == column(con, "SELECT DISTINCT cancer_type FROM cancer_types ORDER BY 1")
    assert list(got.cytosig_signatures) == signatures(con, "scatlas_celltypes", "CytoSig")
    assert list(got.secact_signatures) == signatures(con, "scatlas_celltypes", "SecAct")


def test_immune_infiltration_overview_matches_duckdb(stub, con):
    got = call(stub, "GetScAtlasImmuneInfiltrationOverview")
    assert_rows_equal(got.tme_summaries, rows(con, "SELECT * FROM immune_infiltration_tme_summary ORDER BY cancer_type"))
    assert_rows_equal(got.compositions, rows(con, "SELECT * FROM immune_infiltration_composition "
                                                  "ORDER BY cancer_type, cell_category"))
    assert len(got.compositions) > 0
    assert list(got.cancer_types) == column(con, "SELECT DISTINCT cancer_type FROM immune_infiltration ORDER BY 1")
    assert list(got.immune_categories) == column(
        con, "SELECT DISTINCT cell_category FROM immune_infiltration_composition ORDER BY 1")
    assert list(got.secact_signatures) == signatures(con, "immune_infiltration", "SecAct")


def assert_matrix(matrix, cells: dict, rows_: list, columns: list):
    assert list(matrix.rows) == rows_ and list(matrix.columns) == columns and len(rows_) > 1
    for r, row in zip(rows_, matrix.values):
        for c, v in zip(columns, row.values):
            assert math.isnan(v) if (r, c) not in cells else v == pytest.approx(cells[r, c])


def pivot(con, sql: str) -> tuple[dict, list, list]:
    cells = {(r, c): v for r, c, v in con.sql(sql).fetchall()}
    return cells, sorted({r for r, _ in cells}), sorted({c for _, c in cells})


@pytest.mark.parametrize("rpc,request_,sql", [
    ("GetScAtlasOrganHeatmap", {}, f"SELECT organ, signature, mean_activity FROM scatlas_organs WHERE {CYTOSIG}"),
    ("GetScAtlasOrganHeatmap", {"signature_type": "SecAct"},
     f"SELECT organ, signature, mean_activity FROM scatlas_organs WHERE {SECACT}"),
    ("GetScAtlasCancerComparisonHeatmap", {},
     f"SELECT cell_type, signature, mean_difference FROM cancer_comparison WHERE {CYTOSIG}"),
], ids=["organ", "organ-secact", "cancer-comparison"])
def test_heatmaps_match_duckdb(stub, con, rpc, request_, sql):
    response = call(stub, rpc, request_)
    assert_matrix(response.matrix, *pivot(con, sql))
    assert response.signature_type == request_.get("signature_type", "CytoSig")
    if rpc == "GetScAtlasCancerComparisonHeatmap":
        assert response.n_paired_donors == one(con, "SELECT max(n_paired_donors) FROM cancer_comparison")


@pytest.mark.parametrize("request_", [{}, {"organ": "Lung", "top_n": 4, "signature_type": "SecAct"}],
                         ids=["all-organs", "lung-secact-top4"])
def test_cell_type_heatmap_matches_duckdb(stub, con, request_):
    organ = request_.get("organ")
    scope = f" AND organ = '{organ}'" if organ else ""
    order = column(con, f"SELECT cell_type FROM scatlas_celltypes WHERE {CYTOSIG}{scope} GROUP BY cell_type "
                        f"ORDER BY stddev_samp(mean_activity) DESC NULLS LAST, cell_type LIMIT {request_.get('top_n', 50)}")
    kind = request_.get("signature_type", "CytoSig")
    listed = ", ".join(f"'{c}'" for c in order)
    cells, rows_, columns = pivot(con, f"SELECT cell_type, signature, avg(mean_activity) FROM scatlas_celltypes "
                                       f"WHERE signature_type = '{kind}'{scope} AND cell_type IN ({listed}) GROUP BY ALL")
    response = call(stub, "GetScAtlasCellTypeHeatmap", request_)
    assert list(response.cell_type_order) == order and response.organ == (organ or "")
    assert_matrix(response.matrix, cells, rows_, columns)


BAD_INPUT = [
    ("ListScAtlasOrgans", {"page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("ListScAtlasCellTypes", {"organ": "lung"}, "NOT_FOUND", "did you mean 'Lung'"),
    ("ListScAtlasCancerTypes", {"page_token": "garbage"}, "INVALID_ARGUMENT", "page_token"),
    ("ListScAtlasOrganSignatures", {"organ": "Bone marrow"}, "NOT_FOUND", "organ 'Bone marrow'"),
    ("ListScAtlasOrganTopSignatures", {"limit": 51}, "INVALID_ARGUMENT", "limit must be 0 (default 10) or 1 to 50"),
    ("ListScAtlasOrganTopSignatures", {"limit": -1}, "INVALID_ARGUMENT", "got -1"),
    ("ListScAtlasCellTypeSignatures", {"signature_type": "secact"}, "INVALID_ARGUMENT", "did you mean 'SecAct'"),
    ("ListScAtlasCancerComparisons", {"cell_type": "CD8 T exhausted"}, "NOT_FOUND", "cell_type 'CD8 T exhausted'"),
    ("ListScAtlasCancerTypeSignatures", {"cancer_type": "crc"}, "NOT_FOUND", "did you mean 'CRC'"),
    ("ListScAtlasImmuneInfiltration", {"signature": "IFN-gamma"}, "NOT_FOUND", "signature 'IFN-gamma'"),
    ("ListScAtlasTCellStates", {"exhaustion_state": "Exhausted"}, "NOT_FOUND", "did you mean 'exhausted'"),
    ("ListScAtlasExhaustionComparisons", {"signature_type": "LinCytoSig"}, "INVALID_ARGUMENT",
     "valid values: CytoSig, SecAct"),
    ("ListScAtlasCafSignatures", {"cancer_type": "Melanoma"}, "NOT_FOUND", "cancer_type 'Melanoma'"),
    ("ListScAtlasCafSubtypes", {"caf_class": "icaf"}, "NOT_FOUND", "did you mean 'iCAF'"),
    ("ListScAtlasAdjacentTissue", {"category": "pan_cancer"}, "INVALID_ARGUMENT",
     "valid values: by_cancer_type, tumor_vs_adjacent"),
    ("ListScAtlasAdjacentTissue", {"organ": "Brain"}, "NOT_FOUND", "organ 'Brain' is not in adjacent_tissue_organ_map"),
    ("ListScAtlasAdjacentTissueBoxplots", {"tissue": "tumor"}, "NOT_FOUND", "did you mean 'Tumor'"),
    ("GetScAtlasOrganHeatmap", {"signature_type": "cytosig"}, "INVALID_ARGUMENT", "did you mean 'CytoSig'"),
    ("GetScAtlasCancerComparisonHeatmap", {"signature_type": "Both"}, "INVALID_ARGUMENT", "CytoSig, SecAct"),
    ("ListScAtlasOrganCancerComparisons", {"signature_type": "SecAct"}, "INVALID_ARGUMENT", "valid values: CytoSig"),
    ("GetScAtlasCellTypeHeatmap", {"top_n": -1}, "INVALID_ARGUMENT", "top_n"),
    ("GetScAtlasCellTypeHeatmap", {"organ": "Brain"}, "NOT_FOUND", "organ 'Brain'"),
]


@pytest.mark.parametrize("rpc,request_,code,text", BAD_INPUT, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_INPUT)])
def test_bad_input_gets_the_right_code_and_names_the_problem(stub, rpc, request_, code, text):
    with pytest.raises(grpc.RpcError) as err:
        call(stub, rpc, request_)
    assert err.value.code().name == code
    assert text in err.value.details()
    assert len(status_details(err.value, error_details_pb2.ErrorInfo)) == 1


def test_a_signature_of_the_other_type_is_not_found(stub, con):
    secact_only = one(con, f"SELECT signature FROM cancer_types WHERE {SECACT} EXCEPT "
                           f"SELECT signature FROM cancer_types WHERE {CYTOSIG} ORDER BY 1 LIMIT 1")
    with pytest.raises(grpc.RpcError) as err:
        call(stub, "ListScAtlasCancerTypeSignatures", {"signature": secact_only})
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "signature_type = 'CytoSig'" in err.value.details()
    assert call(stub, "ListScAtlasCancerTypeSignatures", {"signature": secact_only, "signature_type": "SecAct"})


def test_every_rpc_is_covered_by_the_tests():
    """A new RPC needs a DuckDB comparison here and, if it takes input, a bad-input case."""
    covered = {c[0] for c in LIST_CASES} | {c[0] for c in NAME_CASES} | {
        "GetScAtlasSummary", "GetScAtlasImmuneInfiltrationOverview", "GetScAtlasOrganHeatmap",
        "GetScAtlasCancerComparisonHeatmap", "GetScAtlasCellTypeHeatmap"}
    bad = {c[0] for c in BAD_INPUT}
    for method in pb.DESCRIPTOR.services_by_name["ScAtlasService"].methods:
        assert method.name in covered, method.name
        assert method.name in bad or not method.input_type.fields, method.name


# -- grpcurl (reflection only, no proto files) ---------------------------------------------------


def test_grpcurl_lists_the_service_and_reads_top_signatures(addresses, con):
    out = grpcurl(addresses["atlas"], "list")
    assert out.returncode == 0 and SERVICE in out.stdout.split(), out.stderr
    out = grpcurl(addresses["atlas"], f"{SERVICE}/ListScAtlasOrganTopSignatures", data={"organ": "Lung", "limit": 3})
    assert out.returncode == 0, out.stderr
    got = [(r["signature"], r["rank"]) for r in json.loads(out.stdout)["top_signatures"]]
    assert got == con.sql(f"SELECT signature, rank FROM scatlas_organs_top WHERE {CYTOSIG} AND organ = 'Lung' "
                          "AND rank <= 3 ORDER BY rank").fetchall()


def test_grpcurl_heatmap_and_a_refusal(addresses, con):
    out = grpcurl(addresses["atlas"], f"{SERVICE}/GetScAtlasOrganHeatmap", data={})
    assert out.returncode == 0, out.stderr
    matrix = json.loads(out.stdout)["matrix"]
    assert matrix["rows"] == column(con, "SELECT DISTINCT organ FROM scatlas_organs ORDER BY 1")
    out = grpcurl(addresses["atlas"], f"{SERVICE}/ListScAtlasAdjacentTissue", data={"organ": "Brain"})
    assert "Code: NotFound" in out.stderr and "organ 'Brain'" in out.stderr


# -- the demo's scAtlas tables agree with the tables they derive from -------------------------------


def test_organ_tables_derive_from_the_cell_type_columns(con):
    # organ mean = unweighted mean over the organ's (organ x cell type) columns; n_cells = columns
    assert one(con, """
        SELECT max(abs(o.mean_activity - c.mean)) FROM scatlas_organs o JOIN (
            SELECT organ, signature_type, signature, avg(mean_activity) AS mean, count(*) AS n FROM scatlas_celltypes
            GROUP BY ALL) c USING (organ, signature_type, signature) WHERE o.n_cells = c.n""") <= 1.01e-4
    assert one(con, "SELECT count(*) FROM scatlas_organs") == one(
        con, "SELECT count(DISTINCT (organ, signature_type, signature)) FROM scatlas_celltypes")
    # specificity = (organ mean - mean of all columns) / population SD of all columns
    assert one(con, """
        SELECT max(abs(o.specificity_score - (o.mean_activity - g.mean) / g.sd)) FROM scatlas_organs o JOIN (
            SELECT signature_type, signature, avg(mean_activity) AS mean, stddev_pop(mean_activity) AS sd
            FROM scatlas_celltypes GROUP BY ALL) g USING (signature_type, signature)""") < 1e-3
    # the top table is the 10 largest specificity rows of each organ and type, ranked 1..10
    assert one(con, """
        SELECT count(*) FROM (SELECT *, row_number() OVER (PARTITION BY signature_type, organ
                                     ORDER BY specificity_score DESC, signature) AS r FROM scatlas_organs) o
        FULL JOIN scatlas_organs_top t USING (signature_type, organ, signature)
        WHERE (o.r <= 10) IS DISTINCT FROM (t.rank IS NOT NULL) OR t.rank <> o.r
           OR t.mean_activity <> o.mean_activity OR t.specificity_score <> o.specificity_score
           OR t.n_cells <> o.n_cells""") == 0
    assert one(con, "SELECT max(abs(activity_diff - (mean_activity - other_mean))) FROM scatlas_organs_top") <= 1.01e-4
    assert one(con, "SELECT count(*) FROM scatlas_celltypes WHERE n_cells <> 1") == 0


def test_cancer_tables_agree(con):
    assert one(con, "SELECT max(abs(activity_diff - (mean_activity - other_mean))) FROM cancer_types") <= 1.01e-4
    # organ x cancer = the organ's and the cancer type's CytoSig means
    assert one(con, """
        SELECT count(*) FROM organ_cancer_matrix m
        LEFT JOIN scatlas_organs o ON o.organ = m.organ AND o.signature = m.signature AND o.signature_type = 'CytoSig'
        LEFT JOIN cancer_types c ON c.cancer_type = m.cancer_type AND c.signature = m.signature
                                AND c.signature_type = 'CytoSig'
        WHERE o.mean_activity IS DISTINCT FROM m.normal_activity OR c.mean_activity IS DISTINCT FROM m.cancer_activity
           OR abs(m.difference - (m.cancer_activity - m.normal_activity)) > 1.01e-4""") == 0
    assert one(con, "SELECT count(*) FROM cancer_comparison WHERE n_pairs < 3 OR p_value < 0 OR p_value > 1") == 0
    assert one(con, "SELECT max(abs(mean_difference - (mean_tumor - mean_adjacent))) FROM cancer_comparison") <= 2.01e-4
    assert one(con, "SELECT count(*) FROM immune_infiltration "
                    "WHERE abs(immune_enrichment - (mean_immune_activity - mean_nonimmune_activity)) > 2.01e-4") == 0
    assert one(con, "SELECT count(*) FROM immune_infiltration i JOIN immune_infiltration_tme_summary t "
                    "USING (cancer_type) WHERE i.total_cells <> t.total_cells OR i.immune_cells <> t.immune_cells") == 0
    assert one(con, "SELECT max(abs(activity_diff - (mean_exhausted - mean_nonexhausted))) "
                    "FROM exhaustion_comparison") <= 2.01e-4
    assert one(con, "SELECT max(abs(s - 1)) FROM (SELECT sum(proportion) AS s FROM caf_signatures_class_proportions "
                    "GROUP BY signature_type, cancer_type)") < 1e-9
    # CAF subtypes are the fibroblast subClusters behind caf_signatures
    assert one(con, "SELECT count(*) FROM (SELECT signature_type, cancer_type, signature, sum(n_samples) AS n, "
                    "sum(n_cells) AS cells FROM caf_signatures_subtypes GROUP BY ALL) s "
                    "JOIN caf_signatures c USING (signature_type, cancer_type, signature) "
                    "WHERE s.n > c.n_samples OR s.cells > c.n_cells") == 0


def test_adjacent_tissue_agrees_with_its_boxplots_and_the_normal_atlas(con):
    assert one(con, "SELECT count(*) FROM adjacent_tissue_boxplots WHERE NOT (min <= q1 AND q1 <= median "
                    "AND median <= q3 AND q3 <= max AND min <= mean AND mean <= max)") == 0
    # a differential row's means and column counts are those of its tumour and adjacent boxplots
    assert one(con, """
        SELECT count(*) FROM adjacent_tissue a
        JOIN adjacent_tissue_boxplots t ON t.tissue = 'Tumor' AND t.cancer_type = a.cancer_type
             AND t.signature = a.signature AND t.signature_type = a.signature_type
        JOIN adjacent_tissue_boxplots j ON j.tissue = 'Adjacent' AND j.cancer_type = a.cancer_type
             AND j.signature = a.signature AND j.signature_type = a.signature_type
        WHERE abs(a.mean_tumor - t.mean) > 1e-9 OR abs(a.mean_adjacent - j.mean) > 1e-9
           OR a.n_tumor <> t.n OR a.n_adjacent <> j.n""") == 0
    assert one(con, "SELECT count(*) FROM adjacent_tissue") == one(
        con, "SELECT count(*) FROM adjacent_tissue_boxplots WHERE tissue = 'Tumor'")
    assert one(con, "SELECT count(*) FROM adjacent_tissue WHERE qvalue < pvalue OR "
                    "(category = 'tumor_vs_adjacent') <> (qvalue IS NOT NULL)") == 0
    assert one(con, "SELECT max(abs(activity_diff - (mean_adjacent - mean_tumor))) FROM adjacent_tissue") <= 1.01e-4
    # the normal distribution is over every normal pseudobulk column (scatlas_celltypes)
    assert one(con, """
        SELECT count(*) FROM adjacent_tissue_boxplots b JOIN (
            SELECT signature_type, signature, count(*) AS n, quantile_cont(mean_activity, 0.5) AS median,
                   min(mean_activity) AS lo FROM scatlas_celltypes GROUP BY ALL) c USING (signature_type, signature)
        WHERE b.tissue = 'Normal' AND (b.n <> c.n OR abs(b.median - c.median) > 1e-4 OR b.min <> c.lo)""") == 0
    assert one(con, "SELECT count(*) FROM adjacent_tissue_boxplots WHERE tissue = 'Normal'") == one(
        con, "SELECT count(DISTINCT (signature_type, signature)) FROM scatlas_celltypes")
    figures = dict(con.sql("SELECT stat, value FROM adjacent_tissue_summary").fetchall())
    assert figures["n_tumor_samples"] == one(
        con, "SELECT max(n) FROM adjacent_tissue_boxplots WHERE cancer_type = 'all' AND tissue = 'Tumor'")


def test_single_cell_tables_are_one_atlas_and_type_each(con):
    for part in ("normal", "cancer"):
        for kind in ("cytosig", "secact"):
            table = f"scatlas_{part}_singlecell_{kind}"
            assert con.sql(f"SELECT DISTINCT atlas, signature_type FROM {table}").fetchall() == [
                (f"scAtlas_{part.title()}", "CytoSig" if kind == "cytosig" else "SecAct")]
            assert one(con, f"SELECT count(*) FROM {table} WHERE NOT (min_activity <= mean_activity AND "
                            "mean_activity <= max_activity) OR n_cells < 10") == 0
    # one draw per atlas: a cell type's cell count is the same in both of its files
    assert one(con, "SELECT count(*) FROM scatlas_normal_singlecell_cytosig c JOIN scatlas_normal_singlecell_secact s "
                    "USING (cell_type) WHERE c.n_cells <> s.n_cells") == 0


def test_the_real_files_json_quirks_build(tmp_path):
    """P06 writes adjacent_tissue.json and cancer_comparison.json with json.dump's defaults: a NaN
    p-value is the bare token NaN (stored NULL); an absent or null boxplot object adds no row; the
    file's scalars stand beside the records."""
    import duckdb

    from builders.ingest import SourceFile, TableSource
    from cytoatlas.domains.atlas import DOMAIN

    box = {"min": -1, "q1": 0, "median": 0.5, "q3": 1, "max": 2, "mean": 0.4, "n": 3}
    (tmp_path / "adjacent_tissue.json").write_text(
        '{"tumor_vs_adjacent": [{"signature": "IL6", "signature_type": "CytoSig", "cancer_type": "all", '
        '"mean_tumor": 0.1, "mean_adjacent": 0.3, "activity_diff": 0.2, "pvalue": NaN, "qvalue": NaN, '
        '"neg_log10_pval": 0.0, "n_tumor": 5, "n_adjacent": 4, "direction": "up_in_adjacent"}], '
        '"by_cancer_type": [], "boxplot_data": [{"signature": "IL6", "signature_type": "CytoSig", "cancer_type": "all", '
        f'"adjacent": {json.dumps({**box, "label": "Adjacent"})}, "tumor": {json.dumps({**box, "label": "Tumor"})}, '
        '"normal": null}], "cancer_organ_map": {"CRC": "Colon"}, "summary": {"n_tumor_samples": 5}, '
        '"cytosig_signatures": ["IL6"]}')
    (tmp_path / "cancer_comparison.json").write_text(json.dumps({
        "data": [{"cell_type": "CD8T05_Tex_PDCD1", "signature": "IL6", "mean_tumor": 0.5, "mean_adjacent": 0.1,
                  "mean_difference": 0.4, "std_difference": 0.2, "n_pairs": 4, "p_value": 0.01,
                  "signature_type": "CytoSig"}],
        "cell_types": ["CD8T05_Tex_PDCD1"], "n_paired_donors": 7, "analysis_type": "paired_singlecell"}))
    con = duckdb.connect()

    def read(table: str, name: str) -> list[tuple]:
        source = TableSource(con, DOMAIN.table(table), [SourceFile(tmp_path / name, name)], tmp_path)
        return con.sql(source.select_sql()).fetchall()

    [row] = read("adjacent_tissue", "adjacent_tissue.json")
    assert row[:4] == ("tumor_vs_adjacent", "all", "IL6", "CytoSig") and row[7] is None and row[8] is None
    assert [r[3] for r in read("adjacent_tissue_boxplots", "adjacent_tissue.json")] == ["Adjacent", "Tumor"]
    assert read("adjacent_tissue_organ_map", "adjacent_tissue.json") == [("CRC", "Colon")]
    assert read("adjacent_tissue_summary", "adjacent_tissue.json") == [("n_tumor_samples", 5)]
    [row] = read("cancer_comparison", "cancer_comparison.json")
    assert row[-2:] == (7, "paired_singlecell") and row[:3] == ("CD8T05_Tex_PDCD1", "IL6", "CytoSig")
