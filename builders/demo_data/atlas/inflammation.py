"""Inflammation demo sources, written in the real files' shapes (scripts/06_preprocess_viz_data.py,
archive/scripts/utility/run_inflammation_viz_data.py) and derived from each other the way the real
ones are derived from the same pseudobulk and sample metadata:

- A study layer (the sample metadata): studies x diseases (healthy included) with sample counts
  summing to the 817 main-cohort samples. The sankey is that layer; the differential's sample
  counts and study-matched/all-healthy choice, the severity strata (which split a disease's
  samples) and the timepoint counts come from it.
- inflammation_disease: mean activity per (disease, cell type), `healthy` among the diseases, from
  the shared cell-type profile plus the disease's shift. The differential's group means are its
  n_cells-weighted means over cell types; the cell drivers' effects are its disease - healthy
  differences per cell type; severity and timepoint means move around its disease mean.
- `_filtered` twins hold the rows of their parent whose signature is in FILTERED: all CytoSig and
  the first 204 SecAct (priority order), the dashboard's 247 signatures.

Cardinalities at scale 1 (real ones in parentheses): diseases 20 + healthy (20 incl. healthy, 6 groups
+ healthy); studies 28 (~28: 116 sankey nodes = studies + diseases + groups + links' ends); severity
11 diseases / 39 stages (the dashboard's); treatment-response 6 diseases + 'All Diseases' x 2 types
x 2 models = 28 curves of 20 features each (28, 560); cell drivers over <= 15 diseases x cell types
x (43 CytoSig + 100 SecAct), p < 0.1 kept (44,695); timepoints T0-T2 for 5 diseases. Each list is
cut to the diseases the demo scale has (names.DISEASES in priority order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from builders.demo_data import names
from builders.demo_data._io import Writer, cat, json_as_written
from builders.demo_data._scale import scaled
from builders.demo_data._stats import bh, lognormal_counts, neg_log10, p_correlation, r4, rng
from builders.demo_data.atlas.common import (
    AtlasDemo, celltype_columns, correlations, differential_p, sig_columns,
)
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table
MAIN_SAMPLES = 817  # the main cohort: summary_stats n_samples, the sankey's total
HEALTHY = "healthy"
FILTERED_SECACT = 204  # the dashboard's SecAct subset (43 + 204 = 247 signatures)
AGE_FRACTION, BMI_FRACTION = 0.9, 0.4  # samples with age / BMI recorded (inf.)
MODELS = ("Logistic Regression", "Random Forest")
SMALL_P_AS_TEXT = "CASE WHEN pvalue < 0.01 THEN to_json(printf('%.2e', pvalue)) ELSE to_json(pvalue) END"


@dataclass(frozen=True)
class Studies:
    """The sample metadata, counted: which study holds how many samples of which disease."""

    names: list[str]
    diseases: list[str]  # demo diseases, then healthy (last)
    groups: list[str]  # disease group of each entry of `diseases`
    study: np.ndarray  # one entry per (study, disease) link, sorted by study then disease
    disease: np.ndarray  # index into `diseases`
    n: np.ndarray  # samples

    def total(self, d: int) -> int:
        return int(self.n[self.disease == d].sum())

    def matched_disease(self, d: int) -> int:
        """Samples of disease `d` in the studies that also hold healthy samples."""
        with_h = np.unique(self.study[self.disease == len(self.diseases) - 1])
        return int(self.n[(self.disease == d) & np.isin(self.study, with_h)].sum())

    def matched(self, d: int) -> np.ndarray:
        """Samples of healthy, per link, in the studies that also hold disease `d`."""
        h = len(self.diseases) - 1
        with_d = np.unique(self.study[self.disease == d])
        return self.n[(self.disease == h) & np.isin(self.study, with_d)]


@dataclass(frozen=True)
class DiseaseActivity:
    """inflammation_disease as arrays: [disease (demo order, healthy last), cell type, signature]."""

    mean: np.ndarray
    n_samples: np.ndarray  # [disease, cell type]
    n_cells: np.ndarray  # [disease, cell type]

    def sample_mean(self, d: int) -> np.ndarray:
        """The disease's sample-level activity: n_cells-weighted mean over its cell types."""
        w = self.n_cells[d].astype(np.float64)
        return (w[:, None] * self.mean[d]).sum(axis=0) / w.sum()


