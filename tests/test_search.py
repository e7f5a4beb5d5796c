"""SearchService in the three domain services, the Router's search and autocomplete, `cytoatlas
search`: the index tables checked against the data tables they derive from; every RPC's answer
against the same question asked of DuckDB in-process, with the ranking recomputed here from the
documented rules (DuckDB only supplies the two string distances); the issue's example queries
through the Router and the CLI; partial results with one service stopped; bad input for every
RPC; grpcurl; and GetDataset by file name."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from builders.engine import stored_compression
from cytoatlas import cli
from cytoatlas.client import Router
from cytoatlas.domains import DOMAINS as SPECS
from cytoatlas.domains.search_index import search_key
from cytoatlas.search.v1 import search_service_pb2 as pb
from cytoatlas.search.v1 import search_service_pb2_grpc as pb_grpc
from cytoatlas.spatial.v1 import spatial_service_pb2, spatial_service_pb2_grpc
from tests.conftest import ServiceProcess, status_details
from tests.test_grpcurl import GRPCURL, grpcurl

DOMAINS = ("atlas", "perturbation", "spatial")
SERVICE = "cytoatlas.search.v1.SearchService"
TYPES = ("cytokine", "protein", "lincytosig", "gene", "cell_type", "disease", "disease_group", "organ", "tissue",
         "cancer_type", "drug", "drug_class", "cell_line", "pathway", "technology", "niche", "atlas", "dataset")
RESOLVED = "x-cytoatlas-resolved"


@pytest.fixture(scope="module")
def stubs(addresses):
    channels = {d: grpc.insecure_channel(addresses[d]) for d in DOMAINS}
    yield {d: pb_grpc.SearchServiceStub(c) for d, c in channels.items()}
    for channel in channels.values():
        channel.close()


def call(stubs, domain: str, rpc: str, request: dict | None = None, trailers: bool = False):
    method = pb.DESCRIPTOR.services_by_name["SearchService"].methods_by_name[rpc]
    message = json_format.ParseDict(request or {}, getattr(pb, method.input_type.name)())
    response, info = getattr(stubs[domain], rpc).with_call(message, timeout=60)
    return (response, [v for k, v in info.trailing_metadata() or () if k == RESOLVED]) if trailers else response


def key(text: str) -> str:  # letters and digits, lower case (written here, not imported)
    return "".join(c for c in text.lower() if c.isalnum())


def rows(con, sql: str, params=None) -> list[dict]:
    return con.sql(sql, params=params).to_arrow_table().to_pylist()


def column(con, sql: str) -> set:
    return {r[0] for r in con.sql(sql).fetchall()}


# -- the index tables ----------------------------------------------------------------------------


@pytest.mark.parametrize("domain", DOMAINS)
def test_terms_are_keyed_sorted_and_name_every_entity(local, domain):
    con = local[domain]
    terms = rows(con, f"SELECT * FROM {domain}_search_terms")  # physical (storage) order
    assert terms and all(t["term_key"] == key(t["term"]) == search_key(t["term"]) and t["term_lower"] == t["term"].lower()
                         for t in terms)  # the service's key of a query is the builder's key of a term
    assert [t["term_key"] for t in terms] == sorted(t["term_key"] for t in terms)  # prefix scans read a range
    entities = {(e["entity_type"], e["name"]): e for e in rows(con, f"SELECT * FROM {domain}_search_entities")}
    named = {(t["entity_type"], t["name"]) for t in terms if t["is_name"] and t["term"] == t["name"]}
    assert named == set(entities)  # each entity's name is a term; no term of an unknown entity
    assert {(t["entity_type"], t["name"]) for t in terms} <= set(entities)
    assert all(e["entity_id"] == f"{e['entity_type']}:{e['name']}" and e["type_rank"] == TYPES.index(e["entity_type"]) + 1
               for e in entities.values())
    # every alias-table spelling finds the signature it names (CytoSig -> cytokine, SecAct -> protein)
    alias_table = {"atlas": "signature_aliases"}.get(domain, f"{domain}_signature_aliases")
    kinds = {"CytoSig": "cytokine", "SecAct": "protein"}
    for a in rows(con, f"SELECT * FROM {alias_table}"):
        if (kinds[a["signature_type"]], a["signature"]) in entities:
            assert any(t["term"] == a["alias"] and t["name"] == a["signature"] and t["entity_type"] ==
                       kinds[a["signature_type"]] for t in terms), a


@pytest.mark.parametrize("domain", DOMAINS)
def test_entity_row_is_each_entitys_place_and_every_term_carries_it(local, domain):
    """Search reads a page's entities by entity_row (serving/search.py): in storage order the
    entities are numbered 0, 1, 2, ... (sorted, so the scan skips the blocks without them), and a
    term carries its own entity's number."""
    con = local[domain]
    entities = rows(con, f"SELECT entity_type, name, entity_row FROM {domain}_search_entities")  # storage order
    assert [e["entity_row"] for e in entities] == list(range(len(entities)))
    row_of = {(e["entity_type"], e["name"]): e["entity_row"] for e in entities}
    terms = rows(con, f"SELECT entity_type, name, entity_row FROM {domain}_search_terms")
    assert terms and all(t["entity_row"] == row_of[(t["entity_type"], t["name"])] for t in terms)


