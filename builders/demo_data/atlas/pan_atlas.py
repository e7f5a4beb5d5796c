"""Demo sources of the tables spanning the atlases: activity boxplots, single-cell summaries,
cross-sample correlations."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from builders.demo_data import names
from builders.demo_data._io import Writer, cat, to_table
from builders.demo_data._scale import Signatures, scaled
from builders.demo_data._stats import lognormal_counts, p_correlation, r4, rng, sig6
from builders.demo_data.atlas.common import ATLAS_SAMPLES, AtlasDemo, sig_columns
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table

def generate(writer: Writer, demo: AtlasDemo) -> None:
    _activity_boxplot(writer, demo.seed, demo.sigs, demo.profiles, demo.cell_types)
    _singlecell(writer, demo.seed, demo.sigs, demo.profiles, demo.cell_types)
    _cross_sample(writer, demo)


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


SINGLECELL_BLOCKS = (("CIMA", ""), ("Inflammation", "main"), ("Inflammation", "val"), ("Inflammation", "ext"),
                     ("scAtlas_Normal", ""), ("scAtlas_Cancer", ""))


def _singlecell(writer: Writer, seed: int, sigs: Signatures, profiles, cell_types) -> None:
    """One contiguous block per (atlas or cohort, signature type), in the writer's file order (07e:
    CIMA, Inflammation main, val, ext, scAtlas normal, cancer; CytoSig then SecAct each). The three
    Inflammation cohorts are all labelled 'Inflammation'; val and ext miss ~10% of main's cell
    types. SD is the population SD of n_cells values, so min <= mean <= max."""
    blocks = []
    for atlas, cohort in SINGLECELL_BLOCKS:
        r = rng(seed, "singlecell_activity", atlas, cohort)
        types = cell_types[atlas]
        if cohort in ("val", "ext"):
            types = [ct for ct in types if r.random() > 0.1] or types[:1]
        mean = np.stack([profiles.cell_type(ct) for ct in types]) * 0.8 + r.normal(0.0, 0.1, (len(types), len(sigs)))
        std = r.uniform(0.6, 1.6, mean.shape)
        n = np.repeat((lognormal_counts(r, 40_000, 1.0, len(types)) + 20)[:, None], len(sigs), axis=1)
        spread_lo, spread_hi = r.uniform(1.0, 3.0, mean.shape), r.uniform(1.0, 3.0, mean.shape)
        for t, type_name in enumerate(sigs.type_names):
            cols = sigs.of_type(type_name)
            blocks.append((atlas, types, cols, mean[:, cols], std[:, cols], n[:, cols], spread_lo[:, cols],
                           spread_hi[:, cols]))
    atlases = [b[0] for b in blocks]
    all_types = sorted({ct for b in blocks for ct in b[1]})
    codes = {k: [] for k in ("atlas", "cell_type", "sig", "mean", "std", "min", "max", "n")}
    for b, (atlas, types, cols, mean, std, n, lo, hi) in enumerate(blocks):
        codes["atlas"].append(np.full(mean.size, b))
        codes["cell_type"].append(np.repeat([all_types.index(ct) for ct in types], cols.size))
        codes["sig"].append(np.tile(cols, len(types)))
        mean = r4(np.clip(mean, -6, 6))
        codes["mean"].append(mean.ravel())
        codes["std"].append(r4(std).ravel())
        codes["min"].append(r4(mean - lo * std).ravel())
        codes["max"].append(r4(mean + hi * std).ravel())
        codes["n"].append(n.ravel())
    flat = {k: np.concatenate(v) for k, v in codes.items()}
    writer.json(T("singlecell_activity"), {
        "atlas": cat(flat["atlas"], atlases), "cell_type": cat(flat["cell_type"], all_types),
        **sig_columns(sigs, flat["sig"]),
        "mean_activity": flat["mean"], "std_activity": flat["std"],
        "min_activity": flat["min"], "max_activity": flat["max"], "n_cells": flat["n"],
    }, drop=("cohort",))  # the builder numbers the Inflammation blocks


def _gene(signature: str, type_name: str) -> str:
    """The gene encoding a signature's target (LinCytoSig: its cytokine part)."""
    if type_name == "LinCytoSig":
        return names.cytosig_gene(signature.split("__")[1])
    return names.cytosig_gene(signature) if type_name == "CytoSig" else signature


def cross_sample_levels(demo: AtlasDemo) -> list[tuple[str, int, str, list[str] | None, str | None]]:
    """(atlas, donors, level, groups or None, LinCytoSig mapping family or None) of the demo's
    cross-sample correlation files: the real atlases and a subset of their levels (scripts/13)."""
    s = demo.scale.s
    tissues = sorted(names.GTEX_TISSUES[:scaled(len(names.GTEX_TISSUES), s, 6)])
    cancers = sorted(names.TCGA_CANCERS[:scaled(len(names.TCGA_CANCERS), s, 6)])
    inflammation = list(names.CROSS_SAMPLE_L1["inflammation"])
    levels = [("cima", 421, "donor_only", None, None),
              ("cima", 421, "donor_l1", list(names.CROSS_SAMPLE_L1["cima"]), "cima"),
              ("cima", 421, "donor_l2", sorted(demo.cell_types["CIMA"]), None)]
    for cohort, donors in (("main", 817), ("val", 144), ("ext", 86)):
        levels += [(f"inflammation_{cohort}", donors, "donor_only", None, None),
                   (f"inflammation_{cohort}", donors, "donor_l1", inflammation, "inflammation")]
    levels += [("inflammation_combined", 1_047, "donor_only", None, None),
               ("scatlas_normal", 706, "donor_organ", sorted(demo.organs), None),
               ("scatlas_normal", 706, "donor_organ_celltype1", list(names.CROSS_SAMPLE_L1["scatlas"]), "scatlas"),
               ("scatlas_cancer", 1_062, "donor_only", None, None),
               ("scatlas_cancer", 1_062, "tumor_by_cancer", cancers, None),
               ("gtex", 19_788, "donor_only", None, None), ("gtex", 19_788, "by_tissue", tissues, None),
               ("tcga", 11_069, "donor_only", None, None), ("tcga", 11_069, "by_cancer", cancers, None),
               ("tcga", 11_069, "primary_only", None, None), ("tcga", 11_069, "primary_by_cancer", cancers, None)]
    return levels


