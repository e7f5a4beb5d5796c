"""CIMA demo sources: cell-type summaries, group differences, correlations."""

from __future__ import annotations

import numpy as np

from builders.demo_data import names
from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import Signatures
from builders.demo_data._stats import bh, neg_log10, p_correlation, r4, rng, sig6
from builders.demo_data.atlas.common import (
    ATLAS_CELLS, ATLAS_SAMPLES, AtlasDemo, celltype_summary, correlations, differential_p, sig_columns,
)
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table

def generate(writer: Writer, demo: AtlasDemo) -> None:
    celltype_summary(writer, "cima_celltype", "CIMA", demo.seed, demo.sigs, demo.profiles, demo.cell_types["CIMA"])
    _cima_differential(writer, demo.seed, demo.sigs)
    _cima_correlations(writer, demo.seed, demo.sigs)


def summary(demo: AtlasDemo) -> dict:
    """This atlas's figures and name lists in summary_stats.json (the `cima` object)."""
    return {"n_samples": ATLAS_SAMPLES["CIMA"], "n_cell_types": len(demo.cell_types["CIMA"]),
            "n_cells": ATLAS_CELLS["CIMA"]}


def _cima_differential(writer: Writer, seed: int, sigs: Signatures) -> None:
    """Group medians per comparison x cell type; activity_diff = median_g1 - median_g2 (exact)."""
    S = len(sigs)
    cell_types = ["All"] + list(names.CIMA_L1)
    cols: dict[str, list] = {k: [] for k in ("comparison", "cell_type", "m1", "m2", "diff", "p")}
    for c, (comparison, g1, g2) in enumerate(names.CIMA_COMPARISONS):
        r = rng(seed, "cima_differential", comparison, g1, g2)
        n1, n2 = int(r.integers(60, 220)), int(r.integers(60, 220))
        for t in range(len(cell_types)):
            base = r.normal(0.0, 0.4, S)
            shift = r.normal(0.0, 0.15, S)
            big = r.random(S) < 0.02
            shift[big] = r.choice([-0.5, 0.5], big.sum()) + r.normal(0.0, 0.1, big.sum())
            m1, m2 = r4(base + shift), r4(base)
            diff = r4(m1 - m2)
            cols["comparison"].append(np.full(S, c))
            cols["cell_type"].append(np.full(S, t))
            cols["m1"].append(m1)
            cols["m2"].append(m2)
            cols["diff"].append(diff)
            cols["p"].append(differential_p(r, diff, n1, n2))
    comp = np.concatenate(cols["comparison"])
    sig_idx = np.tile(np.arange(S), comp.size // S)
    p = np.concatenate(cols["p"])
    comparisons = names.CIMA_COMPARISONS
    writer.json(T("cima_differential"), {
        **{name: cat(comp, [c[k] for c in comparisons])
           for k, name in enumerate(("comparison", "group1", "group2"))},
        "cell_type": cat(np.concatenate(cols["cell_type"]), cell_types),
        **sig_columns(sigs, sig_idx),
        "median_g1": np.concatenate(cols["m1"]), "median_g2": np.concatenate(cols["m2"]),
        "activity_diff": np.concatenate(cols["diff"]),
        "pvalue": sig6(p), "qvalue": sig6(bh(p, sigs.types[sig_idx])), "neg_log10_pval": neg_log10(p),
    })


def _cima_correlations(writer: Writer, seed: int, sigs: Signatures) -> None:
    S = len(sigs)
    ageing = np.array([i for t in sigs.type_names for i in sigs.indices(t, ("IFN1", "IL6", "IFNA1", "CXCL10"))])
    features = [("age", "age", 421), ("bmi", "bmi", 421)] + [("biochemistry", m, 399) for m in names.BIOCHEMISTRY]
    categories = list(dict.fromkeys(c for c, _, _ in features))
    cols: dict[str, list] = {k: [] for k in ("category", "feature", "rho", "p", "n")}
    for k, (category, feature, n) in enumerate(features):
        r = rng(seed, "cima_correlations", feature)
        rho = r4(correlations(r, S, ageing if feature == "age" else None))
        cols["category"].append(np.full(S, categories.index(category)))
        # Like the real file, only biochemistry records name a feature; the builder fills in the rest.
        cols["feature"].append(np.full(S, k if category == "biochemistry" else -1))
        cols["rho"].append(rho)
        cols["p"].append(p_correlation(rho, n))
        cols["n"].append(np.full(S, n))
    sig_idx = np.tile(np.arange(S), len(features))
    p = np.concatenate(cols["p"])
    category = np.concatenate(cols["category"])
    q = bh(p, category * len(sigs.type_names) + sigs.types[sig_idx])  # within category x type
    writer.json(T("cima_correlations"), {
        "category": cat(category, categories),
        "feature": cat(np.concatenate(cols["feature"]), [f for _, f, _ in features]),
        **sig_columns(sigs, sig_idx),
        "rho": np.concatenate(cols["rho"]), "pvalue": sig6(p), "qvalue": sig6(q),
        "n": np.concatenate(cols["n"]),
    })
