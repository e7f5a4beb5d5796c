"""InflammationService, and the AtlasService RPCs the Inflammation pages reuse, against the real
server: every RPC's answer equals the same question asked of DuckDB in-process (SQL written here
from the tables' meaning, not from the handlers), bad input for every RPC with the right code and
a message naming the problem, paging, grpcurl; and the demo's Inflammation tables agree with the
tables they are derived from."""

from __future__ import annotations

import json
import math

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from cytoatlas.atlas.v1 import atlas_service_pb2, atlas_service_pb2_grpc
from cytoatlas.atlas.v1 import inflammation_service_pb2 as pb
from cytoatlas.atlas.v1 import inflammation_service_pb2_grpc as pb_grpc
from tests.conftest import field_value as value, status_details
from tests.test_grpcurl import grpcurl

SERVICE = "cytoatlas.atlas.v1.InflammationService"
CYTOSIG = "signature_type = 'CytoSig'"
DRIVING = "pvalue < 0.05 AND abs(effect) > 0.5"
KEY = {  # the tables' keys, which break ties in every order
    "inflammation_disease": "signature_type, disease, cell_type, signature",
    "inflammation_cell_drivers": "signature_type, disease, cell_type, signature",
    "treatment_response_features": "signature_type, disease, model, signature",
    "inflammation_severity": "signature_type, disease, severity, signature",
    "inflammation_longitudinal": "signature_type, disease, timepoint, signature",
}
# Entities the demo draws at random (which diseases have study-matched healthy samples): picked
# from the data, then used in requests and SQL as {name}.
PICKS = {"driver_disease": f"SELECT min(disease) FROM inflammation_cell_drivers WHERE {DRIVING}"}


@pytest.fixture(scope="module")
def stubs(addresses):
    with grpc.insecure_channel(addresses["atlas"]) as channel:
        yield {"InflammationService": pb_grpc.InflammationServiceStub(channel),
               "AtlasService": atlas_service_pb2_grpc.AtlasServiceStub(channel)}


@pytest.fixture(scope="module")
def db(local):
    return local["atlas"]


@pytest.fixture(scope="module")
def picks(db):
    return {name: db.execute(sql).fetchall()[0][0] for name, sql in PICKS.items()}


def call(stubs, rpc: str, request: dict | None = None, picks: dict | None = None):
    """`rpc` ("Rpc" of InflammationService or "AtlasService.Rpc") with a request given as JSON."""
    service, _, name = rpc.rpartition(".")
    module = atlas_service_pb2 if service == "AtlasService" else pb
    method = module.DESCRIPTOR.services_by_name[service or "InflammationService"].methods_by_name[name]
    request = {k: v.format(**picks) if isinstance(v, str) and picks else v for k, v in (request or {}).items()}
    message = json_format.ParseDict(request, getattr(module, method.input_type.name)())
    return getattr(stubs[service or "InflammationService"], name)(message, timeout=60)


def assert_rows(messages, expected: list[dict]):
    assert len(messages) == len(expected)
    for got, want in zip(messages, expected):
        for column, v in want.items():
            if column in got.DESCRIPTOR.fields_by_name:
                assert value(got, column) == (pytest.approx(v) if isinstance(v, (float, list)) else v), column


def query(db, sql: str, picks: dict) -> list[dict]:
    return db.sql(sql.format(**picks)).to_arrow_table().to_pylist()


# -- list RPCs: (rpc, request, response field, the same question in SQL) ---------------------------
# Pages are sized to hold the whole answer (paging is tested on its own below).