def generate(writer: Writer, demo: AtlasDemo) -> None:
    cell_types = demo.cell_types["Inflammation"]
    celltype = celltype_columns("inflammation_celltype", "Inflammation", demo.seed, demo.sigs, demo.profiles,
                                cell_types)
    writer.json(T("inflammation_celltype"), celltype)
    studies = _studies(demo)
    activity = _disease_activity(demo)
    keep = filtered(demo)
    for table, rows in (("inflammation_disease", None), ("inflammation_disease_filtered", keep)):
        writer.json(T(table), _disease_columns(demo, studies, activity, rows))
    _differential(writer, demo, studies, activity)
    _correlations(writer, demo, celltype)
    _severity(writer, demo, studies, activity, keep)
    _cell_drivers(writer, demo, studies, activity)
    _longitudinal(writer, demo, studies, activity)
    _treatment_response(writer, demo)
    _cohort_validation(writer, demo, celltype)
    _sankey(writer, studies)


def summary(demo: AtlasDemo) -> dict:
    """This atlas's figures and name lists in summary_stats.json (the `inflammation` object):
    what /summary shows. Diseases and groups are inflammation_disease's (healthy included)."""
    cell_types = demo.cell_types["Inflammation"]
    celltype = celltype_columns("inflammation_celltype", "Inflammation", demo.seed, demo.sigs, demo.profiles,
                                cell_types)
    diseases = [d for d, _ in demo.diseases] + [HEALTHY]
    groups = sorted({g for _, g in demo.diseases} | {HEALTHY})
    return {"n_samples": MAIN_SAMPLES, "n_cell_types": len(cell_types),
            "n_cells": int(celltype["n_cells"][::len(demo.sigs)].sum()),
            "n_diseases": len(diseases), "n_disease_groups": len(groups),
            "n_celltype_records": len(cell_types) * len(demo.sigs),
            "n_disease_records": len(diseases) * len(cell_types) * len(demo.sigs),
            "diseases": sorted(diseases), "disease_groups": groups, "cell_types": sorted(cell_types),
            "cohorts": ["main", "validation", "external"]}


def filtered(demo: AtlasDemo) -> np.ndarray:
    """Signature indexes of the dashboard's subset: every CytoSig, the first 204 SecAct."""
    secact = demo.sigs.of_type("SecAct")
    return np.concatenate([demo.sigs.of_type("CytoSig"),
                           secact[:min(len(secact), scaled(FILTERED_SECACT, demo.scale.s, 20))]])


# --- the study layer and disease activity --------------------------------------------------------

def _studies(demo: AtlasDemo) -> Studies:
    """scaled(28) studies; disease i is in study i mod n, each study gains 0-2 more diseases and
    (60%; the first always, the last never) healthy samples. Each disease totals >= 10 samples,
    split over its studies; all samples sum to 817."""
    r = rng(demo.seed, "inflammation_studies")
    diseases = [d for d, _ in demo.diseases] + [HEALTHY]
    groups = [g for _, g in demo.diseases] + [HEALTHY]
    h = len(diseases) - 1
    n_studies = scaled(28, demo.scale.s, 6)
    members = [set() for _ in range(n_studies)]
    for d in range(h):
        members[d % n_studies].add(d)
    for s, held in enumerate(members):
        held.update(int(x) for x in r.choice(h, int(r.integers(0 if held else 1, 3)), replace=False))
        if s == 0 or (s < n_studies - 1 and r.random() < 0.6):
            held.add(h)
    weight = np.r_[r.dirichlet(np.full(h, 2.0)) * 0.8, 0.2]  # healthy: a fifth of the samples
    totals = 10 + r.multinomial(MAIN_SAMPLES - 10 * len(diseases), weight)
    links = []
    for d in range(len(diseases)):
        holders = [s for s in range(n_studies) if d in members[s]]
        split = 1 + r.multinomial(totals[d] - len(holders), r.dirichlet(np.full(len(holders), 2.0)))
        links += [(s, d, int(n)) for s, n in zip(holders, split)]
    links.sort()
    study, disease, n = (np.array(x) for x in zip(*links))
    return Studies([f"SCGT{i:02d}" for i in range(n_studies)], diseases, groups, study, disease, n)


