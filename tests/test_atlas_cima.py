"""CimaService (the CIMA atlas page) against the real atlas service, each answer checked against the
same question asked of DuckDB in-process (SQL written here); bad input for every RPC; paging;
grpcurl; and the demo invariants of the CIMA and age/BMI tables."""

from __future__ import annotations

import json
import math

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from cytoatlas.atlas.v1 import cima_service_pb2 as pb
from cytoatlas.atlas.v1 import cima_service_pb2_grpc as pb_grpc
from tests.conftest import field_value as value, status_details
from tests.test_grpcurl import grpcurl

SERVICE = "cytoatlas.atlas.v1.CimaService"
CYTOSIG = "signature_type = 'CytoSig'"


@pytest.fixture(scope="module")
def cima(addresses):
    with grpc.insecure_channel(addresses["atlas"]) as channel:
        yield pb_grpc.CimaServiceStub(channel)


@pytest.fixture(scope="module")
def db(local):
    return local["atlas"]


def one(db, sql: str):
    return db.sql(sql).fetchall()[0][0]


def resolve(db, request: dict) -> dict:
    """Request values given as {"sql": ...} are picked from the data (the first value)."""
    return {k: one(db, v["sql"]) if isinstance(v, dict) else v for k, v in request.items()}


def call(cima, rpc: str, request: dict | None = None):
    method = pb.DESCRIPTOR.services_by_name["CimaService"].methods_by_name[rpc]
    message = json_format.ParseDict(request or {}, getattr(pb, method.input_type.name)())
    return getattr(cima, rpc)(message, timeout=30)


def assert_rows(messages, expected: list[dict]):
    """Each message equals its row on every column the message has (a few columns, such as
    age_bmi_boxplots.atlas, are the request's own constants and not repeated in the rows)."""
    assert len(messages) == len(expected)
    for got, want in zip(messages, expected):
        fields = got.DESCRIPTOR.fields_by_name
        for column, v in want.items():
            if column in fields:
                assert value(got, column) == (pytest.approx(v) if isinstance(v, float) else v), column


def rows(db, sql: str) -> list[dict]:
    return db.sql(sql).to_arrow_table().to_pylist()


# (rpc, request, response field, the same question in SQL). Pages hold the whole answer.
LIST_CASES = [
    ("ListCimaCellTypeActivity", {"cell_type": "CD4_Naive"}, "activities",
     f"SELECT * FROM cima_celltype WHERE {CYTOSIG} AND cell_type = 'CD4_Naive' ORDER BY signature"),
    ("ListCimaCellTypeActivity", {"signature_type": "SecAct", "signature": "IL6"}, "activities",
     "SELECT * FROM cima_celltype WHERE signature_type = 'SecAct' AND signature = 'IL6' ORDER BY cell_type"),
    ("ListCimaCorrelations", {"category": "age", "page_size": 1000}, "correlations",
     f"SELECT * FROM cima_celltype_correlations WHERE {CYTOSIG} AND category = 'age' ORDER BY cell_type, signature"),
    ("ListCimaCorrelations", {"category": "bmi", "cell_type": "Mono_CD14", "signature_type": "SecAct"},
     "correlations", "SELECT * FROM cima_celltype_correlations WHERE signature_type = 'SecAct' AND category = 'bmi' "
     "AND cell_type = 'Mono_CD14' ORDER BY signature"),
    ("ListCimaCorrelations", {"category": "age", "cell_type": "All"}, "correlations",
     f"SELECT * FROM cima_correlations WHERE {CYTOSIG} AND category = 'age' ORDER BY signature"),
    ("ListCimaCorrelations", {"category": "biochemistry", "feature": "ALT", "signature": "IL6"}, "correlations",
     f"SELECT * FROM cima_correlations WHERE {CYTOSIG} AND category = 'biochemistry' AND feature = 'ALT' "
     "AND signature = 'IL6'"),
    ("ListCimaMetaboliteCorrelations", {"page_size": 1000}, "correlations",
     f"SELECT *, row_number() OVER (ORDER BY abs(rho) DESC, signature, feature) AS rank FROM "
     f"(SELECT * EXCLUDE (rank) FROM cima_metabolites_top WHERE {CYTOSIG}) ORDER BY rank"),
    ("ListCimaMetaboliteCorrelations", {"signature_type": "SecAct", "feature": {
        "sql": "SELECT feature FROM cima_metabolites_top WHERE signature_type = 'SecAct' ORDER BY rank LIMIT 1"}},
     "correlations", "SELECT * FROM cima_metabolites_top WHERE signature_type = 'SecAct' AND feature = "
     "(SELECT feature FROM cima_metabolites_top WHERE signature_type = 'SecAct' ORDER BY rank LIMIT 1) ORDER BY rank"),
    ("ListCimaDifferential", {"comparison": "sex", "page_size": 1000}, "differentials",
     f"SELECT * FROM cima_differential WHERE {CYTOSIG} AND comparison = 'sex' AND activity_diff IS NOT NULL "
     "ORDER BY cell_type, group1, group2, signature"),
    ("ListCimaDifferential", {"comparison": "smoking", "signature_type": "SecAct", "max_qvalue": 0.99,
                              "page_size": 1000}, "differentials",
     "SELECT * FROM cima_differential WHERE signature_type = 'SecAct' AND comparison = 'smoking_status' "
     "AND qvalue <= 0.99 AND activity_diff IS NOT NULL ORDER BY cell_type, group1, group2, signature"),
    ("ListCimaDifferential", {"signature": "IFNG"}, "differentials",
     f"SELECT * FROM cima_differential WHERE {CYTOSIG} AND signature = 'IFNG' "
     "ORDER BY comparison, cell_type, group1, group2"),
    ("ListCimaAgeBmiBoxplots", {"section": "age", "signature": "IL6"}, "boxplots",
     f"SELECT * FROM age_bmi_boxplots WHERE {CYTOSIG} AND atlas = 'cima' AND section = 'age' "
     "AND signature = 'IL6' AND cell_type = 'All' ORDER BY bin_low, bin"),
    ("ListCimaAgeBmiBoxplots", {"section": "bmi", "signature": "IL6", "signature_type": "SecAct",
                                "cell_type": "Mono_CD14"}, "boxplots",
     "SELECT * FROM age_bmi_boxplots WHERE signature_type = 'SecAct' AND atlas = 'cima' AND section = 'bmi' "
     "AND signature = 'IL6' AND cell_type = 'Mono_CD14' ORDER BY bin_low, bin"),
    ("ListCimaEqtls", {}, "eqtls",
     "SELECT * FROM cima_eqtl_top ORDER BY pvalue, cell_type, gene, variant LIMIT 100"),
    ("ListCimaEqtls", {"full": True, "cell_type": {"sql": "SELECT min(cell_type) FROM cima_eqtl"},
                       "max_pvalue": 1e-20, "page_size": 1000}, "eqtls",
     "SELECT * FROM cima_eqtl WHERE cell_type = (SELECT min(cell_type) FROM cima_eqtl) AND pvalue <= 1e-20 "
     "ORDER BY pvalue, gene, variant"),
    ("ListCimaEqtls", {"full": True, "gene": "IL6"}, "eqtls",
     "SELECT * FROM cima_eqtl WHERE gene = 'IL6' ORDER BY pvalue, cell_type, variant"),
]