LIST_CASES = [
    ("ListInflammationDiseases", {}, "diseases",
     f"SELECT disease, disease_group, count(DISTINCT cell_type) AS n_cell_types FROM inflammation_disease "
     f"WHERE {CYTOSIG} GROUP BY ALL ORDER BY disease, disease_group"),
    ("ListInflammationDiseaseActivity", {"disease": "COVID", "page_size": 1000}, "disease_activities",
     f"SELECT * FROM inflammation_disease WHERE {CYTOSIG} AND disease = 'COVID' ORDER BY {KEY['inflammation_disease']}"),
    ("ListInflammationDiseaseActivity", {"signature_type": "SecAct", "cell_type": "Mono_classical",
                                         "disease_group": "IMID"}, "disease_activities",
     "SELECT * FROM inflammation_disease WHERE signature_type = 'SecAct' AND cell_type = 'Mono_classical' "
     f"AND disease_group = 'IMID' ORDER BY {KEY['inflammation_disease']}"),
    ("ListInflammationDiseaseGroupActivity", {"disease_group": "all", "page_size": 1000}, "disease_group_activities",
     "WITH g AS (SELECT signature, cell_type, disease_group, avg(mean_activity) AS m FROM inflammation_disease "
     f"WHERE {CYTOSIG} GROUP BY ALL) SELECT signature, cell_type, 'all' AS disease_group, avg(m) AS mean_activity, "
     "count(*) AS n_averaged FROM g GROUP BY signature, cell_type ORDER BY signature, cell_type"),
    ("ListInflammationDiseaseGroupActivity", {"signature": "IL6", "cell_type": "Mono_classical"},
     "disease_group_activities",
     "SELECT disease_group, avg(mean_activity) AS mean_activity, count(*) AS n_averaged FROM inflammation_disease "
     f"WHERE {CYTOSIG} AND signature = 'IL6' AND cell_type = 'Mono_classical' GROUP BY disease_group "
     "UNION ALL SELECT 'all', avg(m), count(*) FROM (SELECT disease_group, avg(mean_activity) AS m FROM "
     f"inflammation_disease WHERE {CYTOSIG} AND signature = 'IL6' AND cell_type = 'Mono_classical' GROUP BY ALL) "
     "ORDER BY disease_group"),
    ("ListInflammationCellDrivers", {"disease": "{driver_disease}", "driving_only": True}, "cell_drivers",
     f"SELECT * EXCLUDE (is_driving), true AS is_driving FROM inflammation_cell_drivers WHERE {CYTOSIG} AND disease = '{{driver_disease}}' "
     f"AND {DRIVING} ORDER BY {KEY['inflammation_cell_drivers']}"),
    ("ListInflammationCellDrivers", {"signature_type": "SecAct", "page_size": 5000}, "cell_drivers",
     f"SELECT * EXCLUDE (is_driving), coalesce({DRIVING}, false) AS is_driving FROM inflammation_cell_drivers WHERE "
     f"signature_type = 'SecAct' ORDER BY {KEY['inflammation_cell_drivers']}"),
    ("ListInflammationDrivingPopulations", {}, "driving_populations",
     "SELECT disease, cell_type, count(*) AS n_signatures, avg(abs(effect)) AS mean_activity_diff, "
     "list(signature ORDER BY abs(effect) DESC, signature)[1:5] AS top_signatures FROM inflammation_cell_drivers "
     f"WHERE {CYTOSIG} AND {DRIVING} GROUP BY ALL ORDER BY n_signatures DESC, disease, cell_type"),
    ("ListInflammationConservedPrograms", {"min_diseases": 2, "page_size": 1000}, "conserved_programs",
     "SELECT signature, signature_type, list(DISTINCT disease ORDER BY disease) AS diseases, count(DISTINCT disease) "
     "AS n_diseases, sum(mean_activity) / count(DISTINCT disease) AS mean_activity_diff, "
     "abs(sum(CASE WHEN mean_activity > 0 THEN 1 ELSE -1 END)) / count(*) AS consistency_score "
     f"FROM inflammation_disease WHERE {CYTOSIG} AND abs(mean_activity) > 0.5 GROUP BY ALL "
     "HAVING count(DISTINCT disease) >= 2 ORDER BY n_diseases DESC, signature"),
    ("ListInflammationConservedPrograms", {"signature_type": "SecAct"}, "conserved_programs",
     "SELECT signature, list(DISTINCT disease ORDER BY disease) AS diseases, count(DISTINCT disease) AS n_diseases "
     "FROM inflammation_disease WHERE signature_type = 'SecAct' AND abs(mean_activity) > 0.5 GROUP BY ALL "
     "HAVING count(DISTINCT disease) >= 3 ORDER BY n_diseases DESC, signature LIMIT 100"),
    ("ListInflammationTreatmentResponses", {}, "treatment_responses",
     "SELECT r.*, p.n_responders, p.n_non_responders FROM (SELECT disease, model, signature_type, max(auc) AS auc, "
     "max(n_samples) AS n_samples, count(*) AS n_points FROM treatment_response_roc GROUP BY ALL) AS r LEFT JOIN "
     "(SELECT disease, model, signature_type, count(*) FILTER (response = 'Responder') AS n_responders, "
     "count(*) FILTER (response = 'Non-responder') AS n_non_responders FROM treatment_response_predictions "
     f"GROUP BY ALL) AS p USING (disease, model, signature_type) WHERE {CYTOSIG} ORDER BY disease, model"),
    ("ListInflammationRocCurves", {"model": "Random Forest"}, "roc_curves",
     "SELECT disease, model, signature_type, max(auc) AS auc, max(n_samples) AS n_samples, "
     "list(fpr ORDER BY point) AS fpr, list(tpr ORDER BY point) AS tpr FROM treatment_response_roc "
     f"WHERE {CYTOSIG} AND model = 'Random Forest' GROUP BY ALL ORDER BY disease"),
    ("ListInflammationRocCurves", {"signature_type": "SecAct", "disease": "RA"}, "roc_curves",
     "SELECT model, max(auc) AS auc, list(fpr ORDER BY point) AS fpr, list(tpr ORDER BY point) AS tpr "
     "FROM treatment_response_roc WHERE signature_type = 'SecAct' AND disease = 'RA' GROUP BY ALL ORDER BY model"),
    ("ListInflammationFeatureImportance", {"disease": "RA"}, "features",
     "SELECT * EXCLUDE (rank), row_number() OVER (PARTITION BY disease, model ORDER BY importance DESC, signature) "
     "AS rank "
     f"FROM treatment_response_features WHERE {CYTOSIG} AND disease = 'RA' AND model = 'Random Forest' "
     f"ORDER BY importance DESC, {KEY['treatment_response_features']}"),
    ("ListInflammationFeatureImportance", {"model": "Logistic Regression", "signature_type": "SecAct"}, "features",
     "SELECT * FROM treatment_response_features WHERE signature_type = 'SecAct' AND model = 'Logistic Regression' "
     f"ORDER BY importance DESC, {KEY['treatment_response_features']}"),
    ("ListInflammationTreatmentPredictions", {"disease": "RA", "response": "Responder"}, "predictions",
     f"SELECT * FROM treatment_response_predictions WHERE {CYTOSIG} AND disease = 'RA' AND response = 'Responder' "
     "ORDER BY model, prediction"),
    ("ListInflammationCohortValidation", {"signature_type": "SecAct", "page_size": 5000}, "correlations",
     "SELECT * FROM cohort_validation WHERE signature_type = 'SecAct' ORDER BY signature"),
    ("ListInflammationCorrelations", {"page_size": 5000}, "correlations",
     f"SELECT * FROM inflammation_celltype_correlations WHERE {CYTOSIG} ORDER BY category, cell_type, signature"),
    ("ListInflammationCorrelations", {"category": "age", "cell_type": "Mono_classical", "signature_type": "SecAct"},
     "correlations", "SELECT * FROM inflammation_celltype_correlations WHERE signature_type = 'SecAct' "
     "AND category = 'age' AND cell_type = 'Mono_classical' ORDER BY signature"),
    ("ListInflammationSampleCorrelations", {"category": "bmi"}, "correlations",
     f"SELECT * FROM inflammation_correlations WHERE {CYTOSIG} AND category = 'bmi' ORDER BY signature"),
    ("ListInflammationSeverity", {"disease": "COVID", "page_size": 1000}, "severities",
     f"SELECT * FROM inflammation_severity WHERE {CYTOSIG} AND disease = 'COVID' "
     f"ORDER BY disease, severity_order NULLS LAST, signature, {KEY['inflammation_severity']}"),
    ("ListInflammationSeverity", {"signature": "IL6", "signature_type": "CytoSig"}, "severities",
     f"SELECT * FROM inflammation_severity WHERE {CYTOSIG} AND signature = 'IL6' "
     f"ORDER BY disease, severity_order NULLS LAST, signature, {KEY['inflammation_severity']}"),
    ("ListInflammationTemporalActivity", {"page_size": 1000}, "timepoint_activities",
     f"SELECT * FROM inflammation_longitudinal WHERE {CYTOSIG} "
     f"ORDER BY disease, timepoint_num NULLS LAST, signature, {KEY['inflammation_longitudinal']}"),
    ("ListInflammationTemporalActivity", {"disease": "COVID", "timepoint": "T1", "signature_type": "SecAct"},
     "timepoint_activities", "SELECT * FROM inflammation_longitudinal WHERE signature_type = 'SecAct' "
     "AND disease = 'COVID' AND timepoint = 'T1' ORDER BY signature"),
    # AtlasService RPCs the Inflammation pages reuse (/differential[-raw], /activity[/{cell_type}]).
    ("AtlasService.ListDiseaseDifferential", {"disease": "all", "page_size": 5000}, "differentials",
     f"SELECT * FROM inflammation_differential WHERE {CYTOSIG} ORDER BY disease, group1, group2, signature"),
    ("AtlasService.ListDiseaseDifferential", {"disease": "All Diseases", "signature_type": "SecAct"}, "differentials",
     "SELECT * FROM inflammation_differential WHERE signature_type = 'SecAct' AND disease = 'All Diseases' "
     "ORDER BY signature"),
    ("AtlasService.ListCellTypeSummaries", {"atlas": "Inflammation", "cell_type": "Mono_classical"},
     "cell_type_summaries", f"SELECT * FROM inflammation_celltype WHERE {CYTOSIG} AND cell_type = 'Mono_classical' "
     "ORDER BY signature"),
]


