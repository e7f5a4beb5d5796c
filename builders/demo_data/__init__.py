"""Deterministic demo data: the source files every TableSpec names, with realistic values.

`generate(output, scale, seed)` writes, for each requested domain, every source file the domain's
TableSpecs declare (path, format, JSON layout, source column names), following DOMAIN.md §8:
realistic entity names, effects layered on noise, and derived tables computed from the tables
they summarise (treatment effect = exact treated - control means, BH q within a signature type,
tissue summary = GROUP BY of spatial activity, ...). Same seed and scale -> byte-identical files.

Scale rule. Open-ended catalogues scale linearly with a floor:
    n = min(real, max(floor, round(real * scale)))
    SecAct targets 1,249 (floor 40) · LinCytoSig 178 (12) · parse_10M cytokines 90 (8) ·
    Tahoe drugs 95 (5) · dose-plate drugs 25 (3, never more than the drugs) · cell lines 50 (10) ·
    spatial files per technology as in §3.0, Visium 171 (6) and each other technology (1) ·
    sampled points per spatial dataset 10,000 (200) · CIMA cell types 27 (6) · Inflammation cell
    types 66 (8) · scAtlas organs 35 (6) · scAtlas cancer cell types 30 (6) · diseases 20 (6) ·
    CIMA donors 421 (40) · CIMA metabolites 500 (20) · CIMA eQTL cell types 69 (6), genes 9,600
    (100), top eQTLs 5,000 (100) · Inflammation samples of the age/BMI boxplots 817 (60) ·
    scAtlas cancer types 29 (6) · cancer subClusters 36 (20) · cancer donors per cancer type 16 (6).
The experimental design never scales: 43 CytoSig targets, 12 donors, 18 parse_10M cell types,
PBS, 14 plates with DMSO_TF on each, 3 doses, 8 spatial technologies, 19 biochemistry markers,
9 pathways, 250 top metabolite correlations per signature type. Lists are in priority order, so a small scale keeps the best-known entities.
At scale 1 the perturbation tables reach their real cardinalities (DOMAIN.md §2).
parse10m_activity rows = 12 donors x (cytokines + PBS) x 18 cell types x signatures (minus the
rare groups under 10 cells): >= 1,000,000 SecAct rows from scale 0.2 (1.03M; 1.62M at 0.25).
Spatial coordinate activity is long form for 8 headline signatures only (5 CytoSig, 3 SecAct).

MIN_SCALE is the scale at which every count sits at its floor (anything smaller is the same
data); scales outside (0, 1] are rejected.
"""

from __future__ import annotations

import pathlib
from typing import Callable, Sequence

from builders.demo_data import atlas, perturbation, spatial
from builders.demo_data._io import Writer
from builders.demo_data._scale import Scale

DEFAULT_SCALE: float = 0.25  # ~2.5 s, ~260 MB for all three domains; parse10m_activity 1.6M SecAct rows
MIN_SCALE: float = 0.02
DOMAINS = ("atlas", "perturbation", "spatial")
_GENERATORS = {"atlas": atlas.generate, "perturbation": perturbation.generate,
               "spatial": spatial.generate}


def generate(output: pathlib.Path, scale: float = DEFAULT_SCALE, seed: int = 0,
             domains: Sequence[str] = DOMAINS,
             log: Callable[[str], None] | None = None) -> dict[str, list[pathlib.Path]]:
    """Write the source files of the given domains under `output`; return domain -> files written."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    unknown = set(domains) - set(DOMAINS)
    if unknown:
        raise ValueError(f"unknown domain(s) {sorted(unknown)}; choose from {', '.join(DOMAINS)}")
    output = pathlib.Path(output)
    written: dict[str, list[pathlib.Path]] = {}
    for domain in domains:
        writer = Writer(output, domain, log)
        _GENERATORS[domain](writer, Scale(max(scale, MIN_SCALE)), seed)
        written[domain] = writer.files
    return written
