"""Demo sources of the tables spanning the atlases: activity boxplots, single-cell summaries,
cross-sample correlations."""

from __future__ import annotations

import numpy as np

from builders.demo_data import names
from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import Scale, Signatures
from builders.demo_data._stats import lognormal_counts, p_correlation, r4, rng, sig6
from builders.demo_data.atlas.common import ATLAS_SAMPLES, AtlasDemo, sig_columns
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table

def generate(writer: Writer, demo: AtlasDemo) -> None:
    _activity_boxplot(writer, demo.seed, demo.sigs, demo.profiles, demo.cell_types)
    _singlecell(writer, demo.seed, demo.sigs, demo.profiles, demo.cell_types)
    _cross_sample(writer, demo.seed, demo.scale)


def _activity_boxplot(writer: Writer, seed: int, sigs: Signatures, profiles, cell_types) -> None:
    """Boxplot statistics of n simulated sample values: min <= q1 <= median <= q3 <= max exactly."""
    S = len(sigs)
    cols: dict[str, list] = {k: [] for k in ("atlas", "cell_type", "stats", "n")}
    type_names = sorted({ct for v in cell_types.values() for ct in v})
    for a, atlas in enumerate(names.ATLASES):
        for ct in cell_types[atlas]:
            r = rng(seed, "activity_boxplot", atlas, ct)
            n = int(r.integers(20, min(400, ATLAS_SAMPLES[atlas]) + 1))
            sd = r.uniform(0.4, 1.0, S)
            x = profiles.cell_type(ct)[:, None] + sd[:, None] * r.normal(0.0, 1.0, (S, n))
            x = r4(np.clip(x, -6, 6))
            q = np.quantile(x, [0.0, 0.25, 0.5, 0.75, 1.0], axis=1)
            stats = np.vstack([q, x.mean(axis=1), x.std(axis=1, ddof=1)])  # [7, S]
            cols["atlas"].append(np.full(S, a))
            cols["cell_type"].append(np.full(S, type_names.index(ct)))
            cols["stats"].append(r4(stats))
            cols["n"].append(np.full(S, n))
    stats = np.concatenate(cols["stats"], axis=1)
    n_rows = stats.shape[1]
    sig_idx = np.tile(np.arange(S), n_rows // S)
    writer.json(T("activity"), {
        "atlas": cat(np.concatenate(cols["atlas"]), names.ATLASES),
        "cell_type": cat(np.concatenate(cols["cell_type"]), type_names),
        **sig_columns(sigs, sig_idx),
        **dict(zip(("min", "q1", "median", "q3", "max", "mean", "std"), stats)),
        "n": np.concatenate(cols["n"]),
    })


def _singlecell(writer: Writer, seed: int, sigs: Signatures, profiles, cell_types) -> None:
    S = len(sigs)
    atlases = ("CIMA", "Inflammation", "scAtlas")
    groups = {"CIMA": cell_types["CIMA"], "Inflammation": cell_types["Inflammation"],
              "scAtlas": list(dict.fromkeys(cell_types["scAtlas_Normal"] + cell_types["scAtlas_Cancer"]))}
    all_types = sorted({ct for v in groups.values() for ct in v})
    cols: dict[str, list] = {k: [] for k in ("atlas", "cell_type", "mean", "std", "n")}
    for a, atlas in enumerate(atlases):
        r = rng(seed, "singlecell_activity", atlas)
        types = groups[atlas]
        mean = np.stack([profiles.cell_type(ct) for ct in types]) * 0.8 + r.normal(0.0, 0.1, (len(types), S))
        cols["atlas"].append(np.full(len(types) * S, a))
        cols["cell_type"].append(np.repeat([all_types.index(ct) for ct in types], S))
        cols["mean"].append(r4(np.clip(mean, -6, 6)).ravel())
        cols["std"].append(r4(r.uniform(0.6, 1.6, len(types) * S)))
        cols["n"].append(np.repeat(lognormal_counts(r, 40_000, 1.0, len(types)) + 20, S))
    n_rows = sum(a.size for a in cols["atlas"])
    writer.json(T("singlecell_activity"), {
        "atlas": cat(np.concatenate(cols["atlas"]), atlases),
        "cell_type": cat(np.concatenate(cols["cell_type"]), all_types),
        **sig_columns(sigs, np.tile(np.arange(S), n_rows // S)),
        "mean_activity": np.concatenate(cols["mean"]), "std_activity": np.concatenate(cols["std"]),
        "n_cells": np.concatenate(cols["n"]),
    })


def _gene(signature: str, type_name: str) -> str:
    """The gene encoding a signature's target (LinCytoSig: its cytokine part)."""
    if type_name == "LinCytoSig":
        return names.cytosig_gene(signature.split("__")[1])
    return names.cytosig_gene(signature) if type_name == "CytoSig" else signature


def _cross_sample(writer: Writer, seed: int, scale: Scale) -> None:
    """One CSV per atlas x level: Spearman rho of signature activity vs its gene's expression.

    donor_only: CytoSig/SecAct rows for celltype 'all', LinCytoSig rows 'matched'/'unmappable';
    donor_l1: every CytoSig/SecAct target per l1 cell type, LinCytoSig in its matched cell type.
    """
    sigs = Signatures.build(scale, lincytosig=True)
    lin_code = sigs.type_names.index("LinCytoSig")
    lin = sigs.of_type("LinCytoSig")
    plain = np.flatnonzero(sigs.types != lin_code)
    prefixes = sorted({sigs.names[s].split("__")[0] for s in lin})
    prefix = np.array([prefixes.index(sigs.names[s].split("__")[0]) for s in lin])
    genes = [_gene(n, sigs.type_names[t]) for n, t in zip(sigs.names, sigs.types.tolist())]
    lower = [t.lower() for t in sigs.type_names]  # the real CSVs write lowercase types
    for atlas, level, n_donors in names.CROSS_SAMPLE_FILES:
        r = rng(seed, "cross_sample_correlations", atlas, level)
        l1 = list(names.CROSS_SAMPLE_L1[atlas])
        celltypes = ["all", "matched", "unmappable"] + l1
        # l1 cell type each LinCytoSig prefix maps to (-1: unmappable in this atlas)
        match = np.array([l1.index(names.LIN_TO_L1[atlas][p]) if p in names.LIN_TO_L1[atlas] else -1
                          for p in prefixes])[prefix]
        if level == "donor_only":
            sig_idx = np.concatenate([plain, lin])
            ct = np.concatenate([np.zeros(plain.size, dtype=np.int64), np.where(match >= 0, 1, 2)])
            lin_rows = np.arange(lin.size)
        else:
            mapped = np.flatnonzero(match >= 0)
            sig_idx = np.concatenate([np.repeat(plain, len(l1)), lin[mapped]])
            ct = np.concatenate([np.tile(np.arange(len(l1)), plain.size), match[mapped]]) + 3
            lin_rows = mapped
        n = sig_idx.size
        n_plain = n - lin_rows.size
        rho = r4(np.clip(r.normal(0.15, 0.2, n), -0.95, 0.95))
        n_samples = np.where(ct == 0, n_donors, r.integers(n_donors // 2, n_donors + 1, n))
        lin_prefix = np.concatenate([np.full(n_plain, -1), prefix[lin_rows]])
        lin_match = np.concatenate([np.full(n_plain, -1), match[lin_rows]])
        writer.csv(T("cross_sample_correlations"), {
            "atlas": atlas, "level": level, "celltype": cat(ct, celltypes),
            "signature": cat(sig_idx, sigs.names),
            "signature_type": cat(sigs.types[sig_idx], lower),
            "gene": cat(sig_idx, genes),
            "spearman_rho": rho, "spearman_pval": sig6(p_correlation(rho, n_samples)),
            "n_samples": n_samples,
            "mean_expr": r4(r.gamma(2.0, 0.6, n)), "std_expr": r4(r.uniform(0.2, 1.2, n)),
            "mean_activity": r4(r.normal(0.0, 0.5, n)), "std_activity": r4(r.uniform(0.5, 1.5, n)),
            "lincytosig_celltype": cat(lin_prefix, prefixes), "matched_atlas_celltypes": cat(lin_match, l1),
        }, relative=f"results/cross_sample_validation/{atlas}_{level}_correlations.csv")
