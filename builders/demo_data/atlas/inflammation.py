"""Inflammation demo sources: cell-type and disease activity, disease vs healthy differences."""

from __future__ import annotations

import numpy as np

from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import Signatures
from builders.demo_data._stats import bh, lognormal_counts, neg_log10, r4, rng, sig6
from builders.demo_data.atlas.common import (
    ATLAS_CELLS, ATLAS_SAMPLES, AtlasDemo, celltype_summary, differential_p, sig_columns,
)
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table

def generate(writer: Writer, demo: AtlasDemo) -> None:
    celltype_summary(writer, "inflammation_celltype", "Inflammation", demo.seed, demo.sigs, demo.profiles,
                     demo.cell_types["Inflammation"])
    _inflammation_disease(writer, demo.seed, demo.sigs, demo.profiles, demo.cell_types["Inflammation"], demo.diseases)
    _inflammation_differential(writer, demo.seed, demo.sigs, demo.profiles, demo.diseases)


def summary(demo: AtlasDemo) -> dict:
    """This atlas's figures and name lists in summary_stats.json (the `inflammation` object)."""
    return {"n_samples": ATLAS_SAMPLES["Inflammation"], "n_cell_types": len(demo.cell_types["Inflammation"]),
            "n_cells": ATLAS_CELLS["Inflammation"], "diseases": [d for d, _ in demo.diseases],
            "disease_groups": sorted({g for _, g in demo.diseases})}


def _inflammation_disease(writer: Writer, seed: int, sigs: Signatures, profiles, cell_types, diseases) -> None:
    S, C = len(sigs), len(cell_types)
    cols: dict[str, list] = {k: [] for k in ("disease", "cell_type", "mean", "n_samples", "n_cells")}
    for k, (disease, _) in enumerate(diseases):
        r = rng(seed, "inflammation_disease", disease)
        base = np.stack([profiles.cell_type(ct) for ct in cell_types])
        mean = base + profiles.disease(disease)[None, :] + r.normal(0.0, 0.15, (C, S))
        cols["disease"].append(np.full(C * S, k))
        cols["cell_type"].append(np.repeat(np.arange(C), S))
        cols["mean"].append(r4(np.clip(mean, -6, 6)).ravel())
        cols["n_samples"].append(np.repeat(r.integers(3, 80, C), S))
        cols["n_cells"].append(np.repeat(lognormal_counts(r, 4000, 0.8, C) + 10, S))
    d = np.concatenate(cols["disease"])
    group_names = sorted({g for _, g in diseases})
    writer.json(T("inflammation_disease"), {
        "disease": cat(d, [x for x, _ in diseases]),
        "disease_group": cat(np.array([group_names.index(g) for _, g in diseases])[d], group_names),
        "cell_type": cat(np.concatenate(cols["cell_type"]), cell_types),
        **sig_columns(sigs, np.tile(np.arange(S), len(diseases) * C)),
        "mean_activity": np.concatenate(cols["mean"]),
        "n_samples": np.concatenate(cols["n_samples"]), "n_cells": np.concatenate(cols["n_cells"]),
    })


def _inflammation_differential(writer: Writer, seed: int, sigs: Signatures, profiles, diseases) -> None:
    S = len(sigs)
    cols: dict[str, list] = {k: [] for k in ("disease", "g1", "g2", "diff", "p", "n1", "n2")}
    for k, (disease, _) in enumerate(diseases):
        r = rng(seed, "inflammation_differential", disease)
        healthy = r.normal(0.0, 0.3, S)
        diseased = healthy + profiles.disease(disease) + r.normal(0.0, 0.1, S)
        m1, m2 = r4(diseased), r4(healthy)
        n1, n2 = int(r.integers(15, 120)), int(r.integers(40, 180))
        diff = r4(m1 - m2)
        cols["disease"].append(np.full(S, k))
        cols["g1"].append(m1)
        cols["g2"].append(m2)
        cols["diff"].append(diff)
        cols["p"].append(differential_p(r, diff, n1, n2))
        cols["n1"].append(np.full(S, n1))
        cols["n2"].append(np.full(S, n2))
    d = np.concatenate(cols["disease"])
    sig_idx = np.tile(np.arange(S), len(diseases))
    p = np.concatenate(cols["p"])
    disease_names = [x for x, _ in diseases]
    writer.json(T("inflammation_differential"), {
        "disease": cat(d, disease_names), "group1": cat(d, disease_names), "group2": "healthy",
        **sig_columns(sigs, sig_idx),
        "mean_g1": np.concatenate(cols["g1"]), "mean_g2": np.concatenate(cols["g2"]),
        "activity_diff": np.concatenate(cols["diff"]),
        "pvalue": sig6(p), "qvalue": sig6(bh(p, sigs.types[sig_idx])), "neg_log10_pval": neg_log10(p),
        "n_g1": np.concatenate(cols["n1"]), "n_g2": np.concatenate(cols["n2"]),
    })
