"""cytoatlas.search.v1.SearchService, one servicer for the three domains, each over its own index.

A domain declares its index (`SearchIndex`: the tables the builder made, cytoatlas/domains/
search_index.py, and which table answers an entity's activity and correlations) and registers
`search_service(index)` in its SERVICES. Ranking and completion are two fixed statements
(SEARCH_SQL, AUTOCOMPLETE_SQL): the table names come from the declaration, checked against the
served file's catalog and quoted; the client's text is only ever a bound parameter. Everything
else (types, stats, entity resolution, activity, correlations) goes through the query compiler
like every typed RPC (cytoatlas/serving/typed_rpc.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc

from cytoatlas.domains.search_index import ALIAS_SEPARATOR, ENTITY_TYPES, search_key, table_names
from cytoatlas.requests import to_filters
from cytoatlas.search.v1 import search_service_pb2 as pb
from cytoatlas.search.v1 import search_service_pb2_grpc as pb_grpc
from cytoatlas.serving import compiler, paging
from cytoatlas.serving.errors import Reason, ServiceError, invalid
from cytoatlas.serving.table_service import handle_errors
from cytoatlas.serving.typed_rpc import (
    DEFAULT_SIGNATURE_TYPE, TypedService, TypedServicer, note_resolution, top_n,
)
from cytoatlas.table.v1 import table_service_pb2 as table_pb

MAX_QUERY_CHARS = 200
SEARCH_DEFAULT_PAGE, SEARCH_MAX_PAGE = 20, 100  # the real API's default and maximum
AUTOCOMPLETE_DEFAULT, AUTOCOMPLETE_MAX = 10, 20  # the real API's default and maximum
SIMILARITY = 0.85  # the least Jaro-Winkler similarity of a typo-tolerant match
# How a term matched, by tier (the ranking statement's 1..7).
MATCH_RULES = ("exact", "case", "normalised", "prefix", "contains", "similar", "similar_prefix")
_KEY = r"regexp_replace(lower({}), '[^\p{{L}}\p{{N}}]+', '', 'g')"  # = search_index.normalised_key

# One row per entity: its best term's score. Tiers (score, a non-name term's in brackets):
# exact 100 (95), case-insensitive 90 (85), normalised key 80 (75), prefix 60-70 (-1),
# contains 40-50 (-1), similar 10 + 20 x Jaro-Winkler (-1): a key of about the query key's length
# (within max(1, len/4) characters) that starts with the same character, within max(1, len/4)
# Damerau-Levenshtein edits and with similarity >= SIMILARITY; similar_prefix 10 + 15 x
# Jaro-Winkler (-1): the same test on the first len(query) characters of a longer key that starts
# with the query key's first two characters (a typo further into a name: "tumour necro"). Only
# those rows reach the scoring (a filter the scan applies to the key column alone). Per entity the
# best term wins (score, then a name before an alias, then the term); the entity type's rank and
# the name break ties between entities; only the page's entities are joined for their details, by
# entity_row: a sorted integer, so the scan of the entities reads only the blocks that hold them
# (joined on type and name it read them all: Search 15.0 -> 11.8 ms in-process, scale-1 atlas).
SEARCH_SQL = f"""
WITH matched AS (
  SELECT entity_type, name, entity_row, term, term_kind, is_name, type_rank, term_order, tier,
    CASE tier WHEN 1 THEN 100.0 WHEN 2 THEN 90.0 WHEN 3 THEN 80.0 WHEN 4 THEN 60 + 10.0 * $n / length(term_key)
              WHEN 5 THEN 40 + 10.0 * $n / length(term_key) WHEN 6 THEN 10 + 20 * jaro_winkler_similarity(term_key, $k)
              ELSE 10 + 15 * jaro_winkler_similarity(left(term_key, $n), $k) END
      - CASE WHEN is_name THEN 0 WHEN tier <= 3 THEN 5 ELSE 1 END AS score
  FROM (SELECT *,
          CASE WHEN term = $query THEN 1 WHEN term_lower = $low THEN 2 WHEN term_key = $k THEN 3
               WHEN starts_with(term_key, $k) THEN 4 WHEN contains(term_key, $k) THEN 5
               WHEN abs(length(term_key) - $n) <= $edits AND jaro_winkler_similarity(term_key, $k) >= {SIMILARITY}
                    AND damerau_levenshtein(term_key, $k) <= $edits THEN 6
               WHEN length(term_key) > $n AND starts_with(term_key, $first2)
                    AND jaro_winkler_similarity(left(term_key, $n), $k) >= {SIMILARITY}
                    AND damerau_levenshtein(left(term_key, $n), $k) <= $edits THEN 7 END AS tier
        FROM {{terms}}
        WHERE ($entity_type = '' OR entity_type = $entity_type)
          AND (contains(term_key, $k) OR starts_with(term_key, $first2)
               OR (starts_with(term_key, $first) AND abs(length(term_key) - $n) <= $edits)))
  WHERE tier IS NOT NULL
),
best AS (
  SELECT entity_type, name, entity_row, min(type_rank) AS type_rank, round(max(score), 6)::DOUBLE AS score,
         arg_max({{'term': term, 'term_kind': term_kind, 'tier': tier}},
                 {{'score': score, 'is_name': is_name, 'order': -term_order}}) AS hit
  FROM matched GROUP BY entity_type, name, entity_row
),
page AS (SELECT *, count(*) OVER () AS total_size FROM best ORDER BY score DESC, type_rank, name
         LIMIT $limit OFFSET $offset)
