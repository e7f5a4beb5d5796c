"""What the domains' typed RPCs share: typed request -> QueryRequest -> the compiler -> messages.

A typed handler names a table, the request fields that filter it (request field = column name),
and the output message (message field = column name, or aggregate alias). Everything else —
checking names, compiling one parameterised statement, paging, matrices, joins — happens here and
in `compiler`, the same code path TableService.Query takes. Nothing is filtered, sorted or
aggregated in Python; rows are only copied into messages.
"""

from __future__ import annotations

import contextlib
import contextvars
import decimal
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import grpc
import pyarrow as pa

from cytoatlas.domains.signature_aliases import ALIAS_TABLES
from cytoatlas.requests import to_aggregates, to_filters, to_order_by
from cytoatlas.serving import compiler, limits, paging
from cytoatlas.serving.config import Settings
from cytoatlas.serving.database import Database, TableInfo, arrow_table
from cytoatlas.serving.errors import Reason, ServiceError, invalid, table_not_found
from cytoatlas.suggestions import close_matches
from cytoatlas.table.v1 import table_service_pb2 as pb

DEFAULT_SIGNATURE_TYPE = "CytoSig"
DEFAULT_TOP_N, MAX_TOP_N = 10, 100
_SHOWN_CHOICES = 30  # list every valid choice in an error message up to this many
# Fields whose valid values form a small closed vocabulary: a wrong one is a malformed request
# (INVALID_ARGUMENT); any other unknown name is a lookup that found nothing (NOT_FOUND).
CLOSED_VOCABULARIES = frozenset({"signature_type", "atlas", "category", "view", "analysis", "database"})
# Fields that name what a scientist types (a signature, a cytokine, a gene). A value not in the data
# as given is resolved: case-insensitively (ifng -> IFNG), then, for signatures and genes, through
# the file's alias table (TNF -> CytoSig TNFA, INHBA -> Activin A, TNFA -> SecAct TNF). Only a name
# that resolves to exactly one value is taken; the answer says which (RESOLVED_METADATA).
NAME_FIELDS = frozenset({"signature", "cytokine", "gene"})
ALIASED_FIELDS = frozenset({"signature", "gene"})
# Trailing metadata of an answer whose request named something by another spelling, one entry per
# resolved field: "signature=TNFA; asked=TNF; rule=alias" (values percent-encoded; rule: case, alias).
RESOLVED_METADATA = "x-cytoatlas-resolved"
_resolutions: contextvars.ContextVar[list | None] = contextvars.ContextVar("cytoatlas_resolutions", default=None)


@contextlib.contextmanager
def name_resolutions():
    """Collect the names resolved while one call is handled (handle_errors opens one per call)."""
    token = _resolutions.set([])
    try:
        yield _resolutions.get()
    finally:
        _resolutions.reset(token)


def resolution_metadata(notes: list[tuple]) -> tuple[tuple[str, str], ...]:
    """(RESOLVED_METADATA, "field=resolved; asked=given; rule=...") for each resolved name."""
    enc = lambda v: urllib.parse.quote(v, safe=" ()+,-./:@_'")  # noqa: E731 - ASCII, no ; or =
    return tuple(dict.fromkeys((RESOLVED_METADATA, f"{field}={enc(resolved)}; asked={enc(asked)}; rule={rule}")
                               for field, _, _, asked, resolved, rule in notes))


def _note_resolution(field: str, column: str, kind: str | None, asked: str, resolved: str, rule: str) -> None:
    notes = _resolutions.get()
    if notes is not None:
        notes.append((field, column, kind, asked, resolved, rule))


def note_resolution(field: str, asked: str, resolved: str, rule: str) -> None:
    """Report in the call's trailers that request field `field` named `resolved` as `asked`
    (rule case or alias), for a name resolved outside `TypedQueries.check` (SearchService's ids)."""
    _note_resolution(field, field, None, asked, resolved, rule)


def _signature_type_of(where) -> str | None:
    kinds = {item[2] for item in where or () if isinstance(item, (tuple, list)) and len(item) == 3
             and item[0] == "signature_type" and item[1] in ("=", "==")}
    kinds |= {f.values[0].string_value for f in where or () if isinstance(f, pb.Filter)
              and f.column == "signature_type" and f.op == pb.OP_EQ and len(f.values) == 1}
    return kinds.pop() if len(kinds) == 1 else None