@pytest.mark.parametrize("domain", DOMAINS)
def test_columns_are_stored_compressed_as_their_spec_declares(local, domain):
    """The search index's text is stored uncompressed (search_index.PLAIN): the ranking and
    completion statements read all of it on every call."""
    declared = SPECS[domain].declared_compression()
    assert {t for t, _ in declared} >= {f"{domain}_search_terms", f"{domain}_search_entities"}
    for (table, column), compression in declared.items():
        assert stored_compression(local[domain], table)[column] == {compression}, (table, column)


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("name,spellings", [
    ("IL6", {"interleukin 6", "IL-6"}), ("IFNG", {"interferon gamma", "IFN-gamma"}),
    ("TNFA", {"tumor necrosis factor", "TNF-alpha", "TNF"}), ("TGFB1", {"transforming growth factor beta 1", "TGF-beta1"}),
    ("GMCSF", {"granulocyte-macrophage colony-stimulating factor", "GM-CSF", "CSF2"}),
])
def test_cytokine_families_are_spelled_out(local, domain, name, spellings):
    got = column(local[domain], f"SELECT term FROM {domain}_search_terms WHERE entity_type = 'cytokine' "
                                f"AND name = '{name}'")
    assert spellings <= got


def test_entities_are_the_data_tables_names(local):
    a, p, s = (local[d] for d in DOMAINS)

    def names(con, domain, kind):
        return column(con, f"SELECT name FROM {domain}_search_entities WHERE entity_type = '{kind}'")

    assert names(a, "atlas", "organ") == column(a, "SELECT organ FROM scatlas_organs UNION SELECT organ FROM scatlas_celltypes")
    assert names(a, "atlas", "disease") == column(a, "SELECT disease FROM inflammation_disease UNION "
                                                     "SELECT disease FROM inflammation_differential")
    assert names(a, "atlas", "atlas") == column(a, "SELECT atlas FROM activity")
    assert names(a, "atlas", "cytokine") >= column(a, "SELECT signature FROM activity WHERE signature_type = 'CytoSig'")
    assert names(p, "perturbation", "drug") == column(p, "SELECT drug FROM tahoe_drug_effect WHERE drug <> 'DMSO_TF'")
    # a stimulation mapped to its CytoSig signature is that cytokine; an unmapped one is named as treated
    assert names(p, "perturbation", "cytokine") == column(
        p, "SELECT signature FROM parse10m_treatment_effect WHERE signature_type = 'CytoSig' UNION "
           "SELECT coalesce(m.signature, a.cytokine) FROM (SELECT DISTINCT cytokine FROM parse10m_activity "
           "WHERE cytokine <> 'PBS') a LEFT JOIN parse10m_cytokine_metadata m USING (cytokine)")
    assert "IL-6" in column(p, "SELECT term FROM perturbation_search_terms WHERE name = 'IL6' AND term_kind = 'treatment'")
    assert names(s, "spatial", "dataset") == column(s, "SELECT dataset_id FROM spatial_dataset_metadata")
    assert names(s, "spatial", "tissue") == column(s, "SELECT tissue FROM spatial_dataset_metadata UNION "
                                                     "SELECT tissue FROM spatial_tissue_summary")