@pytest.mark.parametrize("rpc,request_,field,sql", LIST_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LIST_CASES)])
def test_list_rpc_matches_duckdb(cima, db, rpc, request_, field, sql):
    want = rows(db, sql)
    assert want, "the case must select some rows, or it proves nothing"
    response = call(cima, rpc, resolve(db, request_))
    assert_rows(getattr(response, field), want)
    assert response.next_page_token == ""


NAME_CASES = [
    ("ListCimaCellTypes", {}, "cell_types", "SELECT DISTINCT cell_type FROM cima_celltype"),
    ("ListCimaSignatures", {}, "signatures", f"SELECT DISTINCT signature FROM cima_celltype WHERE {CYTOSIG}"),
    ("ListCimaSignatures", {"signature_type": "SecAct"}, "signatures",
     "SELECT DISTINCT signature FROM cima_celltype WHERE signature_type = 'SecAct'"),
    ("ListCimaBiochemVariables", {}, "biochem_variables",
     f"SELECT DISTINCT feature FROM cima_correlations WHERE {CYTOSIG} AND category = 'biochemistry'"),
    ("ListCimaComparisons", {}, "comparisons",
     f"SELECT DISTINCT comparison FROM cima_differential WHERE {CYTOSIG} AND activity_diff IS NOT NULL"),
]


@pytest.mark.parametrize("rpc,request_,field,sql", NAME_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(NAME_CASES)])
def test_name_list_is_sorted_distinct_and_pages(cima, db, rpc, request_, field, sql):
    want = [r[0] for r in db.sql(sql + " ORDER BY 1").fetchall()]
    assert len(want) > 2
    got, token, pages = [], "", 0
    while True:  # pages of 2: every page but the last carries a token
        response = call(cima, rpc, {**request_, "page_size": 2, "page_token": token})
        got += getattr(response, field)
        token, pages = response.next_page_token, pages + 1
        if not token:
            break
    assert got == want and pages == math.ceil(len(want) / 2)
    if rpc == "ListCimaComparisons":
        assert want == ["blood_type", "sex", "smoking_status"]


