"""CrossAtlasService and GeneService against the real atlas service, each answer checked against the
same question asked of DuckDB in-process (SQL written here, over the source tables where the
service reads a builder-made one); bad input for every RPC; paging; grpcurl; name resolution in
every domain (exact, case-insensitive, HGNC <-> signature aliases, the x-cytoatlas-resolved trailer);
the demo's cross-atlas and gene tables consistent with the atlas tables they derive from; and the
cross_atlas.json sections each optional."""

from __future__ import annotations

import json
import pathlib
import subprocess

import duckdb
import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from cytoatlas.atlas.v1 import (
    atlas_service_pb2, atlas_service_pb2_grpc, cima_service_pb2, cima_service_pb2_grpc, cross_atlas_service_pb2,
    cross_atlas_service_pb2_grpc, gene_service_pb2, gene_service_pb2_grpc,
)
from cytoatlas.perturbation.v1 import perturbation_service_pb2, perturbation_service_pb2_grpc
from cytoatlas.spatial.v1 import spatial_service_pb2, spatial_service_pb2_grpc
from tests.conftest import field_value as value, status_details
from tests.test_grpcurl import GRPCURL, grpcurl

STUBS = {  # name -> (module, stub class, service, domain)
    "cross": (cross_atlas_service_pb2, cross_atlas_service_pb2_grpc.CrossAtlasServiceStub, "CrossAtlasService", "atlas"),
    "gene": (gene_service_pb2, gene_service_pb2_grpc.GeneServiceStub, "GeneService", "atlas"),
    "atlas": (atlas_service_pb2, atlas_service_pb2_grpc.AtlasServiceStub, "AtlasService", "atlas"),
    "cima": (cima_service_pb2, cima_service_pb2_grpc.CimaServiceStub, "CimaService", "atlas"),
    "perturbation": (perturbation_service_pb2, perturbation_service_pb2_grpc.PerturbationServiceStub,
                     "PerturbationService", "perturbation"),
    "spatial": (spatial_service_pb2, spatial_service_pb2_grpc.SpatialServiceStub, "SpatialService", "spatial"),
}
CYTOSIG = "signature_type = 'CytoSig'"
RESOLVED = "x-cytoatlas-resolved"
# The three cell-type tables, as the real gene page concatenates them (not the builder's union).
CELL_TYPES = """(SELECT 'CIMA' AS atlas, cell_type, cell_type AS base_cell_type, NULL AS organ, signature, signature_type,
                        mean_activity, n_samples, n_cells FROM cima_celltype
                 UNION ALL SELECT 'Inflammation', cell_type, cell_type, NULL, signature, signature_type, mean_activity,
                        n_samples, n_cells FROM inflammation_celltype
                 UNION ALL SELECT 'scAtlas', concat(cell_type, ' (', organ, ')'), cell_type, organ, signature,
                        signature_type, mean_activity, NULL, n_cells FROM scatlas_celltypes)"""


@pytest.fixture(scope="module")
def stubs(addresses):
    channels = {d: grpc.insecure_channel(addresses[d]) for d in ("atlas", "perturbation", "spatial")}
    yield {name: stub(channels[domain]) for name, (_, stub, _, domain) in STUBS.items()}
    for channel in channels.values():
        channel.close()


def call_with_trailers(stubs, name: str, rpc: str, request: dict | None = None):
    module, _, service, _ = STUBS[name]
    method = module.DESCRIPTOR.services_by_name[service].methods_by_name[rpc]
    message = json_format.ParseDict(request or {}, getattr(module, method.input_type.name)())
    response, info = getattr(stubs[name], rpc).with_call(message, timeout=60)
    return response, [v for k, v in info.trailing_metadata() or () if k == RESOLVED]


def call(stubs, name: str, rpc: str, request: dict | None = None):
    return call_with_trailers(stubs, name, rpc, request)[0]


def same(messages, rows: list[dict]):
    assert len(messages) == len(rows)
    for got, want in zip(messages, rows):
        for column, expected in want.items():
            if column in got.DESCRIPTOR.fields_by_name:
                actual = value(got, column)
                assert actual == (pytest.approx(expected) if isinstance(expected, float) else expected), column


def rows(local, sql: str, *params) -> list[dict]:
    return local["atlas"].sql(sql, params=list(params) or None).to_arrow_table().to_pylist()


def one(local, sql: str, *params):
    return local["atlas"].execute(sql, list(params)).fetchall()[0][0]