def test_entity_counts_come_from_the_source_tables(local):
    a, p, s = (local[d] for d in DOMAINS)
    il6 = rows(a, "SELECT * FROM atlas_search_entities WHERE entity_id = 'cytokine:IL6'")[0]
    parts = ["activity", "inflammation_differential", "cima_correlations", "scatlas_organs"]
    want = sum(a.sql(f"SELECT count(*) FROM {t} WHERE signature = 'IL6' AND signature_type = 'CytoSig'").fetchall()[0][0]
               for t in parts)
    atlases = column(a, "SELECT atlas FROM activity WHERE signature = 'IL6' AND signature_type = 'CytoSig'") | {
        "Inflammation", "CIMA", "scAtlas_Normal"}
    assert (il6["n_rows"], il6["contexts"].split(", "), il6["tables"].split(", ")) == (want, sorted(atlases), sorted(parts))
    drug = rows(p, "SELECT * FROM perturbation_search_entities WHERE entity_id = 'drug:Imatinib'")[0]
    assert drug["n_rows"] == p.sql("SELECT count(*) FROM tahoe_drug_effect WHERE drug = 'Imatinib'").fetchall()[0][0]
    lung = rows(s, "SELECT * FROM spatial_search_entities WHERE entity_id = 'tissue:lung'")[0]
    assert lung["n_rows"] == s.sql("SELECT (SELECT count(*) FROM spatial_dataset_metadata WHERE tissue = 'lung') + "
                                   "(SELECT count(*) FROM spatial_tissue_summary WHERE tissue = 'lung')").fetchall()[0][0]
    assert lung["contexts"].split(", ") == sorted(column(s, "SELECT technology FROM spatial_dataset_metadata "
                                                            "WHERE tissue = 'lung'"))


# -- ranking, recomputed here -------------------------------------------------------------------