def test_paging_walks_the_whole_answer_and_the_token_is_bound(cima, db):
    want = rows(db, f"SELECT * FROM cima_differential WHERE {CYTOSIG} AND activity_diff IS NOT NULL "
                    "ORDER BY comparison, cell_type, group1, group2, signature")
    got, token = [], ""
    while True:
        response = call(cima, "ListCimaDifferential", {"page_size": 100, "page_token": token})
        got += response.differentials
        token = response.next_page_token
        if not token:
            break
    assert len(want) > 100
    assert_rows(got, want)
    first = call(cima, "ListCimaDifferential", {"page_size": 100})
    with pytest.raises(grpc.RpcError) as err:
        call(cima, "ListCimaDifferential", {"comparison": "sex", "page_size": 100, "page_token": first.next_page_token})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def assert_matrix(matrix, db, cells_sql: str, rows_sql: str | None = None, columns_sql: str | None = None):
    """`cells_sql` yields (row, column, value); rows and columns sorted unless their own SQL says."""
    cells = {(r, c): v for r, c, v in db.sql(cells_sql).fetchall()}
    want_rows = [r[0] for r in db.sql(rows_sql).fetchall()] if rows_sql else sorted({r for r, _ in cells})
    want_columns = [c[0] for c in db.sql(columns_sql).fetchall()] if columns_sql else sorted({c for _, c in cells})
    assert list(matrix.rows) == want_rows and list(matrix.columns) == want_columns and len(want_rows) > 1
    for r, row in zip(want_rows, matrix.values):
        for c, v in zip(want_columns, row.values):
            if cells.get((r, c)) is None:
                assert math.isnan(v)
            else:
                assert v == pytest.approx(cells[r, c])


MATRIX_CASES = [
    ("GetCimaActivityHeatmap", {}, f"SELECT cell_type, signature, mean_activity FROM cima_celltype WHERE {CYTOSIG}",
     None, None),
    ("GetCimaActivityHeatmap", {"signature_type": "SecAct"},
     "SELECT cell_type, signature, mean_activity FROM cima_celltype WHERE signature_type = 'SecAct'", None, None),
    ("GetCimaCorrelationHeatmap", {"category": "age"},
     f"SELECT cell_type, signature, rho FROM cima_celltype_correlations WHERE {CYTOSIG} AND category = 'age'",
     None, None),
    ("GetCimaCorrelationHeatmap", {"category": "biochemistry", "signature_type": "SecAct"},
     "SELECT feature, signature, rho FROM cima_correlations WHERE signature_type = 'SecAct' "
     "AND category = 'biochemistry'", None, None),
    ("GetCimaCellTypeCorrelationMatrix", {},
     f"SELECT a.cell_type, b.cell_type, corr(a.mean_activity, b.mean_activity) FROM cima_celltype a "
     f"JOIN cima_celltype b ON a.signature = b.signature AND a.signature_type = b.signature_type "
     f"WHERE a.{CYTOSIG} GROUP BY ALL", None, None),
    ("GetCimaAgeBmiHeatmap", {"section": "age", "signature": "IL6"},
     f"SELECT cell_type, bin, median FROM age_bmi_boxplots WHERE atlas = 'cima' AND section = 'age' AND {CYTOSIG} "
     "AND signature = 'IL6' AND cell_type <> 'All'", None,
     f"SELECT bin FROM age_bmi_boxplots WHERE atlas = 'cima' AND section = 'age' AND {CYTOSIG} AND signature = 'IL6' "
     "AND cell_type <> 'All' GROUP BY bin ORDER BY min(bin_low), bin"),
    ("GetCimaAgeBmiHeatmap", {"section": "bmi", "signature": "IL6", "signature_type": "SecAct"},
     "SELECT cell_type, bin, median FROM age_bmi_boxplots WHERE atlas = 'cima' AND section = 'bmi' "
     "AND signature_type = 'SecAct' AND signature = 'IL6' AND cell_type <> 'All'", None,
     "SELECT bin FROM age_bmi_boxplots WHERE atlas = 'cima' AND section = 'bmi' AND signature_type = 'SecAct' "
     "AND signature = 'IL6' AND cell_type <> 'All' GROUP BY bin ORDER BY min(bin_low), bin"),
]


@pytest.mark.parametrize("rpc,request_,cells,rows_sql,columns_sql", MATRIX_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(MATRIX_CASES)])
def test_matrices_match_duckdb(cima, db, rpc, request_, cells, rows_sql, columns_sql):
    response = call(cima, rpc, request_)
    assert_matrix(response.matrix, db, cells, rows_sql, columns_sql)
    assert response.signature_type == request_.get("signature_type", "CytoSig")


def test_age_heatmap_orders_bins_by_their_lower_edge(cima):
    columns = list(call(cima, "GetCimaAgeBmiHeatmap", {"section": "age", "signature": "IL6"}).matrix.columns)
    assert columns == ["<30", "30-39", "40-49", "50-59", "60-69", "70+"]
    columns = list(call(cima, "GetCimaAgeBmiHeatmap", {"section": "bmi", "signature": "IL6"}).matrix.columns)
    assert columns == ["Underweight", "Normal", "Overweight", "Obese"]


def test_summary_matches_summary_stats(cima, db):
    response = call(cima, "GetCimaSummary")
    figures = dict(db.sql("SELECT stat, value FROM summary_stats WHERE atlas = 'cima' AND ordinal = 0").fetchall())
    assert {s.stat: s.value for s in response.figures} == figures
    assert response.n_samples == figures["n_samples"]
    assert response.n_cytosig_signatures == figures["n_cytokines_cytosig"]
    assert response.n_secact_signatures == figures["n_proteins_secact"]
    assert response.n_differential_tests == figures["n_differential"]
    assert response.n_metabolite_correlations == figures["n_metabolite_correlations"]
    assert (response.significant_age, response.significant_bmi) == (figures["significant_age"],
                                                                     figures["significant_bmi"])
    # P06 writes no n_cell_types or n_cells: the first is counted, the second stays unset
    assert "n_cell_types" not in figures and "n_cells" not in figures
    assert response.n_cell_types == one(db, "SELECT count(DISTINCT cell_type) FROM cima_celltype")
    assert not response.HasField("n_cells")