def _disease_activity(demo: AtlasDemo) -> DiseaseActivity:
    cell_types = demo.cell_types["Inflammation"]
    base = np.stack([demo.profiles.cell_type(ct) for ct in cell_types])
    C, S = base.shape
    means, n_samples, n_cells = [], [], []
    for disease in [d for d, _ in demo.diseases] + [HEALTHY]:
        r = rng(demo.seed, "inflammation_disease", disease)
        shift = 0.0 if disease == HEALTHY else demo.profiles.disease(disease)[None, :]
        means.append(r4(np.clip(base + shift + r.normal(0.0, 0.15, (C, S)), -6, 6)))
        n_samples.append(r.integers(3, 80, C))
        n_cells.append(lognormal_counts(r, 4000, 0.8, C) + 10)
    return DiseaseActivity(np.stack(means), np.stack(n_samples), np.stack(n_cells))


def _disease_columns(demo: AtlasDemo, studies: Studies, activity: DiseaseActivity, keep) -> dict:
    D, C, S = activity.mean.shape
    sig_idx = np.arange(S) if keep is None else keep
    n = len(sig_idx)
    group_names = sorted(set(studies.groups))
    d = np.repeat(np.arange(D), C * n)
    c = np.tile(np.repeat(np.arange(C), n), D)
    return {
        "disease": cat(d, studies.diseases),
        "disease_group": cat(np.array([group_names.index(g) for g in studies.groups])[d], group_names),
        "cell_type": cat(c, demo.cell_types["Inflammation"]),
        **sig_columns(demo.sigs, np.tile(sig_idx, D * C)),
        "mean_activity": activity.mean[:, :, sig_idx].ravel(),
        "n_samples": activity.n_samples[d, c], "n_cells": activity.n_cells[d, c],
    }


# --- differential ----------------------------------------------------------------------------------

