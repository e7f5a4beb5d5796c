"""Router.query / query_pages against the real services: the natural Python shapes of its
arguments give the same answer as the explicit ones, numeric strings are converted with the
column types discovery learnt (as the command line does), a number compares with an integer
column, and anything else is one clear error before any call."""

import math

import pytest

from cytoatlas.client import CytoAtlasError, Router
from cytoatlas.serving.config import Settings
from cytoatlas.serving.server import start_server

TABLE = "tahoe_drug_effect"
COLUMNS = ["drug", "cell_line", "signature", "activity_diff"]


@pytest.fixture(scope="module")
def drug(local):
    return local["perturbation"].sql(f"SELECT min(drug) FROM {TABLE} WHERE drug <> 'DMSO_TF'").fetchall()[0][0]


def reference(router, drug):
    return router.query(TABLE, columns=COLUMNS, where=[("drug", "=", drug)], order_by=["activity_diff"],
                        limit=7).to_pylist()


@pytest.mark.parametrize("kw", [
    dict(where=lambda d: ("drug", d), order_by="activity_diff"),
    dict(where=lambda d: f"drug={d}", order_by="activity_diff:asc"),
    dict(where=lambda d: {"drug": d}, order_by=("activity_diff", False)),
    dict(where=lambda d: [("drug", d)], order_by=["activity_diff"], columns=",".join(COLUMNS)),
    dict(where=lambda d: [f"drug = {d}"], order_by="activity_diff"),
])
def test_bare_strings_tuples_and_dicts_mean_what_they_say(router, drug, kw):
    kw = {**kw, "where": kw["where"](drug)}
    kw.setdefault("columns", COLUMNS)
    assert router.query(TABLE, limit=7, **kw).to_pylist() == reference(router, drug)


def test_a_bare_column_name_is_one_column_not_its_characters(router, drug):
    table = router.query(TABLE, columns="drug", where=("drug", drug), order_by="-activity_diff", limit=3)
    assert table.column_names == ["drug"] and table.num_rows == 3
    grouped = router.query(TABLE, group_by="drug", aggregates="count", order_by="-count", limit=2)
    assert grouped.column_names == ["drug", "count"]
    pages = list(router.query_pages(TABLE, columns="drug", where=f"drug={drug}", order_by="drug", limit=2))
    assert sum(p.num_rows for p in pages) == 2


def test_both_operator_spellings_give_the_same_rows(router, drug):
    part = drug[1:4]
    for a, b in [(("drug", "~", part), ("drug", "contains", part)),
                 (("drug", "^=", drug[:3]), ("drug", "starts_with", drug[:3])),
                 (f"drug~{part}", f"drug contains {part}")]:
        assert (router.query(TABLE, columns=COLUMNS, where=a, limit=20).to_pylist()
                == router.query(TABLE, columns=COLUMNS, where=b, limit=20).to_pylist())
    descending = router.query(TABLE, columns=COLUMNS, where=("drug", drug), order_by="-activity_diff", limit=5)
    assert descending.to_pylist() == router.query(TABLE, columns=COLUMNS, where=("drug", drug),
                                                  order_by="activity_diff:desc", limit=5).to_pylist()


def test_numeric_strings_are_converted_with_the_discovered_column_types(router, local):
    as_text = router.query(TABLE, columns=COLUMNS, where=[("activity_diff", "<", "-1.5")], limit=50)
    as_number = router.query(TABLE, columns=COLUMNS, where=[("activity_diff", "<", -1.5)], limit=50)
    assert as_text.to_pylist() == as_number.to_pylist() and as_text.num_rows > 0
    counted = router.query(TABLE, where="n_treated>=2", aggregates="count").to_pylist()[0]["count"]
    assert counted == local["perturbation"].sql(f"SELECT count(*) FROM {TABLE} WHERE n_treated >= 2").fetchall()[0][0]


def test_a_float_against_an_integer_column_compares_as_a_number(router, local):
    got = router.query(TABLE, where=("n_treated", ">", 1.5), aggregates="count").to_pylist()[0]["count"]
    assert got == local["perturbation"].sql(f"SELECT count(*) FROM {TABLE} WHERE n_treated > 1.5").fetchall()[0][0]
    assert got == router.query(TABLE, where=("n_treated", ">=", 2), aggregates="count").to_pylist()[0]["count"]


@pytest.mark.parametrize("kw, error, words", [
    (dict(where=("n_treated", "=", "abc")), ValueError, ["'n_treated'", "BIGINT", "'abc'"]),
    (dict(where=("activity_diff", "<", "-1.5x")), ValueError, ["'activity_diff'", "DOUBLE", "'-1.5x'"]),
    (dict(where=("drug", 5)), ValueError, ["'drug'", "VARCHAR", "text"]),
    (dict(where=42), TypeError, ["where takes", "(column, op, value)"]),
    (dict(where=["drug", "Imatinib"]), ValueError, ["write the tuple ('drug', 'Imatinib')"]),
    (dict(where=("drug", "like", "x")), ValueError, ["unknown operator 'like'", "contains (or ~)"]),
    (dict(columns=7), TypeError, ["columns takes"]),
    (dict(order_by={"drug": 1}), TypeError, ["order_by takes"]),
])
def test_anything_else_is_a_clear_python_error(router, kw, error, words):
    with pytest.raises(error) as info:
        router.query(TABLE, limit=1, **kw)
    assert all(w in str(info.value) for w in words), str(info.value)
    assert not isinstance(info.value, CytoAtlasError)


def test_a_result_converts_to_pandas_as_users_expect(router, drug):
    """pandas is a dependency (pyproject.toml): the README's `table.to_pandas()` works after `make setup`."""
    frame = router.query(TABLE, columns=COLUMNS, where=("drug", drug), order_by="-activity_diff", limit=5).to_pandas()
    assert list(frame.columns) == COLUMNS and len(frame) == 5
    assert frame["activity_diff"].is_monotonic_decreasing


def test_query_pages_asks_the_smaller_of_limit_and_page_size(router, local):
    pages = list(router.query_pages(TABLE, columns=COLUMNS, limit=5, page_size=2))
    assert [p.num_rows for p in pages] == [2, 2, 1]  # the last page asks only for what is left
    want = local["perturbation"].sql(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} LIMIT 5").to_arrow_table()
    assert [row for p in pages for row in p.to_pylist()] == want.to_pylist()


def test_query_joins_every_page_of_an_answer_of_exactly_two_pages(built, local, addresses):
    """A service whose default page holds half a table: query() follows the one token and
    returns both pages, in order."""
    table = "tahoe_cell_line_metadata"
    want = local["perturbation"].sql(f"SELECT * FROM {table}").to_arrow_table().to_pylist()
    assert len(want) > 2
    server = start_server("perturbation", Settings(db=str(built["perturbation"]), port=0, request_log="off",
                                                   arrow_default_limit=math.ceil(len(want) / 2)))
    try:
        with Router({**addresses, "perturbation": f"127.0.0.1:{server.port}"}) as two_pages:
            assert len(list(two_pages.query_pages(table))) == 2
            assert two_pages.query(table).to_pylist() == want
    finally:
        server.stop(0)