# -- every RPC against DuckDB ----------------------------------------------------------------------
# (stub, rpc, request, response field, SQL giving that field's rows in the answer's order).
LISTS = [
    ("cross", "GetCrossAtlasCellTypeSankey", {"level": "fine", "lineage": "T_cell"}, "links",
     "SELECT harmonized_type, atlas, sum(n_cells) AS total_cells, count(*) AS n_types FROM cross_atlas_celltype_mapping "
     "WHERE level = 'fine' AND harmonized_type IN ('CD4_Naive', 'CD4_Memory', 'CD4_Effector', 'Treg', 'Tfh', "
     "'CD8_Naive', 'CD8_Memory', 'CD8_Effector', 'CD8_Trm', 'MAIT', 'gdT', 'NKT', 'ILC') GROUP BY ALL ORDER BY 1, 2"),
    ("cross", "GetCrossAtlasCellTypeSankey", {"lineage": "B_cell"}, "cell_types",
     "SELECT * FROM cross_atlas_celltype_mapping WHERE level = 'coarse' AND harmonized_type IN ('B', 'Plasma') "
     "ORDER BY harmonized_type, atlas, n_cells DESC, cell_type"),
    ("cross", "GetCrossAtlasCellTypeSankey", {}, "harmonized_types",
     "SELECT harmonized_type, count(DISTINCT atlas) AS n_atlases, sum(n_cells) AS total_cells "
     "FROM cross_atlas_celltype_mapping WHERE level = 'coarse' AND n_cells > 0 GROUP BY ALL ORDER BY 3 DESC, 1"),
    ("cross", "GetCrossAtlasPairwiseScatter", {"atlas1": "scAtlas", "atlas2": "Inflammation", "view": "singlecell",
                                              "signature_type": "SecAct", "page_size": 10000}, "points",
     "SELECT signature, cell_type, y AS x, x AS y, n_samples_y AS n_samples_x, n_samples_x AS n_samples_y, "
     "n_cells_y AS n_cells_x, n_cells_x AS n_cells_y FROM cross_atlas WHERE signature_type = 'SecAct' AND "
     "view = 'singlecell' AND level = 'coarse' AND atlas1 = 'Inflammation' AND atlas2 = 'scAtlas' "
     "ORDER BY cell_type, signature"),
    ("cross", "ListCrossAtlasSignatureReliability", {"signature_type": "SecAct", "page_size": 10000}, "signatures",
     "SELECT * FROM cross_atlas_reliability WHERE signature_type = 'SecAct' "
     "ORDER BY n_pairs_with_data DESC, mean_correlation DESC NULLS LAST, signature"),
    ("cross", "ListCrossAtlasSignatureReliability", {}, "category_counts",
     f"SELECT category, count(*) AS n_signatures FROM cross_atlas_reliability WHERE {CYTOSIG} GROUP BY 1 ORDER BY 1"),
    ("cross", "ListCrossAtlasMetaAnalysis", {"analysis": "age", "page_size": 10000}, "rows",
     f"SELECT * FROM cross_atlas_meta_analysis WHERE {CYTOSIG} AND analysis = 'age' "
     "ORDER BY abs(pooled_effect) DESC NULLS LAST, signature, atlas"),
    ("cross", "ListCrossAtlasMetaAnalysis", {"signature_type": "SecAct", "atlas": "Inflammation", "page_size": 10000},
     "rows", "SELECT * FROM cross_atlas_meta_analysis WHERE signature_type = 'SecAct' AND atlas = 'Inflammation' "
     "ORDER BY analysis, abs(pooled_effect) DESC NULLS LAST, signature"),
    ("cross", "ListCrossAtlasComparisons", {"signature_type": "SecAct", "view": "singlecell", "page_size": 10000},
     "comparisons", "SELECT * FROM cross_atlas_comparison WHERE signature_type = 'SecAct' AND view = 'singlecell' "
     "AND level = 'coarse' ORDER BY cell_type, signature"),
    ("cross", "ListCrossAtlasSignatureActivity", {"level": "fine", "page_size": 10000}, "signatures",
     "SELECT signature, avg(cima_activity) AS cima_mean, avg(inflammation_activity) AS inflammation_mean, "
     "avg(scatlas_activity) AS scatlas_mean, count(*) AS n_cell_types FROM cross_atlas_comparison "
     f"WHERE {CYTOSIG} AND view = 'pseudobulk' AND level = 'fine' GROUP BY 1 ORDER BY 1"),
    ("cross", "ListCrossAtlasCorrelations", {"atlas1": "scAtlas", "atlas2": "CIMA"}, "correlations",
     f"SELECT * FROM cross_atlas_pair_stats WHERE {CYTOSIG} AND atlas1 = 'CIMA' AND atlas2 = 'scAtlas' "
     "ORDER BY view, level"),
    ("cross", "ListCrossAtlasCorrelations", {"signature_type": "SecAct", "view": "agnostic"}, "correlations",
     "SELECT * FROM cross_atlas_pair_stats WHERE signature_type = 'SecAct' AND view = 'agnostic' ORDER BY atlas1, atlas2"),
    ("cross", "ListCrossAtlasCellTypeMappings", {"level": "fine", "atlas": "scAtlas"}, "mappings",
     "SELECT * FROM cross_atlas_celltype_mapping WHERE level = 'fine' AND atlas = 'scAtlas' "
     "ORDER BY harmonized_type, cell_type"),
    ("cross", "ListCrossAtlasConservedSignatures", {"min_atlases": 0, "page_size": 10000}, "signatures",
     f"SELECT * FROM cross_atlas_conserved WHERE {CYTOSIG} ORDER BY n_atlases DESC, signature"),
    ("cross", "ListCrossAtlasConservedSignatures", {"signature_type": "SecAct", "min_atlases": 1}, "signatures",
     "SELECT * FROM cross_atlas_conserved WHERE signature_type = 'SecAct' AND n_atlases >= 1 "
     "ORDER BY n_atlases DESC, signature"),
    ("cross", "ListCrossAtlasConservedSignatures", {}, "signatures",  # default: active in 2 atlases or more
     f"SELECT * FROM cross_atlas_conserved WHERE {CYTOSIG} AND n_atlases >= 2 ORDER BY n_atlases DESC, signature"),
    ("cross", "ListCrossAtlasPathwayEnrichment", {}, "pathways",
     f"SELECT * FROM cross_atlas_pathways WHERE {CYTOSIG} ORDER BY database, neg_log_fdr DESC, pathway"),
    ("cross", "ListCrossAtlasPathwayEnrichment", {"signature": "il6"}, "pathways",
     f"SELECT * FROM cross_atlas_pathways WHERE {CYTOSIG} AND list_contains(string_split(genes, ','), 'IL6') "
     "ORDER BY database, pathway"),
    ("gene", "ListGeneCellTypeActivity", {"signature": "INHBA", "page_size": 10000}, "activities",
     f"SELECT * FROM {CELL_TYPES} WHERE {CYTOSIG} AND signature = 'Activin A' "
     "ORDER BY mean_activity DESC NULLS LAST, atlas, cell_type"),
    ("gene", "ListGeneCellTypeActivity", {"signature": "TNF", "signature_type": "SecAct", "atlas": "scAtlas"},
     "activities", f"SELECT * FROM {CELL_TYPES} WHERE signature_type = 'SecAct' AND signature = 'TNF' "
     "AND atlas = 'scAtlas' ORDER BY mean_activity DESC NULLS LAST, cell_type"),
    ("gene", "ListGeneTissueActivity", {"signature": "ifng"}, "tissues",
     f"SELECT * FROM scatlas_organs WHERE {CYTOSIG} AND signature = 'IFNG' ORDER BY mean_activity DESC, organ"),
    ("gene", "ListGeneDiseaseActivity", {"signature": "IL6", "max_qvalue": 0.5}, "diseases",
     "SELECT d.*, coalesce(g.disease_group, 'Other') AS disease_group, coalesce(d.qvalue < 0.05, false) AS is_significant "
     "FROM inflammation_differential d LEFT JOIN (SELECT disease, min(disease_group) AS disease_group FROM "
     "inflammation_disease GROUP BY 1) g USING (disease) WHERE d.signature_type = 'CytoSig' AND d.signature = 'IL6' "
     "AND d.qvalue <= 0.5 ORDER BY abs(d.activity_diff) DESC NULLS LAST, d.disease, d.group1, d.group2"),
    ("gene", "GetGeneCorrelations", {"signature": "il6"}, "biochemistry",
     f"SELECT 'All' AS cell_type, feature AS variable, * FROM cima_correlations WHERE {CYTOSIG} AND signature = 'IL6' "
     "AND category = 'biochemistry' ORDER BY abs(rho) DESC NULLS LAST, feature"),
    ("gene", "GetGeneCrossAtlas", {"signature": "IFNG"}, "cell_type_means",
     f"SELECT atlas, avg(mean_activity) AS mean_activity, count(*) AS n_cell_types FROM {CELL_TYPES} "
     f"WHERE {CYTOSIG} AND signature = 'IFNG' GROUP BY 1 ORDER BY 1"),
    ("gene", "ListGeneExpression", {"gene": "tnfa", "atlas": "CIMA"}, "expression",
     "SELECT * FROM gene_expression WHERE gene = 'TNF' AND atlas = 'CIMA' ORDER BY mean_expression DESC, cell_type"),
    ("gene", "ListGeneBoxplots", {"gene": "ifng", "page_size": 10000}, "boxplots",
     "SELECT * FROM expression_boxplot WHERE gene = 'IFNG' ORDER BY median DESC, atlas, cell_type"),
    ("gene", "ListGeneBoxplots", {"gene": "TNF", "data_type": "CytoSig", "atlas": "CIMA"}, "boxplots",
     f"SELECT * FROM activity WHERE {CYTOSIG} AND signature = 'TNFA' AND atlas = 'CIMA' ORDER BY median DESC, cell_type"),
    ("gene", "ResolveGeneName", {"query": "tnf"}, "aliases",
     "SELECT * FROM signature_aliases WHERE alias_key = 'tnf' ORDER BY signature_type"),
]


