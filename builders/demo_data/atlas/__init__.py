"""Atlas demo sources: CIMA, Inflammation and scAtlas JSON files and cross-sample CSVs (DOMAIN.md §8.3),
one module per atlas plus the tables spanning them (builders/demo_data/atlas/*.py).

A cell-type profile C[cell type, signature] (programmes such as Th17 -> IL17A/IL22, monocytes ->
IL1B/IL6/TNFA) drives every per-cell-type table; diseases add a shift D[disease, signature].
LinCytoSig appears only in the cross-sample correlations, as in the real project. JSON sources use
the real quirks the specs declare (`protein` = target, `signature` = signature type, lowercase
signature types in the cross-sample CSVs).
"""

from __future__ import annotations

from builders.demo_data._io import Writer
from builders.demo_data._scale import Scale
from builders.demo_data.atlas import age_bmi, cima, cross_atlas, gene, inflammation, pan_atlas, scatlas, validation
from builders.demo_data.atlas.common import AtlasDemo
from cytoatlas.domains.atlas import DOMAIN

ATLAS_MODULES = {"cima": cima, "inflammation": inflammation, "scatlas": scatlas}  # summary_stats keys
# Written after the atlases: they read the atlas tables back, so their numbers agree with them.
DERIVED_MODULES = (cross_atlas, gene)


def generate(writer: Writer, scale: Scale, seed: int) -> None:
    demo = AtlasDemo.build(scale, seed)
    for module in (pan_atlas, *ATLAS_MODULES.values(), age_bmi, *DERIVED_MODULES):
        module.generate(writer, demo)
    validation.generate(writer, demo)  # derived from the tables above (read back from their files)
    summaries = {key: module.summary(demo) for key, module in ATLAS_MODULES.items()}
    rows = sum(len(v) if isinstance(v, list) else 1 for figures in summaries.values() for v in figures.values())
    writer.nested_json(DOMAIN.table("summary_stats"), summaries, rows)
