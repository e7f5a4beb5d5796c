"""Plausible one-line bugs in the query path, applied one at a time by tests/mutation/run.py.

Each is a (file, exact text, replacement): the text must occur exactly once, so a mutation that
no longer applies (the code moved on) fails the run loudly instead of silently testing nothing.
A mutant that cannot change any answer is kept, marked `equivalent` with the argument why: the run
reports it apart and leaves it out of the kill rate, so the list shows what was considered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str
    find: str
    replace: str
    description: str
    equivalent: str = ""  # why no test can tell this mutant from the code (then it is not counted)

    def check(self, root: Path) -> None:
        count = (root / self.file).read_text().count(self.find)
        if count != 1:
            raise SystemExit(f"mutation {self.id}: {self.find!r} occurs {count} times in {self.file}, not once")

    def apply(self, root: Path) -> None:
        path = root / self.file
        path.write_text(path.read_text().replace(self.find, self.replace, 1))


C, P, T, R = ("cytoatlas/serving/compiler.py", "cytoatlas/serving/paging.py", "cytoatlas/serving/typed_rpc.py",
              "cytoatlas/requests.py")
RT, S = "cytoatlas/client/router.py", "services/atlas/rpcs.py"
FR = "cytoatlas/client/flight_reader.py"
FL = "cytoatlas/serving/flight.py"
SR, AS = "cytoatlas/client/socket_reader.py", "cytoatlas/serving/arrow_socket.py"
M = Mutation
# The compiler: comparisons at their boundary, the other operators, aggregates, ordering, limits.
MUTATIONS: list[Mutation] = [
    M("op-gt", C, 'pb.OP_GT: ">"', 'pb.OP_GT: ">="', "OP_GT compiled as >="),
    M("op-le", C, 'pb.OP_LE: "<="', 'pb.OP_LE: "<"', "OP_LE compiled as <"),
    M("op-lt", C, 'pb.OP_LT: "<"', 'pb.OP_LT: "<="', "OP_LT compiled as <="),
    M("op-ge", C, 'pb.OP_GE: ">="', 'pb.OP_GE: ">"', "OP_GE compiled as >"),
    M("op-ne", C, 'pb.OP_NE: "<>"', 'pb.OP_NE: "="', "OP_NE compiled as ="),
    M("op-eq", C, 'pb.OP_EQ: "="', 'pb.OP_EQ: ">="', "OP_EQ compiled as >="),
    M("op-gt-lt", C, 'pb.OP_GT: ">"', 'pb.OP_GT: "<"', "OP_GT compiled as < (direction swapped)"),
    M("is-null-swapped", C, "'' if f.op == pb.OP_IS_NULL else 'NOT '", "'NOT ' if f.op == pb.OP_IS_NULL else ''",
      "IS NULL and IS NOT NULL swapped"),
    M("in-not-in-swapped", C, "'IN' if f.op == pb.OP_IN else 'NOT IN'", "'NOT IN' if f.op == pb.OP_IN else 'IN'",
      "IN and NOT IN swapped"),
    M("in-max-values", C, "if not 1 <= n <= settings.max_filter_values:", "if not 1 <= n < settings.max_filter_values:",
      "IN refuses exactly max_filter_values values"),
    M("in-no-values", C, "if not 1 <= n <= settings.max_filter_values:", "if not 0 <= n <= settings.max_filter_values:",
      "IN with no values reaches DuckDB"),
    M("between-upper-open", C, 'return f"{col} BETWEEN ? AND ?"', 'return f"{col} >= ? AND {col} < ?"',
      "BETWEEN leaves out its upper bound"),
    M("between-lower-open", C, 'return f"{col} BETWEEN ? AND ?"', 'return f"{col} > ? AND {col} <= ?"',
      "BETWEEN leaves out its lower bound"),
    M("between-arity", C, "if n != 2:", "if n < 2:", "BETWEEN accepts three values"),
    M("contains-as-like", C, 'return f"contains({col}, ?)"', """return f"{col} LIKE '%' || ? || '%'\"""",
      "CONTAINS as LIKE: % and _ in the value become wildcards"),
    M("contains-as-prefix", C, 'return f"contains({col}, ?)"', 'return f"starts_with({col}, ?)"',
      "CONTAINS matches only a prefix"),
    M("starts-as-like", C, 'return f"starts_with({col}, ?)"', """return f"{col} LIKE ? || '%'\"""",
      "STARTS_WITH as LIKE: % and _ in the value become wildcards"),
    M("starts-as-contains", C, 'return f"starts_with({col}, ?)"', 'return f"contains({col}, ?)"',
      "STARTS_WITH matches anywhere"),
    M("text-op-any-column", C, "if f.op in (pb.OP_CONTAINS, pb.OP_STARTS_WITH) and not column.is_text:",
      "if f.op in (pb.OP_CONTAINS, pb.OP_STARTS_WITH) and column.is_integer:",
      "CONTAINS on a DOUBLE column reaches DuckDB instead of INVALID_ARGUMENT"),
    M("where-or", C, 'sql.append("WHERE " + " AND ".join(where))', 'sql.append("WHERE " + " OR ".join(where))',
      "filters joined with OR"),
    M("agg-count-distinct", C, '"count(DISTINCT {})"', '"count({})"', "COUNT_DISTINCT counts every value"),
    M("agg-count-star", C, '("count", "count({})")', '("count", "count(*)")', "COUNT of a column counts its NULLs"),
    M("agg-sum", C, '("sum", "sum({})")', '("sum", "sum(DISTINCT {})")', "SUM adds distinct values only"),
    M("agg-avg", C, '("avg", "avg({})")', '("avg", "avg(DISTINCT {})")', "AVG over distinct values only"),
    M("agg-min", C, '("min", "min({})")', '("min", "max({})")', "MIN compiled as max"),
    M("agg-max", C, '("max", "max({})")', '("max", "min({})")', "MAX compiled as min"),
    M("agg-median", C, '("median", "median({})")', '("median", "quantile_disc({}, 0.5)")',
      "MEDIAN takes the lower middle value instead of interpolating"),
    M("agg-stddev", C, '"stddev_samp({})"', '"stddev_pop({})"', "STDDEV is the population deviation"),
    M("agg-alias-ignored", C, 'alias = agg.alias or f"{prefix}_{column.name}"', 'alias = f"{prefix}_{column.name}"',
      "an aggregate's alias is ignored"),
    M("agg-count-rows-name", C, 'agg.alias or "count"', 'agg.alias or "count_rows"',
      "COUNT of rows without alias not named count"),
    M("agg-sum-on-text", C, "_NUMERIC_ONLY = {pb.AGGREGATE_FUNCTION_SUM, ", "_NUMERIC_ONLY = {",
      "SUM of a VARCHAR column reaches DuckDB instead of INVALID_ARGUMENT"),
    M("order-direction", C, "{'DESC' if term.descending else 'ASC'} NULLS LAST",
      "{'ASC' if term.descending else 'DESC'} NULLS LAST", "order_by direction inverted"),
    M("order-nulls-first", C, "{'DESC' if term.descending else 'ASC'} NULLS LAST",
      "{'DESC' if term.descending else 'ASC'} NULLS FIRST", "order_by puts NULLs first"),
    M("tiebreak-desc", C, 'terms = order + [f"{quote(c)} ASC NULLS LAST" for c in tiebreak',
      'terms = order + [f"{quote(c)} DESC NULLS LAST" for c in tiebreak', "ties broken by the key descending"),
    M("grouped-unordered", C, "if ordered and (order or grouped):", "if ordered and order:",
      "a grouped result without order_by comes in hash order"),
    M("limit-no-extra-row", C, 'return f"LIMIT {size + 1} OFFSET {offset}" if offset else f"LIMIT {size + 1}"',
      'return f"LIMIT {size} OFFSET {offset}" if offset else f"LIMIT {size}"', "no look-ahead row: no page ever follows"),
    M("offset-plus-one", C, 'return f"LIMIT {size + 1} OFFSET {offset}" if offset',
      'return f"LIMIT {size + 1} OFFSET {offset + 1}" if offset', "every page after the first skips its first row"),
    M("reader-stops-past-first-page", C, "if reader_stops and not sorted_ and not offset and",
      "if reader_stops and not sorted_ and", "a later long page drops its OFFSET: the first page again"),
    M("reader-stops-when-sorted", C, "if reader_stops and not sorted_ and not offset and",
      "if reader_stops and not offset and", "a sorted long page loses its LIMIT: a full sort, not top-N"),
    M("reader-stops-any-size", C, "size + 1 >= READER_STOPS_FROM_ROWS", "size + 1 >= 0",
      "a short limit reads up to 10 MiB past its rows"),
    M("reader-stops-everywhere", C, "                  reader_stops: bool = False) -> CompiledQuery:",
      "                  reader_stops: bool = True) -> CompiledQuery:",
      "typed RPCs, which run a statement to the end, read a whole table for a page"),
    M("star-in-any-order", C, "everything = projected == [c.name for c in table.columns]",
      "everything = sorted(projected) == sorted(c.name for c in table.columns)",
      "every column asked in another order comes in the table's order"),
    M("page-size-uncapped", C, "return min(request.limit or default, maximum)", "return request.limit or default",
      "limit above the maximum is not capped"),
    M("page-size-cap-off-by-one", C, "return min(request.limit or default, maximum)",
      "return min(request.limit or default, maximum - 1)", "the cap is one row below the maximum"),
    M("page-size-min-first", C, "return min(request.limit or default, maximum)",
      "return min(request.limit, maximum) or default", "a default page above the maximum is not capped"),
    M("limit-negative", C, "if request.limit < 0:", "if request.limit < -1:", "limit -1 is taken as LIMIT 0"),
    M("rows-limits-for-arrow", C, "if request.format == ROWS:", "if request.format != ROWS:",
      "ROWS and ARROW page limits swapped"),
    M("format-default-rows", C, "        return ARROW\n", "        return ROWS\n",
      "an unspecified format answers ROWS"),
    M("quote-unescaped", C, """return '"' + identifier.replace('"', '""') + '"'""", """return '"' + identifier + '"'""",
      "a double quote in an alias is not escaped"),
    M("join-limit", C, "ORDER BY {order} {_page_clause(size, offset)}", "ORDER BY {order} {_page_clause(size - 1, offset)}",
      "a join's page has no look-ahead row"),
    M("join-order-desc", C, 'order = ", ".join(f"{quote(c)} ASC NULLS LAST" for c in keys)',
      'order = ", ".join(f"{quote(c)} DESC NULLS LAST" for c in keys)', "joined rows in descending key order"),
    M("join-left", C, "AS l JOIN ({right_sql}) AS r USING", "AS l LEFT JOIN ({right_sql}) AS r USING",
      "a join keeps left rows without a match"),
    M("pivot-where-or", C, '+ (" WHERE " + " AND ".join(where) if where else "")',
      '+ (" WHERE " + " OR ".join(where) if where else "")', "a pivot's filters joined with OR"),
    M("pivot-rows-desc", C, '"GROUP BY row_keys.r ORDER BY min(row_keys.ro), row_keys.r"',
      '"GROUP BY row_keys.r ORDER BY min(row_keys.ro) DESC, row_keys.r"', "pivot rows in descending order"),
    M("pivot-row-order-ignored", C, '"GROUP BY row_keys.r ORDER BY min(row_keys.ro), row_keys.r"',
      '"GROUP BY row_keys.r ORDER BY row_keys.r"', "a pivot's row_order column is ignored"),
    M("pivot-values-misaligned", C, 'list(cells.v ORDER BY column_keys.co, column_keys.c)',
      'list(cells.v ORDER BY column_keys.c)', "cell values ordered by column name, columns by column_order"),
    M("pivot-inner-join", C, '"LEFT JOIN cells ON cells.r = row_keys.r AND cells.c = column_keys.c "',
      '"JOIN cells ON cells.r = row_keys.r AND cells.c = column_keys.c "', "empty pivot cells dropped, not NULL"),
    M("pivot-median", C, "function: int = pb.AGGREGATE_FUNCTION_AVG", "function: int = pb.AGGREGATE_FUNCTION_MEDIAN",
      "pivot cells are medians by default"),
]
# Page tokens.
MUTATIONS += [
    M("page-token-fingerprint", P, '    shape.ClearField("page_token")\n', "",
      "the fingerprint covers the page token, so every next page is refused"),
    M("page-token-binds-instance", P, '    shape.ClearField("instance_id")', "    pass",
      "a page token is good only on the process that issued it, not on another replica"),
    M("page-token-binds-limit", P, '    shape.ClearField("limit")\n', "",
      "the fingerprint covers limit, so a page size change between pages is refused"),
    M("page-token-any-request", P, "if not hmac.compare_digest(request_fingerprint, fingerprint(request)):",
      "if not hmac.compare_digest(request_fingerprint, request_fingerprint):",
      "a token is accepted for another request"),
    M("page-token-any-build", P, "if build_digest != _build_digest(build_id):", "if not build_digest:",
      "a token of another build of the file is accepted"),
    M("page-token-unsigned", P,
      "if not hmac.compare_digest(mac, hmac.new(secret.encode(), body, hashlib.sha256).digest()[:_MAC_BYTES]):",
      "if len(mac) != _MAC_BYTES:", "an altered token is accepted (MAC not checked)"),
    M("page-token-length-at-least", P, "if len(raw) != _LAYOUT.size + _MAC_BYTES:",
      "if len(raw) < _LAYOUT.size + _MAC_BYTES:", "a token with trailing bytes passes the length check",
      equivalent="trailing bytes land in `mac`, which is then longer than the 16-byte digest it is "
                 "compared with, so compare_digest fails and the same INVALID_PAGE_TOKEN is raised"),
    M("page-token-padding", P, '"=" * (-len(token) % 4)', '"=" * (len(token) % 4)',
      "base64 padding computed from the wrong remainder",
      equivalent="the two differ only for length % 4 == 3 (1 '=' vs 3) and Python's non-strict "
                 "b64decode ignores excess padding; length % 4 == 1 is invalid base64 either way"),
    M("page-token-padded", P, '.decode().rstrip("=")', ".decode()", "tokens keep their base64 padding",
      equivalent="decode pads by -len % 4, which is 0 for a padded token, so both spellings decode the "
                 "same bytes; tokens are opaque to callers (docs say send next_page_token unchanged)"),
    M("page-token-little-endian", P, '_LAYOUT = struct.Struct(">Q16s16s")', '_LAYOUT = struct.Struct("<Q16s16s")',
      "offset packed little-endian",
      equivalent="encode and decode share _LAYOUT, so an offset round-trips in either byte order; a "
                 "token is only ever decoded by the code that signed it (same secret, same build)"),
]
# Typed RPC shaping: top-N, paging, name lists and checks, name resolution, pivots, joins.
MUTATIONS += [
    M("top-n-default", T, "DEFAULT_TOP_N, MAX_TOP_N = 10, 100", "DEFAULT_TOP_N, MAX_TOP_N = 11, 100",
      "GetTargetProfile's default top_n off by one"),
    M("top-n-max", T, "DEFAULT_TOP_N, MAX_TOP_N = 10, 100", "DEFAULT_TOP_N, MAX_TOP_N = 10, 99",
      "GetTargetProfile's top_n cap off by one"),
    M("top-n-uncapped", T, "return min(request.top_n or DEFAULT_TOP_N, MAX_TOP_N)",
      "return request.top_n or DEFAULT_TOP_N", "top_n is not capped"),
    M("top-n-cap-first", T, "return min(request.top_n or DEFAULT_TOP_N, MAX_TOP_N)",
      "return min(request.top_n, MAX_TOP_N) or DEFAULT_TOP_N", "top_n default applied after the cap",
      equivalent="top_n 0 gives min(0, 100) = 0 and then the default 10 either way; a positive top_n is "
                 "capped either way; negative ones are refused before (and DEFAULT_TOP_N <= MAX_TOP_N)"),
    M("top-n-negative", T, "if request.top_n < 0:", "if request.top_n < -1:", "top_n -1 is accepted"),
    M("top-ascending", T, 'order_by=["-" + order_by]', "order_by=[order_by]", "top rows ranked ascending"),
    M("top-one-more", T, "size=top_n(request))", "size=top_n(request) + 1)", "one row more than top_n"),
    M("top-any-type", T, '[*scope, ("signature", "=", signature)]', '[("signature", "=", signature)]',
      "a target profile mixes signature types"),
    M("page-size-negative", T, "        if size < 0:", "        if size < -1:", "page_size -1 is accepted"),
    M("page-exactly-full-has-token", T, "if result.num_rows > compiled.page_size:",
      "if result.num_rows >= compiled.page_size:", "a page exactly full carries a token to an empty page"),
    M("page-overlap", T, "result = result.slice(0, compiled.page_size)",
      "result = result.slice(0, compiled.page_size + 1)", "a page holds the next page's first row too"),
    M("next-offset-skips", T, "paging.encode(compiled.offset + compiled.page_size,",
      "paging.encode(compiled.offset + compiled.page_size + 1,", "the next page skips a row"),
    M("names-include-null", T, 'where = [*where, (column, "is not null")]', "where = list(where)",
      "name lists include NULL"),
    M("names-descending", T, "group_by=[column], order_by=[column])", 'group_by=[column], order_by=["-" + column])',
      "name lists sorted descending"),
    M("distinct-descending", T, "order_by=to_order_by([column])", 'order_by=to_order_by(["-" + column])',
      "summaries' value lists sorted descending"),
    M("distinct-nulls", T, 'to_filters([(column, "is not null")])', 'to_filters([(column, "is null")])',
      "summaries' value lists hold only NULL"),
    M("distinct-cache-ignores-where", T, "key = (db.path, db.manifest.build_id, table, column, repr(where))",
      "key = (db.path, db.manifest.build_id, table, column)", "distinct values cached across filters"),
    M("vocabulary-cache-ignores-where", T, 'repr(list(where) or None), "vocabulary")', '"vocabulary")',
      "checked names cached across signature types"),
    M("check-needs-every-table", T, "if any(value in vocabulary.members for vocabulary in per_table):",
      "if all(value in vocabulary.members for vocabulary in per_table):",
      "a target profile's signature must be in every table"),
    M("unset-int-filters", T, 'if value in ("", None) or value == 0:', 'if value in ("", None):',
      "an unset integer field filters by 0"),
    M("signature-any-type", T, 'scope = [w for w in where if w[0] == "signature_type"] if field == "signature" else ()',
      "scope = ()", "a signature is checked without its signature type"),
    M("default-signature-type", T, 'DEFAULT_SIGNATURE_TYPE = "CytoSig"', 'DEFAULT_SIGNATURE_TYPE = "SecAct"',
      "the default signature type is SecAct"),
    M("resolve-no-strip", T, "key = value.strip().lower()", "key = value.lower()",
      "a name with surrounding spaces is not resolved"),
    M("resolve-case-sensitive", T, "key = value.strip().lower()", "key = value.strip()",
      "names resolve only in their own case"),
    M("alias-ambiguous", T, "        if len(found) == 1:", "        if found:",
      "an alias naming two signatures resolves to the first",
      equivalent="found has at most one name: the alias table's key is (alias_key, signature_type), so one "
                 "type gives one row, and every signature check is scoped to one type; a gene check reads both "
                 "types, but its CytoSig row's name is the asked symbol itself, which the case rule has "
                 "already taken when the table holds it (and is not in `found` when it does not)"),
    M("alias-gene-by-signature", T, 'return {r["hgnc_symbol"] if field == "gene" else r["signature"] for r in rows}',
      'return {r["signature"] for r in rows}', "a gene alias resolves to the signature name"),
    M("resolved-not-applied", T, "if item.op in (pb.OP_EQ, pb.OP_IN) and any(",
      "if item.op == pb.OP_IN and any(", "an equality filter keeps the name as asked, not as resolved"),
    M("matrix-empty-zero", T, 'values=[row(values=[float("nan") if v is None else v for v in cells])',
      "values=[row(values=[0.0 if v is None else v for v in cells])", "an empty matrix cell is 0, not NaN"),
    M("sums-as-float", T, "return int(value) if value == value.to_integral_value() else float(value)",
      "return float(value)", "integer sums sent as floats"),
    M("join-token-ignores-right", T, "filters=[*left.filters, *right.filters], limit=left.limit)",
      "filters=[*left.filters], limit=left.limit)", "a join's token is not bound to the right side's filters"),
    M("join-arrow-limits", T, "left.limit, left.format = request.page_size, pb.RESULT_FORMAT_ROWS",
      "left.limit, left.format = request.page_size, pb.RESULT_FORMAT_ARROW", "a join pages by ARROW limits"),
    M("join-page-size-negative", T, "        if request.page_size < 0:", "        if request.page_size < -1:",
      "a join's page_size -1 is accepted"),
]
# Typed RPC ranges (the atlas service's declared bounds).
MUTATIONS += [
    M("range-min-open", S, '("mean_activity", ">=", request.min_activity)', '("mean_activity", ">", request.min_activity)',
      "min_activity excludes its bound"),
    M("range-max-open", S, '("mean_activity", "<=", request.max_activity)', '("mean_activity", "<", request.max_activity)',
      "max_activity excludes its bound"),
    M("range-qvalue-open", S, 'where.append(("qvalue", "<=", request.max_qvalue))',
      'where.append(("qvalue", "<", request.max_qvalue))', "max_qvalue excludes its bound"),
    M("single-cell-uncapped", S, "min(limit or SINGLE_CELL_DEFAULT_LIMIT, SINGLE_CELL_MAX_LIMIT)",
      "limit or SINGLE_CELL_DEFAULT_LIMIT", "single-cell limit not capped"),
]
# Request building shared by the Router, the command line and the typed RPCs.
MUTATIONS += [
    M("req-gt", R, '">": pb.OP_GT', '">": pb.OP_GE', "'>' sent as OP_GE"),
    M("req-le", R, '"<=": pb.OP_LE', '"<=": pb.OP_LT', "'<=' sent as OP_LT"),
    M("req-ne", R, '"!=": pb.OP_NE', '"!=": pb.OP_EQ', "'!=' sent as OP_EQ"),
    M("req-not-in", R, '"not in": pb.OP_NOT_IN', '"not in": pb.OP_IN', "'not in' sent as OP_IN"),
    M("req-starts", R, '"^=": pb.OP_STARTS_WITH', '"^=": pb.OP_CONTAINS', "'^=' sent as OP_CONTAINS"),
    M("req-tilde", R, '"~": pb.OP_CONTAINS', '"~": pb.OP_STARTS_WITH', "'~' sent as OP_STARTS_WITH"),
    M("req-symbol-order", R, r"(==|!=|<>|<=|>=|=|<|>|~|\^=)", r"(==|!=|<>|<|<=|>=|=|>|~|\^=)",
      "'a<=1' read as a < '=1'"),
    M("req-null-swapped", R, 'return (column, "is null" if op in ("=", "==") else "is not null", None)',
      'return (column, "is not null" if op in ("=", "==") else "is null", None)', "'col=null' read as IS NOT NULL"),
    M("req-list-swapped", R, 'return (column, "in" if op in ("=", "==") else "not in", raw.split(","))',
      'return (column, "not in" if op in ("=", "==") else "in", raw.split(","))', "'col=a,b' read as NOT IN"),
    M("req-dict-none", R, '(c, "is null" if v is None else', '(c, "is not null" if v is None else',
      "{col: None} read as IS NOT NULL"),
    M("req-minus-ascending", R, 'descending = name.startswith("-") or direction.lower() == "desc"',
      'descending = direction.lower() == "desc"', "'-col' sorts ascending"),
    M("req-pair-asc", R, 'descending = descending.lower() == "desc"', 'descending = descending.lower() == "asc"',
      "('col', 'desc') sorts ascending"),
    M("req-int-as-float", R, "                return int(text)\n", "                return float(text)\n",
      "'5' for a BIGINT column sent as 5.0"),
    M("req-between-one-value", R, '_MANY_VALUES = {"in", "not in", "between"}', '_MANY_VALUES = {"in", "not in"}',
      "'n between 1,5' sent as one value '1,5'"),
]
# The Router's request and page following.
MUTATIONS += [
    M("router-page-size-max", RT, "request.limit = min(filter(None, (remaining, page_size)), default=0)",
      "request.limit = max(filter(None, (remaining, page_size)), default=0)", "a page larger than limit asked"),
    M("router-overshoot", RT, "(remaining is not None and remaining <= 0)", "(remaining is not None and remaining < 0)",
      "a page more is read after limit rows"),
    M("router-two-pages", RT, "return pa.concat_tables(pages) if len(pages) > 1 else pages[0]",
      "return pa.concat_tables(pages) if len(pages) > 2 else pages[0]", "a two-page answer returns its first page"),
    M("router-no-restart", RT, 'if exc.reason != "STALE_PAGE_TOKEN" or attempt == 2:',
      'if exc.reason != "STALE_PAGE_TOKEN" or attempt == 1:', "a read a rebuild interrupts is not started again"),
    M("router-rows-format", RT, "aggregates=to_aggregates(aggregates), format=pb.RESULT_FORMAT_ARROW)",
      "aggregates=to_aggregates(aggregates), format=pb.RESULT_FORMAT_ROWS)", "the Router asks for ROWS"),
    M("router-group-by-columns", RT, 'group_by=to_columns(group_by, "group_by")', 'group_by=to_columns(columns, "group_by")',
      "the Router groups by its columns argument"),
    M("router-untyped-values", RT, "types = {c.name: c.type for c in known.columns} if known is not None else None",
      "types = None", "string filter values not converted to the column's type"),
    # reading pages through the services' Flight endpoints
    M("flight-token-dropped", FR, 'return table, token.to_pybytes().decode() if token is not None else ""',
      'return table, ""', "the Router reading through Flight drops the next page's token"),
    M("flight-status-ignored", FR, "if status is not None and status.code in _CODES:", "if False:",
      "a Flight error's google.rpc.Status is ignored: the server's code and reason are lost"),
    M("flight-no-fallback", RT, "if not err.from_transport:", "if True:",
      "an unreachable Flight port fails the read instead of moving that domain to gRPC"),
    M("flight-no-instance", FR, "self._instance = pb.QueryRequest(instance_id=instance_id).SerializeToString()",
      'self._instance = b""', "the Router reads from whatever process answers on the Flight port it was told"),
    M("flight-any-instance", FL, "if request.instance_id and request.instance_id != self.instance_id:",
      "if False:", "a Flight ticket meant for another process is answered"),
    # reading pages through the services' Arrow sockets
    M("socket-token-dropped", AS, "pb.QueryResponse(next_page_token=token.decode())", "pb.QueryResponse()",
      "the Arrow socket drops the next page's token of a page of several messages"),
    M("socket-status-ignored", SR, "return FlightCallError(code, status.message, status)",
      "return FlightCallError(code, status.message, None)",
      "an ERROR frame's google.rpc.Status details are dropped: the server's reason and retry hint are lost"),
    M("socket-no-instance", SR, "self._instance = pb.QueryRequest(instance_id=flight.instance_id).SerializeToString()",
      'self._instance = b""', "the Router reads from whatever process answers on the socket port it was told"),
    M("socket-no-fallback", SR, "return self.flight.page(request, timeout)", "raise FlightCallError("
      "grpc.StatusCode.INTERNAL, 'socket failed', None)", "a socket that cannot be reached fails the read "
      "instead of leaving that process to its Flight endpoint"),
    M("socket-stale-kept", SR, "once more, anew\n                pass", "once more, anew\n                raise",
      "a pooled connection the service closed is not opened again: the process is left to Flight"),
    M("socket-answer-left", SR, "            if not answered:\n                self._drop(conn)", "            pass",
      "a connection whose answer was left half read is used again: the next request reads its rest"),
    M("socket-hang-up-unseen", AS, "return bool(self._poll.poll(0))", "return False",
      "a client that hangs up while its query runs is never noticed: the query runs on"),
]
