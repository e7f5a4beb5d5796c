"""Differential test: random valid QueryRequests return exactly what the equivalent SQL returns
from DuckDB in-process on the same file.

The reference SQL is written here independently of the service's compiler (a plain translation
with its own ORDER BY), so a compiler bug shows up as a mismatch. Every operator and every
aggregate function of the contract is drawn (the lists come from the proto enums, so a new one
must be given its SQL here), with operands taken from values the column holds, so each boundary
(`>` vs `>=`, `<=` vs `<`) has rows on it; NULL-bearing columns are among the tables.
"""

import math
import os

import pyarrow as pa
from hypothesis import HealthCheck, given, settings, strategies as st

from cytoatlas.client.router import decode_arrow
from cytoatlas.table.v1 import table_service_pb2 as pb

TABLES = {  # a few tables of each domain, with nullable columns, ties and text/int/double types
    "perturbation": ["tahoe_drug_effect", "parse10m_ground_truth", "tahoe_dose_response"],
    "spatial": ["spatial_activity", "spatial_dataset_metadata"],
    "atlas": ["cima_differential", "activity"],
}
SQL_OPS = {pb.OP_EQ: "=", pb.OP_NE: "<>", pb.OP_LT: "<", pb.OP_LE: "<=", pb.OP_GT: ">", pb.OP_GE: ">="}
SQL_AGG = {pb.AGGREGATE_FUNCTION_COUNT: "count({})", pb.AGGREGATE_FUNCTION_COUNT_DISTINCT: "count(DISTINCT {})",
           pb.AGGREGATE_FUNCTION_SUM: "sum({})", pb.AGGREGATE_FUNCTION_AVG: "avg({})",
           pb.AGGREGATE_FUNCTION_MIN: "min({})", pb.AGGREGATE_FUNCTION_MAX: "max({})",
           pb.AGGREGATE_FUNCTION_MEDIAN: "median({})", pb.AGGREGATE_FUNCTION_STDDEV: "stddev_samp({})"}
OPS = [op for op in pb.Op.values() if op != pb.OP_UNSPECIFIED]
AGGREGATES = [f for f in pb.AggregateFunction.values() if f != pb.AGGREGATE_FUNCTION_UNSPECIFIED]
TEXT_OPS = (pb.OP_CONTAINS, pb.OP_STARTS_WITH)
TEXT_AGGREGATES = (pb.AGGREGATE_FUNCTION_COUNT, pb.AGGREGATE_FUNCTION_COUNT_DISTINCT, pb.AGGREGATE_FUNCTION_MIN,
                   pb.AGGREGATE_FUNCTION_MAX)  # the others need a numeric column
NUMERIC = ("DOUBLE", "BIGINT", "INTEGER")
# `make test` runs a quick sample; `make test-reliability` sets 2000 (>= 2,000 queries per run).
EXAMPLES = int(os.environ.get("CYTOATLAS_DIFFERENTIAL_EXAMPLES", "100"))


def q(name):
    return '"' + name + '"'


def to_value(v, column_type):
    if column_type == "VARCHAR":
        return pb.Value(string_value=v)
    if column_type in ("BIGINT", "INTEGER"):
        return pb.Value(int_value=v)
    return pb.Value(double_value=v)


@st.composite
def requests(draw, catalog, samples, force_op=None, force_aggregate=None):
    """A random request and its reference SQL; `force_op` makes the first filter use that
    operator, `force_aggregate` makes the request grouped with that function first."""
    domain = draw(st.sampled_from(sorted(TABLES)))
    name = draw(st.sampled_from(TABLES[domain]))
    table = catalog[name]
    types = {c.name: c.type for c in table.columns}
    usable = [c for c in types if types[c] in NUMERIC + ("VARCHAR",)]
    filters, params, where = [], [], []
    columns = draw(st.lists(st.sampled_from(usable), max_size=3))
    if force_op is not None:
        fits = [c for c in usable if (types[c] == "VARCHAR" or force_op not in TEXT_OPS) and samples[name][c]]
        columns = [draw(st.sampled_from(fits))] + columns
    for position, column in enumerate(columns):
        values = samples[name][column]
        op = force_op if force_op is not None and position == 0 else draw(
            st.sampled_from([o for o in OPS if types[column] == "VARCHAR" or o not in TEXT_OPS]))
        if op in (pb.OP_IS_NULL, pb.OP_IS_NOT_NULL):
            operands = []
            where.append(f"{q(column)} IS {'NOT ' if op == pb.OP_IS_NOT_NULL else ''}NULL")
        elif not values:
            continue
        elif op in (pb.OP_IN, pb.OP_NOT_IN):
            operands = draw(st.lists(st.sampled_from(values), min_size=1, max_size=4))
            where.append(f"{q(column)} {'NOT ' if op == pb.OP_NOT_IN else ''}IN ({', '.join('?' * len(operands))})")
        elif op == pb.OP_BETWEEN:
            operands = sorted(draw(st.lists(st.sampled_from(values), min_size=2, max_size=2)))
            where.append(f"{q(column)} BETWEEN ? AND ?")
        elif op in (pb.OP_CONTAINS, pb.OP_STARTS_WITH):
            word = draw(st.sampled_from(values))
            operands = [word[: draw(st.integers(0, len(word)))]]
            where.append(f"{'contains' if op == pb.OP_CONTAINS else 'starts_with'}({q(column)}, ?)")
        else:
            operands = [draw(st.sampled_from(values))]
            where.append(f"{q(column)} {SQL_OPS[op]} ?")
        params.extend(operands)
        filters.append(pb.Filter(column=column, op=op, values=[to_value(v, types[column]) for v in operands]))

    request = pb.QueryRequest(table=name, filters=filters, limit=draw(st.sampled_from([0, 1, 7, 50])))
    if force_aggregate is not None or draw(st.booleans()):  # grouped
        group_by = draw(st.lists(st.sampled_from([c for c in usable if types[c] == "VARCHAR"]),
                                 min_size=1, max_size=2, unique=True))
        numeric = [c for c in usable if types[c] in NUMERIC]
        aggregates = []
        functions = draw(st.lists(st.sampled_from(AGGREGATES), min_size=1, max_size=3))
        if force_aggregate is not None:
            functions = [force_aggregate] + functions[:2]
        for i, function in enumerate(functions):
            allowed = usable if function in TEXT_AGGREGATES else numeric
            column = "" if function == pb.AGGREGATE_FUNCTION_COUNT and draw(st.booleans()) else draw(st.sampled_from(allowed))
            aggregates.append(pb.Aggregate(function=function, column=column, alias=f"a{i}"))
        request.group_by.extend(group_by)
        request.aggregates.extend(aggregates)
        outputs = group_by + [a.alias for a in aggregates]
        order = [pb.OrderBy(column=c, descending=draw(st.booleans()))
                 for c in draw(st.lists(st.sampled_from(outputs), max_size=2, unique=True))]
        select = [q(c) for c in group_by] + [
            f"{SQL_AGG[a.function].format(q(a.column) if a.column else '*')} AS {q(a.alias)}" for a in aggregates]
        tiebreak = group_by
        group_sql = " GROUP BY " + ", ".join(q(c) for c in group_by)
    else:
        columns = draw(st.lists(st.sampled_from(list(types)), max_size=4, unique=True))
        request.columns.extend(columns)
        order = [pb.OrderBy(column=c, descending=draw(st.booleans()))
                 for c in draw(st.lists(st.sampled_from(list(types)), max_size=2, unique=True))]
        select = [q(c) for c in (columns or list(types))]
        tiebreak = list(table.key_columns)
        group_sql = ""
    request.order_by.extend(order)
    ordered = [o.column for o in order]
    order_sql = [f"{q(o.column)} {'DESC' if o.descending else 'ASC'} NULLS LAST" for o in order] + [
        f"{q(c)} ASC NULLS LAST" for c in tiebreak if c not in ordered]
    sql = f"SELECT {', '.join(select)} FROM {q(name)}"
    sql += (" WHERE " + " AND ".join(where)) if where else ""
    sql += group_sql + " ORDER BY " + ", ".join(order_sql)
    return domain, request, sql, params


