"""Atlas domain: CIMA, Inflammation and scAtlas observational atlases (DOMAIN.md §4), one module
per atlas plus the tables that span them; `DOMAIN` lists every table, in build order."""

from cytoatlas.domains.atlas import (
    age_bmi, cima, cross_atlas, gene, inflammation, pan_atlas, scatlas, search, validation,
)
from cytoatlas.domains.spec import DomainSpec

DOMAIN = DomainSpec(
    name="atlas",
    file_name="atlas_data.duckdb",
    schema_version=1,
    tables=(*pan_atlas.TABLES, *cima.TABLES, *age_bmi.TABLES, *inflammation.TABLES, *scatlas.TABLES,
            *validation.TABLES, *cross_atlas.TABLES, *gene.TABLES, *search.TABLES),
)