def _differential(writer: Writer, demo: AtlasDemo, studies: Studies, activity: DiseaseActivity) -> None:
    """Per disease (>= 5 samples) vs the healthy samples of its own studies (study_matched) or,
    when none of them has healthy samples, all healthy samples (all_healthy); then every disease
    pooled vs all healthy (>= 10 each). Group means are the n_cells-weighted means over cell types of
    inflammation_disease; a study-matched reference moves by its studies' offset. BH within a
    signature type, per-disease rows and pooled rows separately. p < 0.01 is written as text."""
    sigs, S = demo.sigs, len(demo.sigs)
    h = len(studies.diseases) - 1
    r = rng(demo.seed, "inflammation_differential")
    healthy_mean = r4(activity.sample_mean(h))
    parts = []  # (disease label, comparison, note, mean_g1, mean_g2, n_g1, n_g2, pooled)
    for d in range(h):
        n1 = studies.total(d)
        matched = studies.matched(d)
        if n1 < 5:
            continue
        if matched.size:
            comparison, note, n2 = "study_matched", "Matched healthy from same study", int(matched.sum())
            reference = r4(healthy_mean + r.normal(0.0, 0.05, S))
        else:
            comparison, note, n2 = "all_healthy", "⚠️ No matched healthy; using all healthy samples", studies.total(h)
            reference = healthy_mean
        if n2 < 3:
            continue
        parts.append((studies.diseases[d], comparison, note, r4(activity.sample_mean(d)), reference, n1, n2, False))
    totals = np.array([studies.total(d) for d in range(h)], dtype=np.float64)
    pooled = (totals[:, None] * np.stack([activity.sample_mean(d) for d in range(h)])).sum(axis=0) / totals.sum()
    if totals.sum() >= 10 and studies.total(h) >= 10:
        parts.append(("All Diseases", "pooled", f"All {h} diseases pooled vs healthy", r4(pooled), healthy_mean,
                      int(totals.sum()), studies.total(h), True))
    k = len(parts)
    m1, m2 = np.concatenate([p[3] for p in parts]), np.concatenate([p[4] for p in parts])
    n1, n2 = np.repeat([p[5] for p in parts], S), np.repeat([p[6] for p in parts], S)
    diff = r4(m1 - m2)
    p = differential_p(r, diff, n1, n2)
    written = np.where(p < 0.01, np.array([float(f"{x:.2e}") for x in p]), np.round(p, 6))
    sig_idx = np.tile(np.arange(S), k)
    is_pooled = np.repeat([x[7] for x in parts], S)
    labels = [x[0] for x in parts]
    part = np.repeat(np.arange(k), S)
    json_as_written(writer, T("inflammation_differential"), {
        "disease": cat(part, labels), "group1": cat(part, labels), "group2": HEALTHY,
        **sig_columns(sigs, sig_idx),
        "mean_g1": m1, "mean_g2": m2, "activity_diff": diff,
        "pvalue": written, "qvalue": np.round(bh(written, sigs.types[sig_idx] * 2 + is_pooled), 6),
        "neg_log10_pval": neg_log10(p), "n_g1": n1, "n_g2": n2,
        "comparison": cat(part, [x[1] for x in parts]), "healthy_note": cat(part, [x[2] for x in parts]),
    }, as_written={"pvalue": SMALL_P_AS_TEXT})


# --- correlations with age and BMI -------------------------------------------------------------------

def _correlations(writer: Writer, demo: AtlasDemo, celltype: dict) -> None:
    """Per cell type: rho per category (IFN1/IL6 rise with age), n = the cell type's samples with
    age (90%) / BMI (40%), q = BH over the category rounded to 4 decimals (as the real writer, so q
    can fall below a tiny p). Sample level: the mean over cell types of those rho, n = 90% / 40% of
    817, p and q to 6 decimals."""
    sigs, S = demo.sigs, len(demo.sigs)
    cell_types = demo.cell_types["Inflammation"]
    C = len(cell_types)
    n_samples = np.asarray(celltype["n_samples"])[::S]
    ageing = np.array([i for t in sigs.type_names for i in sigs.indices(t, ("IFN1", "IL6"))], dtype=np.int64)
    per_type, sample = {k: [] for k in ("category", "c", "rho", "p", "q", "n")}, {}
    for k, (category, fraction) in enumerate((("age", AGE_FRACTION), ("bmi", BMI_FRACTION))):
        r = rng(demo.seed, "inflammation_correlations", category)
        rho = r4(np.stack([correlations(r, S, ageing if category == "age" else None) for _ in range(C)]))
        n = np.repeat(np.floor(fraction * n_samples).astype(np.int64), S)
        p = p_correlation(rho.ravel(), n)
        per_type["category"].append(np.full(C * S, k))
        per_type["c"].append(np.repeat(np.arange(C), S))
        per_type["rho"].append(rho.ravel())
        per_type["p"].append(p)
        per_type["q"].append(np.round(bh(p), 4))
        per_type["n"].append(n)
        srho = r4(np.clip(rho.mean(axis=0) + r.normal(0.0, 0.03, S), -0.99, 0.99))
        sp = np.round(p_correlation(srho, round(fraction * MAIN_SAMPLES)), 6)
        sample[category] = (srho, sp, np.round(bh(sp), 6), round(fraction * MAIN_SAMPLES))
    cols = {k: np.concatenate(v) for k, v in per_type.items()}
    writer.json(T("inflammation_celltype_correlations"), {
        "category": cat(cols["category"], ["age", "bmi"]), "cell_type": cat(cols["c"], cell_types),
        **sig_columns(sigs, np.tile(np.arange(S), 2 * C)),
        "rho": cols["rho"], "pvalue": cols["p"], "qvalue": cols["q"], "n": cols["n"],
    })
    writer.json(T("inflammation_correlations"), {
        "category": cat(np.repeat([0, 1], S), ["age", "bmi"]), "feature": cat(np.repeat([0, 1], S), ["Age", "BMI"]),
        **sig_columns(sigs, np.tile(np.arange(S), 2)),
        **{k: np.concatenate([sample[c][i] for c in ("age", "bmi")]) for i, k in enumerate(("rho", "pvalue", "qvalue"))},
        "n": np.repeat([sample["age"][3], sample["bmi"][3]], S),
    })


