"""CIMA demo sources, derived as the real pipeline derives them: from one cohort of donors.

The real CIMA tables all come from one pseudobulk matrix (scripts/01_cima_activity.py and
06_preprocess_viz_data.py re-read CIMA_{type}_pseudobulk.h5ad): activity of each (sample, cell
type) column. The demo builds that cohort (`CimaCohort`): N donors with metadata (age, sex, BMI,
blood type, smoking status, blood biochemistry), sample effects U[sample, signature] (age, sex,
BMI, smoking and a latent inflammation score load on a few signatures), and per cell type
X[c] = C[cell type] + U + noise over the samples having the cell type, with n_cells per column.
Every table is then computed, not drawn, with the real writers' rules:
  cima_celltype               mean of X[c] over its samples; n_samples, summed n_cells
  cima_differential           P01: unweighted sample means, every pair of groups in first-appearance
                              order, Mann-Whitney U (normal approximation), BH per comparison x type
  cima_correlations           P01: Spearman of unweighted sample means with Age, BMI, each marker;
                              BH per category x type; every float rounded to 4 decimals (P06)
  cima_celltype_correlations  P06: Spearman of X[c] with age / BMI (cell types with >= 10 samples);
                              BH per category over both types
  cima_biochem_scatter(_markers)  P06: n_cells-weighted sample means of the donors with biochemistry
  cima_population_stratification(_means)  P06: weighted sample means; group means; rank-sum effects
  age_bmi_boxplots (cima)     builders/demo_data/atlas/age_bmi.py, from the same cohort
Cardinalities (real -> demo): donors 421 -> scaled(421, s, 40); donors with biochemistry 399/421
of them; 19 markers; cell types scale.cima_cell_types; metabolites 500 -> scaled(500, s, 20) (250
kept per type, as the real top file); eQTL cell types 69 -> scaled(69, s, 6), genes 9,600 ->
scaled(9,600, s, 100), 1 + Poisson(6.45) cell types per gene (71,530 rows at s = 1, the real
count), top file the scaled(5,000, s, 100) smallest p. cima_singlecell_cytosig is the CIMA CytoSig
slice of singlecell_activity (pan_atlas.py), plus min/max.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from builders.demo_data import names
from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import scaled
from builders.demo_data._stats import bh, erfc, lognormal_counts, neg_log10, p_correlation, p_two_sided, r4, rng
from builders.demo_data.atlas.common import ATLAS_CELLS, ATLAS_SAMPLES, AtlasDemo, sig_columns
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table
CELLS_PER_SAMPLE = ATLAS_CELLS["CIMA"] / ATLAS_SAMPLES["CIMA"]
BIOCHEM_SHARE = 399 / 421  # donors with blood biochemistry (docs/datasets/cima.md)
TOP_METABOLITES = 250  # per signature type: nlargest(250, |rho|) (P06:72-78); design, not scaled
SECACT_STRATIFIED = 100  # SecAct signatures kept by variance in the stratification file (P06:2263-2275)
STRATIFICATION_FORCED = ("IFNG", "TNF", "IL6", "IL10", "IL17A", "IL1B", "CXCL10", "CCL2")
# Log-normal blood biochemistry: marker -> (typical value, sd of log), in the CSV's units.
MARKERS = {
    "ALT": (22, 0.45), "AST": (21, 0.3), "ALP": (75, 0.25), "GGT": (25, 0.5), "TBIL": (12, 0.35),
    "DBIL": (3.5, 0.4), "TP": (72, 0.06), "ALB": (45, 0.07), "GLB": (28, 0.12), "BUN": (5.0, 0.25),
    "CREA": (75, 0.2), "UA": (330, 0.22), "GLU": (5.1, 0.12), "TG": (1.3, 0.5), "TC": (4.8, 0.18),
    "HDL-C": (1.35, 0.22), "LDL-C": (2.9, 0.25), "CK": (100, 0.5), "LDH": (180, 0.18),
}
assert tuple(MARKERS) == names.BIOCHEMISTRY
# Which sample factors move which markers (in sd of the log value): inflammation, BMI, male sex.
MARKER_LOADINGS = {"ALT": (0.4, 0.35, 0.3), "GGT": (0.4, 0.3, 0.3), "TG": (0.3, 0.45, 0.2),
                   "GLU": (0.25, 0.35, 0.0), "UA": (0.2, 0.35, 0.6), "CREA": (0.0, 0.0, 0.8),
                   "HDL-C": (-0.2, -0.35, -0.5)}
# Signatures carrying the sample factors (both signature types where the name exists).
AGEING = ("IFN1", "IL6", "IFNA1", "CXCL10", "TNFA", "TNF", "CCL2", "GDF15")
MALE = ("IL17A", "IL22", "IL13", "CCL17")
OBESITY = ("IL6", "TNFA", "TNF", "CCL2", "IL1B", "SPP1", "LEP")
INFLAMMATION = ("IL6", "IL1B", "TNFA", "TNF", "CXCL8", "CCL2", "SAA1", "CRP", "LCN2")
SMOKING = ("IL1B", "CXCL8", "MMP9", "MMP12", "CCL20")
# cima_differential: the metadata column P01 compares (as `comparison`) and its groups.
COMPARISONS = (("sex", names.CIMA_SEXES), ("smoking_status", names.CIMA_SMOKING),
               ("blood_type", names.CIMA_BLOOD_TYPES))
GROUP_NAMES = sorted({g for _, labels in COMPARISONS for g in labels})


def generate(writer: Writer, demo: AtlasDemo) -> None:
    cohort = cohort_of(demo)
    _celltype(writer, cohort)
    _differential(writer, cohort)
    _correlations(writer, cohort)
    _celltype_correlations(writer, cohort)
    _metabolites(writer, cohort)
    _biochem_scatter(writer, cohort)
    _population_stratification(writer, cohort)
    _eqtl(writer, demo)
    _singlecell(writer, demo)


def summary(demo: AtlasDemo) -> dict:
    """The `cima` object of summary_stats.json: exactly the figures P06 writes (P06:1360-1372),
    computed from the demo tables as P06 computes them from the pipeline's CSVs (no n_cell_types or
    n_cells: P06 writes neither)."""
    cohort = cohort_of(demo)
    corr, sigs = cohort.correlations, cohort.sigs
    age = corr["category"] == 0
    types = sigs.types[corr["sig"][age]]
    return {
        "n_samples": int(corr["n"][age][0]),
        "n_cytokines_cytosig": int((types == 0).sum()), "n_proteins_secact": int((types == 1).sum()),
        "n_age_correlations": int(age.sum()), "n_bmi_correlations": int((corr["category"] == 1).sum()),
        "n_biochem_correlations": int((corr["category"] == 2).sum()),
        "n_metabolite_correlations": len(sigs) * demo.scale.cima_metabolites,
        "n_differential": len(cohort.differential["p"]),
        "significant_age": int((corr["q"][age] < 0.05).sum()),
        "significant_bmi": int((corr["q"][corr["category"] == 1] < 0.05).sum()),
    }


# --- the cohort ---------------------------------------------------------------------------------

_COHORTS: dict[tuple, "CimaCohort"] = {}


def cohort_of(demo: AtlasDemo) -> "CimaCohort":
    """The cohort of this demo (built once per seed and scale; the tables and summary share it)."""
    key = (demo.seed, demo.scale)
    if key not in _COHORTS:
        _COHORTS.clear()
        _COHORTS[key] = CimaCohort(demo)
    return _COHORTS[key]


def _composition(r: np.random.Generator, n: int, shares, minimum: int) -> np.ndarray:
    """Group codes with each group's share of n (at least `minimum`), in random order."""
    counts = np.maximum(minimum, np.round(np.asarray(shares) * n)).astype(np.int64)
    counts[np.argmax(counts)] += n - counts.sum()
    return r.permutation(np.repeat(np.arange(len(counts)), counts))