@pytest.mark.parametrize("rpc,request_,field,sql", LIST_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(LIST_CASES)])
def test_list_rpc_matches_duckdb(stubs, db, picks, rpc, request_, field, sql):
    want = query(db, sql, picks)
    assert want, "the case must select some rows, or it proves nothing"
    response = call(stubs, rpc, request_, picks)
    assert_rows(getattr(response, field), want)
    if "LIMIT" not in sql:
        assert response.next_page_token == ""


def test_differential_rows_say_which_healthy_samples_they_compare_with(stubs, db):
    rows = call(stubs, "AtlasService.ListDiseaseDifferential", {"disease": "all", "page_size": 5000}).differentials
    assert {r.comparison for r in rows} == {c for (c,) in db.execute(
        f"SELECT DISTINCT comparison FROM inflammation_differential WHERE {CYTOSIG}").fetchall()}
    assert "pooled" in {r.comparison for r in rows} and all(r.healthy_note for r in rows)


# -- name lists: sorted, distinct, and paged ----------------------------------------------------

NAME_CASES = [
    ("ListInflammationCellTypes", {}, "cell_types", f"SELECT DISTINCT cell_type FROM inflammation_celltype WHERE {CYTOSIG}"),
    ("ListInflammationSignatures", {"signature_type": "SecAct"}, "signatures",
     "SELECT DISTINCT signature FROM inflammation_celltype WHERE signature_type = 'SecAct'"),
    ("ListInflammationSeverityDiseases", {}, "diseases", "SELECT DISTINCT disease FROM inflammation_severity"),
    ("ListInflammationTemporalDiseases", {}, "diseases",
     "SELECT disease FROM inflammation_longitudinal GROUP BY disease HAVING count(DISTINCT timepoint) > 1"),
]