def test_biochem_scatter_joins_activity_and_marker(cima, db):
    response = call(cima, "GetCimaBiochemScatter", {"signature": "IL6", "feature": "ALT", "page_size": 1000})
    want = rows(db, f"SELECT s.sample, s.activity, m.value, s.age, s.sex, s.bmi FROM cima_biochem_scatter s "
                    f"JOIN cima_biochem_scatter_markers m ON m.sample = s.sample AND m.feature = 'ALT' "
                    f"WHERE s.{CYTOSIG} AND s.signature = 'IL6' ORDER BY s.sample")
    assert len(want) > 10
    assert_rows(response.points, want)
    assert (response.signature, response.signature_type, response.feature) == ("IL6", "CytoSig", "ALT")
    assert_rows([response.correlation], rows(
        db, f"SELECT * FROM cima_correlations WHERE {CYTOSIG} AND category = 'biochemistry' AND feature = 'ALT' "
            "AND signature = 'IL6'"))
    page = call(cima, "GetCimaBiochemScatter", {"signature": "IL6", "feature": "ALT", "page_size": 10})
    rest = call(cima, "GetCimaBiochemScatter", {"signature": "IL6", "feature": "ALT", "page_size": 1000,
                                                "page_token": page.next_page_token})
    assert [p.sample for p in (*page.points, *rest.points)] == [w["sample"] for w in want]
    # Asked as typed (il6): each side of the join filters by the name the check resolved.
    assert_rows(call(cima, "GetCimaBiochemScatter", {"signature": "il6", "feature": "ALT", "page_size": 1000}).points,
                want)


def test_biochem_samples_lists_donors_markers_and_signatures(cima, db):
    response = call(cima, "GetCimaBiochemSamples")
    assert list(response.biochem_variables) == [r[0] for r in db.sql(
        "SELECT feature FROM cima_biochem_scatter_markers GROUP BY ALL ORDER BY min(feature_order)").fetchall()]
    assert list(response.biochem_variables)[:3] == ["ALT", "AST", "ALP"]  # the file's order, not sorted
    for field, kind in (("cytokines", "CytoSig"), ("secact_proteins", "SecAct")):
        assert list(getattr(response, field)) == [r[0] for r in db.sql(
            f"SELECT DISTINCT signature FROM cima_biochem_scatter WHERE signature_type = '{kind}' ORDER BY 1"
        ).fetchall()]
    assert_rows(response.samples, rows(db, "SELECT DISTINCT sample, age, sex, bmi FROM cima_biochem_scatter "
                                           "ORDER BY sample"))


def test_population_stratification_matches_duckdb(cima, db):
    response = call(cima, "GetCimaPopulationStratification", {"signature_type": "SecAct"})
    assert list(response.signatures) == [r[0] for r in db.sql(
        "SELECT DISTINCT signature FROM cima_population_stratification_means WHERE signature_type = 'SecAct' "
        "ORDER BY 1").fetchall()]
    assert_rows(response.group_means, rows(db, "SELECT * FROM cima_population_stratification_means WHERE "
                                               "signature_type = 'SecAct' ORDER BY variable, group_order, signature"))
    assert_rows(response.effects, rows(db, "SELECT * FROM cima_population_stratification WHERE "
                                           "signature_type = 'SecAct' ORDER BY variable, signature"))
    sex = call(cima, "GetCimaPopulationStratification", {"variable": "sex"})
    assert {m.variable for m in sex.group_means} == {e.variable for e in sex.effects} == {"sex"}
    assert len(sex.effects) == one(db, f"SELECT count(*) FROM cima_population_stratification WHERE {CYTOSIG} "
                                       "AND variable = 'sex'")


@pytest.mark.parametrize("request_", [{"signature": "IL6"}, {"signature": "IFNG", "variable": "age"},
                                      {"signature": "IL6", "variable": "smoking", "signature_type": "SecAct"}])
def test_stratification_of_one_signature(cima, db, request_):
    response = call(cima, "GetCimaStratification", request_)
    kind, variable = request_.get("signature_type", "CytoSig"), request_.get("variable", "sex")
    where = f"signature_type = '{kind}' AND variable = '{variable}' AND signature = '{request_['signature']}'"
    assert response.variable == variable
    assert_rows(response.groups, rows(db, f"SELECT * FROM cima_population_stratification_means WHERE {where} "
                                          "ORDER BY group_order"))
    assert [g.group_name for g in response.groups][:2] in (["Male", "Female"], ["Young (<40)", "Middle (40-60)"],
                                                           ["Never", "Former"])
    assert_rows([response.effect], rows(db, f"SELECT * FROM cima_population_stratification WHERE {where}"))