# --- severity ------------------------------------------------------------------------------------

def _severity(writer: Writer, demo: AtlasDemo, studies: Studies, activity: DiseaseActivity, keep) -> None:
    """The names.SEVERITY diseases the demo has; a disease's samples split over its stages; mean =
    the disease's mean over cell types + (stage - middle) x 0.25 x its disease shift + noise."""
    S = len(demo.sigs)
    rows = {k: [] for k in ("label", "severity", "order", "mean", "std", "median", "n", "records")}
    labels, stages = [], []
    for disease, levels in names.SEVERITY:
        if disease not in studies.diseases:
            continue
        d = studies.diseases.index(disease)
        r = rng(demo.seed, "inflammation_severity", disease)
        k = len(levels)
        base, shift = activity.mean[d].mean(axis=0), demo.profiles.disease(disease)
        n = 1 + r.multinomial(studies.total(d) - k, r.dirichlet(np.full(k, 3.0)))
        for j, level in enumerate(levels):
            mean = r4(base + (j + 1 - (k + 1) / 2) * 0.25 * shift + r.normal(0.0, 0.1, S))
            rows["label"].append(np.full(S, len(labels)))
            rows["severity"].append(np.full(S, len(stages)))
            rows["order"].append(np.full(S, j + 1))
            rows["mean"].append(mean)
            rows["std"].append(r4(r.uniform(0.3, 1.0, S)))
            rows["median"].append(r4(mean + r.normal(0.0, 0.05, S)))
            rows["n"].append(np.full(S, n[j]))
            rows["records"].append(np.full(S, n[j] * int(r.integers(5, 31))))
            stages.append(level)
        labels.append(disease)
    cols = {k: np.concatenate(v) for k, v in rows.items()}
    sig_idx = np.tile(np.arange(S), len(stages))
    for table, subset in (("inflammation_severity", None), ("inflammation_severity_filtered", keep)):
        sel = np.arange(sig_idx.size) if subset is None else np.flatnonzero(np.isin(sig_idx, subset))
        writer.json(T(table), {
            "disease": cat(cols["label"][sel], labels), "severity": cat(cols["severity"][sel], stages),
            "severity_order": cols["order"][sel], **sig_columns(demo.sigs, sig_idx[sel]),
            "mean_activity": cols["mean"][sel], "std_activity": cols["std"][sel],
            "median_activity": cols["median"][sel], "n_samples": cols["n"][sel], "n_records": cols["records"][sel],
        })


# --- cell-type drivers ---------------------------------------------------------------------------