def average_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks (0-based) with ties sharing their mean rank, as Spearman and the rank-sum tests use."""
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v))
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of each column of x ([n, S], continuous) with y ([n])."""
    rx = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0, kind="stable").astype(np.float64)
    ry = average_ranks(y)
    rx -= rx.mean(axis=0)
    ry -= ry.mean()
    denom = np.sqrt((rx * rx).sum(axis=0) * (ry * ry).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry[:, None]).sum(axis=0) / denom, np.nan)


def rank_sum_u(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mann-Whitney U of group a ([n1, S]) against b ([n2, S]) per column (continuous values)."""
    both = np.vstack([a, b])
    ranks = np.argsort(np.argsort(both, axis=0, kind="stable"), axis=0, kind="stable") + 1.0
    n1 = a.shape[0]
    return ranks[:n1].sum(axis=0) - n1 * (n1 + 1) / 2.0


def mwu_p(u1: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Two-sided Mann-Whitney p, normal approximation with continuity correction (scipy asymptotic)."""
    mu, sigma = n1 * n2 / 2.0, np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
    z = (np.maximum(u1, n1 * n2 - u1) - mu - 0.5) / sigma
    return np.clip(erfc(z / np.sqrt(2.0)), 0.0, 1.0)


class CimaCohort:
    """The demo's CIMA donors and their pseudobulk activity (see the module docstring)."""

    def __init__(self, demo: AtlasDemo):
        self.demo, self.seed, self.sigs, self.profiles = demo, demo.seed, demo.sigs, demo.profiles
        self.cell_types = list(demo.cell_types["CIMA"])
        N, S, C = demo.scale.cima_samples, len(demo.sigs), len(self.cell_types)
        r = rng(self.seed, "cima_cohort")
        self.samples = [f"CIMA_H{i:03d}" for i in range(1, N + 1)]
        # Ages spread evenly over 20-79 (then shuffled), so every writer's age bin holds donors.
        self.age = np.floor(20 + np.linspace(0, 60, N, endpoint=False) + r.uniform(0, 60 / N, N))
        r.shuffle(self.age)
        self.sex = _composition(r, N, (0.5, 0.5), 3)  # names.CIMA_SEXES
        self.blood_type = _composition(r, N, (0.3, 0.3, 0.3, 0.1), 3)  # names.CIMA_BLOOD_TYPES
        self.smoking = _composition(r, N, (0.65, 0.1, 0.25), 3)  # names.CIMA_SMOKING
        bmi = np.clip(r.normal(23.5, 3.2, N), 16.0, 38.0)
        order = r.permutation(N)  # a few donors in each thin WHO class, ~2% without BMI
        bmi[order[:3]] = r.uniform(16.0, 18.3, 3)
        bmi[order[3:9]] = r.uniform(30.2, 36.0, 6)
        bmi[order[9:9 + max(1, round(0.02 * N))]] = np.nan
        self.bmi = np.round(bmi, 2)
        self.inflammation = r.normal(0.0, 1.0, N)  # a latent score shared by activity and biochemistry
        self.has_biochem = np.zeros(N, dtype=bool)
        self.has_biochem[r.permutation(N)[:round(BIOCHEM_SHARE * N)]] = True
        self.biochem = self._biochem(r)
        self.U = self._sample_effects(r)

        share = r.dirichlet(np.full(C, 2.0))
        self.present = r.random((C, N)) < np.clip(0.8 + 2.0 * share, 0.8, 0.99)[:, None]
        self.present[np.argmax(share), ~self.present.any(axis=0)] = True  # every donor has cells
        self.n_cells = np.where(self.present, np.maximum(1, lognormal_counts(r, share[:, None] * CELLS_PER_SAMPLE,
                                                                            0.5, (C, N))), 0)
        # One pass over the cell types: their summaries, correlations, and the sample-level means
        # (unweighted: P01's groupby('sample').mean(); n_cells-weighted: P06's).
        total, weighted = np.zeros((N, S)), np.zeros((N, S))
        self.celltype_mean = np.zeros((C, S))
        self.celltype_corr: list[tuple] = []  # (category, c, rho[S], n)
        for c in range(C):
            x = self.matrix(c)
            here = self.present[c]
            total[here] += x[here]
            weighted[here] += x[here] * self.n_cells[c, here][:, None]
            self.celltype_mean[c] = x[here].mean(axis=0)
            for category, variable in enumerate((self.age, self.bmi)):
                ok = here & ~np.isnan(variable)
                if ok.sum() >= 10:
                    self.celltype_corr.append((category, c, spearman_columns(x[ok], variable[ok]), int(ok.sum())))
        self.activity = total / self.present.sum(axis=0)[:, None]
        self.weighted_activity = weighted / self.n_cells.sum(axis=0)[:, None]

    def _indices(self, wanted) -> list[int]:
        return [i for t in self.sigs.type_names for i in self.sigs.indices(t, wanted)]

    def _sample_effects(self, r: np.random.Generator) -> np.ndarray:
        N, S = len(self.samples), len(self.sigs)
        z_age, z_bmi = (self.age - 50.0) / 15.0, np.nan_to_num((self.bmi - 23.5) / 3.5)
        male, current = (self.sex == 0) - 0.5, (self.smoking == 2).astype(np.float64)
        U = r.normal(0.0, 0.25, (N, S))
        for factor, wanted, lo, hi in ((z_age, AGEING, 0.12, 0.25), (male, MALE, 0.25, 0.4),
                                       (z_bmi, OBESITY, 0.08, 0.18), (self.inflammation, INFLAMMATION, 0.15, 0.3),
                                       (current, SMOKING, 0.2, 0.35)):
            loading = r.normal(0.0, 0.04, S)
            idx = self._indices(wanted)
            loading[idx] += r.uniform(lo, hi, len(idx))
            U += factor[:, None] * loading[None, :]
        return U

    def _biochem(self, r: np.random.Generator) -> np.ndarray:
        N = len(self.samples)
        z_bmi, male = np.nan_to_num((self.bmi - 23.5) / 3.5), (self.sex == 0) - 0.5
        values = np.empty((N, len(MARKERS)))
        for m, (marker, (typical, sd)) in enumerate(MARKERS.items()):
            li, lb, lm = MARKER_LOADINGS.get(marker, (0.0, 0.0, 0.0))
            z = li * self.inflammation + lb * z_bmi + lm * male + r.normal(0.0, 1.0, N)
            values[:, m] = r4(typical * np.exp(sd * z))
        values[~self.has_biochem] = np.nan
        values[r.random(values.shape) < 0.01] = np.nan  # a few values missing in the CSV
        return values

    def matrix(self, c: int) -> np.ndarray:
        """X[c]: activity of cell type c per sample ([N, S]; rows of absent samples are unused).
        Drawn from the cell type's own generator, so it can be drawn again whenever needed."""
        ct = self.cell_types[c]
        r = rng(self.seed, "cima_cohort", "cell_type", ct)
        return self.profiles.cell_type(ct)[None, :] + self.U + r.normal(0.0, 0.35, self.U.shape)

    # -- the computed tables (shared by their writers and the summary) -----------------------

    @cached_property
    def correlations(self) -> dict[str, np.ndarray]:
        """P01 correlation_analysis of the unweighted sample means: category (0 age, 1 bmi,
        2 biochemistry), feature, signature, rho, p, q (unrounded), n."""
        S = len(self.sigs)
        variables = [(0, "Age", self.age), (1, "BMI", self.bmi)]
        variables += [(2, marker, self.biochem[:, m]) for m, marker in enumerate(MARKERS)]
        parts = {k: [] for k in ("category", "feature", "sig", "rho", "n")}
        for f, (category, _, values) in enumerate(variables):
            ok = ~np.isnan(values)
            parts["category"].append(np.full(S, category))
            parts["feature"].append(np.full(S, f))
            parts["sig"].append(np.arange(S))
            parts["rho"].append(spearman_columns(self.activity[ok], values[ok]))
            parts["n"].append(np.full(S, int(ok.sum())))
        out = {k: np.concatenate(v) for k, v in parts.items()}
        out["p"] = p_correlation(out["rho"], out["n"])
        out["q"] = bh(out["p"], out["category"] * 2 + self.sigs.types[out["sig"]])  # per file x type call
        out["features"] = [name for _, name, _ in variables]
        return out

    @cached_property
    def differential(self) -> dict[str, np.ndarray]:
        """P01 differential_analysis per comparison: every pair of observed groups in order of first
        appearance (samples in name order), at least 3 samples a side."""
        S = len(self.sigs)
        parts = {k: [] for k in ("comparison", "g1", "g2", "sig", "m1", "m2", "n1", "n2", "u", "p")}
        for k, ((_, labels), codes) in enumerate(zip(COMPARISONS, (self.sex, self.smoking, self.blood_type))):
            _, first = np.unique(codes, return_index=True)
            groups = codes[np.sort(first)]
            for i, g1 in enumerate(groups):
                for g2 in groups[i + 1:]:
                    a, b = self.activity[codes == g1], self.activity[codes == g2]
                    if len(a) < 3 or len(b) < 3:
                        continue
                    u = rank_sum_u(a, b)
                    parts["comparison"].append(np.full(S, k))
                    parts["g1"].append(np.full(S, GROUP_NAMES.index(labels[g1])))
                    parts["g2"].append(np.full(S, GROUP_NAMES.index(labels[g2])))
                    parts["sig"].append(np.arange(S))
                    parts["m1"].append(np.median(a, axis=0))
                    parts["m2"].append(np.median(b, axis=0))
                    parts["n1"].append(np.full(S, len(a)))
                    parts["n2"].append(np.full(S, len(b)))
                    parts["u"].append(u)
                    parts["p"].append(mwu_p(u, len(a), len(b)))
        out = {k: np.concatenate(v) for k, v in parts.items()}
        out["q"] = bh(out["p"], out["comparison"] * 2 + self.sigs.types[out["sig"]])  # per comparison x type
        return out


# --- the tables -----------------------------------------------------------------------------------


def _celltype(writer: Writer, cohort: CimaCohort) -> None:
    C, S = cohort.celltype_mean.shape
    writer.json(T("cima_celltype"), {
        "cell_type": cat(np.repeat(np.arange(C), S), cohort.cell_types),
        **sig_columns(cohort.sigs, np.tile(np.arange(S), C)),
        "mean_activity": r4(cohort.celltype_mean).ravel(),
        "n_samples": np.repeat(cohort.present.sum(axis=1), S), "n_cells": np.repeat(cohort.n_cells.sum(axis=1), S),
    })


def _differential(writer: Writer, cohort: CimaCohort) -> None:
    """P06 adds activity_diff and neg_log10_pval, then rounds every float to 4 decimals. The
    difference is taken of the rounded medians here, so it equals median_g1 - median_g2 exactly."""
    d = cohort.differential
    m1, m2 = r4(d["m1"]), r4(d["m2"])
    writer.json(T("cima_differential"), {
        "comparison": cat(d["comparison"], [c for c, _ in COMPARISONS]),
        "group1": cat(d["g1"], GROUP_NAMES), "group2": cat(d["g2"], GROUP_NAMES),
        **sig_columns(cohort.sigs, d["sig"]),
        "median_g1": m1, "median_g2": m2, "activity_diff": r4(m1 - m2),
        "n_g1": d["n1"], "n_g2": d["n2"], "statistic": r4(d["u"]),
        "pvalue": r4(d["p"]), "qvalue": r4(d["q"]), "neg_log10_pval": neg_log10(d["p"]),
    }, omit=("cell_type",))


def _correlations(writer: Writer, cohort: CimaCohort) -> None:
    c = cohort.correlations
    writer.json(T("cima_correlations"), {
        "category": cat(c["category"], ["age", "bmi", "biochemistry"]),
        "feature": cat(c["feature"], c["features"]),
        **sig_columns(cohort.sigs, c["sig"]),
        "rho": r4(c["rho"]), "pvalue": r4(c["p"]), "qvalue": r4(c["q"]), "n": c["n"],
    }, omit=("cell_type",))


def _celltype_correlations(writer: Writer, cohort: CimaCohort) -> None:
    """P06:579-689: rho to 4 decimals, p unrounded, q (BH per category over both types) to 4
    decimals -- rounded up here, so q >= p still holds in the file."""
    S = len(cohort.sigs)
    rows = cohort.celltype_corr
    category = np.concatenate([np.full(S, k) for k, _, _, _ in rows])
    rho = np.concatenate([rho for _, _, rho, _ in rows])
    n = np.concatenate([np.full(S, n) for _, _, _, n in rows])
    p = p_correlation(rho, n)
    q = np.minimum(1.0, np.ceil(bh(p, category) * 1e4) / 1e4)
    writer.json(T("cima_celltype_correlations"), {
        "category": cat(category, ["age", "bmi"]),
        "cell_type": cat(np.concatenate([np.full(S, c) for _, c, _, _ in rows]), cohort.cell_types),
        **sig_columns(cohort.sigs, np.tile(np.arange(S), len(rows))),
        "rho": r4(rho), "pvalue": p, "qvalue": q, "n": n,
    })


def _metabolites(writer: Writer, cohort: CimaCohort) -> None:
    """Spearman of every signature with every metabolite (the full run, BH per type over it), of
    which the file keeps the 250 largest |rho| per type, |rho| descending (P06:66-88)."""
    sigs, M = cohort.sigs, cohort.demo.scale.cima_metabolites
    r = rng(cohort.seed, "cima_metabolites")
    S = len(sigs)
    rho = r.normal(0.0, 0.08, (S, M))
    strong = r.random((S, M)) < 0.02
    rho[strong] = r.choice([-1.0, 1.0], strong.sum()) * r.uniform(0.2, 0.45, strong.sum())
    n = r.integers(380, 391, (S, M))
    p = p_correlation(rho, n)
    q = bh(p.ravel(), np.repeat(sigs.types, M)).reshape(S, M)
    keep = []
    for t in range(len(sigs.type_names)):
        flat = np.flatnonzero(np.repeat(sigs.types == t, M))  # this type's (signature, metabolite) cells
        keep.append(flat[np.argsort(-np.abs(rho.ravel()[flat]), kind="stable")[:TOP_METABOLITES]])
    keep = np.concatenate(keep)
    sig_idx, met = np.divmod(keep, M)
    writer.json(T("cima_metabolites_top"), {
        **sig_columns(sigs, sig_idx),
        "feature": cat(met, names.METABOLITES[:M]),
        "rho": rho.ravel()[keep], "pvalue": p.ravel()[keep], "qvalue": q.ravel()[keep], "n": n.ravel()[keep],
    })


def _biochem_scatter(writer: Writer, cohort: CimaCohort) -> None:
    """P06:1980-2098: one object per donor with biochemistry, its n_cells-weighted activity per
    signature type as maps (NaN left out), and the name lists."""
    sigs = cohort.sigs
    cytosig, secact = sigs.of_type("CytoSig"), sigs.of_type("SecAct")
    activity = r4(cohort.weighted_activity)
    samples = []
    for i in np.flatnonzero(cohort.has_biochem):  # one per donor (399 at scale 1)
        values = cohort.biochem[i]
        samples.append({
            "sample": cohort.samples[i], "age": int(cohort.age[i]), "sex": names.CIMA_SEXES[cohort.sex[i]],
            "bmi": None if np.isnan(cohort.bmi[i]) else float(cohort.bmi[i]),
            "biochem": {m: float(v) for m, v in zip(MARKERS, values) if not np.isnan(v)},
            "activity": dict(zip([sigs.names[s] for s in cytosig], activity[i, cytosig].tolist())),
            "secact_activity": dict(zip([sigs.names[s] for s in secact], activity[i, secact].tolist())),
        })
    document = {"samples": samples, "biochem_features": list(MARKERS),
                "cytokines": [sigs.names[s] for s in cytosig], "secact_proteins": [sigs.names[s] for s in secact]}
    writer.nested_json(T("cima_biochem_scatter"), document, len(samples) * len(sigs), indent=None)


def _p06_groups(cohort: CimaCohort) -> list[tuple[str, np.ndarray, tuple[str, ...]]]:
    """P06's stratification groups: (variable, group code per sample (-1: none), group labels)."""
    age = np.select([cohort.age <= 40, cohort.age <= 60, cohort.age <= 100], [0, 1, 2], -1)  # pd.cut, right-closed
    bmi = np.where(np.isnan(cohort.bmi), -1, np.searchsorted([18.5, 25.0, 30.0], cohort.bmi, side="left"))
    return [("sex", cohort.sex, names.CIMA_SEXES),
            ("age", age, ("Young (<40)", "Middle (40-60)", "Older (>60)")),
            ("bmi", bmi, ("Underweight", "Normal", "Overweight", "Obese")),
            ("blood_type", cohort.blood_type, names.CIMA_BLOOD_TYPES),
            ("smoking", cohort.smoking, names.CIMA_SMOKING)]


# (variable, first group, its count key, second group, its count key): P06 compute_effect_sizes
EFFECTS = (("sex", "Male", "n_male", "Female", "n_female"), ("age", "Older (>60)", "n_older", "Young (<40)", "n_young"),
           ("bmi", "Obese", "n_obese", "Normal", "n_normal"), ("blood_type", "O", "n_type_o", "A", "n_type_a"),
           ("smoking", "Current", "n_current", "Never", "n_never"))


def _population_stratification(writer: Writer, cohort: CimaCohort) -> None:
    """P06:2101-2298: per signature type (SecAct: the 100 most variable signatures plus a few
    named ones), group means of the weighted sample activity and rank-sum effects of five pairs."""
    sigs, activity = cohort.sigs, cohort.weighted_activity
    groups = _p06_groups(cohort)
    document, rows = {}, 0
    for type_name in sigs.type_names:
        idx = sigs.of_type(type_name)
        top = scaled(SECACT_STRATIFIED, cohort.demo.scale.s, 10)
        if type_name == "SecAct" and len(idx) > top:
            variance = activity[:, idx].var(axis=0, ddof=1)
            keep = list(idx[np.argsort(-variance, kind="stable")[:top]])
            keep += [i for i in sigs.indices("SecAct", STRATIFICATION_FORCED) if i not in keep]
            idx = np.array(keep)
        names_ = [sigs.names[s] for s in idx]
        means = {}
        for variable, codes, labels in groups:
            means[variable] = {}
            for g, label in enumerate(labels):
                if (codes == g).any():
                    means[variable][label] = dict(zip(names_, r4(activity[codes == g][:, idx].mean(axis=0)).tolist()))
                    rows += len(idx)
        effects = {}
        for variable, first, n_first, second, n_second in EFFECTS:
            codes, labels = next((c, l) for v, c, l in groups if v == variable)
            a, b = activity[codes == labels.index(first)][:, idx], activity[codes == labels.index(second)][:, idx]
            effects[variable] = []
            if len(a) > 5 and len(b) > 5:
                n1, n2 = len(a), len(b)
                z = (rank_sum_u(a, b) - n1 * n2 / 2.0) / np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
                effect, p = r4(a.mean(axis=0) - b.mean(axis=0)), np.round(p_two_sided(z), 6)
                effects[variable] = [{"cytokine": s, "signature": s, "effect": e, "pvalue": pv, n_first: n1,
                                      n_second: n2} for s, e, pv in zip(names_, effect.tolist(), p.tolist())]
                rows += len(idx)
        document[type_name] = {"signatures": names_, "cytokines": names_, "groups": means, "effect_sizes": effects}
    writer.nested_json(T("cima_population_stratification"), document, rows, indent=None)


def _eqtl(writer: Writer, demo: AtlasDemo) -> None:
    """cis-eQTLs: each gene in 1 + Poisson(6.45) cell types, its lead variant in ~70% of them and a
    nearby one elsewhere; p log-uniform 1e-40..1e-5. The top file holds the rows with the smallest p."""
    scale = demo.scale
    r = rng(demo.seed, "cima_eqtl")
    cell_types = list(names.CIMA_EQTL_CELL_TYPES[:scale.cima_eqtl_cell_types])
    genes = list(names.EQTL_GENES[:scale.cima_eqtl_genes])
    G, E = len(genes), len(cell_types)
    k = np.minimum(E, 1 + r.poisson(6.45, G))
    chosen = np.argsort(r.random((G, E)), axis=1)  # each gene's cell types: the first k of a permutation
    gene, slot = np.nonzero(np.arange(E)[None, :] < k[:, None])
    cell = chosen[gene, slot]
    chromosomes = [str(c) for c in range(1, 23)] + ["X"]
    chrom = r.choice(len(chromosomes), G, p=np.r_[np.full(22, 0.98 / 22), 0.02])[gene]
    lead = r.integers(1_000_000, 150_000_000, G)[gene]
    pos = np.where(r.random(gene.size) < 0.7, lead, lead + r.integers(1_000, 200_000, gene.size))
    p = 10.0 ** -r.uniform(5, 40, gene.size)
    beta = r4(r.choice([-1.0, 1.0], gene.size) * np.abs(r.normal(0.4, 0.2, gene.size)))
    af = r4(r.uniform(0.05, 0.5, gene.size))
    variant = pc.binary_join_element_wise(pa.array(np.array([f"chr{c}" for c in chromosomes])[chrom]),
                                          pc.cast(pa.array(pos), pa.string()), "_")
    summary = {"total_eqtls": int(gene.size), "n_cell_types": E, "n_genes": G}
    extra = {"summary": summary, "cell_types": cell_types, "genes": genes}
    rows = {"cell_type": cat(cell, cell_types), "gene": cat(gene, genes), "variant": variant,
            "chr": cat(chrom, chromosomes), "pos": pos, "beta": beta, "pvalue": p, "af": af}
    writer.json(T("cima_eqtl"), rows, extra=extra)
    top = np.argsort(p, kind="stable")[:scale.cima_eqtl_top]
    writer.json(T("cima_eqtl_top"), {k: (v.take(pa.array(top)) if isinstance(v, pa.Array) else v[top])
                                     for k, v in rows.items()}, extra=extra)


def _singlecell(writer: Writer, demo: AtlasDemo) -> None:
    """The CIMA CytoSig rows of singlecell_activity (drawn exactly as pan_atlas._singlecell draws
    them; tests/test_atlas_cima.py checks the two agree) with min/max 2.5-4 SDs around the mean."""
    sigs, types = demo.sigs, demo.cell_types["CIMA"]
    S, C = len(sigs), len(types)
    r = rng(demo.seed, "singlecell_activity", "CIMA")
    mean = np.stack([demo.profiles.cell_type(ct) for ct in types]) * 0.8 + r.normal(0.0, 0.1, (C, S))
    mean = r4(np.clip(mean, -6, 6)).ravel()
    std = r4(r.uniform(0.6, 1.6, C * S))
    n_cells = np.repeat(lognormal_counts(r, 40_000, 1.0, C) + 20, S)
    cytosig = np.flatnonzero(np.tile(sigs.types == sigs.type_names.index("CytoSig"), C))
    spread = rng(demo.seed, "cima_singlecell_cytosig")
    low, high = spread.uniform(2.5, 4.0, cytosig.size), spread.uniform(2.5, 4.0, cytosig.size)
    writer.json(T("cima_singlecell_cytosig"), {
        "cell_type": cat(cytosig // S, types), **sig_columns(sigs, cytosig % S), "atlas": "CIMA",
        "mean_activity": mean[cytosig], "std_activity": std[cytosig],
        "min_activity": r4(mean[cytosig] - low * std[cytosig]), "max_activity": r4(mean[cytosig] + high * std[cytosig]),
        "n_cells": n_cells[cytosig],
    })
