"""Search across the three domains: one SearchService call per domain service, in parallel
threads, the rankings merged here (no cross-database join).

Each service ranks its own entities (cytoatlas/serving/search.py); the scores are on one scale in
every domain, so the merged ranking is by score, then the entity type's rank (a cytokine before
the gene of the same name), then name, then domain (atlas, perturbation, spatial). A domain that
fails (down, busy past the retries) is reported in `errors` while the others still answer; a
request every service refuses as malformed (INVALID_ARGUMENT) is raised.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import pyarrow as pa

from cytoatlas.client.errors import CytoAtlasError, from_rpc_error
from cytoatlas.client.retry import Retry
from cytoatlas.domains.search_index import ENTITY_TYPES
from cytoatlas.search.v1 import search_service_pb2 as pb
from cytoatlas.search.v1 import search_service_pb2_grpc as pb_grpc

DOMAINS = ("atlas", "perturbation", "spatial")
MAX_PAGE = 100  # the services' largest Search page
_TYPE_RANK = {t: i for i, t in enumerate(ENTITY_TYPES)}


def _rank(domain: str, entity_type: str, name: str, score: float) -> tuple:
    return (-score, _TYPE_RANK.get(entity_type, len(_TYPE_RANK)), name, DOMAINS.index(domain))


@dataclass
class SearchResults:
    """The merged ranking (`results`: SearchResult messages, best first, each naming its domain),
    each domain's total, and each failed domain's error."""

    query: str
    entity_type: str = ""
    results: list = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    errors: dict[str, CytoAtlasError] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The `cytoatlas search --format json` object: `results` ranked best first, each naming
        its `name`, `type` and `domain`; `errors` names each domain that did not answer."""
        return {
            "query": self.query, "type": self.entity_type or None,
            "results": [{"rank": i, "name": r.name, "type": r.entity_type, "domain": r.domain,
                         "entity_id": r.entity_id, "score": r.score, "matched_term": r.matched_term,
                         "term_kind": r.term_kind, "match_rule": r.match_rule, "description": r.description,
                         "signature_type": r.signature_type if r.HasField("signature_type") else None,
                         "contexts": list(r.contexts), "aliases": list(r.aliases), "n_rows": r.n_rows,
                         "tables": list(r.tables)}
                        for i, r in enumerate(self.results, start=1)],
            "totals": dict(self.totals),
            "errors": {domain: str(error) for domain, error in self.errors.items()},
        }

    def to_table(self) -> pa.Table:
        """One row per result, best first: rank, score, type, name, domain, matched term, rule,
        description."""
        rows = [{"rank": i, "score": r.score, "type": r.entity_type, "name": r.name, "domain": r.domain,
                 "matched": r.matched_term, "rule": r.match_rule, "description": r.description}
                for i, r in enumerate(self.results, start=1)]
        schema = pa.schema([("rank", pa.int64()), ("score", pa.float64()), ("type", pa.string()),
                            ("name", pa.string()), ("domain", pa.string()), ("matched", pa.string()),
                            ("rule", pa.string()), ("description", pa.string())])
        return pa.Table.from_pylist(rows, schema=schema)


@dataclass
class Completion:
    """One completion, merged over the domains that suggest it (same type and text)."""

    text: str
    entity_type: str
    entity_id: str
    matched_term: str
    highlight: str
    score: float
    domains: list[str] = field(default_factory=list)


@dataclass
class Completions:
    prefix: str
    suggestions: list[Completion] = field(default_factory=list)
    errors: dict[str, CytoAtlasError] = field(default_factory=dict)


def _fan_out(channels: dict[str, grpc.Channel], addresses: dict[str, str], ask, timeout, retry: Retry):
    """ask(domain, stub, timeout) in one thread per domain; (answers, errors) by domain. A request
    every answering service calls malformed is raised: it is wrong everywhere."""

    def one(domain: str):
        stub = pb_grpc.SearchServiceStub(channels[domain])
        try:
            return domain, ask(domain, stub, lambda call: retry.call(call, timeout)), None
        except grpc.RpcError as err:
            return domain, None, from_rpc_error(err, domain, addresses[domain], timeout=timeout)

    answers, errors = {}, {}
    with ThreadPoolExecutor(len(DOMAINS)) as pool:
        for domain, answer, error in pool.map(one, DOMAINS):
            if error is None:
                answers[domain] = answer
            else:
                errors[domain] = error
    invalid = [e for e in errors.values() if e.code == grpc.StatusCode.INVALID_ARGUMENT]
    if invalid:
        raise invalid[0]
    return answers, errors


def search(channels: dict[str, grpc.Channel], addresses: dict[str, str], term: str, entity_type: str | None = None,
           limit: int = 20, timeout: float | None = 30.0, retry: Retry | None = None) -> SearchResults:
    """The best `limit` entities matching `term` over the three domains, merged by score."""
    if not isinstance(term, str) or not term.strip():
        raise ValueError("search needs a term, e.g. 'IL6', 'interleukin 6' or 'Imatinib'")
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive whole number, got {limit!r}")
    retry = retry or Retry()
    kind = entity_type or ""

    def ask(domain, stub, call):
        results, token, total = [], "", 0
        while True:  # pages until this domain has given `limit` results (or all it has)
            request = pb.SearchRequest(query=term, entity_type=kind, page_size=min(limit - len(results), MAX_PAGE),
                                       page_token=token)
            page = call(lambda t: stub.Search(request, timeout=t))
            results += page.results
            total, token = page.total_size, page.next_page_token
            if not token or len(results) >= limit:
                return results, total

    answers, errors = _fan_out(channels, addresses, ask, timeout, retry)
    merged = sorted((r for results, _ in answers.values() for r in results),
                    key=lambda r: _rank(r.domain, r.entity_type, r.name, r.score))
    return SearchResults(term, kind, merged[:limit], {d: total for d, (_, total) in answers.items()}, errors)


def autocomplete(channels: dict[str, grpc.Channel], addresses: dict[str, str], prefix: str,
                 entity_type: str | None = None, limit: int = 10, timeout: float | None = 30.0,
                 retry: Retry | None = None) -> Completions:
    """Up to `limit` completions of `prefix` over the three domains; the same entity suggested by
    several domains is one completion naming them all."""
    if not isinstance(prefix, str) or not prefix.strip():
        raise ValueError("autocomplete needs a prefix, e.g. 'IL'")
    retry = retry or Retry()
    request = pb.AutocompleteRequest(prefix=prefix, entity_type=entity_type or "", limit=limit)

    def ask(domain, stub, call):
        return call(lambda t: stub.Autocomplete(request, timeout=t)).suggestions

    answers, errors = _fan_out(channels, addresses, ask, timeout, retry)
    merged: dict[tuple[str, str], Completion] = {}
    for domain in DOMAINS:
        for s in answers.get(domain, ()):
            key = (s.entity_type, s.text)
            if key in merged:
                merged[key].domains.append(domain)
                merged[key].score = max(merged[key].score, s.score)
            else:
                merged[key] = Completion(s.text, s.entity_type, s.entity_id, s.matched_term, s.highlight, s.score,
                                         [domain])
    ordered = sorted(merged.values(), key=lambda c: (-c.score, len(c.matched_term),
                                                     _TYPE_RANK.get(c.entity_type, len(_TYPE_RANK)), c.text))
    return Completions(prefix, ordered[:limit], errors)