SELECT e.entity_id, e.name, e.entity_type, e.description, e.signature_type, p.score, p.hit.term AS matched_term,
       p.hit.term_kind AS term_kind, {list(MATCH_RULES)}[p.hit.tier] AS match_rule, e.contexts, e.n_rows,
       e.tables, e.aliases, p.total_size
FROM page AS p JOIN {{entities}} AS e ON e.entity_row = p.entity_row
ORDER BY p.score DESC, p.type_rank, p.name
"""

# One suggestion per entity whose key starts with the prefix's key (a range of the sorted key):
# the whole key typed 80 (an alias 75), else 60 + 10 x the share of the key typed (an alias 1
# lower); per entity its best term (score, then the shorter term, then the term); then by score,
# the shorter term, the type's rank and the name.
AUTOCOMPLETE_SQL = """
WITH matched AS (
  SELECT entity_type, name, term, term_order, type_rank,
    CASE WHEN term_key = $k THEN 80.0 ELSE 60 + 10.0 * $n / length(term_key) END
      - CASE WHEN is_name THEN 0 WHEN term_key = $k THEN 5 ELSE 1 END AS score
  FROM {terms}
  WHERE term_key >= $k AND starts_with(term_key, $k) AND ($entity_type = '' OR entity_type = $entity_type)
),
best AS (
  SELECT entity_type, name, min(type_rank) AS type_rank, round(max(score), 6)::DOUBLE AS score,
         arg_max(term, {'score': score, 'shorter': -length(term), 'order': -term_order}) AS term
  FROM matched GROUP BY entity_type, name
),
page AS (SELECT * FROM best ORDER BY score DESC, length(term), type_rank, name LIMIT $limit)
SELECT p.name AS text, p.entity_type, p.entity_type || ':' || p.name AS entity_id, p.term AS matched_term,
       CASE WHEN starts_with(lower(p.term), $low)
            THEN '<b>' || substr(p.term, 1, length($prefix)) || '</b>' || substr(p.term, length($prefix) + 1)
            ELSE p.term END AS highlight, p.score
