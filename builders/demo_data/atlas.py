"""Atlas demo sources: CIMA, Inflammation and scAtlas JSON files and cross-sample CSVs (DOMAIN.md §8.3).

A cell-type profile C[cell type, signature] (programmes such as Th17 -> IL17A/IL22, monocytes ->
IL1B/IL6/TNFA) drives every per-cell-type table; diseases add a shift D[disease, signature].
LinCytoSig appears only in the cross-sample correlations, as in the real project. JSON sources use
the real quirks the specs declare (`protein` = target, `signature` = signature type, lowercase
signature types in the cross-sample CSVs).
"""

from __future__ import annotations

import numpy as np

from cytoatlas.domains import atlas as spec
from builders.demo_data import names
from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import Scale, Signatures
from builders.demo_data._stats import (
    bh, lognormal_counts, neg_log10, p_correlation, p_two_sided, r4, rng, sig6,
)

T = spec.DOMAIN.table
ATLAS_CELLS = {"CIMA": 6_484_974, "Inflammation": 6_340_934, "scAtlas_Normal": 2_293_951,
               "scAtlas_Cancer": 4_146_975}
ATLAS_SAMPLES = {"CIMA": 428, "Inflammation": 1_047, "scAtlas_Normal": 706, "scAtlas_Cancer": 1_062}


def generate(writer: Writer, scale: Scale, seed: int) -> None:
    sigs = Signatures.build(scale)
    profiles = _Profiles(seed, sigs)
    organs = names.SCATLAS_ORGANS[:scale.organs]
    organ_types = {o: _organ_cell_types(seed, o) for o in organs}
    normal_types = list(dict.fromkeys(ct for o in organs for ct in organ_types[o]))
    cell_types = {
        "CIMA": list(names.CIMA_CELL_TYPES[:scale.cima_cell_types]),
        "Inflammation": list(names.INFLAMMATION_CELL_TYPES[:scale.inflammation_cell_types]),
        "scAtlas_Normal": normal_types,
        "scAtlas_Cancer": list(names.SCATLAS_CANCER_CELL_TYPES[:scale.cancer_cell_types]),
    }
    _activity_boxplot(writer, seed, sigs, profiles, cell_types)
    for table, atlas in (("cima_celltype", "CIMA"), ("inflammation_celltype", "Inflammation")):
        _celltype_summary(writer, table, atlas, seed, sigs, profiles, cell_types[atlas])
    diseases = names.DISEASES[:scale.diseases]
    _inflammation_disease(writer, seed, sigs, profiles, cell_types["Inflammation"], diseases)
    _inflammation_differential(writer, seed, sigs, profiles, diseases)
    _cima_differential(writer, seed, sigs)
    _cima_correlations(writer, seed, sigs)
    _scatlas(writer, seed, sigs, profiles, organs, organ_types)
    _singlecell(writer, seed, sigs, profiles, cell_types)
    _cross_sample(writer, seed, scale)


class _Profiles:
    """C[cell type] and D[disease] effect vectors over the signature axis, cached by name."""

    def __init__(self, seed: int, sigs: Signatures):
        self.seed, self.sigs = seed, sigs
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def _boost(self, e: np.ndarray, r: np.random.Generator, wanted, lo: float, hi: float) -> None:
        idx = [i for t in self.sigs.type_names for i in self.sigs.indices(t, wanted)]
        e[idx] += r.uniform(lo, hi, len(idx))

    def cell_type(self, name: str) -> np.ndarray:
        key = ("cell", name)
        if key not in self._cache:
            r = rng(self.seed, "atlas", "cell_type", name)
            e = r.normal(0.0, 0.35, len(self.sigs))
            for pattern, wanted in names.ATLAS_CELL_PROGRAMMES:
                if pattern.lower() in name.lower():
                    self._boost(e, r, wanted, 0.8, 2.0)
            self._cache[key] = e
        return self._cache[key]

    def disease(self, name: str) -> np.ndarray:
        key = ("disease", name)
        if key not in self._cache:
            r = rng(self.seed, "atlas", "disease", name)
            e = r.normal(0.0, 0.1, len(self.sigs))
            self._boost(e, r, names.DISEASE_PROGRAMMES.get(name, ()), 0.4, 1.2)
            self._cache[key] = e
        return self._cache[key]


def _organ_cell_types(seed: int, organ: str) -> list[str]:
    r = rng(seed, "atlas", "organ_cell_types", organ)
    generic = [names.SCATLAS_GENERIC[i] for i in sorted(r.choice(len(names.SCATLAS_GENERIC), 5, replace=False))]
    return list(names.SCATLAS_SPECIFIC.get(organ, ("Epithelial cell",))) + generic


