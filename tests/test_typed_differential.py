"""Differential test of the typed RPCs' shaping: random valid requests over real gRPC, each answer
compared with SQL written here and run by DuckDB in-process on the same built file.

tests/test_typed_rpcs.py asks each RPC one fixed question; here the questions are drawn: filters
from values the table holds (a row is drawn, then some of its fields), names respelled as a
scientist types them (case, spaces), range bounds ON existing values (so `>=` vs `>` has rows on
the boundary), top_n at 0, 1, the cap and beyond, page sizes at the answer's size and one off it
(and changed between pages), pivots, and a join. The reference SQL orders by the table key the
domain declares (cytoatlas.domains) and never goes through the service's compiler.

Examples per RPC family: CYTOATLAS_TYPED_EXAMPLES (5 in `make test`, 200 in `make test-reliability`).
"""

from __future__ import annotations

import math
import os

import grpc
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cytoatlas.domains import DOMAINS as SPECS
from tests.conftest import TYPED_SERVICES, assert_rows_equal, call

EXAMPLES = int(os.environ.get("CYTOATLAS_TYPED_EXAMPLES", "5"))
SAMPLED = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 5,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ROWS_DEFAULT, TOP_DEFAULT, TOP_MAX = 100, 10, 100  # documented in protos/TYPED_RPCS.md
MOST_ROWS = 2000  # filters are added to a drawn request until its answer is at most this long

# (domain, rpc, table, response field, the request fields that filter by equality)
LISTS = [
    ("perturbation", "ListParse10mActivity", "parse10m_activity", "activities",
     ("signature_type", "cytokine", "cell_type", "donor_id", "signature")),
    ("perturbation", "ListParse10mTreatmentEffects", "parse10m_treatment_effect", "treatment_effects",
     ("signature_type", "cytokine", "cell_type", "signature")),
    ("perturbation", "ListParse10mDonorVariability", "parse10m_donor_variability", "donor_variability",
     ("signature_type", "cytokine", "cell_type", "donor_id")),
    ("perturbation", "ListTahoeActivity", "tahoe_activity", "activities",
     ("signature_type", "drug", "cell_line", "signature", "plate")),
    ("perturbation", "ListTahoeDrugEffects", "tahoe_drug_effect", "drug_effects",
     ("signature_type", "drug", "cell_line", "signature")),
    ("perturbation", "ListTahoeDoseResponse", "tahoe_dose_response", "dose_responses",
     ("signature_type", "drug", "cell_line", "signature")),
    ("spatial", "ListSpatialActivity", "spatial_activity", "activities",
     ("signature_type", "technology", "tissue", "signature")),
    ("spatial", "ListNeighborhoodActivity", "spatial_neighborhood", "neighborhood_activities",
     ("signature_type", "tissue", "cell_type", "signature")),
    ("spatial", "ListDatasets", "spatial_dataset_metadata", "datasets", ("technology", "tissue", "species")),
    ("atlas", "ListActivity", "activity", "activities", ("signature_type", "atlas", "cell_type", "signature")),
    ("atlas", "ListCorrelations", "cima_correlations", "correlations",
     ("signature_type", "category", "feature", "signature")),
]
# Name lists: (domain, rpc, response field, the SQL of the names).
NAMES = [
    ("perturbation", "ListParse10mCytokines", "cytokines", "SELECT DISTINCT cytokine FROM parse10m_cytokine_heatmap"),
    ("perturbation", "ListTahoeDrugs", "drugs", "SELECT DISTINCT drug FROM tahoe_drug_effect WHERE drug <> 'DMSO_TF'"),
    ("spatial", "ListTissues", "tissues", "SELECT DISTINCT tissue FROM spatial_dataset_metadata"),
]
# GetTargetProfile: response list -> (table, the column ranking it, descending).
PROFILES = {
    "perturbation": {"top_cytokine_responses": ("parse10m_treatment_effect", "activity_diff"),
                     "top_drug_responses": ("tahoe_drug_effect", "activity_diff")},
    "spatial": {"top_tissues": ("spatial_tissue_summary", "mean_activity"),
                "top_niches": ("spatial_neighborhood", "mean_niche_activity")},
    "atlas": {"top_cell_types": ("activity", "mean"), "top_organs": ("scatlas_organs", "mean_activity")},
}
# Fields that name what a scientist types: a value may be sent in another case or with spaces.
NAME_FIELDS = {"signature", "cytokine", "gene"}