@pytest.mark.parametrize("stub,rpc,request_,field,sql", LISTS, ids=[f"{c[1]}.{c[3]}" for c in LISTS])
def test_lists_match_duckdb(stubs, local, stub, rpc, request_, field, sql):
    want = rows(local, sql)
    assert want, "the case must select some rows, or it proves nothing"
    response = call(stubs, stub, rpc, request_)
    same(getattr(response, field), want)
    assert getattr(response, "next_page_token", "") == ""


def test_summary(stubs, local):
    answer = call(stubs, "cross", "GetCrossAtlasSummary")
    same(answer.atlas_summaries, rows(local, "SELECT * FROM cross_atlas_summary ORDER BY atlas"))
    totals = local["atlas"].execute("SELECT sum(cells), sum(samples), sum(cell_types) FROM cross_atlas_summary").fetchall()[0]
    assert (answer.total_cells, answer.total_samples, answer.total_cell_types) == totals
    assert list(answer.compared_atlases) == ["CIMA", "Inflammation", "scAtlas"]  # the real /atlases list
    same(answer.signature_counts, rows(local, "SELECT signature_type, count(DISTINCT signature) AS n_signatures "
                                              "FROM cross_atlas GROUP BY 1 ORDER BY 1"))


def test_pairwise_scatter_reads_a_pair_either_way(stubs, local):
    stats = rows(local, f"SELECT * FROM cross_atlas_pair_stats WHERE {CYTOSIG} AND view = 'pseudobulk' "
                        "AND level = 'fine' AND atlas1 = 'CIMA' AND atlas2 = 'Inflammation'")
    points = rows(local, f"SELECT * FROM cross_atlas WHERE {CYTOSIG} AND view = 'pseudobulk' AND level = 'fine' "
                         "AND atlas1 = 'CIMA' AND atlas2 = 'Inflammation' AND cell_type = 'CD4_Naive' ORDER BY signature")
    forward = call(stubs, "cross", "GetCrossAtlasPairwiseScatter", {"level": "fine", "cell_type": "CD4_Naive"})
    backward = call(stubs, "cross", "GetCrossAtlasPairwiseScatter",
                    {"atlas1": "Inflammation", "atlas2": "CIMA", "level": "fine", "cell_type": "CD4_Naive"})
    same([forward.pair_stats], stats)
    same(forward.points, points)
    assert (backward.atlas1, backward.atlas2, backward.pair_stats.atlas1) == ("Inflammation", "CIMA", "Inflammation")
    assert [(p.x, p.y, p.n_samples_x) for p in backward.points] == [(p["y"], p["x"], p["n_samples_y"]) for p in points]
    assert backward.pair_stats.correlation == stats[0]["correlation"]  # Spearman is symmetric


def test_meta_analysis_summary_counts_signatures(stubs, local):
    answer = call(stubs, "cross", "ListCrossAtlasMetaAnalysis", {"analysis": "bmi", "page_size": 3})
    where = f"{CYTOSIG} AND analysis = 'bmi'"
    count = lambda extra="TRUE": one(local, f"SELECT count(DISTINCT signature) FROM cross_atlas_meta_analysis "  # noqa: E731
                                           f"WHERE {where} AND {extra}")
    assert answer.summary == cross_atlas_service_pb2.CrossAtlasMetaAnalysisSummary(
        n_signatures=count(), n_significant=count("abs(pooled_effect) > 0.1"),
        n_consistent_direction=count() - count("effect * pooled_effect <= 0"), n_heterogeneous=count("i2 > 50"))
    assert len(answer.rows) == 3 and answer.next_page_token


def test_comparison_lists_and_summary(stubs, local):
    answer = call(stubs, "cross", "ListCrossAtlasComparisons", {"cell_type": "NK", "page_size": 5})
    where = f"{CYTOSIG} AND view = 'pseudobulk' AND level = 'coarse'"
    same(answer.comparisons, rows(local, f"SELECT * FROM cross_atlas_comparison WHERE {where} AND cell_type = 'NK' "
                                         "ORDER BY signature LIMIT 5"))
    distinct = lambda column, extra: [r[0] for r in local["atlas"].sql(  # noqa: E731
        f"SELECT DISTINCT {column} FROM cross_atlas_comparison WHERE {where} {extra} ORDER BY 1").fetchall()]
    assert list(answer.cell_types) == distinct("cell_type", "")
    assert list(answer.signatures) == distinct("signature", "AND cell_type = 'NK'")
    summary = answer.summary
    assert (summary.n_common_signatures, summary.n_common_cell_types) == (len(answer.signatures), 1)
    assert summary.mean_correlation == pytest.approx(one(local, f"SELECT avg(correlation) FROM cross_atlas_pair_stats "
                                                                f"WHERE {where}"))
    assert list(summary.top_conserved) == [r[0] for r in local["atlas"].sql(
        f"SELECT signature FROM cross_atlas_conserved WHERE {CYTOSIG} AND n_atlases >= 2 "
        "ORDER BY n_atlases DESC, signature LIMIT 5").fetchall()]