def _sig_columns(sigs: Signatures, sig_idx: np.ndarray, target: str = "signature",
                 type_col: str = "signature_type") -> dict:
    return {target: cat(sig_idx, sigs.names), type_col: cat(sigs.types[sig_idx], sigs.type_names)}


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
        **_sig_columns(sigs, sig_idx),
        **dict(zip(("min", "q1", "median", "q3", "max", "mean", "std"), stats)),
        "n": np.concatenate(cols["n"]),
    })


def _celltype_summary(writer: Writer, table: str, atlas: str, seed: int, sigs: Signatures, profiles,
                      cell_types: list[str]) -> None:
    S = len(sigs)
    r = rng(seed, table)
    share = r.dirichlet(np.full(len(cell_types), 2.0))
    n_cells = np.maximum(50, np.rint(share * ATLAS_CELLS[atlas])).astype(np.int64)
    n_samples = np.minimum(ATLAS_SAMPLES[atlas], r.integers(ATLAS_SAMPLES[atlas] // 3, ATLAS_SAMPLES[atlas] + 1,
                                                             len(cell_types)))
    mean = np.stack([profiles.cell_type(ct) for ct in cell_types]) + r.normal(0.0, 0.1, (len(cell_types), S))
    writer.json(T(table), {
        "cell_type": cat(np.repeat(np.arange(len(cell_types)), S), cell_types),
        **_sig_columns(sigs, np.tile(np.arange(S), len(cell_types))),
        "mean_activity": r4(np.clip(mean, -6, 6)).ravel(),
        "n_samples": np.repeat(n_samples, S), "n_cells": np.repeat(n_cells, S),
    })


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
        **_sig_columns(sigs, np.tile(np.arange(S), len(diseases) * C)),
        "mean_activity": np.concatenate(cols["mean"]),
        "n_samples": np.concatenate(cols["n_samples"]), "n_cells": np.concatenate(cols["n_cells"]),
    })


def _differential_p(r: np.random.Generator, diff: np.ndarray, n1, n2, sd: float = 0.6) -> np.ndarray:
    """p from the effect size and group sizes: z = diff / (sd * sqrt(1/n1 + 1/n2)), with jitter."""
    z = diff / (sd * np.sqrt(1.0 / n1 + 1.0 / n2)) + r.normal(0.0, 0.5, diff.shape)
    return p_two_sided(z)


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
        cols["p"].append(_differential_p(r, diff, n1, n2))
        cols["n1"].append(np.full(S, n1))
        cols["n2"].append(np.full(S, n2))
    d = np.concatenate(cols["disease"])
    sig_idx = np.tile(np.arange(S), len(diseases))
    p = np.concatenate(cols["p"])
    disease_names = [x for x, _ in diseases]
    writer.json(T("inflammation_differential"), {
        "disease": cat(d, disease_names), "group1": cat(d, disease_names), "group2": "healthy",
        **_sig_columns(sigs, sig_idx),
        "mean_g1": np.concatenate(cols["g1"]), "mean_g2": np.concatenate(cols["g2"]),
        "activity_diff": np.concatenate(cols["diff"]),
        "pvalue": sig6(p), "qvalue": sig6(bh(p, sigs.types[sig_idx])), "neg_log10_pval": neg_log10(p),
        "n_g1": np.concatenate(cols["n1"]), "n_g2": np.concatenate(cols["n2"]),
    })


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
            cols["p"].append(_differential_p(r, diff, n1, n2))
    comp = np.concatenate(cols["comparison"])
    sig_idx = np.tile(np.arange(S), comp.size // S)
    p = np.concatenate(cols["p"])
    comparisons = names.CIMA_COMPARISONS
    writer.json(T("cima_differential"), {
        **{name: cat(comp, [c[k] for c in comparisons])
           for k, name in enumerate(("comparison", "group1", "group2"))},
        "cell_type": cat(np.concatenate(cols["cell_type"]), cell_types),
        **_sig_columns(sigs, sig_idx),
        "median_g1": np.concatenate(cols["m1"]), "median_g2": np.concatenate(cols["m2"]),
        "activity_diff": np.concatenate(cols["diff"]),
        "pvalue": sig6(p), "qvalue": sig6(bh(p, sigs.types[sig_idx])), "neg_log10_pval": neg_log10(p),
    })


def _correlations(r: np.random.Generator, S: int, positive: np.ndarray | None = None) -> np.ndarray:
    """rho ~ N(0, 0.08); ~5% with |rho| 0.2-0.4 (positive for the `positive` signatures)."""
    rho = r.normal(0.0, 0.08, S)
    strong = r.random(S) < 0.05
    rho[strong] = r.choice([-1.0, 1.0], strong.sum()) * r.uniform(0.2, 0.4, strong.sum())
    if positive is not None and positive.size:
        rho[positive] = r.uniform(0.2, 0.4, positive.size)
    return np.clip(rho, -0.99, 0.99)


def _cima_correlations(writer: Writer, seed: int, sigs: Signatures) -> None:
    S = len(sigs)
    ageing = np.array([i for t in sigs.type_names for i in sigs.indices(t, ("IFN1", "IL6", "IFNA1", "CXCL10"))])
    features = [("age", "age", 421), ("bmi", "bmi", 421)] + [("biochemistry", m, 399) for m in names.BIOCHEMISTRY]
    categories = list(dict.fromkeys(c for c, _, _ in features))
    cols: dict[str, list] = {k: [] for k in ("category", "feature", "rho", "p", "n")}
    for k, (category, feature, n) in enumerate(features):
        r = rng(seed, "cima_correlations", feature)
        rho = r4(_correlations(r, S, ageing if feature == "age" else None))
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
        **_sig_columns(sigs, sig_idx),
        "rho": np.concatenate(cols["rho"]), "pvalue": sig6(p), "qvalue": sig6(q),
        "n": np.concatenate(cols["n"]),
    })


