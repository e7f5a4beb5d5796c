"""What every layer agrees on: each domain's tables (spec), the manifest a built file carries, and
the fast verification a service runs before serving a file.

Builders build from these declarations, services serve files checked against them, the lifecycle
tools and the Router's fallback read them. This package imports neither the builders nor the
serving core nor the client (tests/test_layers.py).
"""

from cytoatlas.domains import atlas, perturbation, spatial
from cytoatlas.domains.spec import DomainSpec

DOMAINS: dict[str, DomainSpec] = {
    spec.name: spec for spec in (atlas.DOMAIN, perturbation.DOMAIN, spatial.DOMAIN)
}