@pytest.mark.parametrize("table,request_", [("cima_eqtl_top", {}), ("cima_eqtl", {"full": True})])
def test_eqtl_summary_counts_the_table(cima, db, table, request_):
    response = call(cima, "GetCimaEqtlSummary", request_)
    total, cells, genes = db.sql(f"SELECT count(*), count(DISTINCT cell_type), count(DISTINCT gene) FROM {table}"
                                 ).fetchall()[0]
    assert (response.total_eqtls, response.n_cell_types, response.n_genes) == (total, cells, genes)
    assert list(response.cell_types) == [r[0] for r in db.sql(f"SELECT DISTINCT cell_type FROM {table} ORDER BY 1"
                                                              ).fetchall()]
    assert list(response.genes) == [r[0] for r in db.sql(f"SELECT DISTINCT gene FROM {table} ORDER BY 1").fetchall()]


# -- bad input: every RPC, the right code, and a message that says what was wrong -----------------

BAD_INPUT = [
    ("GetCimaSummary", None, None, None),  # takes no input: nothing can be wrong
    ("ListCimaCellTypes", {"page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("ListCimaSignatures", {"signature_type": "cytosig"}, "INVALID_ARGUMENT", "did you mean 'CytoSig'"),
    ("ListCimaBiochemVariables", {"page_token": "garbage"}, "INVALID_ARGUMENT", "page_token"),
    ("ListCimaComparisons", {"signature_type": "LinCytoSig"}, "INVALID_ARGUMENT", "CytoSig, SecAct"),
    ("ListCimaCellTypeActivity", {"cell_type": "CD4_naive"}, "NOT_FOUND", "did you mean 'CD4_Naive'"),
    ("ListCimaCorrelations", {}, "INVALID_ARGUMENT", "category must be one of age, bmi, biochemistry"),
    ("ListCimaCorrelations", {"category": "metabolites"}, "INVALID_ARGUMENT", "got 'metabolites'"),
    ("ListCimaCorrelations", {"category": "age", "feature": "ALT"}, "INVALID_ARGUMENT", "feature applies"),
    ("ListCimaCorrelations", {"category": "biochemistry", "cell_type": "CD4_Naive"}, "NOT_FOUND",
     "valid values: All"),
    ("ListCimaCorrelations", {"category": "bmi", "cell_type": "T cell"}, "NOT_FOUND", "cell_type 'T cell'"),
    ("ListCimaMetaboliteCorrelations", {"feature": "glucose"}, "NOT_FOUND", "feature 'glucose'"),
    ("GetCimaCellTypeCorrelationMatrix", {"signature_type": "secact"}, "INVALID_ARGUMENT", "did you mean 'SecAct'"),
    ("ListCimaDifferential", {"comparison": "smoke"}, "NOT_FOUND", "valid values: blood_type, sex, smoking_status"),
    ("ListCimaDifferential", {"comparison": "sex", "group1": "A"}, "NOT_FOUND", "comparison = 'sex'"),
    ("ListCimaDifferential", {"max_qvalue": "NaN"}, "INVALID_ARGUMENT", "NaN"),
    ("ListCimaAgeBmiBoxplots", {"signature": "IL6"}, "INVALID_ARGUMENT", "section must be one of age, bmi"),
    ("ListCimaAgeBmiBoxplots", {"section": "age"}, "INVALID_ARGUMENT", "`signature` is required"),
    ("ListCimaAgeBmiBoxplots", {"section": "age", "signature": "IL6", "cell_type": "T_CD4_Naive"}, "NOT_FOUND",
     "atlas = 'cima'"),
    ("GetCimaAgeBmiHeatmap", {"section": "weight", "signature": "IL6"}, "INVALID_ARGUMENT", "got 'weight'"),
    ("GetCimaAgeBmiHeatmap", {"section": "age", "signature": "IL-6"}, "NOT_FOUND", "did you mean 'IL6'"),
    ("GetCimaBiochemScatter", {"signature": "IL6", "feature": "alt"}, "NOT_FOUND", "did you mean 'ALT'"),
    ("GetCimaBiochemScatter", {"feature": "ALT"}, "INVALID_ARGUMENT", "`signature` is required"),
    ("GetCimaBiochemSamples", None, None, None),  # takes no input
    ("GetCimaPopulationStratification", {"variable": "gender"}, "INVALID_ARGUMENT", "variable must be one of"),
    ("GetCimaStratification", {"signature": "IFNGG"}, "NOT_FOUND", "did you mean 'IFNG'"),
    ("GetCimaStratification", {}, "INVALID_ARGUMENT", "`signature` is required"),
    ("GetCimaEqtlSummary", None, None, None),  # a bool only
    ("ListCimaEqtls", {"cell_type": "CD4_Naive"}, "NOT_FOUND", "cell_type 'CD4_Naive' is not in cima_eqtl_top"),
    ("ListCimaEqtls", {"page_size": -3}, "INVALID_ARGUMENT", "page_size"),
    ("GetCimaActivityHeatmap", {"signature_type": "Cytosig"}, "INVALID_ARGUMENT", "did you mean 'CytoSig'"),
    ("GetCimaCorrelationHeatmap", {"category": "metabolites"}, "INVALID_ARGUMENT", "age, bmi, biochemistry"),
]


@pytest.mark.parametrize("rpc,request_,code,text", [c for c in BAD_INPUT if c[2]],
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_INPUT) if c[2]])
def test_bad_input_gets_the_right_code_and_names_the_problem(cima, rpc, request_, code, text):
    with pytest.raises(grpc.RpcError) as err:
        call(cima, rpc, request_)
    assert err.value.code().name == code
    assert text in err.value.details()
    assert len(status_details(err.value, error_details_pb2.ErrorInfo)) == 1