def _cross_sample(writer: Writer, demo: AtlasDemo) -> None:
    """One CSV per atlas with all its levels (scripts/13), plus all_correlations.csv, their
    concatenation, which the table's glob leaves out.

    Per level: an 'all' row per target; a level with groups adds one row per target and group and,
    for LinCytoSig, a 'matched' row (its cell type maps to the level's groups) or an 'unmappable'
    row (NaN statistics, n_samples 0).
    """
    sigs = Signatures.build(demo.scale, lincytosig=True)
    lin = sigs.of_type("LinCytoSig")
    lin_code = sigs.type_names.index("LinCytoSig")
    prefixes = sorted({sigs.names[i].split("__")[0] for i in lin})
    prefix_of = np.full(len(sigs), -1)
    prefix_of[lin] = [prefixes.index(sigs.names[i].split("__")[0]) for i in lin]
    genes = [_gene(n, sigs.type_names[t]) for n, t in zip(sigs.names, sigs.types.tolist())]
    lower = [t.lower() for t in sigs.type_names]  # the real CSVs write lowercase types
    S = len(sigs)
    spec = T("cross_sample_correlations")
    parts: dict[str, list[dict]] = {}
    for atlas, donors, level, groups, family in cross_sample_levels(demo):
        r = rng(demo.seed, "cross_sample_correlations", atlas, level)
        labels = ["all", "matched", "unmappable"] + (groups or [])
        sig_idx, ct, match = [np.arange(S)], [np.zeros(S, dtype=np.int64)], [np.full(S, -1)]
        if groups:
            if family:  # the group each LinCytoSig cell type maps to (-1: unmappable here)
                to = names.LIN_TO_L1[family]
                mapped = np.array([groups.index(to[p]) if p in to else -1 for p in prefixes])[prefix_of[lin]]
            else:
                mapped = np.full(lin.size, -1)
            sig_idx.append(lin)
            ct.append(np.where(mapped >= 0, 1, 2))
            match.append(mapped)
            sig_idx.append(np.repeat(np.arange(S), len(groups)))
            ct.append(np.tile(np.arange(len(groups)), S) + 3)
            match.append(np.full(S * len(groups), -1))
        sig_idx, ct, match = (np.concatenate(a) for a in (sig_idx, ct, match))
        n = sig_idx.size
        unmappable = ct == 2
        rho = r4(np.clip(r.normal(0.15, 0.2, n), -0.95, 0.95))
        groups_n = max(1, len(groups or ()))
        n_samples = np.where(ct == 0, donors, r.integers(10, max(11, 2 * donors // groups_n), n))
        n_samples[unmappable] = 0
        nan = np.where(unmappable, np.nan, 1.0)
        is_lin = sigs.types[sig_idx] == lin_code
        parts.setdefault(atlas, []).append({
            "atlas": atlas, "level": level, "celltype": cat(ct, labels),
            "signature": cat(sig_idx, sigs.names), "signature_type": cat(sigs.types[sig_idx], lower),
            "gene": cat(sig_idx, genes),
            "spearman_rho": rho * nan, "spearman_pval": sig6(_underflow(p_correlation(rho, np.maximum(n_samples, 4)))) * nan,
            "n_samples": n_samples,
            "mean_expr": r4(r.gamma(2.0, 0.6, n)) * nan, "std_expr": r4(r.uniform(0.2, 1.2, n)) * nan,
            "mean_activity": r4(r.normal(0.0, 0.5, n)) * nan, "std_activity": r4(r.uniform(0.5, 1.5, n)) * nan,
            "lincytosig_celltype": cat(np.where(is_lin, prefix_of[sig_idx], -1), prefixes),
            "matched_atlas_celltypes": cat(match, groups or [""]),
        })
    folder = "results/cross_sample_validation/correlations"
    every = []
    for atlas, levels in parts.items():
        table = pa.concat_tables(to_table(spec, level) for level in levels)
        every.append(table)
        writer.csv(spec, _columns(table), relative=f"{folder}/{atlas}_correlations.csv")
    writer.csv(spec, _columns(pa.concat_tables(every)), relative=f"{folder}/all_correlations.csv")


def _underflow(p: np.ndarray) -> np.ndarray:
    """p below the smallest normal double is 0, as scipy reports it for thousands of samples."""
    return np.where(p < 1e-300, 0.0, p)


def _columns(table: pa.Table) -> dict:
    """A written table's columns back under the served names (the writer renames them again)."""
    served = {c.candidates[0]: c.name for c in T("cross_sample_correlations").columns}
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns[served[name]] = column.combine_chunks()
    return columns