@pytest.mark.parametrize("rpc,request_,field,sql", NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_name_list_is_sorted_distinct_and_pages(stubs, db, rpc, request_, field, sql):
    want = [r[0] for r in db.execute(sql + " ORDER BY 1").fetchall()]
    assert want
    assert list(getattr(call(stubs, rpc, request_), field)) == want
    got, token = [], ""
    while True:  # pages of 2: every page but the last carries a token
        response = call(stubs, rpc, {**request_, "page_size": 2, "page_token": token})
        got += getattr(response, field)
        token = response.next_page_token
        if not token:
            break
    assert got == want


# -- matrices: (rpc, request, response field, cells in SQL (row, column, value), row order in SQL) ----

MATRIX_CASES = [
    ("GetInflammationActivityHeatmap", {}, "matrix",
     f"SELECT cell_type, signature, mean_activity FROM inflammation_celltype WHERE {CYTOSIG}", None),
    ("GetInflammationDiseaseActivitySummary", {"signature_type": "SecAct"}, "heatmap",
     "SELECT disease, signature, avg(mean_activity) FROM inflammation_disease WHERE signature_type = 'SecAct' "
     "GROUP BY ALL", None),
    ("GetInflammationDiseaseHeatmap", {}, "matrix",
     f"SELECT disease, signature, avg(mean_activity) FROM inflammation_disease WHERE {CYTOSIG} GROUP BY ALL", None),
    ("GetInflammationDiseaseHeatmap", {"value": "activity_diff"}, "matrix",
     f"SELECT disease, signature, activity_diff FROM inflammation_differential WHERE {CYTOSIG}", None),
    ("GetInflammationCellTypeDiseaseHeatmap", {"disease": "COVID"}, "matrix",
     f"SELECT cell_type, signature, mean_activity FROM inflammation_disease WHERE {CYTOSIG} AND disease = 'COVID'", None),
    ("GetInflammationCellTypeDiseaseHeatmap", {"disease": "{driver_disease}", "value": "effect"}, "matrix",
     f"SELECT cell_type, signature, effect FROM inflammation_cell_drivers WHERE {CYTOSIG} "
     "AND disease = '{driver_disease}'", None),
    ("GetInflammationSeverityHeatmap", {"disease": "COVID", "signature_type": "SecAct"}, "matrix",
     "SELECT severity, signature, mean_activity FROM inflammation_severity WHERE signature_type = 'SecAct' "
     "AND disease = 'COVID'",
     "SELECT severity FROM inflammation_severity WHERE disease = 'COVID' GROUP BY 1 ORDER BY min(severity_order), 1"),
    ("GetInflammationTemporalHeatmap", {"disease": "COVID"}, "matrix",
     f"SELECT timepoint, signature, mean_activity FROM inflammation_longitudinal WHERE {CYTOSIG} AND disease = 'COVID'",
     "SELECT timepoint FROM inflammation_longitudinal WHERE disease = 'COVID' GROUP BY 1 ORDER BY min(timepoint_num), 1"),
]


@pytest.mark.parametrize("rpc,request_,field,sql,row_sql", MATRIX_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(MATRIX_CASES)])
def test_matrix_matches_duckdb(stubs, db, picks, rpc, request_, field, sql, row_sql):
    cells = {(r, c): v for r, c, v in db.execute(sql.format(**picks)).fetchall()}
    rows = ([r for (r,) in db.execute(row_sql).fetchall()] if row_sql else sorted({r for r, _ in cells}))
    columns = sorted({c for _, c in cells})
    matrix = getattr(call(stubs, rpc, request_, picks), field)
    assert list(matrix.rows) == rows and list(matrix.columns) == columns and len(rows) >= 2
    for r, row in zip(rows, matrix.values):
        for c, v in zip(columns, row.values):
            assert v == pytest.approx(cells[r, c]) if (r, c) in cells else math.isnan(v), (r, c)


# -- one-off answers ------------------------------------------------------------------------------

