"""Builders: analysis-result files (CSV/JSON/Parquet) -> one read-only DuckDB file per domain."""

from builders import atlas, perturbation, spatial
from builders.spec import DomainSpec

DOMAINS: dict[str, DomainSpec] = {
    spec.name: spec for spec in (atlas.DOMAIN, perturbation.DOMAIN, spatial.DOMAIN)
}