def _as_resolved(where):
    """`where` with each equality (or IN) filter on a column whose value this call resolved
    (through `check`, under the same signature type) filtering by the resolved name: a handler that
    checks a field and then filters by the value as given gets the name the check found."""
    notes = _resolutions.get()
    if not notes or not where:
        return where
    kind = _signature_type_of(where)
    names: dict[tuple[str, str], set] = {}
    for _, column, scope, asked, resolved, _ in notes:
        if scope is None or scope == kind:
            names.setdefault((column, asked), set()).add(resolved)
    names = {k: next(iter(v)) for k, v in names.items() if len(v) == 1}
    if not names:
        return where
    swap = lambda column, v: names.get((column, v), v) if isinstance(v, str) else v  # noqa: E731
    out = []
    for item in where:
        if isinstance(item, pb.Filter):
            if item.op in (pb.OP_EQ, pb.OP_IN) and any((item.column, v.string_value) in names for v in item.values):
                item = pb.Filter(column=item.column, op=item.op, values=[
                    pb.Value(string_value=swap(item.column, v.string_value)) if v.HasField("string_value") else v
                    for v in item.values])
        elif isinstance(item, (tuple, list)) and len(item) == 3 and str(item[1]).lower() in ("=", "==", "in"):
            column, op, value = item
            value = [swap(column, v) for v in value] if isinstance(value, (list, tuple, set)) else swap(column, value)
            item = (column, op, value)
        out.append(item)
    return out


def signature_type(request) -> str:
    """The request's signature_type, or the documented default."""
    return request.signature_type or DEFAULT_SIGNATURE_TYPE


def top_n(request) -> int:
    if request.top_n < 0:
        raise invalid(Reason.INVALID_REQUEST, f"top_n must be 0 (default {DEFAULT_TOP_N}) or positive, "
                      f"got {request.top_n}", "top_n")
    return min(request.top_n or DEFAULT_TOP_N, MAX_TOP_N)


def required(request, field: str) -> str:
    value = getattr(request, field)
    if not value:
        raise invalid(Reason.INVALID_REQUEST, f"`{field}` is required", field)
    return value


@dataclass(frozen=True)
class TypedService:
    """One typed gRPC service a domain serves: its full name (for health and reflection), the
    generated function that registers a servicer, and the servicer class."""

    name: str
    register: Callable
    servicer: type

    @classmethod
    def of(cls, pb_module, pb_grpc_module, service: str, servicer: type) -> "TypedService":
        return cls(pb_module.DESCRIPTOR.services_by_name[service].full_name,
                   getattr(pb_grpc_module, f"add_{service}Servicer_to_server"), servicer)


@dataclass(frozen=True)
class ProfilePart:
    """One list of a GetTargetProfile answer: the response field, the table it comes from, the row
    message, and the column whose descending order ranks the rows."""

    field: str
    table: str
    message: type
    rank_by: str