def key(domain: str, table: str) -> str:
    return ", ".join(f'"{c}"' for c in SPECS[domain].table(table).key)


def message_columns(domain: str, rpc: str, field: str, local) -> list[str]:
    """The table columns the response's row message carries."""
    module, _, service = TYPED_SERVICES[domain]
    output = module.DESCRIPTOR.services_by_name[service].methods_by_name[rpc].output_type
    return list(output.fields_by_name[field].message_type.fields_by_name)


def select(local, domain: str, sql: str, params=()) -> list[dict]:
    return local[domain].sql(sql, params=list(params)).to_arrow_table().to_pylist()


def fetch(local, domain: str, sql: str, params=()) -> list[tuple]:
    return local[domain].sql(sql, params=list(params)).fetchall()


def respell(draw, value: str, folds: dict) -> str:
    """`value` as a scientist might type it, when that spelling still names only `value`."""
    if folds.get(value.lower()) != {value}:
        return value
    return draw(st.sampled_from([value, value.lower(), value.upper(), f" {value} "]))


def walk(typed, domain: str, rpc: str, request: dict, field: str, sizes: list[int], most: int = 30):
    """Every page of an answer, page i asked with sizes[i] (the last size repeated)."""
    got, token, pages = [], "", 0
    while True:
        size = sizes[min(pages, len(sizes) - 1)]
        response = call(typed, domain, rpc, {**request, "page_size": size, "page_token": token})
        got += getattr(response, field)
        pages += 1
        token = response.next_page_token
        if not token:
            return got, pages
        assert pages < most, "the answer does not end"