def distinct(db, column: str, table: str, where: str = "TRUE") -> list:
    return [r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {where} ORDER BY 1").fetchall()]


def test_summary_matches_summary_stats(stubs, db):
    summary = call(stubs, "GetInflammationSummary")
    figure = lambda stat: db.execute("SELECT value FROM summary_stats WHERE atlas = 'inflammation' AND stat = ? "
                                     "AND ordinal = 0", [stat]).fetchall()[0][0]
    listed = lambda stat: [r[0] for r in db.execute("SELECT text FROM summary_stats WHERE atlas = 'inflammation' "
                                                    "AND stat = ? AND ordinal > 0 ORDER BY ordinal", [stat]).fetchall()]
    assert (summary.n_samples, summary.n_cell_types, summary.n_cells) == (
        figure("n_samples"), figure("n_cell_types"), figure("n_cells"))
    for field in ("diseases", "disease_groups", "cell_types", "cohorts"):
        assert list(getattr(summary, field)) == listed(field) != []
    assert (summary.n_diseases, summary.n_disease_groups) == (len(summary.diseases), len(summary.disease_groups))
    assert list(summary.signature_types) == distinct(db, "signature_type", "inflammation_celltype")


def test_disease_activity_summary_lists(stubs, db):
    summary = call(stubs, "GetInflammationDiseaseActivitySummary")
    where = CYTOSIG
    assert summary.signature_type == "CytoSig"
    assert list(summary.disease_groups) == distinct(db, "disease_group", "inflammation_disease", where)
    assert list(summary.signatures) == distinct(db, "signature", "inflammation_disease", where)
    assert list(summary.cell_types) == distinct(db, "cell_type", "inflammation_disease", where)
    assert_rows(summary.diseases, query(db, LIST_CASES[0][3], {}))


def test_cell_driver_sets_are_the_lists_beside_the_effects(stubs, source_dir):
    document = json.loads((source_dir / "visualization/data/inflammation_cell_drivers.json").read_text())
    sets = call(stubs, "GetInflammationCellDriverSets")
    for field in ("diseases", "cell_types", "cytokines", "secact_proteins"):
        assert list(getattr(sets, field)) == document[field] != []


def test_sankey_matches_its_tables(stubs, db):
    sankey = call(stubs, "GetInflammationSankey")
    assert_rows(sankey.nodes, query(db, "SELECT * FROM disease_sankey_nodes ORDER BY node_index", {}))
    assert_rows(sankey.links, query(db, "SELECT * FROM disease_sankey ORDER BY source, target", {}))
    for field, kind in (("cohorts", "cohort"), ("diseases", "disease"), ("disease_groups", "disease_group")):
        assert list(getattr(sankey, field)) == [r[0] for r in db.execute(
            "SELECT name FROM disease_sankey_nodes WHERE type = ? ORDER BY node_index", [kind]).fetchall()] != []


def test_cohort_validation_sends_every_consistency_row_of_the_type(stubs, db):
    response = call(stubs, "ListInflammationCohortValidation", {"page_size": 3})
    assert len(response.correlations) == 3 and response.next_page_token
    assert_rows(response.consistency, query(
        db, f"SELECT * FROM cohort_validation_consistency WHERE {CYTOSIG} ORDER BY cohort_pair", {}))


def test_severity_levels_come_mild_to_severe(stubs, db):
    levels = call(stubs, "ListInflammationSeverityLevels", {"disease": "COVID"}).levels
    assert_rows(levels, query(db, "SELECT severity, min(severity_order) AS severity_order FROM inflammation_severity "
                                  "WHERE disease = 'COVID' GROUP BY 1 ORDER BY 2 NULLS LAST, 1", {}))
    assert len(levels) > 2


def test_temporal_counts_and_flags(stubs, db):
    temporal = call(stubs, "GetInflammationTemporal")
    info = dict(db.execute("SELECT name, value FROM inflammation_longitudinal_info").fetchall())
    assert temporal.has_longitudinal == (info["has_longitudinal"] == "true") and temporal.note == info["note"]
    for section in ("timepoint_distribution", "disease_timepoints", "treatment_by_timepoint"):
        assert_rows(getattr(temporal, section), query(
            db, f"SELECT group_key, item, n FROM inflammation_longitudinal_counts WHERE section = '{section}' "
                "ORDER BY group_key, item", {}))


# -- age and BMI boxplots: age_bmi_boxplots is the CIMA helper's table (both atlases' sections) -----

BOXPLOTS = "SELECT * FROM age_bmi_boxplots WHERE atlas = 'inflammation' AND section = '{section}' AND " \
           "signature_type = '{signature_type}' AND signature = '{signature}'"
BOXPLOT_CASES = [
    {"section": "age", "signature": "IL6"},
    {"section": "bmi", "signature": "IL6", "cell_type": "Mono_classical"},
    {"section": "age", "signature": "CXCL10", "signature_type": "SecAct", "cell_type": "Mono_classical"},
]


def has_table(db, name: str) -> bool:
    return one(db, f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{name}'") == 1


@pytest.mark.parametrize("request_", BOXPLOT_CASES, ids=lambda r: "-".join(r.values()))
def test_age_bmi_boxplots_and_heatmap_match_duckdb(stubs, db, request_):
    heatmap = {k: v for k, v in request_.items() if k != "cell_type"}
    if not has_table(db, "age_bmi_boxplots"):  # built on a branch without it: the RPCs name what is missing
        for rpc, request in (("ListInflammationAgeBmiBoxplots", request_), ("GetInflammationAgeBmiHeatmap", heatmap)):
            with pytest.raises(grpc.RpcError) as err:
                call(stubs, rpc, request)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND and "'age_bmi_boxplots'" in err.value.details()
        return
    scope = BOXPLOTS.format(**{"signature_type": "CytoSig", **request_})
    want = query(db, f"{scope} AND cell_type = '{request_.get('cell_type', 'All')}' ORDER BY bin_low, bin", {})
    assert want
    assert_rows(call(stubs, "ListInflammationAgeBmiBoxplots", request_).boxplots, want)
    cells = {(r, c): v for r, c, v in db.execute(
        f"SELECT cell_type, bin, median FROM ({scope}) WHERE cell_type <> 'All'").fetchall()}
    columns = [b for (b,) in db.execute(f"SELECT bin FROM ({scope}) WHERE cell_type <> 'All' GROUP BY bin "
                                        "ORDER BY min(bin_low), bin").fetchall()]
    rows = sorted({r for r, _ in cells})
    response = call(stubs, "GetInflammationAgeBmiHeatmap", heatmap)
    assert (response.section, response.signature) == (request_["section"], request_["signature"])
    assert list(response.matrix.rows) == rows and list(response.matrix.columns) == columns and rows
    for r, row in zip(rows, response.matrix.values):
        for c, v in zip(columns, row.values):
            assert v == pytest.approx(cells[r, c]) if (r, c) in cells else math.isnan(v), (r, c)


# -- paging: nested lists follow their parents across pages ----------------------------------------

@pytest.mark.parametrize("rpc,request_,field,size", [
    ("ListInflammationDiseaseActivity", {"disease": "COVID"}, "disease_activities", 150),
    ("ListInflammationRocCurves", {}, "roc_curves", 3),
    ("ListInflammationDrivingPopulations", {}, "driving_populations", 2),
    ("ListInflammationConservedPrograms", {"min_diseases": 2}, "conserved_programs", 7),
    ("ListInflammationSeverity", {"signature": "IL6"}, "severities", 4),
])
def test_pages_join_up_to_the_whole_answer(stubs, rpc, request_, field, size):
    whole = list(getattr(call(stubs, rpc, {**request_, "page_size": 10_000}), field))
    got, token, pages = [], "", 0
    while True:
        response = call(stubs, rpc, {**request_, "page_size": size, "page_token": token})
        got += getattr(response, field)
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert pages == math.ceil(len(whole) / size) and pages > 1
    assert got == whole


# -- bad input: every RPC, the right code, a message naming the problem ---------------------------

BAD_INPUT = [
    ("GetInflammationSummary", None, None, None),  # takes no input
    ("ListInflammationDiseases", {"signature_type": "cytosig"}, "INVALID_ARGUMENT", "did you mean 'CytoSig'"),
    ("ListInflammationCellTypes", {"page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("ListInflammationSignatures", {"signature_type": "LinCytoSig"}, "INVALID_ARGUMENT", "CytoSig, SecAct"),
    ("ListInflammationDiseaseActivity", {"disease": "Covid"}, "NOT_FOUND", "did you mean 'COVID'"),
    ("GetInflammationDiseaseActivitySummary", {"signature_type": "secact"}, "INVALID_ARGUMENT", "'SecAct'"),
    ("ListInflammationDiseaseGroupActivity", {"disease_group": "All"}, "NOT_FOUND", "did you mean 'all'"),
    ("ListInflammationCellDrivers", {"cell_type": "Mono classical"}, "NOT_FOUND", "Mono_classical"),
    ("GetInflammationCellDriverSets", None, None, None),  # takes no input
    ("ListInflammationDrivingPopulations", {"disease": "healthy"}, "NOT_FOUND", "disease 'healthy'"),
    ("ListInflammationConservedPrograms", {"min_diseases": 1}, "INVALID_ARGUMENT", "min_diseases"),
    ("ListInflammationConservedPrograms", {"min_diseases": -3}, "INVALID_ARGUMENT", "at least 2"),
    ("ListInflammationTreatmentResponses", {"model": "SVM"}, "NOT_FOUND", "Logistic Regression"),
    ("ListInflammationRocCurves", {"disease": "ra"}, "NOT_FOUND", "did you mean 'RA'"),
    ("ListInflammationFeatureImportance", {"model": "random forest"}, "NOT_FOUND", "did you mean 'Random Forest'"),
    ("ListInflammationTreatmentPredictions", {"response": "responder"}, "NOT_FOUND", "did you mean 'Responder'"),
    ("ListInflammationCohortValidation", {"signature": "IL-6"}, "NOT_FOUND", "signature 'IL-6'"),
    ("GetInflammationSankey", None, None, None),  # takes no input
    ("ListInflammationCorrelations", {"category": "biochemistry"}, "INVALID_ARGUMENT", "age, bmi"),
    ("ListInflammationSampleCorrelations", {"category": "Age"}, "INVALID_ARGUMENT", "did you mean 'age'"),
    ("GetInflammationActivityHeatmap", {"signature_type": "Cytosig"}, "INVALID_ARGUMENT", "did you mean 'CytoSig'"),
    ("GetInflammationDiseaseHeatmap", {"value": "log2fc"}, "INVALID_ARGUMENT", "mean_activity, activity_diff"),
    ("GetInflammationCellTypeDiseaseHeatmap", {}, "INVALID_ARGUMENT", "`disease` is required"),
    ("GetInflammationCellTypeDiseaseHeatmap", {"disease": "COVID", "value": "diff"}, "INVALID_ARGUMENT",
     "mean_activity, effect"),
    ("ListInflammationSeverity", {"severity": "Severe"}, "NOT_FOUND", "severity 'Severe'"),
    ("ListInflammationSeverityDiseases", {"page_token": "garbage"}, "INVALID_ARGUMENT", "page_token"),
    ("ListInflammationSeverityLevels", {"disease": "RA"}, "NOT_FOUND", "disease 'RA'"),
    ("ListInflammationSeverityLevels", {}, "INVALID_ARGUMENT", "`disease` is required"),
    ("GetInflammationSeverityHeatmap", {}, "INVALID_ARGUMENT", "`disease` is required"),
    ("GetInflammationTemporal", None, None, None),  # takes no input
    ("ListInflammationTemporalActivity", {"timepoint": "T9"}, "NOT_FOUND", "timepoint 'T9'"),
    ("ListInflammationTemporalDiseases", {"page_size": -2}, "INVALID_ARGUMENT", "page_size"),
    ("GetInflammationTemporalHeatmap", {"disease": "covid"}, "NOT_FOUND", "did you mean 'COVID'"),
    ("ListInflammationAgeBmiBoxplots", {"section": "height", "signature": "IL6"}, "INVALID_ARGUMENT",
     "section 'height' is not one of age, bmi"),
    ("ListInflammationAgeBmiBoxplots", {"section": "age"}, "INVALID_ARGUMENT", "`signature` is required"),
    ("GetInflammationAgeBmiHeatmap", {"signature": "IL6"}, "INVALID_ARGUMENT", "`section` is required"),
    ("AtlasService.ListDiseaseDifferential", {"disease": "All"}, "NOT_FOUND", "disease 'All'"),
]


@pytest.mark.parametrize("rpc,request_,code,text", [c for c in BAD_INPUT if c[2]],
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_INPUT) if c[2]])
def test_bad_input_gets_the_right_code_and_names_the_problem(stubs, rpc, request_, code, text):
    with pytest.raises(grpc.RpcError) as err:
        call(stubs, rpc, request_)
    assert err.value.code().name == code
    assert text in err.value.details()
    assert len(status_details(err.value, error_details_pb2.ErrorInfo)) == 1


def test_every_rpc_is_covered_by_the_tests():
    """A new InflammationService RPC must come with a DuckDB comparison and a bad-input case here."""
    compared = {c[0] for c in LIST_CASES + NAME_CASES + MATRIX_CASES}
    compared |= {"GetInflammationSummary", "GetInflammationCellDriverSets", "GetInflammationSankey",
                 "ListInflammationSeverityLevels", "GetInflammationTemporal",  # the one-off tests above
                 "ListInflammationAgeBmiBoxplots", "GetInflammationAgeBmiHeatmap"}
    bad = {c[0] for c in BAD_INPUT}
    for rpc in pb.DESCRIPTOR.services_by_name["InflammationService"].methods_by_name:
        assert rpc in compared, rpc
        assert rpc in bad, rpc


# -- grpcurl (reflection only) --------------------------------------------------------------------

def test_grpcurl_lists_the_service_and_answers_in_json(addresses, db):
    address = addresses["atlas"]
    out = grpcurl(address, "list")
    assert out.returncode == 0, out.stderr
    assert SERVICE in out.stdout.split()
    out = grpcurl(address, f"{SERVICE}/ListInflammationSeverityLevels", data={"disease": "COVID"})
    assert out.returncode == 0, out.stderr
    levels = json.loads(out.stdout)["levels"]
    assert [(x["severity"], x["severity_order"]) for x in levels] == db.execute(
        "SELECT severity, min(severity_order) FROM inflammation_severity WHERE disease = 'COVID' GROUP BY 1 "
        "ORDER BY 2, 1").fetchall()
    out = grpcurl(address, "cytoatlas.atlas.v1.AtlasService/ListDiseaseDifferential",
                  data={"disease": "all", "signature": "IL6"})
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["differentials"]
    assert [(r["disease"], r["comparison"]) for r in rows] == db.execute(
        f"SELECT disease, comparison FROM inflammation_differential WHERE {CYTOSIG} AND signature = 'IL6' "
        "ORDER BY disease").fetchall()


# -- the demo's Inflammation tables agree with the tables they derive from -------------------------

def one(db, sql: str):
    return db.execute(sql).fetchall()[0][0]


def test_differential_means_and_counts_come_from_disease_activity_and_the_sankey(db):
    # a disease's group mean = the n_cells-weighted mean of its cell types in inflammation_disease
    assert one(db, """
        SELECT max(abs(d.mean_g1 - w.m)) FROM inflammation_differential d JOIN (
            SELECT signature_type, disease, signature, sum(n_cells * mean_activity) / sum(n_cells) AS m
            FROM inflammation_disease GROUP BY ALL) w USING (signature_type, disease, signature)""") < 1.5e-4
    assert one(db, """
        SELECT max(abs(d.mean_g2 - w.m)) FROM inflammation_differential d JOIN (
            SELECT signature_type, signature, sum(n_cells * mean_activity) / sum(n_cells) AS m
            FROM inflammation_disease WHERE disease = 'healthy' GROUP BY ALL) w USING (signature_type, signature)
        WHERE comparison <> 'study_matched'""") < 1.5e-4
    # its samples = the disease's samples in the sankey (the disease -> group link)
    totals = """SELECT n.name AS disease, l.value FROM disease_sankey l JOIN disease_sankey_nodes n
                ON l.source = n.node_index JOIN disease_sankey_nodes g ON l.target = g.node_index
                WHERE g.type = 'disease_group'"""
    assert one(db, f"SELECT count(*) FROM inflammation_differential d JOIN ({totals}) t USING (disease) "
                   "WHERE d.n_g1 <> t.value") == 0
    assert one(db, f"SELECT count(*) FROM inflammation_differential WHERE disease = 'All Diseases' AND n_g1 <> "
                   f"(SELECT sum(value) FROM ({totals}) WHERE disease <> 'healthy')") == 0
    assert one(db, f"SELECT count(*) FROM inflammation_differential WHERE comparison <> 'study_matched' AND n_g2 <> "
                   f"(SELECT value FROM ({totals}) WHERE disease = 'healthy')") == 0
    assert one(db, "SELECT sum(value) FROM disease_sankey WHERE source < (SELECT count(*) FROM "
                   "disease_sankey_nodes WHERE type = 'cohort')") == 817


def test_sankey_flows_balance(db):
    assert one(db, """
        SELECT count(*) FROM (SELECT target AS node, sum(value) AS n_in FROM disease_sankey GROUP BY 1) i
        JOIN (SELECT source AS node, sum(value) AS n_out FROM disease_sankey GROUP BY 1) o USING (node)
        WHERE n_in <> n_out""") == 0
    assert one(db, "SELECT count(*) FROM disease_sankey l LEFT JOIN disease_sankey_nodes n ON l.target = n.node_index "
                   "WHERE n.name IS NULL") == 0


def test_cell_drivers_are_disease_minus_healthy_per_cell_type(db):
    assert one(db, """
        SELECT max(abs(c.effect - (d.mean_activity - h.mean_activity))) FROM inflammation_cell_drivers c
        JOIN inflammation_disease d USING (signature_type, disease, cell_type, signature)
        JOIN inflammation_disease h ON h.disease = 'healthy' AND (h.signature_type, h.cell_type, h.signature)
             = (c.signature_type, c.cell_type, c.signature)
        WHERE c.n_disease = d.n_samples AND c.n_healthy = h.n_samples""") < 1e-9
    assert one(db, "SELECT count(*) FROM inflammation_cell_drivers") == one(db, """
        SELECT count(*) FROM inflammation_cell_drivers c JOIN inflammation_disease d
        USING (signature_type, disease, cell_type, signature) WHERE c.n_disease = d.n_samples""")
    assert one(db, "SELECT max(pvalue) FROM inflammation_cell_drivers") < 0.1
    assert one(db, f"SELECT count(*) FROM inflammation_cell_drivers WHERE is_driving <> ({DRIVING})") == 0


@pytest.mark.parametrize("twin,parent", [("inflammation_disease_filtered", "inflammation_disease"),
                                         ("inflammation_severity_filtered", "inflammation_severity")])
def test_filtered_twins_are_their_parents_rows_of_the_dashboard_signatures(db, twin, parent):
    """The rule: every CytoSig signature and the first 204 SecAct (names.SECACT order)."""
    from builders.demo_data import names
    from builders.demo_data._scale import Scale, scaled
    from tests.conftest import TEST_SCALE

    assert one(db, f"SELECT count(*) FROM (SELECT * FROM {twin} EXCEPT SELECT * FROM {parent})") == 0
    secact = names.SECACT[:Scale(TEST_SCALE).secact]
    keep = set(secact[:scaled(204, TEST_SCALE, 20)])
    assert set(distinct(db, "signature", twin, "signature_type = 'SecAct'")) == keep
    assert distinct(db, "signature", twin, CYTOSIG) == distinct(db, "signature", parent, CYTOSIG)
    assert one(db, f"SELECT count(*) FROM {twin}") == one(
        db, f"SELECT count(*) FROM {parent} WHERE signature_type = 'CytoSig' OR signature IN "
            f"({', '.join(repr(s) for s in keep)})")


def test_severity_and_timepoints_split_a_disease_s_samples(db):
    totals = """SELECT n.name AS disease, l.value FROM disease_sankey l JOIN disease_sankey_nodes n
                ON l.source = n.node_index JOIN disease_sankey_nodes g ON l.target = g.node_index
                WHERE g.type = 'disease_group'"""
    assert one(db, f"""
        SELECT count(*) FROM (SELECT disease, signature_type, signature, sum(n_samples) AS n FROM inflammation_severity
                              GROUP BY ALL) s JOIN ({totals}) t USING (disease) WHERE s.n <> t.value""") == 0
    assert one(db, """
        SELECT count(*) FROM inflammation_longitudinal a JOIN inflammation_longitudinal_counts c
        ON c.section = 'disease_timepoints' AND c.group_key = a.disease AND c.item = a.timepoint
        WHERE a.n_samples <> c.n""") == 0
    assert one(db, """
        SELECT count(*) FROM (SELECT item, sum(n) AS n FROM inflammation_longitudinal_counts
                              WHERE section = 'disease_timepoints' GROUP BY item) d
        JOIN inflammation_longitudinal_counts t ON t.section = 'timepoint_distribution' AND t.item = d.item
        WHERE t.n <> d.n""") == 0


def test_treatment_response_curves_agree_with_their_predictions(db):
    assert one(db, "SELECT count(*) FROM treatment_response WHERE n_responders + n_non_responders <> n_samples") == 0
    # the AUC is the trapezoid area under the stored points (rounded to 4 decimals, the AUC to 3)
    assert one(db, """
        SELECT max(abs(area - auc)) FROM (
            SELECT curve, any_value(auc) AS auc, sum((fpr - prev_fpr) * (tpr + prev_tpr) / 2) AS area FROM (
                SELECT curve, auc, fpr, tpr, lag(fpr) OVER w AS prev_fpr, lag(tpr) OVER w AS prev_tpr
                FROM treatment_response_roc WINDOW w AS (PARTITION BY curve ORDER BY point))
            WHERE prev_fpr IS NOT NULL GROUP BY curve)""") < 2e-3
    assert one(db, "SELECT count(*) FROM treatment_response_roc r JOIN treatment_response t USING (curve) "
                   "WHERE (r.point = 0 AND (fpr <> 0 OR tpr <> 0)) "
                   "OR (r.point = t.n_points - 1 AND (fpr <> 1 OR tpr <> 1))") == 0
    # Logistic Regression importance = |coefficient| / the largest of its model
    assert one(db, """
        SELECT max(abs(importance - abs(coefficient) / m)) FROM treatment_response_features
        JOIN (SELECT signature_type, disease, max(abs(coefficient)) AS m FROM treatment_response_features
              WHERE model = 'Logistic Regression' GROUP BY ALL) USING (signature_type, disease)
        WHERE model = 'Logistic Regression'""") < 1e-3


def test_cohort_consistency_is_the_mean_of_its_correlations(db):
    assert one(db, """
        SELECT max(abs(c.mean_r - v.m)) + max(abs(c.n_signatures - v.n)) FROM cohort_validation_consistency c JOIN (
            SELECT signature_type, 'Main vs Validation' AS cohort_pair, avg(main_validation_r) AS m, count(*) AS n
            FROM cohort_validation GROUP BY ALL
            UNION ALL SELECT signature_type, 'Main vs External', avg(main_external_r), count(*)
            FROM cohort_validation GROUP BY ALL
            UNION ALL SELECT signature_type, 'Validation vs External', avg(validation_external_r), count(*)
            FROM cohort_validation GROUP BY ALL) v USING (signature_type, cohort_pair)""") < 1e-3 + 1e-9


def test_summary_lists_are_the_tables(db):
    listed = lambda stat: [r[0] for r in db.execute("SELECT text FROM summary_stats WHERE atlas = 'inflammation' "
                                                    "AND stat = ? AND ordinal > 0 ORDER BY ordinal", [stat]).fetchall()]
    assert listed("diseases") == distinct(db, "disease", "inflammation_disease")
    assert listed("disease_groups") == distinct(db, "disease_group", "inflammation_disease")
    assert listed("cell_types") == distinct(db, "cell_type", "inflammation_celltype")
    assert one(db, "SELECT value FROM summary_stats WHERE atlas = 'inflammation' AND stat = 'n_cells'") == one(
        db, f"SELECT sum(n_cells) FROM (SELECT DISTINCT cell_type, n_cells FROM inflammation_celltype)")