def test_every_rpc_is_covered_by_the_tests():
    """A new CimaService RPC must come with a DuckDB comparison and a bad-input case here."""
    covered = {c[0] for c in LIST_CASES + NAME_CASES + MATRIX_CASES}
    covered |= {"GetCimaSummary", "GetCimaBiochemScatter", "GetCimaBiochemSamples", "GetCimaPopulationStratification",
                "GetCimaStratification", "GetCimaEqtlSummary"}  # the tests of their own above
    bad = {c[0] for c in BAD_INPUT}
    for rpc in pb.DESCRIPTOR.services_by_name["CimaService"].methods_by_name:
        assert rpc in covered and rpc in bad, rpc


# -- grpcurl (reflection, no proto files) ---------------------------------------------------------


def test_grpcurl_lists_the_service_and_calls_it(addresses, db):
    address = addresses["atlas"]
    out = grpcurl(address, "list")
    assert out.returncode == 0, out.stderr
    assert SERVICE in out.stdout.split()
    out = grpcurl(address, "grpc.health.v1.Health/Check", data={"service": SERVICE})
    assert json.loads(out.stdout) == {"status": "SERVING"}
    out = grpcurl(address, f"{SERVICE}/ListCimaDifferential",
                  data={"comparison": "smoking", "signature": "IL6", "page_size": 5})
    assert out.returncode == 0, out.stderr
    got = [(r["group1"], r["group2"], r["activity_diff"]) for r in json.loads(out.stdout)["differentials"]]
    assert got == db.sql(f"SELECT group1, group2, activity_diff FROM cima_differential WHERE {CYTOSIG} "
                         "AND comparison = 'smoking_status' AND signature = 'IL6' ORDER BY group1, group2").fetchall()
    out = grpcurl(address, f"{SERVICE}/ListCimaAgeBmiBoxplots", data={"section": "bmi", "signature": "IL6"})
    assert out.returncode == 0, out.stderr
    assert [b["bin"] for b in json.loads(out.stdout)["boxplots"]] == [r[0] for r in db.sql(
        f"SELECT bin FROM age_bmi_boxplots WHERE atlas = 'cima' AND section = 'bmi' AND {CYTOSIG} "
        "AND signature = 'IL6' AND cell_type = 'All' ORDER BY bin_low").fetchall()]
    out = grpcurl(address, f"{SERVICE}/ListCimaCorrelations", data={"category": "weight"})
    assert "Code: InvalidArgument" in out.stderr and "category must be one of" in out.stderr


# -- demo invariants of the CIMA and age/BMI tables (consistent with the tables they derive from) --


def test_tables_derived_from_others_agree(db):
    # the top eQTL file is the rows of the full one with the smallest p
    top = one(db, "SELECT count(*) FROM cima_eqtl_top")
    assert one(db, "SELECT count(*) FROM cima_eqtl_top t JOIN cima_eqtl e USING (cell_type, gene, variant) "
                   "WHERE t.pvalue = e.pvalue AND t.beta = e.beta AND t.af = e.af") == top
    assert one(db, "SELECT max(pvalue) FROM cima_eqtl_top") <= one(
        db, "SELECT min(pvalue) FROM cima_eqtl ANTI JOIN cima_eqtl_top USING (cell_type, gene, variant)")
    assert one(db, "SELECT count(*) FROM (SELECT cell_type, gene FROM cima_eqtl GROUP BY ALL HAVING count(*) > 1)") == 0
    # the CIMA single-cell file is the CIMA CytoSig slice of singlecell_activity
    assert one(db, "SELECT count(*) FROM cima_singlecell_cytosig") == one(
        db, f"SELECT count(*) FROM singlecell_activity WHERE atlas = 'CIMA' AND {CYTOSIG}")
    assert one(db, f"SELECT count(*) FROM cima_singlecell_cytosig c JOIN singlecell_activity s "
                   f"USING (cell_type, signature_type, signature) WHERE s.atlas = 'CIMA' "
                   f"AND c.mean_activity = s.mean_activity AND c.std_activity = s.std_activity "
                   f"AND c.n_cells = s.n_cells AND c.min_activity <= c.mean_activity "
                   f"AND c.mean_activity <= c.max_activity") == one(db, "SELECT count(*) FROM cima_singlecell_cytosig")
    # the filtered twin: the same rows for all CytoSig and a prefix of the SecAct signatures
    full, twin = "age_bmi_boxplots", "age_bmi_boxplots_filtered"
    key = "signature_type, atlas, section, signature, cell_type, bin"
    assert one(db, f"SELECT count(*) FROM (SELECT * FROM {twin} EXCEPT SELECT * FROM {full})") == 0
    assert one(db, f"SELECT count(*) FROM (SELECT {key} FROM {full} WHERE signature_type = 'SecAct' AND "
                   f"signature IN (SELECT signature FROM {twin} WHERE signature_type = 'SecAct') "
                   f"EXCEPT SELECT {key} FROM {twin})") == 0
    assert one(db, f"SELECT count(*) FROM {full} WHERE {CYTOSIG}") == one(
        db, f"SELECT count(*) FROM {twin} WHERE {CYTOSIG}")
    assert 0 < one(db, f"SELECT count(DISTINCT signature) FROM {twin} WHERE signature_type = 'SecAct'") < one(
        db, f"SELECT count(DISTINCT signature) FROM {full} WHERE signature_type = 'SecAct'")
    # the derived cell-type similarity is a symmetric correlation matrix
    assert one(db, "SELECT max(abs(correlation - 1)) FROM cima_celltype_similarity "
                   "WHERE cell_type_1 = cell_type_2") < 1e-9
    assert one(db, "SELECT count(*) FROM cima_celltype_similarity a JOIN cima_celltype_similarity b ON "
                   "a.signature_type = b.signature_type AND a.cell_type_1 = b.cell_type_2 AND a.cell_type_2 = "
                   "b.cell_type_1 WHERE abs(a.correlation - b.correlation) > 1e-9") == 0