def page_sizes(draw, n: int) -> list[int]:
    """Page sizes around the answer's size n: exactly n (one full page, no token after it), one
    off either side, a few pages, the default; sometimes another size from the second page on."""
    first = draw(st.sampled_from(sorted({n, n + 1, max(1, n - 1), math.ceil(n / 2), math.ceil(n / 3)}
                                        | ({0} if n <= 3 * ROWS_DEFAULT else set()))))
    return [first] + draw(st.lists(st.sampled_from(sorted({max(1, n // 2), n} | ({1} if n <= 5 else set()))),
                                   max_size=1))


def pages_needed(n: int, sizes: list[int]) -> int:
    pages, left = 0, n
    while True:
        size = sizes[min(pages, len(sizes) - 1)] or ROWS_DEFAULT
        pages += 1
        left -= size
        if left <= 0:
            return pages


@pytest.mark.parametrize("domain,rpc,table,field,fields", LISTS, ids=[c[1] for c in LISTS])
@SAMPLED
@given(data=st.data())
def test_list_rpcs_with_drawn_filters_and_page_sizes_match_duckdb(typed, local, domain, rpc, table, field,
                                                                   fields, data):
    draw = data.draw
    columns = [c for c in message_columns(domain, rpc, field, local)
               if c in SPECS[domain].table(table).column_names]
    # A drawn row of the table: every filter taken from it selects at least that row.
    n_rows = fetch(local, domain, f"SELECT count(*) FROM {table}")[0][0]
    row = select(local, domain, f"SELECT * FROM {table} ORDER BY {key(domain, table)} LIMIT 1 OFFSET ?",
                 [draw(st.integers(0, n_rows - 1))])[0]
    kept = [f for f in fields if f != "signature_type" and draw(st.booleans())]
    for f in fields:  # a few pages at most: more filters while the answer is large
        if f in kept or f == "signature_type":
            continue
        where_sql = " AND ".join(f"{c} = ?" for c in ["signature_type"] * ("signature_type" in fields) + kept)
        count = fetch(local, domain, f"SELECT count(*) FROM {table} WHERE {where_sql or 'TRUE'}", [
            row[c] for c in ["signature_type"] * ("signature_type" in fields) + kept])[0][0]
        if count <= MOST_ROWS:
            break
        kept.append(f)
    request, where = {}, []
    if "signature_type" in fields:  # always filtered: CytoSig unless the request says otherwise
        if row["signature_type"] != "CytoSig" or draw(st.booleans()):
            request["signature_type"] = row["signature_type"]
        where.append(("signature_type", row["signature_type"]))
    for f in kept:
        value = row[f]
        if f in NAME_FIELDS:
            scope = "WHERE signature_type = ?" if f == "signature" else ""
            spellings = fetch(local, domain, f"SELECT DISTINCT {f} FROM {table} {scope}",
                                              [row["signature_type"]] if scope else [])
            folds: dict = {}
            for (s,) in spellings:
                folds.setdefault(s.lower(), set()).add(s)
            request[f] = respell(draw, value, folds)
        else:
            request[f] = value
        where.append((f, value))
    sql = (f"SELECT {', '.join(columns)} FROM {table} WHERE "
           + " AND ".join(f"{c} = ?" for c, _ in where or [("TRUE", True)]) + f" ORDER BY {key(domain, table)}")
    want = select(local, domain, sql, [v for _, v in where or [(None, True)]])
    sizes = page_sizes(draw, len(want))
    got, pages = walk(typed, domain, rpc, request, field, sizes)
    assert_rows_equal(got, want)
    assert pages == pages_needed(len(want), sizes)  # an exactly full page carries no token


@pytest.mark.parametrize("domain,rpc,field,sql", NAMES, ids=[c[1] for c in NAMES])
@SAMPLED
@given(data=st.data())
def test_name_lists_page_at_every_size(typed, local, domain, rpc, field, sql, data):
    want = [r[0] for r in fetch(local, domain, sql + " ORDER BY 1")]
    sizes = page_sizes(data.draw, len(want))
    got, pages = walk(typed, domain, rpc, {}, field, sizes)
    assert got == want and pages == pages_needed(len(want), sizes)


@pytest.mark.parametrize("domain", sorted(PROFILES))
@SAMPLED
@given(data=st.data())
def test_target_profile_top_n_matches_duckdb(typed, local, domain, data):
    draw = data.draw
    parts = PROFILES[domain]
    kind = draw(st.sampled_from(["", "CytoSig", "SecAct"]))
    union = " UNION ".join(f"SELECT signature FROM {t} WHERE signature_type = ?" for t, _ in parts.values())
    signatures = sorted(r[0] for r in fetch(local, domain, union, [kind or "CytoSig"] * len(parts)))
    signature = draw(st.sampled_from(signatures))
    folds: dict = {}
    for s in signatures:
        folds.setdefault(s.lower(), set()).add(s)
    top_n = draw(st.sampled_from([0, 1, 2, draw(st.integers(1, TOP_MAX)), TOP_MAX - 1, TOP_MAX, TOP_MAX + 1, 1000]))
    asked = respell(draw, signature, folds)
    response = call(typed, domain, "GetTargetProfile", {"signature": asked, "signature_type": kind, "top_n": top_n})
    assert response.signature == signature and response.signature_type == (kind or "CytoSig")
    n = min(top_n or TOP_DEFAULT, TOP_MAX)
    for field, (table, rank) in parts.items():
        columns = [c for c in message_columns(domain, "GetTargetProfile", field, local)
                   if c in SPECS[domain].table(table).column_names]
        want = select(local, domain, f"SELECT {', '.join(columns)} FROM {table} WHERE signature_type = ? AND "
                      f"signature = ? ORDER BY {rank} DESC NULLS LAST, {key(domain, table)} LIMIT ?",
                      [kind or "CytoSig", signature, n])
        assert_rows_equal(getattr(response, field), want)


def bound(draw, values: list):
    """No bound, or one ON a value the column holds (rows sit exactly on it)."""
    return draw(st.one_of(st.none(), st.sampled_from(values)))


@SAMPLED
@given(data=st.data())
def test_single_cell_activity_ranges_include_their_bounds(typed, local, data):
    draw = data.draw
    atlas = draw(st.sampled_from([r[0] for r in fetch(local, "atlas", 
        "SELECT DISTINCT atlas FROM singlecell_activity WHERE signature_type = 'CytoSig' ORDER BY 1")]))
    values = [r[0] for r in fetch(local, "atlas", 
        "SELECT DISTINCT mean_activity FROM singlecell_activity WHERE signature_type = 'CytoSig' AND atlas = ? "
        "AND mean_activity IS NOT NULL ORDER BY 1", [atlas])]
    low, high = bound(draw, values), bound(draw, values)
    if low is not None and high is not None and low > high:
        low, high = high, low
    limit = draw(st.sampled_from([0, 1, 2, 1000, 50_000]))
    columns = [c for c in message_columns("atlas", "QuerySingleCellActivity", "activities", local)
               if c in SPECS["atlas"].table("singlecell_activity").column_names]
    ranges = [f"mean_activity {op} ?" for op, v in ((">=", low), ("<=", high)) if v is not None]
    want = select(local, "atlas", f"SELECT {', '.join(columns)} FROM singlecell_activity WHERE "
                  f"signature_type = 'CytoSig' AND atlas = ? {''.join(' AND ' + r for r in ranges)} "
                  f"ORDER BY {key('atlas', 'singlecell_activity')}", [atlas, *(v for v in (low, high) if v is not None)])
    request = {"atlas": atlas, "limit": limit}
    request.update({k: v for k, v in (("min_activity", low), ("max_activity", high)) if v is not None})
    response = call(typed, "atlas", "QuerySingleCellActivity", request)
    page = min(limit or 1000, 50_000)
    assert_rows_equal(response.activities, want[:page])
    assert bool(response.next_page_token) == (len(want) > page)


@SAMPLED
@given(data=st.data())
def test_disease_differential_max_qvalue_includes_its_bound(typed, local, data):
    draw = data.draw
    disease = draw(st.sampled_from(["", "all"] + [r[0] for r in fetch(local, "atlas", 
        "SELECT DISTINCT disease FROM inflammation_differential ORDER BY 1")]))
    scope, params = ("AND disease = ?", [disease]) if disease not in ("", "all") else ("", [])
    qvalues = [r[0] for r in fetch(local, "atlas", 
        f"SELECT DISTINCT qvalue FROM inflammation_differential WHERE signature_type = 'CytoSig' {scope} "
        "AND qvalue IS NOT NULL ORDER BY 1", params)]
    cutoff = draw(st.sampled_from(qvalues))
    columns = [c for c in message_columns("atlas", "ListDiseaseDifferential", "differentials", local)
               if c in SPECS["atlas"].table("inflammation_differential").column_names]
    want = select(local, "atlas", f"SELECT {', '.join(columns)} FROM inflammation_differential WHERE "
                  f"signature_type = 'CytoSig' {scope} AND qvalue <= ? "
                  f"ORDER BY {key('atlas', 'inflammation_differential')}", [*params, cutoff])
    got, _ = walk(typed, "atlas", "ListDiseaseDifferential", {"disease": disease, "max_qvalue": cutoff},
                  "differentials", [max(len(want), 1)])
    assert_rows_equal(got, want)


# Pivots: (rpc, table, rows, columns, value, the request fields that filter, fixed SQL condition)
PIVOTS = [
    ("GetParse10mHeatmap", "parse10m_cytokine_heatmap", "cytokine", "cell_type", "activity",
     ("signature_type", "cell_type"), "TRUE"),
    ("GetTahoeSensitivityMatrix", "tahoe_drug_sensitivity", "drug", "cell_line", "mean_activity",
     ("signature_type", "signature"), "drug <> 'DMSO_TF'"),
]


@pytest.mark.parametrize("rpc,table,rows,columns,value,fields,fixed", PIVOTS, ids=[p[0] for p in PIVOTS])
@SAMPLED
@given(data=st.data())
def test_pivots_match_duckdb(typed, local, rpc, table, rows, columns, value, fields, fixed, data):
    draw = data.draw
    kind = draw(st.sampled_from(["CytoSig", "SecAct"]))
    request, where, params = {"signature_type": kind}, [f"signature_type = ?", fixed], [kind]
    optional = fields[1]
    if draw(st.booleans()):
        choice = draw(st.sampled_from([r[0] for r in fetch(local, "perturbation", 
            f"SELECT DISTINCT {optional} FROM {table} WHERE signature_type = ? AND {fixed} ORDER BY 1",
            [kind])]))
        request[optional] = choice
        where.append(f"{optional} = ?")
        params.append(choice)
    cells = {(r, c): v for r, c, v in fetch(local, "perturbation", 
        f"SELECT {rows}, {columns}, avg({value}) FROM {table} WHERE {' AND '.join(where)} GROUP BY ALL",
        params)}
    want_rows, want_columns = sorted({r for r, _ in cells}), sorted({c for _, c in cells})
    matrix = call(typed, "perturbation", rpc, request).matrix
    assert list(matrix.rows) == want_rows and list(matrix.columns) == want_columns
    for r, row in zip(want_rows, matrix.values):
        got = list(row.values)
        want = [cells.get((r, c)) for c in want_columns]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert math.isnan(g) if w is None else g == pytest.approx(w)


@SAMPLED
@given(data=st.data())
def test_coordinate_activity_join_pages_match_duckdb(typed, local, data):
    draw = data.draw
    dataset = draw(st.sampled_from([r[0] for r in fetch(local, "spatial", 
        "SELECT DISTINCT dataset_id FROM spatial_coordinate_activity WHERE signature_type = 'CytoSig' "
        "ORDER BY 1")]))
    signatures = [r[0] for r in fetch(local, "spatial", 
        "SELECT DISTINCT signature FROM spatial_coordinate_activity WHERE dataset_id = ? AND "
        "signature_type = 'CytoSig' ORDER BY 1", [dataset])]
    signature = draw(st.sampled_from(signatures))
    want = select(local, "spatial", "SELECT c.dataset_id, c.cell_id, x, y, cell_type, signature, signature_type, "
                  "activity FROM spatial_coordinates c JOIN spatial_coordinate_activity a USING (dataset_id, cell_id) "
                  "WHERE c.dataset_id = ? AND a.signature_type = 'CytoSig' AND a.signature = ? "
                  "ORDER BY c.dataset_id, c.cell_id, a.signature_type, a.signature", [dataset, signature])
    folds: dict = {}
    for s in signatures:
        folds.setdefault(s.lower(), set()).add(s)
    request = {"dataset_id": dataset, "signature": respell(draw, signature, folds)}
    sizes = page_sizes(draw, len(want))
    got, pages = walk(typed, "spatial", "ListCoordinateActivity", request, "coordinate_activities", sizes)
    assert_rows_equal(got, want)
    assert pages == pages_needed(len(want), sizes)
    # A token is bound to both sides of the join: the same token for another signature is refused.
    first = call(typed, "spatial", "ListCoordinateActivity", {**request, "page_size": 1})
    others = [s for s in signatures if s != signature]
    if first.next_page_token and others:
        with pytest.raises(grpc.RpcError) as err:
            call(typed, "spatial", "ListCoordinateActivity",
                 {**request, "signature": others[0], "page_size": 1, "page_token": first.next_page_token})
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_coordinate_activity_join_leaves_out_points_without_activity(typed, local):
    """A dataset with activity under one signature type only, asked under the other: its points
    are there, their activity is not, so the join is empty (not every point with no activity)."""
    [(dataset, kind)] = fetch(local, "spatial", (
        "SELECT dataset_id, t.signature_type FROM (SELECT DISTINCT dataset_id FROM spatial_coordinate_activity) "
        "CROSS JOIN (SELECT DISTINCT signature_type FROM spatial_coordinate_activity) t "
        "EXCEPT SELECT DISTINCT dataset_id, signature_type FROM spatial_coordinate_activity ORDER BY ALL LIMIT 1"))
    assert fetch(local, "spatial", "SELECT count(*) FROM spatial_coordinates WHERE dataset_id = ?", [dataset])[0][0]
    response = call(typed, "spatial", "ListCoordinateActivity", {"dataset_id": dataset, "signature_type": kind})
    assert list(response.coordinate_activities) == [] and not response.next_page_token