def expected_search(con, domain: str, query: str, kind: str = "") -> list[tuple]:
    """The documented ranking, computed in Python over the terms table (DuckDB gives the distances)."""
    k, n = key(query), len(key(query))
    edits = max(1, n // 4)
    terms = rows(con, f"""SELECT t.*, e.type_rank, e.entity_id,
        jaro_winkler_similarity(term_key, $k) AS jw, jaro_winkler_similarity(left(term_key, {n}), $k) AS jw_pre,
        damerau_levenshtein(term_key, $k) AS dl, damerau_levenshtein(left(term_key, {n}), $k) AS dl_pre
        FROM {domain}_search_terms t JOIN {domain}_search_entities e USING (entity_type, name)""", {"k": k})
    candidates: dict[str, list] = {}
    for t in terms:
        if kind and t["entity_type"] != kind:
            continue
        tk, alias = t["term_key"], not t["is_name"]
        if t["term"] == query:
            rule, score = "exact", 100 - 5 * alias
        elif t["term"].lower() == query.lower():
            rule, score = "case", 90 - 5 * alias
        elif tk == k:
            rule, score = "normalised", 80 - 5 * alias
        elif tk.startswith(k):
            rule, score = "prefix", 60 + 10.0 * n / len(tk) - alias
        elif k in tk:
            rule, score = "contains", 40 + 10.0 * n / len(tk) - alias
        elif tk[:1] == k[:1] and abs(len(tk) - n) <= edits and t["jw"] >= 0.85 and t["dl"] <= edits:
            rule, score = "similar", 10 + 20 * t["jw"] - alias
        elif len(tk) > n and tk.startswith(k[:2]) and t["jw_pre"] >= 0.85 and t["dl_pre"] <= edits:
            rule, score = "similar_prefix", 10 + 15 * t["jw_pre"] - alias
        else:
            continue
        candidates.setdefault(t["entity_id"], []).append((score, t, rule))
    # per entity its best term (score, then a name before an alias, then the term), then the ranking
    best = [min(found, key=lambda c: (-c[0], not c[1]["is_name"], c[1]["term"])) for found in candidates.values()]
    ranked = sorted(best, key=lambda b: (-round(b[0], 6), b[1]["type_rank"], b[1]["name"]))
    return [(b[1]["entity_id"], round(b[0], 6), b[1]["term"], b[2]) for b in ranked]


@pytest.mark.parametrize("domain,query,kind", [
    ("atlas", "interlukin 6", ""), ("atlas", "IL6", ""), ("atlas", "il-6", ""), ("atlas", "lung", ""),
    ("atlas", "TNF", ""), ("atlas", "tumour necro", ""), ("atlas", "cd8", "cell_type"),
    ("perturbation", "il-6", ""), ("perturbation", "Imatinib", ""), ("perturbation", "inib", "drug"),
    ("perturbation", "IFN-gamma", ""), ("spatial", "lung", ""), ("spatial", "visium_lung_003.h5ad", ""),
    ("spatial", "lnug", ""),
])
def test_search_ranks_as_the_rules_say(stubs, local, domain, query, kind):
    want = expected_search(local[domain], domain, query, kind)
    got = call(stubs, domain, "Search", {"query": query, "entity_type": kind, "page_size": 100})
    assert got.total_size == len(want) and got.domain == domain
    assert [(r.entity_id, pytest.approx(r.score, abs=1e-6), r.matched_term, r.match_rule) for r in got.results] == want[:100]
    assert want, "each example finds something"


def test_search_result_fields_and_paging(stubs, local):
    answer = call(stubs, "atlas", "Search", {"query": "IFN", "page_size": 100})
    whole = answer.results
    assert len(whole) == answer.total_size > 7 and not answer.next_page_token
    first = whole[0]
    entity = rows(local["atlas"], "SELECT * FROM atlas_search_entities WHERE entity_id = $id", {"id": first.entity_id})[0]
    aliases = sorted(column(local["atlas"], f"SELECT term FROM atlas_search_terms WHERE entity_type = "
                                            f"'{first.entity_type}' AND name = '{first.name}' AND NOT is_name"))
    assert (first.description, list(first.contexts), first.n_rows, list(first.aliases)) == (
        entity["description"], entity["contexts"].split(", "), entity["n_rows"], aliases)
    paged, token = [], ""
    while True:
        page = call(stubs, "atlas", "Search", {"query": "IFN", "page_size": 7, "page_token": token})
        paged += page.results
        token = page.next_page_token
        if not token:
            break
    assert [r.entity_id for r in paged] == [r.entity_id for r in whole]
    with pytest.raises(grpc.RpcError) as err:  # a token is bound to its query
        call(stubs, "atlas", "Search", {"query": "IL", "page_size": 7,
                                        "page_token": call(stubs, "atlas", "Search", {"query": "IFN", "page_size": 7}).next_page_token})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "different request" in err.value.details()


@pytest.mark.parametrize("domain,prefix,kind,limit", [
    ("atlas", "IL", "", 20), ("atlas", "il-1", "", 10), ("atlas", "tum", "", 5), ("perturbation", "ifn", "", 0),
    ("perturbation", "a", "cell_line", 20), ("spatial", "Vis", "", 10),
])
def test_autocomplete_completes_as_the_rules_say(stubs, local, domain, prefix, kind, limit):
    k = key(prefix)
    best = {}
    for t in rows(local[domain], f"SELECT t.*, e.type_rank, e.entity_id FROM {domain}_search_terms t "
                                 f"JOIN {domain}_search_entities e USING (entity_type, name)"):
        if not t["term_key"].startswith(k) or (kind and t["entity_type"] != kind):
            continue
        whole = t["term_key"] == k
        score = round((80.0 if whole else 60 + 10.0 * len(k) / len(t["term_key"]))
                      - (0 if t["is_name"] else 5 if whole else 1), 6)
        order = (-score, len(t["term"]), t["term"])
        if t["entity_id"] not in best or order < best[t["entity_id"]][0]:
            best[t["entity_id"]] = (order, t, score)
    ranked = sorted(best.values(), key=lambda b: (b[0][0], b[0][1], b[1]["type_rank"], b[1]["name"]))[:limit or 10]
    typed = lambda term: (f"<b>{term[:len(prefix)]}</b>{term[len(prefix):]}"  # noqa: E731
                          if term.lower().startswith(prefix.lower()) else term)
    want = [(b[1]["name"], b[1]["entity_id"], b[1]["term"], typed(b[1]["term"]), b[2]) for b in ranked]
    got = call(stubs, domain, "Autocomplete", {"prefix": prefix, "entity_type": kind, "limit": limit}).suggestions
    assert [(s.text, s.entity_id, s.matched_term, s.highlight, pytest.approx(s.score, abs=1e-6)) for s in got] == want
    assert want


@pytest.mark.parametrize("domain", DOMAINS)
def test_types_and_stats_count_the_index(stubs, local, domain):
    con = local[domain]
    want = rows(con, f"SELECT entity_type, count(*) AS n, sum(n_rows) AS n_rows FROM {domain}_search_entities "
                     "GROUP BY ALL ORDER BY min(type_rank)")
    types = call(stubs, domain, "ListEntityTypes").entity_types
    assert [(t.entity_type, t.n_entities, t.n_rows) for t in types] == [(w["entity_type"], w["n"], w["n_rows"]) for w in want]
    assert all(t.label and t.description for t in types)
    stats = call(stubs, domain, "GetSearchStats")
    assert (stats.total_entities, stats.total_terms) == (
        sum(w["n"] for w in want), con.sql(f"SELECT count(*) FROM {domain}_search_terms").fetchall()[0][0])
    assert list(stats.by_type) == list(types)
    contexts = con.sql(f"SELECT context, count(DISTINCT (entity_type, name)) FROM {domain}_search_mentions "
                       "WHERE context <> '' GROUP BY 1 ORDER BY 1").fetchall()
    assert [(c.context, c.n_entities) for c in stats.by_context] == contexts
    assert stats.context_kind == {"atlas": "atlas", "perturbation": "dataset", "spatial": "technology"}[domain]


# -- one entity: activity and correlations --------------------------------------------------------


@pytest.mark.parametrize("domain,request_,resolved,sql,columns", [
    ("atlas", {"entity_id": "cytokine:IFNG"}, "cytokine:IFNG",
     "FROM (SELECT 'CIMA' AS g, cell_type AS c, mean_activity AS v, signature, signature_type FROM cima_celltype "
     "UNION ALL SELECT 'Inflammation', cell_type, mean_activity, signature, signature_type FROM inflammation_celltype "
     "UNION ALL SELECT 'scAtlas', cell_type || ' (' || organ || ')', mean_activity, signature, signature_type "
     "FROM scatlas_celltypes) WHERE signature = 'IFNG' AND signature_type = 'CytoSig'", ("atlas", "cell_type", "mean_activity")),
    ("atlas", {"entity_id": "protein:tnfa", "groups": ["CIMA", "Inflammation"]}, "protein:TNF",
     "FROM (SELECT 'CIMA' AS g, cell_type AS c, mean_activity AS v, signature, signature_type FROM cima_celltype "
     "UNION ALL SELECT 'Inflammation', cell_type, mean_activity, signature, signature_type FROM inflammation_celltype) "
     "WHERE signature = 'TNF' AND signature_type = 'SecAct'", ("atlas", "cell_type", "mean_activity")),
    ("perturbation", {"entity_id": "cytokine:IL-6"}, "cytokine:IL6",
     "FROM (SELECT cytokine AS g, cell_type AS c, activity_diff AS v FROM parse10m_treatment_effect "
     "WHERE signature = 'IL6' AND signature_type = 'CytoSig')", ("cytokine", "cell_type", "activity_diff")),
    ("perturbation", {"entity_id": "cytokine:CCL2"}, "cytokine:CCL2",
     "FROM (SELECT signature AS g, cell_type AS c, activity_diff AS v FROM parse10m_treatment_effect "
     "WHERE cytokine = 'CCL2' AND signature_type = 'CytoSig')", ("signature", "cell_type", "activity_diff")),
    ("perturbation", {"entity_id": "drug:imatinib", "signature_type": "SecAct", "contexts": ["IL6"]}, "drug:Imatinib",
     "FROM (SELECT cell_line AS g, signature AS c, activity_diff AS v FROM tahoe_drug_effect "
     "WHERE drug = 'Imatinib' AND signature_type = 'SecAct' AND signature = 'IL6')", ("cell_line", "signature", "activity_diff")),
    ("spatial", {"entity_id": "tissue:lung"}, "tissue:lung",
     "FROM (SELECT '' AS g, signature AS c, mean_activity AS v FROM spatial_tissue_summary "
     "WHERE tissue = 'lung' AND signature_type = 'CytoSig')", ("", "signature", "mean_activity")),
    ("spatial", {"entity_id": "cytokine:IL6"}, "cytokine:IL6",
     "FROM (SELECT tissue AS g, '' AS c, mean_activity AS v FROM spatial_tissue_summary "
     "WHERE signature = 'IL6' AND signature_type = 'CytoSig')", ("tissue", "", "mean_activity")),
])
def test_entity_activity_matches_duckdb(stubs, local, domain, request_, resolved, sql, columns):
    con = local[domain]
    if "groups" in request_:
        sql += " AND g IN ('CIMA', 'Inflammation')"
    want = con.sql(f"SELECT g, c, v {sql} ORDER BY g, c").fetchall()
    got, trailers = call(stubs, domain, "GetEntityActivity", {**request_, "page_size": 10_000, "top_n": 3}, trailers=True)
    assert (got.entity_id, (got.group_column, got.context_column, got.value_column)) == (resolved, columns)
    assert [(a.group, a.context, a.value) for a in got.activities] == [(g or "", c or "", v) for g, c, v in want]
    n, mean, std, low, high = con.sql(f"SELECT count(*), avg(v), stddev_samp(v), min(v), max(v) {sql}").fetchall()[0]
    assert (got.n_activities, got.min_activity, got.max_activity) == (n, low, high)
    assert got.mean_activity == pytest.approx(mean) and got.std_activity == pytest.approx(std)
    top = con.sql(f"SELECT g, c, v {sql} ORDER BY v DESC, g, c LIMIT 3").fetchall()
    bottom = con.sql(f"SELECT g, c, v {sql} ORDER BY v, g, c LIMIT 3").fetchall()
    assert [a.value for a in got.top_positive] == [v for *_, v in top]
    assert [a.value for a in got.top_negative] == [v for *_, v in bottom]
    asked = request_["entity_id"]
    assert trailers == ([] if asked == resolved else [f"entity_id={resolved}; asked={asked}; rule="
                                                      f"{'case' if asked.lower() == resolved.lower() else 'alias'}"])


def test_entity_activity_pages(stubs):
    whole = call(stubs, "perturbation", "GetEntityActivity", {"entity_id": "drug:Imatinib", "page_size": 10_000})
    paged, token = [], ""
    while True:
        page = call(stubs, "perturbation", "GetEntityActivity",
                    {"entity_id": "drug:Imatinib", "page_size": 150, "page_token": token})
        paged += page.activities
        token = page.next_page_token
        if not token:
            break
    assert list(paged) == list(whole.activities) and len(paged) == whole.n_activities > 150


def test_entity_correlations_match_duckdb(stubs, local):
    got, trailers = call(stubs, "atlas", "GetEntityCorrelations", {"entity_id": "cytokine:TNF", "page_size": 10_000},
                         trailers=True)
    want = local["atlas"].sql(  # the CIMA tables themselves, not the builder's union
        "SELECT category, cell_type, variable, rho FROM (SELECT category, 'All' AS cell_type, feature AS variable, rho, "
        "signature, signature_type FROM cima_correlations UNION ALL SELECT category, cell_type, category, rho, "
        "signature, signature_type FROM cima_celltype_correlations UNION ALL SELECT 'metabolites', 'All', feature, rho, "
        "signature, signature_type FROM cima_metabolites_top) WHERE signature = 'TNFA' AND signature_type = 'CytoSig' "
        "ORDER BY category, abs(rho) DESC, cell_type, variable").fetchall()
    assert [(c.category, c.cell_type, c.variable, c.rho) for c in got.correlations] == want
    assert list(got.available_categories) == sorted({c for c, *_ in want})
    assert (got.entity_id, got.signature_type, trailers) == (
        "cytokine:TNFA", "CytoSig", ["entity_id=cytokine:TNFA; asked=cytokine:TNF; rule=alias"])
    age = call(stubs, "atlas", "GetEntityCorrelations", {"entity_id": "cytokine:TNFA", "category": "age"})
    assert {c.category for c in age.correlations} == {"age"} and len(age.correlations) == sum(c == "age" for c, *_ in want)


# -- bad input ---------------------------------------------------------------------------------------

BAD = [
    ("atlas", "Search", {}, "INVALID_ARGUMENT", "`query` is required"),
    ("atlas", "Search", {"query": "?!"}, "INVALID_ARGUMENT", "no letter or digit"),
    ("atlas", "Search", {"query": "x" * 201}, "INVALID_ARGUMENT", "at most 200"),
    ("atlas", "Search", {"query": "IL6", "entity_type": "Cell type"}, "INVALID_ARGUMENT", "did you mean 'cell_type'"),
    ("perturbation", "Search", {"query": "IL6", "page_size": -1}, "INVALID_ARGUMENT", "page_size"),
    ("spatial", "Search", {"query": "IL6", "page_token": "garbage"}, "INVALID_ARGUMENT", "page_token"),
    ("atlas", "Autocomplete", {}, "INVALID_ARGUMENT", "`prefix` is required"),
    ("perturbation", "Autocomplete", {"prefix": "IL", "limit": 21}, "INVALID_ARGUMENT", "limit must be 0"),
    ("spatial", "Autocomplete", {"prefix": "IL", "entity_type": "drugs"}, "INVALID_ARGUMENT", "types: cytokine"),
    ("atlas", "GetEntityActivity", {}, "INVALID_ARGUMENT", "`entity_id` is required"),
    ("atlas", "GetEntityActivity", {"entity_id": "IFNG"}, "INVALID_ARGUMENT", "is not TYPE:NAME"),
    ("atlas", "GetEntityActivity", {"entity_id": "hormone:IFNG"}, "INVALID_ARGUMENT", "entity type 'hormone'"),
    ("atlas", "GetEntityActivity", {"entity_id": "cytokine:IFNX"}, "NOT_FOUND", "or 'IFNG' or"),
    ("atlas", "GetEntityActivity", {"entity_id": "drug:Imatinib"}, "NOT_FOUND", "has no drug entities"),
    ("atlas", "GetEntityActivity", {"entity_id": "gene:IL6"}, "NOT_FOUND", "no activity for gene entities"),
    ("atlas", "GetEntityActivity", {"entity_id": "cytokine:IFNG", "groups": ["CIMAX"]}, "NOT_FOUND", "did you mean 'CIMA'"),
    ("atlas", "GetEntityActivity", {"entity_id": "cytokine:IFNG", "top_n": -1}, "INVALID_ARGUMENT", "top_n"),
    ("perturbation", "GetEntityActivity", {"entity_id": "drug:Imatinib", "signature_type": "cytosig"},
     "INVALID_ARGUMENT", "did you mean 'CytoSig'"),
    ("spatial", "GetEntityActivity", {"entity_id": "tissue:lung", "groups": ["x"]}, "INVALID_ARGUMENT", "no group level"),
    ("atlas", "GetEntityCorrelations", {"entity_id": "organ:Lung"}, "NOT_FOUND", "correlations are per signature"),
    ("atlas", "GetEntityCorrelations", {"entity_id": "cytokine:IFNG", "category": "height"}, "INVALID_ARGUMENT",
     "age, biochemistry"),
    ("perturbation", "GetEntityCorrelations", {"entity_id": "cytokine:IFNG"}, "NOT_FOUND", "ask the atlas service"),
    ("spatial", "GetEntityCorrelations", {"entity_id": "x"}, "INVALID_ARGUMENT", "is not TYPE:NAME"),
]


@pytest.mark.parametrize("domain,rpc,request_,code,text", BAD, ids=[f"{c[1]}-{c[3]}-{i}" for i, c in enumerate(BAD)])
def test_bad_input_gets_the_right_code_and_names_the_problem(stubs, domain, rpc, request_, code, text):
    with pytest.raises(grpc.RpcError) as err:
        call(stubs, domain, rpc, request_)
    assert err.value.code().name == code
    assert text in err.value.details()
    assert len(status_details(err.value, error_details_pb2.ErrorInfo)) == 1


def test_every_rpc_is_covered_by_the_tests():
    """A new SearchService RPC needs a DuckDB comparison and a bad-input case here."""
    checked = {"Search", "Autocomplete", "ListEntityTypes", "GetSearchStats", "GetEntityActivity",
               "GetEntityCorrelations"}
    bad = {c[1] for c in BAD}
    for rpc in pb.DESCRIPTOR.services_by_name["SearchService"].methods_by_name:
        assert rpc in checked, rpc
        assert rpc in bad or rpc in ("ListEntityTypes", "GetSearchStats"), rpc  # these two take no input


# -- the examples through the Router and the CLI --------------------------------------------------------


def test_examples_through_the_router(router):
    for query in ("interlukin 6", "IL6", "il-6"):
        found = router.search(query, limit=5)
        assert (found.results[0].name, found.results[0].entity_type) == ("IL6", "cytokine"), query
        assert not found.errors and {r.domain for r in found.results[:3]} == set(DOMAINS)
        scores = [r.score for r in found.results]
        assert scores == sorted(scores, reverse=True)
    drug = router.search("Imatinib", limit=3).results[0]
    assert (drug.name, drug.entity_type, drug.domain, drug.match_rule) == ("Imatinib", "drug", "perturbation", "exact")
    lung = router.search("lung", limit=5).results
    assert ("lung", "tissue", "spatial") == (lung[0].name, lung[0].entity_type, lung[0].domain)
    assert ("Lung", "organ", "atlas") in [(r.name, r.entity_type, r.domain) for r in lung[:3]]
    only = router.search("lung", entity_type="organ")
    assert [(r.name, r.domain) for r in only.results] == [("Lung", "atlas")]


def test_autocomplete_through_the_router(router):
    completions = router.autocomplete("IL", limit=5)
    assert len(completions.suggestions) == 5 and not completions.errors
    first = completions.suggestions[0]
    assert first.text.startswith("IL") and first.domains == list(DOMAINS)  # the signatures are in every file
    scores = [c.score for c in completions.suggestions]
    assert scores == sorted(scores, reverse=True)
    assert [c.domains for c in router.autocomplete("Imat").suggestions] == [["perturbation"]]


@pytest.mark.parametrize("query,first", [("interlukin 6", ("IL6", "cytokine")), ("IL6", ("IL6", "cytokine")),
                                         ("il-6", ("IL6", "cytokine")), ("Imatinib", ("Imatinib", "drug")),
                                         ("lung", ("lung", "tissue"))])
def test_examples_through_the_cli_as_json(addresses, capsys, query, first):
    flags = [f"--{d}-addr={a}" for d, a in addresses.items()]
    assert cli.main(["search", query, "--limit", "5", "--format", "json", *flags]) == 0
    out = json.loads(capsys.readouterr().out)  # pure JSON on standard output
    assert out["query"] == query and 1 <= len(out["results"]) <= 5 and out["errors"] == {}
    assert (out["results"][0]["name"], out["results"][0]["type"]) == first
    assert all({"name", "type", "domain"} <= set(r) for r in out["results"])
    assert [r["rank"] for r in out["results"]] == list(range(1, len(out["results"]) + 1))


def test_partial_results_with_a_service_stopped(built, addresses, tmp_path, capsys):
    spatial = ServiceProcess("spatial", built["spatial"], tmp_path / "spatial.log", "--flight-port", "-1")
    down = spatial.wait_listening()
    with Router({**addresses, "spatial": down}, timeout=10) as router:
        assert {r.domain for r in router.search("lung").results} == set(DOMAINS)
        assert spatial.stop() == 0
        found = router.search("lung")
        completions = router.autocomplete("lu")
    assert {r.domain for r in found.results} == {"atlas", "perturbation"} and found.results
    assert set(found.errors) == {"spatial"} and found.errors["spatial"].code == grpc.StatusCode.UNAVAILABLE
    assert down in str(found.errors["spatial"]) and set(completions.errors) == {"spatial"}
    flags = [f"--{d}-addr={a}" for d, a in {**addresses, "spatial": down}.items()]
    assert cli.main(["search", "lung", "--format", "json", *flags]) == 1  # partial: exit 1, as `cytoatlas target`
    out = capsys.readouterr()
    assert "warning: spatial" in out.err and down in out.err
    answer = json.loads(out.out)  # still pure JSON on standard output
    assert set(answer["errors"]) == {"spatial"} and {r["domain"] for r in answer["results"]} == {"atlas", "perturbation"}


def test_cli_table_and_bad_type(addresses, capsys):
    flags = [f"--{d}-addr={a}" for d, a in addresses.items()]
    assert cli.main(["search", "Imatinib", "--type", "drug", *flags]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 matches for 'Imatinib' (drug)" in out and "perturbation" in out
    assert cli.main(["search", "IL6", "--type", "hormone", *flags]) == 1
    assert "entity type 'hormone'" in capsys.readouterr().err


def test_search_through_grpcurl(addresses):
    out = grpcurl(addresses["perturbation"], f"{SERVICE}/Search", data={"query": "imatinib", "page_size": 2})
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["results"][0]["entity_id"] == "drug:Imatinib" and answer["results"][0]["match_rule"] == "case"
    out = subprocess.run([GRPCURL, "-plaintext", "-v", "-d", json.dumps({"entity_id": "cytokine:TNF", "top_n": 1}),
                          addresses["atlas"], f"{SERVICE}/GetEntityActivity"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "x-cytoatlas-resolved: entity_id=cytokine:TNFA; asked=cytokine:TNF; rule=alias" in out.stdout


# -- GetDataset by file name (spatial) ------------------------------------------------------------------


def test_get_dataset_by_id_or_file_name(addresses, local):
    with grpc.insecure_channel(addresses["spatial"]) as channel:
        stub = spatial_service_pb2_grpc.SpatialServiceStub(channel)
        get = lambda name: stub.GetDataset(spatial_service_pb2.GetDatasetRequest(dataset_id=name), timeout=30)  # noqa: E731
        [(dataset_id, filename)] = local["spatial"].sql(
            "SELECT dataset_id, filename FROM spatial_dataset_metadata WHERE dataset_id = 'visium_lung_003'").fetchall()
        assert filename != dataset_id
        assert get(filename).dataset == get(dataset_id).dataset and get(filename).dataset.dataset_id == dataset_id
        with pytest.raises(grpc.RpcError) as err:
            get("visium_lung_03.h5ad")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and "did you mean 'visium_lung_003'" in err.value.details()