def _cell_drivers(writer: Writer, demo: AtlasDemo, studies: Studies, activity: DiseaseActivity) -> None:
    """Diseases with healthy samples in their own studies and >= 10 matched pseudobulk columns
    (samples x cell types), at most 20; cell types with >= 20 columns; all CytoSig and the first 100
    SecAct. effect = inflammation_disease's disease - healthy mean in the cell type; n_disease /
    n_healthy = the two groups' n_samples; only p < 0.1 is written (as the real writer)."""
    sigs = demo.sigs
    cell_types = demo.cell_types["Inflammation"]
    C = len(cell_types)
    h = len(studies.diseases) - 1
    diseases = [d for d in range(h) if studies.matched_disease(d) * C >= 10][:20]
    analysed = np.concatenate([sigs.of_type("CytoSig"), sigs.of_type("SecAct")[:100]])
    r = rng(demo.seed, "inflammation_cell_drivers")
    d = np.repeat(diseases, C * analysed.size)
    c = np.tile(np.repeat(np.arange(C), analysed.size), len(diseases))
    s = np.tile(analysed, len(diseases) * C)
    effect = r4(activity.mean[d, c, s] - activity.mean[h, c, s])
    n_disease, n_healthy = activity.n_samples[d, c], activity.n_samples[h, c]
    p = np.round(differential_p(r, effect, n_disease, n_healthy), 6)
    kept = p < 0.1
    writer.json(T("inflammation_cell_drivers"), {
        "disease": cat(d[kept], studies.diseases), "cell_type": cat(c[kept], cell_types),
        **sig_columns(sigs, s[kept]), "effect": effect[kept], "pvalue": p[kept],
        "n_healthy": n_healthy[kept], "n_disease": n_disease[kept],
    }, extra={"diseases": [studies.diseases[x] for x in diseases], "cell_types": list(cell_types),
              "cytokines": [sigs.names[i] for i in sigs.of_type("CytoSig")],
              "secact_proteins": [sigs.names[i] for i in sigs.of_type("SecAct")[:100]]})


# --- timepoints ----------------------------------------------------------------------------------

def _longitudinal(writer: Writer, demo: AtlasDemo, studies: Studies, activity: DiseaseActivity) -> None:
    """The names.LONGITUDINAL diseases the demo has, each with its timepoints T0.. (a disease's
    samples split over them); activity = the disease's mean over cell types + drift. The counts
    beside the records agree with them (timepoint_distribution = the sum over diseases)."""
    S = len(demo.sigs)
    rows = {k: [] for k in ("d", "tp", "num", "mean", "std", "median", "n", "records")}
    labels, disease_timepoints = [], {}
    for disease, k in names.LONGITUDINAL:
        if disease not in studies.diseases:
            continue
        d = studies.diseases.index(disease)
        r = rng(demo.seed, "inflammation_longitudinal", disease)
        n = 1 + r.multinomial(studies.total(d) - k, np.full(k, 1.0 / k))
        base = activity.mean[d].mean(axis=0)
        disease_timepoints[disease] = {f"T{t}": int(n[t]) for t in range(k)}
        for t in range(k):
            mean = r4(base + r.normal(0.0, 0.15, S))
            rows["d"].append(np.full(S, len(labels)))
            rows["tp"].append(np.full(S, t))
            rows["num"].append(np.full(S, t))
            rows["mean"].append(mean)
            rows["std"].append(r4(r.uniform(0.3, 1.0, S)))
            rows["median"].append(r4(mean + r.normal(0.0, 0.05, S)))
            rows["n"].append(np.full(S, n[t]))
            rows["records"].append(np.full(S, n[t] * int(r.integers(5, 31))))
        labels.append(disease)
    cols = {k: np.concatenate(v) for k, v in rows.items()}
    points = sorted({tp for counts in disease_timepoints.values() for tp in counts})
    distribution = {tp: sum(c.get(tp, 0) for c in disease_timepoints.values()) for tp in points}
    r = rng(demo.seed, "inflammation_longitudinal", "treatment")
    treated = {tp: int(r.integers(0, n + 1)) for tp, n in distribution.items()}
    writer.json(T("inflammation_longitudinal"), {
        "disease": cat(cols["d"], labels), "timepoint": cat(cols["tp"], [f"T{t}" for t in range(3)]),
        "timepoint_num": cols["num"], **sig_columns(demo.sigs, np.tile(np.arange(S), len(rows["d"]))),
        "mean_activity": cols["mean"], "std_activity": cols["std"], "median_activity": cols["median"],
        "n_samples": cols["n"], "n_records": cols["records"],
    }, extra={
        "has_longitudinal": False,
        "note": "No patients have multiple longitudinal timepoints. Different timepoints are from different "
                "patients.",
        "timepoint_distribution": distribution, "disease_timepoints": disease_timepoints,
        "treatment_by_timepoint": {tp: {"treated": treated[tp], "untreated": n - treated[tp]}
                                   for tp, n in distribution.items()},
    })