FROM page AS p ORDER BY p.score DESC, length(p.term), p.type_rank, p.name
"""


@dataclass(frozen=True)
class ActivitySource:
    """Where the activity of some entity types comes from: rows of `table` whose `match` column is
    the entity's name, each giving `value` by `group` and `context` (columns; None: the table has
    no such level). `signature_type`: "entity" (the entity's own: a cytokine's CytoSig rows; an
    entity without one skips this source), "request" (the request's, default CytoSig, checked
    against the table) or None (the table has no such column)."""

    entity_types: tuple[str, ...]
    table: str
    match: str
    value: str
    group: str | None = None
    context: str | None = None
    signature_type: str | None = "entity"


@dataclass(frozen=True)
class CorrelationSource:
    """A table of signature correlations (columns signature_type, signature, category, cell_type,
    variable, rho, pvalue, qvalue, n, abs_rho), for signature entities of `entity_types`."""

    table: str
    entity_types: tuple[str, ...] = ("cytokine", "protein")


@dataclass(frozen=True)
class SearchIndex:
    """One domain's search declaration: its index tables, what its contexts are, and the sources
    of GetEntityActivity (tried in order: the first that holds rows of the entity answers) and
    GetEntityCorrelations (None: the domain has none, `correlations_elsewhere` says where)."""

    domain: str
    context_kind: str
    activity: tuple[ActivitySource, ...] = ()
    correlations: CorrelationSource | None = None
    correlations_elsewhere: str = "the atlas service (CIMA age, BMI, biochemistry and metabolite correlations)"

    @property
    def mentions(self) -> str:
        return table_names(self.domain)["mentions"]

    @property
    def entities(self) -> str:
        return table_names(self.domain)["entities"]

    @property
    def terms(self) -> str:
        return table_names(self.domain)["terms"]


@dataclass(frozen=True)
class _Entity:
    entity_type: str
    name: str
    signature_type: str | None

    @property
    def entity_id(self) -> str:
        return f"{self.entity_type}:{self.name}"


class SearchServicer(TypedServicer, pb_grpc.SearchServiceServicer):
    """The search RPCs over `index` (set on the per-domain subclass `search_service` makes)."""

    index: SearchIndex

    # -- search and completion: two fixed statements --------------------------------------

    @handle_errors
    def Search(self, request, context):
        query = _text(request.query, "query")
        kind = _entity_type(request.entity_type)
        if request.page_size < 0:
            raise invalid(Reason.INVALID_REQUEST, f"page_size must be 0 (default {SEARCH_DEFAULT_PAGE}) or "
                          f"positive, got {request.page_size}", "page_size")
        size = min(request.page_size or SEARCH_DEFAULT_PAGE, SEARCH_MAX_PAGE)
        db = self.q.served()
        # The page token binds to the query and the type filter (and the build), like Query's.
        shape = table_pb.QueryRequest(table=self.index.terms, filters=to_filters(
            [("query", "=", query), ("entity_type", "=", kind)]))
        offset = paging.decode(request.page_token, shape, db.manifest.build_id,
                               self.settings.token_secret) if request.page_token else 0
        rows = self._fixed(SEARCH_SQL, context, query, query=query, low=query.lower(), entity_type=kind,
                           limit=size + 1, offset=offset)
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = paging.encode(offset + size, shape, db.manifest.build_id, self.settings.token_secret)
        results = [pb.SearchResult(
            entity_id=r["entity_id"], name=r["name"], entity_type=r["entity_type"], description=r["description"] or "",
            signature_type=r["signature_type"], score=r["score"], matched_term=r["matched_term"],
            term_kind=r["term_kind"], match_rule=r["match_rule"], aliases=_split(r["aliases"], ALIAS_SEPARATOR),
            contexts=_split(r["contexts"]), n_rows=r["n_rows"], tables=_split(r["tables"]), domain=self.domain)
            for r in rows]
        total = rows[0]["total_size"] if rows else 0
        return pb.SearchResponse(query=request.query, entity_type=kind, results=results, total_size=total,
                                 next_page_token=token, domain=self.domain)

    @handle_errors
    def Autocomplete(self, request, context):
        prefix = _text(request.prefix, "prefix")
        kind = _entity_type(request.entity_type)
        if not 0 <= request.limit <= AUTOCOMPLETE_MAX:
            raise invalid(Reason.INVALID_REQUEST, f"limit must be 0 (default {AUTOCOMPLETE_DEFAULT}) to "
                          f"{AUTOCOMPLETE_MAX}, got {request.limit}", "limit")
        rows = self._fixed(AUTOCOMPLETE_SQL, context, prefix, prefix=prefix, low=prefix.lower(), entity_type=kind,
                           limit=request.limit or AUTOCOMPLETE_DEFAULT)
        return pb.AutocompleteResponse(prefix=request.prefix, domain=self.domain,
                                       suggestions=[pb.Suggestion(**r, domain=self.domain) for r in rows])

    def _fixed(self, template: str, context, text: str, **params) -> list[dict]:
        """Run one of the fixed statements on the index tables the catalog holds, with the search
        key of `text` (and its length, allowed edits, first characters) bound as constants: a
        constant filter is applied by the scan to the key column alone."""
        db = self.q.served()
        k = search_key(text)
        sql = template
        for role, name in (("{terms}", self.index.terms), ("{entities}", self.index.entities)):
            sql = sql.replace(role, compiler.table_ref(self.q.table(db, name)))
        used = {name: value for name, value in dict(
            k=k, n=len(k), edits=max(1, len(k) // 4), first=k[:1], first2=k[:2], **params).items()
                if re.search(rf"\${name}\b", sql)}  # DuckDB refuses a named parameter the statement lacks
        compiled = compiler.CompiledQuery(sql, used, 0, 0, compiler.ARROW)
        return self.q.run(db, compiled, context).to_pylist()

    # -- the index's figures: through the compiler --------------------------------------------

    @handle_errors
    def ListEntityTypes(self, request, context):
        return pb.ListEntityTypesResponse(entity_types=self._type_counts(context), domain=self.domain)

    @handle_errors
    def GetSearchStats(self, request, context):
        entities = self.q.aggregate(self.index.entities, (), n=("count", ""))["n"]
        terms = self.q.aggregate(self.index.terms, (), n=("count", ""))["n"]
        contexts, _ = self.q.page(context, _NoToken, self.index.mentions, None, [("context", "!=", "")],
                                  group_by=["context"], order_by=["context"],
                                  aggregates={"n_entities": ("count_distinct", "entity_id")},
                                  size=self.settings.arrow_max_limit, format=table_pb.RESULT_FORMAT_ARROW)
        return pb.GetSearchStatsResponse(
            total_entities=entities, total_terms=terms, by_type=self._type_counts(context),
            by_context=[pb.ContextCount(**r) for r in contexts.to_pylist()],
            context_kind=self.index.context_kind, domain=self.domain)

    def _type_counts(self, context) -> list:
        rows, _ = self.q.page(context, _NoToken, self.index.entities, None, (),
                              group_by=["type_rank", "entity_type"], order_by=["type_rank"],
                              aggregates={"n_entities": ("count", ""), "n_rows": ("sum", "n_rows")},
                              columns=["type_rank", "entity_type"], size=len(ENTITY_TYPES),
                              format=table_pb.RESULT_FORMAT_ARROW)
        return [pb.EntityTypeCount(entity_type=r["entity_type"], label=ENTITY_TYPES[r["entity_type"]][0],
                                   description=ENTITY_TYPES[r["entity_type"]][1], n_entities=r["n_entities"],
                                   n_rows=int(r["n_rows"] or 0))
                for r in rows.to_pylist()]

    # -- one entity ---------------------------------------------------------------------------

    def _resolve(self, context, entity_id: str) -> _Entity:
        """The entity `entity_id` (TYPE:NAME) names: the name exactly, else case-insensitively,
        else an alias (exactly, then case-insensitively) — when exactly one entity answers."""
        asked = entity_id
        if not asked:
            raise invalid(Reason.INVALID_REQUEST, "`entity_id` is required (TYPE:NAME, e.g. cytokine:IFNG)",
                          "entity_id")
        if len(asked) > 2 * MAX_QUERY_CHARS:
            raise invalid(Reason.INVALID_REQUEST, f"entity_id is longer than {2 * MAX_QUERY_CHARS} characters",
                          "entity_id")
        kind, sep, name = asked.partition(":")
        if not sep or not name.strip():
            raise invalid(Reason.INVALID_REQUEST, f"entity_id {asked!r} is not TYPE:NAME, e.g. cytokine:IFNG or "
                          f"drug:Imatinib; types: {', '.join(ENTITY_TYPES)}", "entity_id")
        _entity_type(kind, "entity_id")
        held = self.q.distinct(self.index.entities, "entity_type")
        if kind not in held:
            raise ServiceError(grpc.StatusCode.NOT_FOUND, Reason.VALUE_NOT_FOUND,
                               f"the {self.domain} service has no {kind} entities (entity_id {asked!r}); its types: "
                               f"{', '.join(t for t in ENTITY_TYPES if t in held)}",
                               metadata={"field": "entity_id", "value": asked}, resource=("entity_id", asked))
        rows, _ = self.q.page(context, _NoToken, self.index.terms, None,
                              [("entity_type", "=", kind), ("term_lower", "=", name.lower())],
                              columns=["name", "term", "is_name"], size=1000, format=table_pb.RESULT_FORMAT_ARROW)
        rows = rows.to_pylist()
        for rule, test in (("exact", lambda r: r["is_name"] and r["term"] == name), ("case", lambda r: r["is_name"]),
                           ("alias", lambda r: r["term"] == name), ("alias", lambda r: True)):
            found = sorted({r["name"] for r in rows if test(r)})
            if len(found) == 1:
                break
            if len(found) > 1:  # several entities answer to the spelling: not one of them
                raise ServiceError(grpc.StatusCode.NOT_FOUND, Reason.VALUE_NOT_FOUND,
                                   f"entity_id {asked!r} names several {kind} entities: "
                                   f"{', '.join(f'{kind}:{n}' for n in found)}; ask for one of them",
                                   metadata={"field": "entity_id", "value": asked, "suggestions": ",".join(found)},
                                   resource=("entity_id", asked))
        else:  # nothing answers: NOT_FOUND with the closest names of the type
            self.q.check(self.index.entities, "entity_id", name, column="name", where=[("entity_type", "=", kind)])
        entity = self._entity(context, kind, found[0])
        if rule != "exact":
            note_resolution("entity_id", asked, entity.entity_id, rule)
        return entity

    def _entity(self, context, kind: str, name: str) -> _Entity:
        rows, _ = self.q.page(context, _NoToken, self.index.entities, None,
                              [("entity_type", "=", kind), ("name", "=", name)],
                              columns=["entity_type", "name", "signature_type"], size=1,
                              format=table_pb.RESULT_FORMAT_ARROW)
        return _Entity(**rows.to_pylist()[0])

    @handle_errors
    def GetEntityActivity(self, request, context):
        entity = self._resolve(context, request.entity_id)
        chosen = top_n(request)
        sources = [s for s in self.index.activity if entity.entity_type in s.entity_types]
        if not sources:
            with_activity = sorted({t for s in self.index.activity for t in s.entity_types},
                                   key=list(ENTITY_TYPES).index)
            raise _no_data(request.entity_id, f"the {self.domain} service has no activity for {entity.entity_type} "
                           f"entities; it has for: {', '.join(with_activity)}")
        for source in sources:
            where = self._activity_scope(source, entity, request)
            if where is not None and self.q.aggregate(source.table, where, n=("count", ""))["n"]:
                break
        else:
            raise _no_data(request.entity_id, f"{entity.entity_id} has no activity rows in the {self.domain} "
                           f"service ({', '.join(sorted({s.table for s in sources}))})")
        scope = list(where)
        for field, column in (("groups", source.group), ("contexts", source.context)):
            values = list(getattr(request, field))
            if values and column is None:
                raise invalid(Reason.INVALID_REQUEST, f"{field}: the activity of {entity.entity_type} entities "
                              f"({source.table}) has no {field[:-1]} level to filter", field)
            for value in values:  # each must occur among the entity's rows
                self.q.check(source.table, field, value, column=column, where=scope)
            if values:
                where.append((column, "in", values))
        columns = list(dict.fromkeys(c for c in (source.group, source.context, source.value) if c))
        order = [c for c in (source.group, source.context) if c]
        page, token = self.q.page(context, request, source.table, None, where, columns=columns, order_by=order,
                                  format=table_pb.RESULT_FORMAT_ROWS)
        stats = self.q.aggregate(source.table, where, n=("count", ""), mean=("avg", source.value),
                                 std=("stddev", source.value), low=("min", source.value),
                                 high=("max", source.value))
        top, _ = self.q.page(context, _NoToken, source.table, None, where, columns=columns,
                             order_by=["-" + source.value, *order], size=chosen, format=table_pb.RESULT_FORMAT_ARROW)
        bottom, _ = self.q.page(context, _NoToken, source.table, None, where + [(source.value, "is not null")],
                                columns=columns, order_by=[source.value, *order], size=chosen,
                                format=table_pb.RESULT_FORMAT_ARROW)
        rows = lambda table: [pb.EntityActivity(group=_label(r, source.group), context=_label(r, source.context),  # noqa: E731
                                                value=r[source.value]) for r in table.to_pylist()]
        kind = next((v for c, _, v in where if c == "signature_type"), "")
        return pb.GetEntityActivityResponse(
            entity_id=entity.entity_id, entity_name=entity.name, entity_type=entity.entity_type,
            signature_type=kind, table=source.table, group_column=source.group or "",
            context_column=source.context or "", value_column=source.value, activities=rows(page),
            n_activities=stats["n"], mean_activity=stats["mean"], std_activity=stats["std"],
            min_activity=stats["low"], max_activity=stats["high"], top_positive=rows(top),
            top_negative=rows(bottom), next_page_token=token, domain=self.domain)

    def _activity_scope(self, source: ActivitySource, entity: _Entity, request) -> list | None:
        """The filters selecting the entity's rows of `source`; None when the source cannot hold
        them (a source by the entity's signature type, for an entity that has none)."""
        where = [(source.match, "=", entity.name)]
        if source.signature_type == "entity":
            if not entity.signature_type:
                return None
            where.append(("signature_type", "=", entity.signature_type))
        elif source.signature_type == "request":
            kind = self.q.check(source.table, "signature_type", request.signature_type or DEFAULT_SIGNATURE_TYPE)
            where.append(("signature_type", "=", kind))
        return where

    @handle_errors
    def GetEntityCorrelations(self, request, context):
        entity = self._resolve(context, request.entity_id)
        source = self.index.correlations
        if source is None:
            raise _no_data(request.entity_id, f"the {self.domain} service holds no correlations of an entity with "
                           f"donor or sample traits; ask {self.index.correlations_elsewhere}")
        if entity.entity_type not in source.entity_types or not entity.signature_type:
            raise _no_data(request.entity_id, f"correlations are per signature ({', '.join(source.entity_types)}); "
                           f"{entity.entity_id} is a {entity.entity_type}")
        scope = [("signature_type", "=", entity.signature_type), ("signature", "=", entity.name)]
        categories = self.q.distinct(source.table, "category", scope)
        if not categories:
            raise _no_data(request.entity_id, f"{entity.entity_id} has no correlations in {source.table}")
        where = list(scope)
        if request.category:
            valid = self.q.distinct(source.table, "category")
            if request.category not in valid:
                raise invalid(Reason.INVALID_REQUEST, f"category {request.category!r} is not one of "
                              f"{', '.join(valid)}", "category", value=request.category)
            self.q.check(source.table, "category", request.category, where=scope)  # NOT_FOUND: none for it
            where.append(("category", "=", request.category))
        rows, token = self.q.page(context, request, source.table, pb.EntityCorrelation, where,
                                  order_by=["category", "-abs_rho"])
        return pb.GetEntityCorrelationsResponse(
            entity_id=entity.entity_id, entity_name=entity.name, entity_type=entity.entity_type,
            signature_type=entity.signature_type, available_categories=categories, correlations=rows,
            next_page_token=token, domain=self.domain, table=source.table)


class _NoToken:
    page_token = ""


def _text(value: str, field: str) -> str:
    """A query or prefix: required, at most MAX_QUERY_CHARS, with a letter or digit."""
    if not value.strip():
        raise invalid(Reason.INVALID_REQUEST, f"`{field}` is required", field)
    if len(value) > MAX_QUERY_CHARS:
        raise invalid(Reason.INVALID_REQUEST, f"`{field}` is {len(value):,} characters; at most "
                      f"{MAX_QUERY_CHARS} are searched", field)
    if not any(c.isalnum() for c in value):
        raise invalid(Reason.INVALID_REQUEST, f"`{field}` {value!r} has no letter or digit to search for", field)
    return value


def _entity_type(value: str, field: str = "entity_type") -> str:
    if value and value not in ENTITY_TYPES:
        folded = [t for t in ENTITY_TYPES if t == value.lower().replace(" ", "_").replace("-", "_")]
        hint = f"did you mean {folded[0]!r}? " if folded else ""
        raise invalid(Reason.INVALID_REQUEST, f"{field}: entity type {value!r} is not one of the types; {hint}"
                      f"types: {', '.join(ENTITY_TYPES)}", field, value=value)
    return value


def _no_data(entity_id: str, message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.NOT_FOUND, Reason.VALUE_NOT_FOUND, message,
                        metadata={"field": "entity_id", "value": entity_id}, resource=("entity_id", entity_id))


def _label(row: dict, column: str | None) -> str:
    return "" if column is None or row[column] is None else str(row[column])


def _split(joined: str | None, separator: str = ", ") -> list[str]:
    return [part for part in (joined or "").split(separator) if part]


def search_service(index: SearchIndex) -> TypedService:
    """The SearchService a domain registers in its SERVICES, answering over `index`."""
    servicer = type(f"{index.domain.title()}SearchServicer", (SearchServicer,), {"index": index})
    return TypedService.of(pb, pb_grpc, "SearchService", servicer)
