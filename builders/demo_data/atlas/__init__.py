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
from builders.demo_data.atlas import cima, inflammation, pan_atlas, scatlas
from builders.demo_data.atlas.common import AtlasDemo


def generate(writer: Writer, scale: Scale, seed: int) -> None:
    demo = AtlasDemo.build(scale, seed)
    for module in (pan_atlas, cima, inflammation, scatlas):
        module.generate(writer, demo)