@dataclass(frozen=True)
class TargetProfile:
    """A domain's GetTargetProfile, declared: its response message and the lists it holds."""

    response: type
    parts: tuple[ProfilePart, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(part.table for part in self.parts)


class TypedServicer:
    """Base of the domain servicers: their queries, plus the settings and domain that
    `handle_errors` reads when it turns a DuckDB error into a status."""

    def __init__(self, queries: "TypedQueries"):
        self.q = queries
        self.settings = queries.settings
        self.domain = queries.domain

    def _target_profile(self, context, request, profile: TargetProfile):
        """Where one signature is most active in this domain: each part's top rows of it. The
        signature type need only exist in one of the tables (a table without it gives an empty
        list); the signature need only exist, under that type, in one of them."""
        signature = required(request, "signature")
        kind = signature_type(request)
        self.q.check_any(profile.tables, "signature_type", kind)
        scope = [("signature_type", "=", kind)]
        signature = self.q.check_any(profile.tables, "signature", signature, where=scope)
        lists = {part.field: self.q.top(context, request, part.table, part.message,
                                        [*scope, ("signature", "=", signature)], part.rank_by)
                 for part in profile.parts}
        return profile.response(signature=signature, signature_type=kind, **lists)

    def _rows(self, context, request, table: str, message: type, fields, size: int | None = None):
        """One page of `message`s from `table`, filtered by the request's `fields` (checked)."""
        return self.q.page(context, request, table, message, self.q.filters(table, request, fields), size=size)


def alias_targets(rows: list[dict], field: str) -> set[str]:
    """The names alias-table rows stand for in `field`: a `gene` field takes each row's HGNC
    symbol (a gene table holds genes), every other field the signature name (TNF asked as a
    signature is CytoSig's TNFA; TNFA asked as a gene is TNF)."""
    return {r["hgnc_symbol"] if field == "gene" else r["signature"] for r in rows}


class TypedQueries:
    """Runs typed RPCs' queries on the served file; one per domain servicer."""

    def __init__(self, domain: str, settings: Settings, database: Callable[[], Database]):
        self.domain = domain
        self.settings = settings
        self._database = database
        self._distinct: dict[tuple, list] = {}  # (file build, table, column) -> sorted values
        self._lock = threading.Lock()

    # -- names ---------------------------------------------------------------------------

    def table(self, db: Database, name: str) -> TableInfo:
        table = db.tables.get(name)
        if table is None:  # the file lacks a table this RPC reads
            raise table_not_found(name, db.tables, self.domain)
        return table

    def distinct(self, table: str, column: str, where=None) -> list:
        """Sorted distinct non-null values of `column` (a GROUP BY through the compiler), cached
        per built file: the file never changes while it is served."""
        db = self._database()
        where = _as_resolved(where)
        key = (db.path, db.manifest.build_id, table, column, repr(where))
        with self._lock:
            cached = self._distinct.get(key)
        if cached is None:
            request = pb.QueryRequest(table=table, group_by=[column], order_by=to_order_by([column]),
                                      filters=to_filters(where) + to_filters([(column, "is not null")]),
                                      limit=self.settings.arrow_max_limit, format=pb.RESULT_FORMAT_ARROW)
            result = self._run(db, compiler.compile_query(request, self.table(db, table), self.settings), None)
            cached = result.column(column).to_pylist()
            self._store(key, cached)
        return cached

    def check(self, table: str, field: str, value: str, column: str | None = None, where=()):
        """The value to filter `column` (default: the field's name) by: `value` itself when the rows
        of `table` matching `where` hold it, else the name it resolves to (NAME_FIELDS). Raise
        INVALID_ARGUMENT / NOT_FOUND naming the valid choices when it is not there."""
        return self.check_any((table,), field, value, column, where)

    def check_any(self, tables: Sequence[str], field: str, value: str, column: str | None = None,
                  where=()):
        """Like `check`, but the value need only occur in one of `tables`; the error names the
        choices of all of them."""
        column = column or field
        where = _as_resolved(list(where))
        per_table = [self._vocabulary(table, column, where) for table in tables]
        if any(value in vocabulary.members for vocabulary in per_table):
            return value
        if field in NAME_FIELDS and isinstance(value, str):
            resolved = self._resolve_name(field, column, value, per_table, where)
            if resolved is not None:
                return resolved
        choices = sorted(set().union(*(v.members for v in per_table)), key=str)
        # A different case is the commonest typo (cytosig, Lung, visium): suggest it first.
        matches = ([c for c in choices if str(c).lower() == str(value).lower()]
                   or close_matches(str(value), [str(c) for c in choices]))
        if len(choices) <= _SHOWN_CHOICES:
            hint = "valid values: " + ", ".join(map(str, choices))
        else:
            hint = (f"{len(choices)} values, e.g. " + ", ".join(map(str, choices[:10])) + ", ...")
        if matches:
            hint = f"did you mean {' or '.join(repr(m) for m in matches)}? " + hint
        scope = " and ".join(f"{c} = {v!r}" for c, _, v in where)
        label = " or ".join(tables)
        message = f"{field} {value!r} is not in {label}" + (f" where {scope}" if scope else "") + f"; {hint}"
        metadata = dict(field=field, value=value, table=label, suggestions=",".join(map(str, matches)))
        if field in CLOSED_VOCABULARIES:
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, Reason.INVALID_REQUEST, message,
                               metadata=metadata, field=field)
        raise ServiceError(grpc.StatusCode.NOT_FOUND, Reason.VALUE_NOT_FOUND, message,
                           metadata=metadata, resource=(field, str(value)))

    def _resolve_name(self, field: str, column: str, value: str, per_table: list["_Vocabulary"],
                      where) -> str | None:
        """The one value of the data `value` names by another spelling: case-insensitively, then
        through the alias table (restricted to the signature type `where` names, if any)."""
        key = value.strip().lower()
        kind = _signature_type_of(where)
        folded = sorted({m for vocabulary in per_table for m in vocabulary.folded.get(key, ())})
        if len(folded) == 1:
            _note_resolution(field, column, kind, value, folded[0], "case")
            return folded[0]
        if folded or field not in ALIASED_FIELDS:  # two spellings differ only in case: ambiguous
            return None
        types = {v for c, op, v in where if c == "signature_type" and op == "="}
        rows = [r for r in self.aliases().get(key, ()) if not types or r["signature_type"] in types]
        names = alias_targets(rows, field)
        found = sorted(n for n in names if n and any(n in v.members for v in per_table))
        if len(found) == 1:
            _note_resolution(field, column, kind, value, found[0], "alias")
            return found[0]
        return None

    def aliases(self) -> dict[str, list[dict]]:
        """The served file's alias table as {alias_key: [rows]} (empty when the file has none),
        read once per built file through the compiler."""
        db = self._database()
        name = ALIAS_TABLES.get(self.domain)
        if name not in db.tables:
            return {}
        key = (db.path, db.manifest.build_id, "aliases")
        with self._lock:
            cached = self._distinct.get(key)
        if cached is None:
            request = pb.QueryRequest(table=name, limit=self.settings.arrow_max_limit, format=pb.RESULT_FORMAT_ARROW)
            result = self._run(db, compiler.compile_query(request, self.table(db, name), self.settings), None)
            cached = {}
            for row in result.to_pylist():
                cached.setdefault(row["alias_key"], []).append(row)
            self._store(key, cached)
        return cached

    def _vocabulary(self, table: str, column: str, where) -> "_Vocabulary":
        """`distinct` as a set and a lower-case index, cached like it."""
        db = self._database()
        key = (db.path, db.manifest.build_id, table, column, repr(list(where) or None), "vocabulary")
        with self._lock:
            cached = self._distinct.get(key)
        if cached is None:
            values = self.distinct(table, column, list(where) or None)
            folded: dict[str, list] = {}
            for v in values:
                if isinstance(v, str):
                    folded.setdefault(v.lower(), []).append(v)
            cached = _Vocabulary(frozenset(values), folded)
            self._store(key, cached)
        return cached

    def _store(self, key: tuple, value) -> None:
        with self._lock:
            if any(k[:2] != key[:2] for k in self._distinct):  # a new build: drop the old one's
                self._distinct = {k: v for k, v in self._distinct.items() if k[:2] == key[:2]}
            self._distinct[key] = value

    def filters(self, table: str, request, fields: Iterable[str], **values) -> list:
        """Equality filters for the request fields that are set (signature_type always, defaulted),
        each value checked against the data first. `values` overrides or adds fields."""
        where = []
        for field in fields:
            value = values[field] if field in values else (
                signature_type(request) if field == "signature_type" else getattr(request, field))
            if value in ("", None) or value == 0:  # proto3 default: not set, no filter
                continue
            # A signature exists per signature type: IFNG under SecAct is no CytoSig signature.
            scope = [w for w in where if w[0] == "signature_type"] if field == "signature" else ()
            value = self.check(table, field, value, where=scope)  # a name may resolve to another spelling
            where.append((field, "=", value))
        return where

    # -- queries -------------------------------------------------------------------------

    def page(self, context, request, table: str, message: type, where=(), *, order_by=(),
             group_by=(), aggregates=None, columns: Sequence[str] | None = None,
             size: int | None = None, size_field: str = "page_size",
             format: int = pb.RESULT_FORMAT_ROWS) -> tuple:
        """One AIP-158 page of `message`s (a pyarrow.Table when `message` is None) and the next
        page token ("" when done). Page sizes follow the ROWS limits unless `format` is ARROW."""
        db = self._database()
        size = getattr(request, size_field) if size is None else size
        if size < 0:
            raise invalid(Reason.INVALID_REQUEST, f"{size_field} must be 0 (the default) or positive, "
                          f"got {size}", size_field)
        if group_by or aggregates:
            columns = list(group_by) if columns is None else columns
        elif columns is None:
            columns = [f for f in message.DESCRIPTOR.fields_by_name if self.table(db, table).column(f)]
        query = pb.QueryRequest(table=table, columns=columns, filters=to_filters(_as_resolved(list(where))),
                                order_by=to_order_by(order_by), group_by=list(group_by),
                                aggregates=to_aggregates(aggregates), limit=size, format=format)
        offset = self._offset(db, getattr(request, "page_token", ""), query)
        compiled = compiler.compile_query(query, self.table(db, table), self.settings, offset)
        return self._messages(db, compiled, context, query, message)

    def aggregate(self, table: str, where, **aggregates) -> dict:
        """Aggregates over every row matching `where`: {alias: value}, one statement in DuckDB."""
        result, _ = self.page(None, _NoToken, table, None, where, aggregates=aggregates, columns=[], size=1)
        return {k: _plain(v) for k, v in result.to_pylist()[0].items()}

    def top(self, context, request, table: str, message: type, where, order_by: str) -> list:
        """The first top_n rows of `table` matching `where`, `order_by` descending."""
        rows, _ = self.page(context, _NoToken, table, message, where, order_by=["-" + order_by],
                            size=top_n(request))
        return rows

    def matrix(self, context, table: str, where, pivot: compiler.Pivot, matrix: type, row: type):
        """`table` pivoted in DuckDB into a `matrix` message of `row`s (NaN for an empty cell)."""
        db = self._database()
        query = pb.QueryRequest(table=table, filters=to_filters(_as_resolved(list(where))))
        sql, params = compiler.compile_pivot(query, pivot, self.table(db, table), self.settings)
        result = self._run(db, compiler.CompiledQuery(sql, params, 0, 0, compiler.ARROW), context)
        columns = result.column("columns")[0].as_py() if result.num_rows else []
        return matrix(rows=result.column(pivot.rows).to_pylist(), columns=columns,
                      values=[row(values=[float("nan") if v is None else v for v in cells])
                              for cells in result.column("values").to_pylist()])

    def names_page(self, context, request, table: str, column: str, where=()) -> tuple[list, str]:
        """One page of the sorted distinct values of `column` (GROUP BY in DuckDB)."""
        where = [*where, (column, "is not null")]
        rows, token = self.page(context, request, table, None, where, group_by=[column], order_by=[column])
        return rows.column(column).to_pylist(), token

    def joined_page(self, context, request, left: pb.QueryRequest, right: pb.QueryRequest,
                    using: tuple[str, ...], message: type) -> tuple[list, str]:
        """One page of `left` JOIN `right` USING `using`, joined in DuckDB."""
        db = self._database()
        if request.page_size < 0:
            raise invalid(Reason.INVALID_REQUEST, f"page_size must be 0 (the default) or positive, "
                          f"got {request.page_size}", "page_size")
        left.limit, left.format = request.page_size, pb.RESULT_FORMAT_ROWS
        for side in (left, right):
            resolved = _as_resolved(list(side.filters))
            del side.filters[:]
            side.filters.extend(resolved)
        # The token binds to both sides: fingerprint a request carrying both sides' filters.
        shape = pb.QueryRequest(table=f"{left.table}+{right.table}", columns=[*left.columns, *right.columns],
                                filters=[*left.filters, *right.filters], limit=left.limit)
        offset = self._offset(db, request.page_token, shape)
        compiled = compiler.compile_join(left, self.table(db, left.table), right, self.table(db, right.table),
                                         using, self.settings, offset)
        return self._messages(db, compiled, context, shape, message)

    # -- plumbing ------------------------------------------------------------------------

    def served(self) -> Database:
        """The built file this call reads (the call's lease: the same build throughout)."""
        return self._database()

    def run(self, db: Database, compiled: compiler.CompiledQuery, context) -> pa.Table:
        """Run a statement the serving core compiled itself (SearchService's fixed ranking
        statements) under the same cursor, cancel, deadline and timeout as every query."""
        return self._run(db, compiled, context)

    def _offset(self, db: Database, token: str, query: pb.QueryRequest) -> int:
        if not token:
            return 0
        return paging.decode(token, query, db.manifest.build_id, self.settings.token_secret)

    def _messages(self, db, compiled: compiler.CompiledQuery, context, query, message) -> tuple[list, str]:
        result = self._run(db, compiled, context)
        token = ""
        if result.num_rows > compiled.page_size:  # the compiler asked for one row more than a page
            result = result.slice(0, compiled.page_size)
            token = paging.encode(compiled.offset + compiled.page_size, query, db.manifest.build_id,
                                  self.settings.token_secret)
        return (result if message is None else to_messages(result, message)), token

    def _run(self, db: Database, compiled: compiler.CompiledQuery, context) -> pa.Table:
        """Run one compiled statement on its own cursor, under the same cancel, deadline and
        server query timeout as TableService.Query."""
        with limits.query_cursor(db, context, self.settings.query_timeout_seconds, "") as cursor:
            return arrow_table(cursor, compiled.sql, compiled.params, self.settings.batch_rows)


class _NoToken:
    page_token = ""


@dataclass(frozen=True)
class _Vocabulary:
    members: frozenset
    folded: dict  # lower-case spelling -> the values spelled so


def to_messages(result: pa.Table, message: type) -> list:
    """Copy each row into `message`, field by column name; NULL leaves the field unset."""
    fields = message.DESCRIPTOR.fields_by_name
    names = [n for n in result.column_names if n in fields]
    return [message(**{k: _plain(v) for k, v in row.items() if v is not None})
            for row in result.select(names).to_pylist()]


def _plain(value):
    """DuckDB sums integers into HUGEINT (a decimal in Arrow); protobuf wants int or float."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