def _scatlas(writer: Writer, seed: int, sigs: Signatures, profiles, organs, organ_types) -> None:
    """Organ means (mean over the organ's cell types), specificity = mean - mean of other organs."""
    S, O = len(sigs), len(organs)
    r = rng(seed, "scatlas")
    organ_cells = lognormal_counts(r, 2_293_951 / 35, 0.7, O) + 500
    cell_mean, cell_rows = {}, []
    for o, organ in enumerate(organs):
        ro = rng(seed, "scatlas_celltypes", organ)
        shift = ro.normal(0.0, 0.25, S)
        share = ro.dirichlet(np.full(len(organ_types[organ]), 2.0))
        for k, ct in enumerate(organ_types[organ]):
            value = r4(np.clip(profiles.cell_type(ct) + shift + ro.normal(0.0, 0.15, S), -6, 6))
            cell_mean[(organ, ct)] = (value, max(20, int(share[k] * organ_cells[o])))
            cell_rows.append((o, ct))
    all_types = sorted({ct for _, ct in cell_rows})
    values = np.stack([cell_mean[(organs[o], ct)][0] for o, ct in cell_rows])  # [rows, S]
    counts = np.array([cell_mean[(organs[o], ct)][1] for o, ct in cell_rows])
    writer.json(T("scatlas_celltypes"), {
        "organ": cat(np.repeat([o for o, _ in cell_rows], S), organs),
        "cell_type": cat(np.repeat([all_types.index(ct) for _, ct in cell_rows], S), all_types),
        **_sig_columns(sigs, np.tile(np.arange(S), len(cell_rows))),
        "mean_activity": values.ravel(), "n_cells": np.repeat(counts, S),
    }, extra={"organs": list(organs), "cell_types": all_types})

    organ_of_row = np.array([o for o, _ in cell_rows])
    weights = counts.astype(np.float64)
    organ_mean = np.stack([np.average(values[organ_of_row == o], axis=0, weights=weights[organ_of_row == o])
                           for o in range(O)])
    organ_mean = r4(organ_mean)
    other = r4((organ_mean.sum(axis=0)[None, :] - organ_mean) / max(O - 1, 1))
    specificity = r4(organ_mean - other)
    writer.json(T("scatlas_organs"), {
        "organ": cat(np.repeat(np.arange(O), S), organs),
        **_sig_columns(sigs, np.tile(np.arange(S), O)),
        "mean_activity": organ_mean.ravel(), "specificity_score": specificity.ravel(),
        "n_cells": np.repeat(organ_cells, S),
    })

    top: dict[str, list] = {k: [] for k in ("organ", "sig")}
    for o in range(O):
        for type_name in sigs.type_names:
            idx = sigs.of_type(type_name)
            best = idx[np.argsort(-specificity[o, idx], kind="stable")[:5]]
            top["organ"].append(np.full(best.size, o))
            top["sig"].append(best)
    o_idx, s_idx = np.concatenate(top["organ"]), np.concatenate(top["sig"])
    writer.json(T("scatlas_organs_top"), {
        "organ": cat(o_idx, organs), **_sig_columns(sigs, s_idx),
        "mean_activity": organ_mean[o_idx, s_idx], "other_mean": other[o_idx, s_idx],
        "specificity_score": specificity[o_idx, s_idx],
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
        **_sig_columns(sigs, np.tile(np.arange(S), n_rows // S)),
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