def assert_same(got: pa.Table, want: pa.Table, context):
    assert got.column_names == want.column_names, context
    assert got.num_rows == want.num_rows, context
    for name in got.column_names:
        a, b = got.column(name).to_pylist(), want.column(name).to_pylist()
        if pa.types.is_floating(want.schema.field(name).type):
            assert all((x is None and y is None) or (x is not None and y is not None and
                       math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)) for x, y in zip(a, b)), (context, name)
        else:
            assert a == b, (context, name)


def test_random_queries_match_duckdb_in_process(router, stubs, local):
    catalog = {name: router.describe(name) for names in TABLES.values() for name in names}
    domain_of = {name: d for d, names in TABLES.items() for name in names}
    samples = {}
    for name, table in catalog.items():
        samples[name] = {}
        for c in table.columns:
            if c.type in NUMERIC + ("VARCHAR",):
                # 40 values spread over the column (hash order), min and max among them.
                rows = local[domain_of[name]].sql(
                    f"(SELECT DISTINCT {q(c.name)} FROM {q(name)} WHERE {q(c.name)} IS NOT NULL "
                    f"ORDER BY hash({q(c.name)}) LIMIT 38) UNION (SELECT min({q(c.name)}) FROM {q(name)}) "
                    f"UNION (SELECT max({q(c.name)}) FROM {q(name)})").fetchall()
                samples[name][c.name] = sorted(r[0] for r in rows if r[0] is not None)

    queries = {d: 0 for d in TABLES}
    grouped = paged = 0
    ops, functions = set(), set()

    def verify(case):
        nonlocal grouped, paged
        domain, request, sql, params = case
        queries[domain] += 1
        ops.update(f.op for f in request.filters)
        functions.update(a.function for a in request.aggregates)
        grouped += bool(request.group_by)
        messages = list(stubs[domain].Query(request))
        got, last = decode_arrow(messages)
        want = local[domain].sql(sql, params=params).to_arrow_table()
        page = request.limit or 1_000_000
        assert_same(got, want.slice(0, page), (request, sql, params))
        assert bool(last.next_page_token) == (want.num_rows > page)
        if last.next_page_token:  # the next page continues exactly after this one
            request.page_token = last.next_page_token
            queries[domain] += 1
            paged += 1
            following, _ = decode_arrow(list(stubs[domain].Query(request)))
            assert_same(following, want.slice(page, page), (request, sql, params, "page 2"))

    def run(strategy, examples):
        settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
                 derandomize=True)(given(strategy)(verify))()

    run(requests(catalog, samples), EXAMPLES)
    # Every operator and aggregate function at least a few times, whatever the random sample drew.
    for op in OPS:
        run(requests(catalog, samples, force_op=op), 3)
    for function in AGGREGATES:
        run(requests(catalog, samples, force_aggregate=function), 3)
    total = sum(queries.values())
    assert total >= EXAMPLES and all(queries.values())
    assert ops == set(OPS) and functions == set(AGGREGATES), "the sample missed an operator or aggregate"
    print(f"\nFIGURE differential: {total} queries ({', '.join(f'{d} {n}' for d, n in queries.items())}; "
          f"{grouped} group-by aggregates, {paged} second pages), 0 mismatches against DuckDB in-process")