# --- treatment response --------------------------------------------------------------------------

def _roc(probability: np.ndarray, responder: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The exact ROC curve of scores vs labels (one point per distinct score, ties together) and its
    trapezoid area (= the Mann-Whitney AUC)."""
    order = np.argsort(-probability, kind="stable")
    p, y = probability[order], responder[order]
    last = np.r_[p[1:] != p[:-1], True]  # the end of each run of equal scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    tpr, fpr = np.r_[0.0, tp / y.sum()], np.r_[0.0, fp / (~y).sum()]
    return fpr, tpr, float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _treatment_response(writer: Writer, demo: AtlasDemo) -> None:
    """names.TREATMENT_DISEASES the demo has, plus 'All Diseases' (their patients together), per
    signature type: 15-35 patients each (>= 3 responders and non-responders), per model a
    probability per patient (responders higher); the ROC curve and AUC are computed exactly from
    those probabilities, so curve, AUC and predictions agree. Features: the model's top 20 signatures
    of the type (Random Forest importances descending, summing to < 1; Logistic Regression
    coefficients by |coefficient|, importance = |coefficient| / the largest)."""
    present = [d for d in names.TREATMENT_DISEASES if d in {x for x, _ in demo.diseases}]
    curves, features, predictions = [], [], []
    for signature_type in demo.sigs.type_names:
        pool = demo.sigs.of_type(signature_type)
        r = rng(demo.seed, "treatment_response", signature_type)
        labels = {}
        for disease in present:
            n = int(r.integers(15, 36))
            n_r = int(r.integers(3, n - 2))
            labels[disease] = np.r_[np.ones(n_r, bool), np.zeros(n - n_r, bool)][r.permutation(n)]
        labels["All Diseases"] = np.concatenate(list(labels.values()))
        for disease, responder in labels.items():
            for model, skill in zip(MODELS, (2.0, 2.5)):
                probability = np.round(np.where(responder, r.beta(skill + 1, 2.0, responder.size),
                                                r.beta(2.0, skill + 1, responder.size)), 3)
                fpr, tpr, auc = _roc(probability, responder)
                curves.append({"disease": disease, "model": model, "signature_type": signature_type,
                               "auc": round(auc, 3), "n_samples": int(responder.size),
                               "fpr": [round(float(x), 4) for x in fpr], "tpr": [round(float(x), 4) for x in tpr]})
                predictions += [{"disease": disease, "signature_type": signature_type,
                                 "response": "Responder" if y else "Non-responder", "probability": float(x),
                                 "model": model} for x, y in zip(probability, responder)]
            top = r.choice(pool, 20, replace=False)
            importance = np.sort(r.dirichlet(np.full(pool.size, 0.5)))[::-1][:20]
            # The real writer leaves coefficient out of Random Forest records; a null says the same.
            features += [{"disease": disease, "model": "Random Forest", "signature_type": signature_type,
                          "feature": demo.sigs.names[i], "importance": round(float(x), 4), "coefficient": None}
                         for i, x in zip(top, importance)]
            top = r.choice(pool, 20, replace=False)
            coefficient = r.normal(0.0, 1.0, 20)
            order = np.argsort(-np.abs(coefficient), kind="stable")
            largest = np.abs(coefficient).max()
            features += [{"disease": disease, "model": "Logistic Regression", "signature_type": signature_type,
                          "feature": demo.sigs.names[top[j]],
                          "importance": round(float(abs(coefficient[j]) / largest), 4),
                          "coefficient": round(float(coefficient[j]), 4)} for j in order]
    rows = sum(len(c["fpr"]) for c in curves) + len(features) + len(predictions)
    writer.nested_json(T("treatment_response_roc"), {"roc_curves": curves, "feature_importance": features,
                                                     "predictions": predictions}, rows)


# --- cohort validation ---------------------------------------------------------------------------

def _cohort_validation(writer: Writer, demo: AtlasDemo, celltype: dict) -> None:
    """Per signature: the cell-type profile agrees across cohorts (r 0.7-0.95) when it varies much
    across cell types in inflammation_celltype (above its type's median spread), less (0.1-0.5)
    otherwise; r clipped at 0, 3 decimals; p of the main-validation r over the cell types. The
    consistency rows are exactly the rounded means of those columns per type."""
    sigs, S = demo.sigs, len(demo.sigs)
    C = len(demo.cell_types["Inflammation"])
    spread = np.asarray(celltype["mean_activity"]).reshape(C, S).std(axis=0)
    high = np.zeros(S, bool)
    for t in range(len(sigs.type_names)):
        idx = np.flatnonzero(sigs.types == t)
        high[idx] = spread[idx] > np.median(spread[idx])
    r = rng(demo.seed, "cohort_validation")
    mv = np.round(np.where(high, r.uniform(0.7, 0.95, S), r.uniform(0.1, 0.5, S)), 3)
    me = np.round(np.maximum(mv - r.uniform(0.0, 0.15, S), 0.0), 3)
    ve = np.round(np.maximum(mv - r.uniform(0.0, 0.1, S), 0.0), 3)
    consistency = [{"cohort_pair": pair, "signature_type": t, "mean_r": round(float(values[sigs.types == k].mean()), 3),
                    "n_signatures": int((sigs.types == k).sum())}
                   for k, t in enumerate(sigs.type_names) for pair, values in zip(names.COHORT_PAIRS, (mv, me, ve))]
    writer.json(T("cohort_validation"), {
        **sig_columns(sigs, np.arange(S)), "main_validation_r": mv, "main_external_r": me,
        "validation_external_r": ve, "pvalue": np.round(p_correlation(mv, C), 6),
    }, extra={"consistency": consistency})


# --- sankey --------------------------------------------------------------------------------------

def _sankey(writer: Writer, studies: Studies) -> None:
    """The study layer as the real writer draws it: nodes cohorts (studies), diseases, groups, each
    in order of first appearance; links study -> disease (samples) then disease -> group (the
    disease's samples), each block sorted by name as pandas groupby sorts."""
    n_s = len(studies.names)
    seen = list(dict.fromkeys(studies.disease.tolist()))  # diseases by first appearance
    diseases = [studies.diseases[d] for d in seen]
    groups = list(dict.fromkeys(studies.groups[d] for d in seen))
    node = {d: n_s + i for i, d in enumerate(seen)}
    links = sorted((studies.names[s], studies.diseases[d], s, node[d], n)
                   for s, d, n in zip(studies.study.tolist(), studies.disease.tolist(), studies.n.tolist()))
    source, target, value = ([link[i] for link in links] for i in (2, 3, 4))
    for d in sorted(seen, key=lambda x: studies.diseases[x]):
        source.append(node[d])
        target.append(n_s + len(seen) + groups.index(studies.groups[d]))
        value.append(studies.total(d))
    nodes = ([{"name": s, "type": "cohort"} for s in studies.names] + [{"name": d, "type": "disease"} for d in diseases]
             + [{"name": g, "type": "disease_group"} for g in groups])
    writer.json(T("disease_sankey"), {"source": np.array(source), "target": np.array(target), "value": np.array(value)},
                extra={"nodes": nodes, "cohorts": studies.names, "diseases": diseases, "disease_groups": groups})