def test_gene_overview(stubs, local):
    answer, trailers = call_with_trailers(stubs, "gene", "GetGeneOverview", {"signature": "TNF"})
    assert (answer.query, answer.signature, answer.signature_type) == ("TNF", "TNFA", "CytoSig")
    assert trailers == ["signature=TNFA; asked=TNF; rule=alias"]
    scope = f"{CYTOSIG} AND signature = 'TNFA'"
    info = rows(local, f"SELECT hgnc_symbol, description FROM gene_info WHERE {scope}")[0]
    assert (answer.hgnc_symbol, answer.description) == (info["hgnc_symbol"], info["description"])
    per_atlas = dict(local["atlas"].sql(f"SELECT atlas, count(DISTINCT cell_type) FROM {CELL_TYPES} WHERE {scope} "
                                        "GROUP BY 1").fetchall())
    assert list(answer.atlases) == sorted(per_atlas)
    top = one(local, f"SELECT cell_type FROM {CELL_TYPES} WHERE {scope} ORDER BY mean_activity DESC, atlas, cell_type "
                     "LIMIT 1")
    expected = gene_service_pb2.GeneStats(
        n_atlases=len(per_atlas), n_cell_types=per_atlas["CIMA"] + per_atlas["Inflammation"],
        n_tissues=one(local, f"SELECT count(DISTINCT organ) FROM scatlas_organs WHERE {scope}"),
        n_diseases=one(local, f"SELECT count(DISTINCT disease) FROM inflammation_differential WHERE {scope}"),
        n_correlations=one(local, f"SELECT count(*) FROM cima_correlations WHERE {scope} AND qvalue < 0.05"),
        top_cell_type=top, top_tissue=one(local, f"SELECT organ FROM scatlas_organs WHERE {scope} "
                                                 "ORDER BY mean_activity DESC LIMIT 1"),
        has_expression=one(local, "SELECT count(*) > 0 FROM gene_expression WHERE gene = 'TNF'"))
    assert answer.counts == expected