def test_one_cohort_behind_the_cima_tables(db):
    """Every CIMA table comes from one set of donors and cell types, as in the pipeline."""
    donors = one(db, "SELECT value FROM summary_stats WHERE atlas = 'cima' AND stat = 'n_samples'")
    assert one(db, "SELECT max(n) FROM cima_correlations WHERE category = 'age'") == donors
    assert one(db, "SELECT max(n_g1 + n_g2) FROM cima_differential WHERE comparison = 'sex'") == donors
    assert one(db, f"SELECT sum(n) FROM age_bmi_boxplots WHERE atlas = 'cima' AND section = 'age' AND {CYTOSIG} "
                   "AND cell_type = 'All' AND signature = 'IL6'") == donors  # every age bin holds >= 3 donors
    assert one(db, "SELECT count(*) FROM cima_celltype_correlations c JOIN cima_celltype t USING "
                   "(cell_type, signature_type, signature) WHERE c.n > t.n_samples") == 0
    alt = one(db, "SELECT count(value) FROM cima_biochem_scatter_markers WHERE feature = 'ALT'")
    assert alt == one(db, "SELECT max(n) FROM cima_correlations WHERE category = 'biochemistry' AND feature = 'ALT'")
    assert one(db, "SELECT count(DISTINCT sample) FROM cima_biochem_scatter_markers") == one(
        db, "SELECT count(DISTINCT sample) FROM cima_biochem_scatter")
    assert {r[0] for r in db.sql("SELECT DISTINCT cell_type FROM cima_celltype_correlations").fetchall()} == {
        r[0] for r in db.sql("SELECT DISTINCT cell_type FROM cima_celltype").fetchall()} == {
        r[0] for r in db.sql("SELECT DISTINCT cell_type FROM age_bmi_boxplots WHERE atlas = 'cima' "
                             "AND cell_type <> 'All'").fetchall()}
    # the summary figures are the counts of the tables, as P06 takes them from the pipeline's CSVs
    figures = dict(db.sql("SELECT stat, value FROM summary_stats WHERE atlas = 'cima' AND ordinal = 0").fetchall())
    for stat, sql in (("n_age_correlations", "SELECT count(*) FROM cima_correlations WHERE category = 'age'"),
                      ("n_bmi_correlations", "SELECT count(*) FROM cima_correlations WHERE category = 'bmi'"),
                      ("n_biochem_correlations",
                       "SELECT count(*) FROM cima_correlations WHERE category = 'biochemistry'"),
                      ("n_differential", "SELECT count(*) FROM cima_differential"),
                      ("n_cytokines_cytosig", f"SELECT count(DISTINCT signature) FROM cima_celltype WHERE {CYTOSIG}")):
        assert figures[stat] == one(db, sql), stat
    rounded = one(db, "SELECT count(*) FROM cima_correlations WHERE category = 'age' AND qvalue < 0.05")
    assert abs(figures["significant_age"] - rounded) <= 1  # P06 counts unrounded q; the file has 4 decimals