def test_gene_disease_and_correlation_counts(stubs, local):
    diseases = call(stubs, "gene", "ListGeneDiseaseActivity", {"signature": "IL6", "page_size": 2})
    scope = f"{CYTOSIG} AND signature = 'IL6'"
    assert diseases.n_rows == one(local, f"SELECT count(*) FROM inflammation_differential WHERE {scope}")
    assert diseases.n_significant == one(local, f"SELECT count(*) FROM inflammation_differential WHERE {scope} "
                                                "AND qvalue < 0.05")
    assert list(diseases.disease_groups) == [r[0] for r in local["atlas"].sql(
        "SELECT DISTINCT coalesce(g, 'Other') FROM (SELECT d.disease, min(i.disease_group) AS g FROM "
        "inflammation_differential d LEFT JOIN inflammation_disease i USING (disease) GROUP BY 1) ORDER BY 1").fetchall()]
    correlations = call(stubs, "gene", "GetGeneCorrelations", {"signature": "IL6"})
    per_cell_type = one(local, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'cima_celltype_correlations'")
    for category in ("age", "bmi", "biochemistry"):
        significant = f"{scope} AND category = '{category}' AND qvalue < 0.05"
        want = one(local, f"SELECT count(*) FROM cima_correlations WHERE {significant}")
        if per_cell_type and category != "biochemistry":  # the file has the per-cell-type correlations too
            want += one(local, f"SELECT count(*) FROM cima_celltype_correlations WHERE {significant}")
        assert getattr(correlations, f"n_significant_{category}") == want
    assert [(c.variable, c.rho) for c in correlations.age if c.cell_type == "All"] == local["atlas"].sql(
        f"SELECT feature, rho FROM cima_correlations WHERE {scope} AND category = 'age'").fetchall()
    assert [abs(c.rho) for c in correlations.age] == sorted((abs(c.rho) for c in correlations.age), reverse=True)


def test_gene_cross_atlas_and_expression_summary(stubs, local):
    cross = call(stubs, "gene", "GetGeneCrossAtlas", {"signature": "IFNG"})
    same([cross.conserved], rows(local, f"SELECT * FROM cross_atlas_conserved WHERE {CYTOSIG} AND signature = 'IFNG'"))
    expression = call(stubs, "gene", "ListGeneExpression", {"gene": "IFNG", "page_size": 1})
    n, top, most = local["atlas"].execute("SELECT count(DISTINCT cell_type), arg_max(cell_type, mean_expression), "
                                          "max(mean_expression) FROM gene_expression WHERE gene = 'IFNG'").fetchall()[0]
    assert (expression.n_cell_types, expression.top_cell_type, expression.max_expression) == (n, top, most)
    assert list(expression.atlases) == [r[0] for r in local["atlas"].sql(
        "SELECT DISTINCT atlas FROM gene_expression WHERE gene = 'IFNG' ORDER BY 1").fetchall()]
    assert expression.next_page_token and len(expression.expression) == 1


def test_gene_page_lists_are_tops_with_totals(stubs, local):
    page = call(stubs, "gene", "GetGenePage", {"gene": "TNF", "top_n": 3})
    assert (page.gene, page.cytosig_name, page.secact_name, page.hgnc_symbol) == ("TNF", "TNFA", "TNF", "TNF")
    assert not page.HasField("redirect_to") and not page.is_cytosig_only
    same(page.expression, rows(local, "SELECT * FROM gene_expression WHERE gene = 'TNF' "
                                      "ORDER BY mean_expression DESC, atlas, cell_type LIMIT 3"))
    assert page.n_expression == one(local, "SELECT count(*) FROM gene_expression WHERE gene = 'TNF'")
    for kind, name, field in (("CytoSig", "TNFA", "cytosig"), ("SecAct", "TNF", "secact")):
        scope = f"signature_type = '{kind}' AND signature = '{name}'"
        same(getattr(page, f"{field}_activity"),
             rows(local, f"SELECT * FROM {CELL_TYPES} WHERE {scope} ORDER BY mean_activity DESC, atlas, cell_type LIMIT 3"))
        assert getattr(page, f"n_{field}_activity") == one(local, f"SELECT count(*) FROM {CELL_TYPES} WHERE {scope}")
        same(getattr(page, f"{field}_boxplot"), rows(local, f"SELECT * FROM activity WHERE {scope} "
                                                            "ORDER BY median DESC, atlas, cell_type LIMIT 3"))
    same(page.expression_boxplot, rows(local, "SELECT * FROM expression_boxplot WHERE gene = 'TNF' "
                                              "ORDER BY median DESC, atlas, cell_type LIMIT 3"))
    assert list(page.atlases) == [r[0] for r in local["atlas"].sql(
        f"SELECT atlas FROM gene_expression WHERE gene = 'TNF' UNION SELECT atlas FROM {CELL_TYPES} "
        "WHERE signature IN ('TNFA', 'TNF') ORDER BY 1").fetchall()]
    only = call(stubs, "gene", "GetGenePage", {"gene": "il2"})  # IL2 is no SecAct signature at this scale
    secact_il2 = one(local, "SELECT count(*) FROM cima_celltype WHERE signature_type = 'SecAct' AND signature = 'IL2'")
    assert only.redirect_to == "IL2" and only.is_cytosig_only == (secact_il2 == 0)


@pytest.mark.parametrize("name,expected", [
    ("inhba", {"hgnc_symbol": "INHBA", "has_cytosig": True, "has_secact": False, "exists": True}),
    ("TNF", {"hgnc_symbol": "TNF", "has_expression": True, "has_cytosig": True, "has_secact": True, "exists": True}),
    ("no such gene", {"exists": False, "has_expression": False, "has_cytosig": False, "has_secact": False}),
])
def test_check_gene(stubs, local, name, expected):
    answer = call(stubs, "gene", "CheckGene", {"gene": name})
    assert answer.gene == name
    for field, want in expected.items():
        assert value(answer, field) == want, field
    if name == "inhba":  # INHBA is not among the expression script's key genes
        assert answer.has_expression == bool(one(local, "SELECT count(*) FROM gene_expression WHERE gene = 'INHBA'"))


def test_resolve_gene_name(stubs, local):
    answer = call(stubs, "gene", "ResolveGeneName", {"query": "TNF"})
    assert [(r.signature_type, r.signature, r.rule) for r in answer.signatures] == [
        ("CytoSig", "TNFA", "alias"), ("SecAct", "TNF", "exact")]
    assert answer.gene == "TNF" and answer.description == one(
        local, f"SELECT description FROM gene_info WHERE {CYTOSIG} AND signature = 'TNFA'")


# -- paging --------------------------------------------------------------------------------------

PAGED = [
    ("cross", "GetCrossAtlasPairwiseScatter", {"signature_type": "SecAct"}, "points",
     "SELECT signature, cell_type FROM cross_atlas WHERE signature_type = 'SecAct' AND view = 'pseudobulk' "
     "AND level = 'coarse' AND atlas1 = 'CIMA' AND atlas2 = 'Inflammation' ORDER BY cell_type, signature"),
    ("cross", "ListCrossAtlasPathwayEnrichment", {"signature": "IL6"}, "pathways",
     f"SELECT pathway FROM cross_atlas_pathways WHERE {CYTOSIG} AND genes LIKE '%IL6%' ORDER BY database, pathway"),
    ("gene", "ListGeneSignatures", {"signature_type": "SecAct"}, "signatures",
     "SELECT DISTINCT signature FROM cima_celltype WHERE signature_type = 'SecAct' ORDER BY 1"),
    ("gene", "ListGenes", {"prefix": "cc"}, "genes", "SELECT gene FROM gene_list WHERE gene ILIKE 'cc%' ORDER BY 1"),
    ("gene", "ListGeneTissueActivity", {"signature": "IL6"}, "tissues",
     f"SELECT organ FROM scatlas_organs WHERE {CYTOSIG} AND signature = 'IL6' ORDER BY mean_activity DESC, organ"),
]


@pytest.mark.parametrize("stub,rpc,request_,field,sql", PAGED, ids=[c[1] for c in PAGED])
def test_pages_walk_the_whole_answer(stubs, local, stub, rpc, request_, field, sql):
    want = [tuple(r.values()) for r in rows(local, sql)]
    size = max(1, len(want) // 3)
    got, token, pages = [], "", 0
    while True:
        response = call(stubs, stub, rpc, {**request_, "page_size": size, "page_token": token})
        items = getattr(response, field)
        got += [(i,) if isinstance(i, str) else tuple(getattr(i, c) for c in sql_columns(sql)) for i in items]
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert got == want and pages >= 3


def sql_columns(sql: str) -> list[str]:
    return [c.strip().split(" AS ")[-1] for c in sql.split("SELECT")[1].split("FROM")[0].replace("DISTINCT", "").split(",")]


# -- bad input: every RPC --------------------------------------------------------------------------

BAD = [
    ("cross", "GetCrossAtlasCellTypeSankey", {"lineage": "T cells"}, "INVALID_ARGUMENT", "valid values: T_cell"),
    ("cross", "GetCrossAtlasCellTypeSankey", {"level": "medium"}, "INVALID_ARGUMENT", "coarse, fine"),
    ("cross", "GetCrossAtlasPairwiseScatter", {"atlas1": "CIMA", "atlas2": "CIMA"}, "INVALID_ARGUMENT", "two atlases"),
    ("cross", "GetCrossAtlasPairwiseScatter", {"atlas2": "scatlas"}, "INVALID_ARGUMENT", "CIMA, Inflammation, scAtlas"),
    ("cross", "GetCrossAtlasPairwiseScatter", {"view": "integrated", "level": "coarse"}, "INVALID_ARGUMENT",
     "valid values: common"),
    ("cross", "GetCrossAtlasPairwiseScatter", {"signature": "IFNGG"}, "NOT_FOUND", "did you mean 'IFNG'"),
    ("cross", "ListCrossAtlasSignatureReliability", {"category": "conserved"}, "INVALID_ARGUMENT", "category"),
    ("cross", "ListCrossAtlasMetaAnalysis", {"analysis": "Age"}, "INVALID_ARGUMENT", "did you mean 'age'"),
    ("cross", "ListCrossAtlasComparisons", {"cell_type": "T cell"}, "NOT_FOUND", "cell_type 'T cell'"),
    ("cross", "ListCrossAtlasSignatureActivity", {"view": "bulk"}, "INVALID_ARGUMENT", "pseudobulk, singlecell"),
    ("cross", "ListCrossAtlasCorrelations", {"atlas1": "Blood"}, "INVALID_ARGUMENT", "atlas1 'Blood'"),
    ("cross", "ListCrossAtlasCellTypeMappings", {"atlas": "cima"}, "INVALID_ARGUMENT", "did you mean 'CIMA'"),
    ("cross", "ListCrossAtlasConservedSignatures", {"min_atlases": 4}, "INVALID_ARGUMENT", "min_atlases"),
    ("cross", "ListCrossAtlasPathwayEnrichment", {"signature_type": "SecAct"}, "INVALID_ARGUMENT", "valid values: CytoSig"),
    ("cross", "ListCrossAtlasPathwayEnrichment", {"database": "KEGG"}, "INVALID_ARGUMENT", "did you mean 'kegg'"),
    ("gene", "GetGeneOverview", {}, "INVALID_ARGUMENT", "`signature` is required"),
    ("gene", "GetGeneOverview", {"signature": "TNFB"}, "NOT_FOUND", "signature 'TNFB'"),
    ("gene", "ListGeneCellTypeActivity", {"signature": "IFNG", "atlas": "cima"}, "INVALID_ARGUMENT", "did you mean 'CIMA'"),
    ("gene", "ListGeneTissueActivity", {"signature": "IFNG", "signature_type": "secact"}, "INVALID_ARGUMENT",
     "did you mean 'SecAct'"),
    ("gene", "ListGeneDiseaseActivity", {"signature": "IL-6"}, "NOT_FOUND", "did you mean 'IL6'"),
    ("gene", "GetGeneCorrelations", {"signature": "INHBA", "signature_type": "SecAct"}, "NOT_FOUND", "signature 'INHBA'"),
    ("gene", "GetGeneCrossAtlas", {"signature": ""}, "INVALID_ARGUMENT", "`signature` is required"),
    ("gene", "ListGeneSignatures", {"page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("gene", "ListGenes", {"page_token": "garbage"}, "INVALID_ARGUMENT", "page_token"),
    ("gene", "ListGeneExpression", {"gene": "IFNX"}, "NOT_FOUND", "gene 'IFNX'"),
    ("gene", "GetGenePage", {"gene": "TNF", "top_n": -1}, "INVALID_ARGUMENT", "top_n"),
    ("gene", "GetGenePage", {"gene": "no such gene"}, "NOT_FOUND", "not in gene_list"),
    ("gene", "ListGeneBoxplots", {"gene": "IFNG", "data_type": "protein"}, "INVALID_ARGUMENT", "expression, CytoSig"),
    ("gene", "CheckGene", {}, "INVALID_ARGUMENT", "`gene` is required"),
    ("gene", "ResolveGeneName", {}, "INVALID_ARGUMENT", "`query` is required"),
]


@pytest.mark.parametrize("stub,rpc,request_,code,text", BAD, ids=[f"{c[1]}-{c[3]}" for c in BAD])
def test_bad_input_gets_the_right_code_and_names_the_problem(stubs, stub, rpc, request_, code, text):
    with pytest.raises(grpc.RpcError) as err:
        call(stubs, stub, rpc, request_)
    assert err.value.code().name == code
    assert text in err.value.details()
    assert len(status_details(err.value, error_details_pb2.ErrorInfo)) == 1


def test_every_rpc_is_covered_by_the_tests():
    """A new RPC of these services needs a DuckDB comparison and a bad-input case here."""
    checked = {(s, c[1]) for s, c in [(c[0], c) for c in LISTS + PAGED]}
    checked |= {("cross", "GetCrossAtlasSummary"), ("gene", "GetGeneOverview"), ("gene", "GetGenePage"),
                ("gene", "CheckGene"), ("gene", "ListGeneExpression")}
    bad = {(c[0], c[1]) for c in BAD}
    for stub in ("cross", "gene"):
        module, _, service, _ = STUBS[stub]
        for rpc in module.DESCRIPTOR.services_by_name[service].methods_by_name:
            assert (stub, rpc) in checked, rpc
            assert (stub, rpc) in bad or rpc == "GetCrossAtlasSummary", rpc


# -- name resolution, in every domain ----------------------------------------------------------------

@pytest.mark.parametrize("stub,rpc,request_,field,resolved,rule", [
    ("atlas", "GetTargetProfile", {"signature": "TNF"}, "signature", "TNFA", "alias"),
    ("atlas", "GetTargetProfile", {"signature": "INHBA"}, "signature", "Activin A", "alias"),
    ("atlas", "GetTargetProfile", {"signature": "ifng"}, "signature", "IFNG", "case"),
    ("atlas", "GetTargetProfile", {"signature": "TNFA", "signature_type": "SecAct"}, "signature", "TNF", "alias"),
    ("atlas", "GetTargetProfile", {"signature": " activin a"}, "signature", "Activin A", "case"),
    ("perturbation", "GetTargetProfile", {"signature": "tnf"}, "signature", "TNFA", "alias"),
    ("spatial", "GetTargetProfile", {"signature": "INHBA"}, "signature", "Activin A", "alias"),
])
def test_target_profile_resolves_names_in_every_domain(stubs, stub, rpc, request_, field, resolved, rule):
    answer, trailers = call_with_trailers(stubs, stub, rpc, request_)
    assert getattr(answer, field) == resolved
    asked = request_["signature"]
    assert trailers == [f"signature={resolved}; asked={asked}; rule={rule}"]
    lists = [f.name for f in answer.DESCRIPTOR.fields if f.is_repeated]
    assert any(getattr(answer, name) for name in lists), "a resolved name must find rows"


@pytest.mark.parametrize("stub,rpc,request_,field,sql,params", [
    # filters(): every list RPC that takes a signature resolves it, in each domain's own file
    ("atlas", "ListActivity", {"signature": "tnf", "atlas": "CIMA"}, "activities",
     "SELECT * FROM activity WHERE signature_type = 'CytoSig' AND signature = 'TNFA' AND atlas = 'CIMA' "
     "ORDER BY cell_type", ()),
    ("perturbation", "ListParse10mTreatmentEffects", {"signature": "inhba", "cytokine": "il-6"}, "treatment_effects",
     "SELECT * FROM parse10m_treatment_effect WHERE signature_type = 'CytoSig' AND signature = 'Activin A' "
     "AND cytokine = 'IL-6' ORDER BY cell_type", ()),
    ("spatial", "ListTissueSummaries", {"signature": "Ifng"}, "tissue_summaries",
     "SELECT * FROM spatial_tissue_summary WHERE signature_type = 'CytoSig' AND signature = 'IFNG' ORDER BY tissue", ()),
    # a handler that checks the field, then filters by the value as given (CimaService._where)
    ("cima", "ListCimaCellTypeActivity", {"signature": "INHBA"}, "activities",
     "SELECT * FROM cima_celltype WHERE signature_type = 'CytoSig' AND signature = 'Activin A' ORDER BY cell_type", ()),
], ids=["atlas", "perturbation", "spatial", "check-then-filter"])
def test_list_rpcs_resolve_names_in_every_domain(stubs, local, stub, rpc, request_, field, sql, params):
    domain = STUBS[stub][3]
    want = local[domain].sql(sql).to_arrow_table().to_pylist()
    assert want
    answer, trailers = call_with_trailers(stubs, stub, rpc, {**request_, "page_size": 10000})
    same(getattr(answer, field), want)
    assert trailers and all(t.split("; ")[0] in {f"signature={want[0]['signature']}", "cytokine=IL-6"} for t in trailers)


def test_exact_names_need_no_resolution_and_unresolvable_ones_suggest(stubs):
    _, trailers = call_with_trailers(stubs, "atlas", "GetTargetProfile", {"signature": "TNFA"})
    assert trailers == []
    with pytest.raises(grpc.RpcError) as err:  # TNF is SecAct's TNF and CytoSig's TNFA; "TNFF" is neither
        call(stubs, "perturbation", "GetTargetProfile", {"signature": "TNFF"})
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "did you mean 'TNFA'" in err.value.details()


def test_resolved_trailer_through_grpcurl(addresses):
    out = subprocess.run([GRPCURL, "-plaintext", "-v", "-d", json.dumps({"signature": "INHBA", "page_size": 2}),
                          addresses["atlas"], "cytoatlas.atlas.v1.GeneService/ListGeneTissueActivity"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "x-cytoatlas-resolved: signature=Activin A; asked=INHBA; rule=alias" in out.stdout
    body = json.loads(out.stdout[out.stdout.index("{"):out.stdout.index("\n}") + 2])
    assert body["signature"] == "Activin A" and len(body["tissues"]) == 2


def test_cross_atlas_through_grpcurl(addresses, local):
    out = grpcurl(addresses["atlas"], "cytoatlas.atlas.v1.CrossAtlasService/ListCrossAtlasConservedSignatures",
                  data={"signature": "IFNG"})
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)["signatures"]
    assert row["n_atlases"] == one(local, f"SELECT n_atlases FROM cross_atlas_conserved WHERE {CYTOSIG} "
                                          "AND signature = 'IFNG'")


# -- the demo's tables agree with the tables they derive from --------------------------------------

def test_pseudobulk_points_are_weighted_means_of_the_cell_type_tables(local):
    sql = """
        WITH m AS (SELECT atlas, cell_type, harmonized_type FROM cross_atlas_celltype_mapping WHERE level = 'coarse'),
        v AS (SELECT 'CIMA' AS atlas, m.harmonized_type, c.signature_type, c.signature,
                     sum(c.mean_activity * c.n_samples) / sum(c.n_samples) AS value, sum(c.n_samples) AS n
              FROM cima_celltype c JOIN m ON m.atlas = 'CIMA' AND m.cell_type = c.cell_type GROUP BY ALL
              UNION ALL
              SELECT 'Inflammation', m.harmonized_type, c.signature_type, c.signature,
                     sum(c.mean_activity * c.n_samples) / sum(c.n_samples), sum(c.n_samples)
              FROM inflammation_celltype c JOIN m ON m.atlas = 'Inflammation' AND m.cell_type = c.cell_type GROUP BY ALL)
        SELECT count(*), max(abs(p.x - a.value)), max(abs(p.y - b.value)), count(*) FILTER (WHERE p.n_samples_x <> a.n)
        FROM cross_atlas p JOIN v a ON a.atlas = p.atlas1 AND a.harmonized_type = p.cell_type
             AND a.signature_type = p.signature_type AND a.signature = p.signature
        JOIN v b ON b.atlas = p.atlas2 AND b.harmonized_type = p.cell_type AND b.signature_type = p.signature_type
             AND b.signature = p.signature
        WHERE p.view = 'pseudobulk' AND p.level = 'coarse' AND p.atlas1 = 'CIMA' AND p.atlas2 = 'Inflammation'"""
    n, dx, dy, bad_n = local["atlas"].execute(sql).fetchall()[0]
    total = one(local, "SELECT count(*) FROM cross_atlas WHERE view = 'pseudobulk' AND level = 'coarse' "
                       "AND atlas1 = 'CIMA' AND atlas2 = 'Inflammation'")
    assert n == total > 0 and dx < 1e-9 and dy < 1e-9 and bad_n == 0


def test_cross_atlas_tables_are_consistent(local):
    check = lambda sql: one(local, sql)  # noqa: E731 - each query counts violations
    # An atlas's value of a cell type x signature is the same in both pairs it is in.
    assert check("SELECT count(*) FROM cross_atlas a JOIN cross_atlas b USING (signature_type, view, level, cell_type, "
                 "signature) WHERE a.atlas1 = 'CIMA' AND b.atlas1 = 'CIMA' AND a.atlas2 = 'Inflammation' "
                 "AND b.atlas2 = 'scAtlas' AND a.x <> b.x") == 0
    # Pair statistics count their block's points; the comparison table is the points side by side.
    assert check("SELECT count(*) FROM cross_atlas_pair_stats s LEFT JOIN (SELECT signature_type, view, level, atlas1, "
                 "atlas2, count(*) AS n FROM cross_atlas GROUP BY ALL) p USING (signature_type, view, level, atlas1, "
                 "atlas2) WHERE s.view <> 'agnostic' AND s.n <> coalesce(p.n, 0)") == 0
    assert check("SELECT count(*) FROM cross_atlas_comparison c JOIN cross_atlas p USING (signature_type, view, level, "
                 "cell_type, signature) WHERE p.atlas1 = 'CIMA' AND p.atlas2 = 'scAtlas' "
                 "AND (c.cima_activity <> p.x OR c.scatlas_activity <> p.y)") == 0
    # Conserved: CytoSig wins a shared name; the flags are |mean| > 0.3; n_atlases counts them.
    assert check("SELECT count(*) FROM cross_atlas_conserved s JOIN cross_atlas_conserved c USING (signature) "
                 "WHERE s.signature_type = 'SecAct' AND c.signature_type = 'CytoSig'") == 0
    assert check("SELECT count(*) FROM cross_atlas_conserved WHERE active_cima <> (abs(cima_mean) > 0.3) OR "
                 "n_atlases <> active_cima::INT + active_inflammation::INT + active_scatlas::INT") == 0
    # Reliability: pairs with data = the correlations present; categories as GAC assigns them.
    assert check("SELECT count(*) FROM cross_atlas_reliability WHERE n_pairs_with_data <> (r_cima_inflammation IS NOT "
                 "NULL)::INT + (r_cima_scatlas IS NOT NULL)::INT + (r_inflammation_scatlas IS NOT NULL)::INT "
                 "OR (n_pairs_with_data >= 2 AND n_reliable_pairs >= 2) <> (category = 'highly_conserved')") == 0
    # Meta-analysis: every row of a signature carries the same pooled values.
    assert check("SELECT count(*) FROM (SELECT analysis, signature_type, signature FROM cross_atlas_meta_analysis "
                 "GROUP BY ALL HAVING count(DISTINCT pooled_effect) > 1)") == 0
    # Pathway genes are the pathways' comma lists, and every harmonised scatter type is in the mapping.
    assert check("SELECT count(*) FROM cross_atlas_pathways p WHERE n_genes <> (SELECT count(*) FROM "
                 "cross_atlas_pathway_genes g WHERE g.database = p.database AND g.pathway = p.pathway)") == 0
    assert check("SELECT count(*) FROM (SELECT DISTINCT level, cell_type FROM cross_atlas WHERE view <> 'integrated') "
                 "x WHERE NOT EXISTS (SELECT 1 FROM cross_atlas_celltype_mapping m WHERE m.level = x.level "
                 "AND m.harmonized_type = x.cell_type)") == 0


def test_gene_tables_are_consistent(local):
    check = lambda sql: one(local, sql)  # noqa: E731
    # A boxplot is of the same sampled cells as its expression row; at least 3 cells express.
    assert check("SELECT count(*) FROM expression_boxplot b LEFT JOIN gene_expression e USING (gene, atlas, cell_type) "
                 "WHERE e.gene IS NULL OR b.pct_expressed <> e.pct_expressed OR b.mean_all <> e.mean_expression "
                 "OR b.n_expressing < 3 OR NOT (b.min <= b.q1 AND b.q1 <= b.median AND b.median <= b.q3 "
                 "AND b.q3 <= b.max)") == 0
    assert check("SELECT count(*) FROM gene_expression e LEFT JOIN expression_boxplot b USING (gene, atlas, cell_type) "
                 "WHERE b.gene IS NULL AND round(e.pct_expressed * least(e.n_cells, 300) / 100) >= 3") == 0
    assert check("SELECT count(*) FROM (SELECT DISTINCT gene FROM gene_expression) WHERE gene NOT IN "
                 "(SELECT gene FROM gene_list)") == 0
    # CIMA expression rows are the CIMA cell types, with their cell counts.
    assert check("SELECT count(*) FROM (SELECT DISTINCT cell_type, n_cells FROM gene_expression WHERE atlas = 'CIMA') e "
                 "WHERE NOT EXISTS (SELECT 1 FROM cima_celltype c WHERE c.cell_type = e.cell_type "
                 "AND c.n_cells = e.n_cells)") == 0
    # scAtlas cells of a type over the organs: the same in the expression rows and the cell-type mapping.
    assert check("SELECT count(*) FROM (SELECT base_cell_type, sum(n_cells) AS n FROM gene_expression "
                 "WHERE gene = 'IFNG' AND atlas = 'scAtlas_Normal' GROUP BY 1) e JOIN cross_atlas_celltype_mapping m "
                 "ON m.level = 'coarse' AND m.atlas = 'scAtlas' AND m.cell_type = e.base_cell_type WHERE m.n_cells <> e.n") == 0
    # gene_info names every CytoSig signature, its gene as the alias table has it.
    assert check("SELECT count(*) FROM (SELECT DISTINCT signature FROM cima_celltype WHERE signature_type = 'CytoSig') s "
                 "WHERE signature NOT IN (SELECT signature FROM gene_info WHERE signature_type = 'CytoSig')") == 0
    assert check("SELECT count(*) FROM signature_aliases a JOIN gene_info g ON g.signature_type = 'CytoSig' "
                 "AND g.signature = a.signature WHERE a.signature_type = 'CytoSig' AND a.alias <> g.hgnc_symbol "
                 "AND a.alias NOT IN ('IFNB1', 'IL12B')") == 0
    # The builder-made gene tables hold exactly their sources' rows.
    for derived, source in (("atlas_celltype_activity", CELL_TYPES), ("gene_disease_activity", "inflammation_differential"),
                            ("gene_correlations", "cima_correlations")):
        assert check(f"SELECT count(*) FROM {derived}") >= check(f"SELECT count(*) FROM {source}") > 0


# -- cross_atlas.json: every section optional, either real shape, bare NaN ----------------------------

def _read(tmp_path: pathlib.Path, document: str, names: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """The cross_atlas* tables' rows (those named, default all) as the builder reads them from `document`."""
    from builders.ingest import SourceFile, TableSource
    from cytoatlas.domains.atlas import cross_atlas

    path = tmp_path / "cross_atlas.json"
    path.write_text(document)
    con = duckdb.connect()
    try:
        return {spec.name: con.sql(TableSource(con, spec, [SourceFile(path, path.name)], tmp_path).select_sql())
                .to_arrow_table().to_pylist()
                for spec in cross_atlas.TABLES if spec.source_sql and (not names or spec.name in names)}
    finally:
        con.close()


def test_missing_sections_give_empty_tables_and_p06_shapes_read(tmp_path):
    # P06's file when its inputs were there and no archive script ran after it.
    tables = _read(tmp_path, json.dumps({
        "summary": {"cima": {"cells": 10, "samples": 2, "cell_types": 1, "cell_type_list": ["B"]}},
        "conserved": {"signatures": [{"signature": "IFNG", "cima": True, "inflammation": False, "scatlas": False,
                                      "n_atlases": 1, "cima_mean": 0.8, "inflammation_mean": float("nan"),
                                      "scatlas_mean": 0.1}],
                      "overlap_counts": {"cima_only": 1}},
        "comparison": {"inflam_vs_scatlas": {"data": [{"signature": "IFNG", "cell_type": "NK", "x": 0.5, "y": 0.25}],
                                             "correlation": 0.5, "pvalue": 0.1, "n": 1}},
        "celltype_mapping": {"nodes": [{"id": 0, "name": "B"}], "links": []},
        "correlation": {"signatures": ["IFNG", "IL6"], "matrix": [[1.0, 0.25], [0.25, 1.0]],
                        "modules": [{"name": "Inflammatory", "members": ["IFNG", "IL6"], "color": "#d62728"}]},
    }))
    assert [r["atlas"] for r in tables["cross_atlas_summary"]] == ["CIMA"]
    [conserved] = tables["cross_atlas_conserved"]
    assert (conserved["signature_type"], conserved["inflammation_mean"]) == ("CytoSig", None)  # P07: no type; NaN
    assert conserved["mean_activity"] == pytest.approx(0.45) and conserved["std_activity"] == pytest.approx(0.35)
    [point] = tables["cross_atlas"]
    assert (point["view"], point["level"], point["atlas1"], point["atlas2"]) == ("integrated", "common", "Inflammation",
                                                                                  "scAtlas")
    assert sorted((r["signature_a"], r["signature_b"], r["rho"]) for r in tables["cross_atlas_signature_correlations"]) == [
        ("IFNG", "IFNG", 1.0), ("IFNG", "IL6", 0.25), ("IL6", "IFNG", 0.25), ("IL6", "IL6", 1.0)]
    assert {r["signature"] for r in tables["cross_atlas_modules"]} == {"IFNG", "IL6"}
    for name in ("cross_atlas_reliability", "cross_atlas_meta_analysis", "cross_atlas_celltype_mapping",
                 "cross_atlas_pathways"):
        assert tables[name] == [], name
    empty = _read(tmp_path, "{}")  # nothing at all: every table empty, none failing
    assert empty == {name: [] for name in tables}


def test_bare_nan_tokens_load_as_null(tmp_path):
    tables = _read(tmp_path, '{"atlas_comparison": {"cytosig": {"cima_vs_scatlas": {"celltype_aggregated_coarse": '
                             '{"data": [{"signature": "IL6", "cell_type": "NK", "x": NaN, "y": 1.5, "n_samples_x": 3, '
                             '"n_samples_y": 4}], "correlation": NaN, "pvalue": null, "n": 1}}}}}',
                   ("cross_atlas", "cross_atlas_pair_stats"))
    [point] = tables["cross_atlas"]
    assert (point["x"], point["y"], point["signature_type"], point["view"]) == (None, 1.5, "CytoSig", "pseudobulk")
    [stats] = tables["cross_atlas_pair_stats"]
    assert stats["correlation"] is None and stats["n"] == 1