def test_differential_and_boxplot_shapes(db):
    assert one(db, "SELECT max(abs(activity_diff - (median_g1 - median_g2))) FROM cima_differential") < 1e-9
    pairs = db.sql("SELECT comparison, count(DISTINCT (group1, group2)) FROM cima_differential GROUP BY ALL "
                   "ORDER BY 1").fetchall()
    assert pairs == [("blood_type", 6), ("sex", 1), ("smoking_status", 3)]  # every pair of the observed groups
    assert {r[0] for r in db.sql("SELECT DISTINCT cell_type FROM cima_differential").fetchall()} == {"All"}
    # every record shape of the real file: quartiles written, computed from values, or absent
    assert one(db, "SELECT count(*) FROM age_bmi_boxplots WHERE NOT (min <= q1 AND q1 <= median AND "
                   "median <= q3 AND q3 <= max)") == 0
    assert one(db, "SELECT count(*) FROM age_bmi_boxplots WHERE atlas = 'inflammation' AND q1 IS NULL "
                   f"AND {CYTOSIG} AND cell_type <> 'All'") > 0
    bins = db.sql("SELECT atlas, signature_type, cell_type = 'All', string_agg(DISTINCT bin, ',' ORDER BY bin) "
                  "FROM age_bmi_boxplots WHERE section = 'age' GROUP BY ALL ORDER BY ALL").fetchall()
    assert ("cima", "CytoSig", True, "30-40,40-50,50-60,<30,>60") in bins
    assert ("cima", "SecAct", True, "30-39,40-49,50-59,60-69,70+,<30") in bins
    assert one(db, "SELECT count(*) FROM cima_metabolites_top") == 500
    assert one(db, "SELECT count(*) FROM cima_metabolites_top a JOIN cima_metabolites_top b USING (signature_type) "
                   "WHERE a.rank < b.rank AND abs(a.rho) < abs(b.rho)") == 0


# -- the nested sources, read by their tables' own source_sql (hand-written files, no demo) ------


def read_source(spec_name: str, document, tmp_path) -> list[dict]:
    import duckdb

    from builders.ingest import SourceFile, TableSource
    from cytoatlas.domains.atlas import DOMAIN

    path = tmp_path / "source.json"
    path.write_text(json.dumps(document))
    con = duckdb.connect()
    source = TableSource(con, DOMAIN.table(spec_name), [SourceFile(path, path.name)], tmp_path)
    return con.sql(f"SELECT * FROM ({source.select_sql()}) ORDER BY ALL").to_arrow_table().to_pylist()


def test_age_bmi_records_of_every_shape(tmp_path):
    record = {"signature": "IL6", "sig_type": "CytoSig", "mean": 2.5, "median": 2.5, "n": 4}
    document = {
        "cima": {"age": [{**record, "bin": "30-40", "values": [1.0, 2.0, 3.0, 4.0]},  # P06: no cell_type
                         {**record, "sig_type": "SecAct", "bin": "70+", "cell_type": None, "min": 0.5, "q1": 1.5,
                          "q3": 3.5, "max": 4.5}],  # the archive's whiskers
                 "bmi": [], "cytosig_signatures": ["IL6"], "cell_types": ["Mono_CD14"]},
        "inflammation": {"bmi": [{**record, "cell_type": "Mono", "bin": "Obese"},  # mean, median, n only
                                 {**record, "cell_type": "All", "bin": "Normal", "values": [1.0, 4.0]}],
                         "age_bins": ["<30"]}}
    got = [{k: r[k] for k in ("atlas", "section", "signature_type", "cell_type", "bin", "bin_low", "min", "q1",
                              "median", "q3", "max")} for r in read_source("age_bmi_boxplots", document, tmp_path)]
    assert got == [
        dict(atlas="cima", section="age", signature_type="CytoSig", cell_type="All", bin="30-40", bin_low=30.0,
             min=1.0, q1=1.75, median=2.5, q3=3.25, max=4.0),  # quartiles from values, median as written
        dict(atlas="cima", section="age", signature_type="SecAct", cell_type="All", bin="70+", bin_low=70.0,
             min=0.5, q1=1.5, median=2.5, q3=3.5, max=4.5),
        dict(atlas="inflammation", section="bmi", signature_type="CytoSig", cell_type="All", bin="Normal",
             bin_low=18.5, min=1.0, q1=1.75, median=2.5, q3=3.25, max=4.0),
        dict(atlas="inflammation", section="bmi", signature_type="CytoSig", cell_type="Mono", bin="Obese",
             bin_low=30.0, min=None, q1=None, median=2.5, q3=None, max=None)]


def test_stratification_effects_name_their_groups_by_the_count_keys(tmp_path):
    effect = {"cytokine": "IL6", "signature": "IL6", "effect": 0.1, "pvalue": 0.5}
    groups = {"smoking": {"Never": {"IL6": 0.1}, "Current": {"IL6": 0.3}}}
    document = {"SecAct": {"signatures": ["IL6"], "groups": groups,
                           "effect_sizes": {"age": [{**effect, "n_older": 90, "n_young": 95}],
                                            "smoking": [{**effect, "n_current": 40, "n_never": 300}]}}}
    got = [(r["variable"], r["group1"], r["group2"], r["n_group1"], r["n_group2"])
           for r in read_source("cima_population_stratification", document, tmp_path)]
    assert got == [("age", "Older (>60)", "Young (<40)", 90, 95), ("smoking", "Current", "Never", 40, 300)]
    means = read_source("cima_population_stratification_means", document, tmp_path)
    assert [(r["group_name"], r["group_order"], r["mean_activity"]) for r in means] == [
        ("Current", 2, 0.3), ("Never", 1, 0.1)]
