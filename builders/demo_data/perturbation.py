"""Perturbation demo sources: parse_10M cytokine stimulation and Tahoe-100M drugs (DOMAIN.md §8.1).

parse_10M: pseudobulk activity per donor x condition x cell type is simulated first; every other
parse table is computed from those rounded values (treatment effect = exact mean difference,
Mann-Whitney over donors, BH per signature type; ground truth; donor variability).
Tahoe: activity per plate x drug x cell line first; drug effect, sensitivity, pathway activation
are computed from it; the dose plate series is simulated with a Hill curve.
"""

from __future__ import annotations

import numpy as np

from cytoatlas.domains import perturbation as spec
from builders.demo_data import names
from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import Scale, Signatures
from builders.demo_data.signature_names import write_mapping
from builders.demo_data._stats import (
    PARSE_MIN_P, bh, lognormal_counts, mwu_asymptotic, mwu_exact_two_sided, mwu_u, r4, rng, sig6,
)

T = spec.DOMAIN.table
SAMPLE_CELLS = 8_900  # cells per donor x condition sample (§2.0)


def generate(writer: Writer, scale: Scale, seed: int) -> None:
    sigs = Signatures.build(scale)
    _parse10m(writer, scale, seed, sigs)
    _tahoe(writer, scale, seed, sigs)
    write_mapping(writer, T("perturbation_signature_aliases"))


# --- parse_10M -----------------------------------------------------------------------------------

def _responsiveness(seed: int, cytokine: tuple, groups: list[str]) -> np.ndarray:
    """R[cell type] in [0, 1] from the receptor-biology rules, jittered per cytokine."""
    name, _, _, cytosig, gene = cytokine
    rules = names.RESPONSE_RULES.get(cytosig or "", None)
    r = rng(seed, "parse10m", "response", name)
    if rules is None:  # unmapped: a default profile with one randomly favoured lineage
        rules = dict(names.DEFAULT_RESPONSE)
        rules[str(r.choice(sorted(set(groups))))] = float(r.uniform(0.5, 0.9))
    base = np.array([rules.get(g, rules["*"]) for g in groups])
    return np.clip(base * r.uniform(0.8, 1.2, len(groups)), 0.0, 1.0)


def _loadings(seed: int, cytokine: tuple, sigs: Signatures) -> np.ndarray:
    """How strongly a cytokine moves each signature (self = 1, cross-talk, sparse downstream)."""
    name, _, _, cytosig, gene = cytokine
    r = rng(seed, "parse10m", "loadings", name)
    w = np.zeros(len(sigs))
    secact = sigs.of_type("SecAct")
    downstream = r.random(secact.size) < 0.03
    w[secact[downstream]] = r.normal(0.0, 0.3, downstream.sum())
    if cytosig is not None:
        w[sigs.find("CytoSig", cytosig)] = 1.0
        for src, dst, weight in names.CROSSTALK:
            if src == cytosig:
                w[sigs.find("CytoSig", dst)] = weight
    else:  # proxy CytoSig responses for cytokines without their own CytoSig signature
        proxies = r.choice(sigs.of_type("CytoSig"), 2, replace=False)
        w[proxies] = r.uniform(0.3, 0.8, 2)
    own = sigs.find("SecAct", gene)
    if own is not None:
        w[own] = 1.0 if cytosig is None else 0.8
    return w


def _parse10m(writer: Writer, scale: Scale, seed: int, sigs: Signatures) -> None:
    cytokines = names.CYTOKINES[:scale.cytokines]
    conditions = [names.PBS] + [c[0] for c in cytokines]
    cell_types = [c[0] for c in names.PARSE_CELL_TYPES]
    groups = [c[2] for c in names.PARSE_CELL_TYPES]
    share = np.array([c[1] for c in names.PARSE_CELL_TYPES])
    share /= share.sum()
    D, Tn, S = len(names.DONORS), len(cell_types), len(sigs)

    # Cells per donor x condition x cell type; groups under 10 cells are dropped (§8.1).
    r = rng(seed, "parse10m", "n_cells")
    donor_size = np.exp(r.normal(0.0, 0.15, (D, len(conditions), 1)))
    n_cells = lognormal_counts(r, SAMPLE_CELLS * share[None, None, :] * donor_size, 0.35,
                               (D, len(conditions), Tn))
    kept = n_cells >= 10

    def block(i: int) -> np.ndarray:
        """Rounded activity [donor, cell type, signature] of condition i; NaN where dropped."""
        r = rng(seed, "parse10m_activity", conditions[i])
        if i == 0:
            z = r.normal(0.0, 0.3, (D, Tn, S))
        else:
            c = cytokines[i - 1]
            amp = rng(seed, "parse10m", "amplitude", c[0]).uniform(1.5, 5.0)
            donor = amp + r.normal(0.0, 0.3 * amp, (D, 1, 1))
            R = _responsiveness(seed, c, groups)
            z = donor * R[None, :, None] * _loadings(seed, c, sigs)[None, None, :]
            z += r.normal(0.0, 0.5, (D, Tn, S))
        z = r4(np.clip(z, -6.0, 6.0))
        z[~kept[:, i, :]] = np.nan
        return z

    effect_cols: dict[str, list] = {k: [] for k in (
        "cytokine", "cell_type", "signature", "signature_type", "mean_treated", "mean_control",
        "activity_diff", "n_treated", "n_control", "statistic", "pvalue")}
    variability: dict[str, list] = {k: [] for k in (
        "cytokine", "cell_type", "donor_id", "signature", "signature_type", "activity_diff",
        "mean_activity_diff", "variance", "cv")}
    blocks, effect_diff, effect_p = {}, {}, {}  # per cytokine: activity, diff and p grids
    sums = np.zeros((len(conditions), S))  # per-condition sum and count of activity rows
    counts = np.zeros(len(conditions))

    with writer.csv_stream(T("parse10m_activity")) as out:
        control = None
        for i, condition in enumerate(conditions):
            z = block(i)
            if i == 0:
                control = z
            valid = kept[:, i, :]
            d_idx, t_idx = np.nonzero(valid)
            out.write({
                "donor_id": cat(np.repeat(d_idx, S), names.DONORS),
                "cytokine": condition,
                "cell_type": cat(np.repeat(t_idx, S), cell_types),
                "n_cells": np.repeat(n_cells[d_idx, i, t_idx], S),
                "signature": cat(np.tile(np.arange(S), d_idx.size), sigs.names),
                "signature_type": cat(np.tile(sigs.types, d_idx.size), sigs.type_names),
                "activity": z[valid].ravel(),
            })
            sums[i] = np.nansum(z, axis=(0, 1))
            counts[i] = valid.sum()
            if i == 0:
                continue
            diff, p = _treatment_effect(effect_cols, i, z, control, sigs)
            effect_diff[condition], effect_p[condition], blocks[condition] = diff, p, z
            _donor_variability(variability, i, cytokines[i - 1], z, control, diff, sigs)

    p = np.concatenate(effect_cols.pop("pvalue"))
    stype = np.concatenate([np.asarray(a) for a in effect_cols["signature_type"]])
    q = bh(p, stype)
    columns = {k: np.concatenate(v) for k, v in effect_cols.items()}
    columns["signature_type"] = cat(stype, sigs.type_names)
    columns["signature"] = cat(columns["signature"], sigs.names)
    columns["cell_type"] = cat(columns["cell_type"], cell_types)
    columns["cytokine"] = cat(columns["cytokine"], conditions)
    columns.update(pvalue=sig6(p), qvalue=sig6(q))
    writer.csv(T("parse10m_treatment_effect"), columns)

    _ground_truth(writer, seed, cytokines, conditions, cell_types, sigs, blocks, control,
                  sums, counts, effect_diff, effect_p)

    v = {k: np.concatenate(x) for k, x in variability.items()}
    v["cytokine"] = cat(v["cytokine"], conditions)
    v["cell_type"] = cat(v["cell_type"], cell_types)
    v["donor_id"] = cat(v["donor_id"], names.DONORS)
    v["signature"] = cat(v["signature"], sigs.names)
    v["signature_type"] = cat(v["signature_type"], sigs.type_names)
    writer.csv(T("parse10m_donor_variability"), v)

    vendor, catalog, concentration = zip(*(names.cytokine_vendor(c[0]) for c in cytokines))
    writer.csv(T("parse10m_cytokine_metadata"), {
        "cytokine": [c[0] for c in cytokines], "family": [c[1] for c in cytokines],
        "subfamily": [c[2] for c in cytokines], "concentration": np.array(concentration),
        "vendor": list(vendor), "catalog_number": list(catalog),
        "signature": [c[3] for c in cytokines],  # mapped CytoSig name, None when unmapped
    })


def _treatment_effect(cols: dict, code: int, z: np.ndarray, control: np.ndarray,
                      sigs: Signatures) -> tuple[np.ndarray, np.ndarray]:
    """Append the cytokine-vs-PBS rows of condition `code`; return its activity_diff and p grids
    [cell type, signature] (NaN where there is no row / no test)."""
    Tn, S = z.shape[1], z.shape[2]
    treated = np.moveaxis(z, 0, -1).reshape(Tn * S, -1)  # [cell type x sig, donor]
    ctrl = np.moveaxis(control, 0, -1).reshape(Tn * S, -1)
    n1 = np.isfinite(treated).sum(axis=1)
    n2 = np.isfinite(ctrl).sum(axis=1)
    keep = (n1 > 0) & (n2 > 0)
    with np.errstate(invalid="ignore"):
        mean_t = r4(np.nanmean(np.where(keep[:, None], treated, 0.0), axis=1))
        mean_c = r4(np.nanmean(np.where(keep[:, None], ctrl, 0.0), axis=1))
    diff = r4(mean_t - mean_c)
    u, _, _ = mwu_u(treated, ctrl)
    tested = (n1 >= 2) & (n2 >= 2)
    p = np.where(tested, mwu_asymptotic(u, n1, n2), np.nan)
    t_idx, s_idx = np.divmod(np.arange(Tn * S), S)
    k = np.flatnonzero(keep)
    cols["cytokine"].append(np.full(k.size, code))
    cols["cell_type"].append(t_idx[k])
    cols["signature"].append(s_idx[k])
    cols["signature_type"].append(sigs.types[s_idx[k]])
    cols["mean_treated"].append(mean_t[k])
    cols["mean_control"].append(mean_c[k])
    cols["activity_diff"].append(diff[k])
    cols["n_treated"].append(n1[k])
    cols["n_control"].append(n2[k])
    cols["statistic"].append(np.where(tested, u, np.nan)[k])
    cols["pvalue"].append(p[k])
    return np.where(keep, diff, np.nan).reshape(Tn, S), p.reshape(Tn, S)


def _self_signature(cytokine: tuple, type_name: str, sigs: Signatures) -> int | None:
    """The cytokine's own signature of a type, as the heatmap SQL picks it (metadata name)."""
    return sigs.find(type_name, cytokine[3]) if cytokine[3] else None


def _donor_variability(cols: dict, code: int, cytokine: tuple, z: np.ndarray, control: np.ndarray,
                       diff: np.ndarray, sigs: Signatures) -> None:
    """Per-donor self-signature response (unmapped: the signature with the largest |diff|)."""
    Tn = z.shape[1]
    for type_name in sigs.type_names:
        idx = sigs.of_type(type_name)
        own = _self_signature(cytokine, type_name, sigs)
        if own is not None:
            chosen = np.full(Tn, own)
        else:
            masked = np.where(np.isfinite(diff[:, idx]), np.abs(diff[:, idx]), -1.0)
            chosen = idx[np.argmax(masked, axis=1)]
        per_donor = r4(z[:, np.arange(Tn), chosen] - control[:, np.arange(Tn), chosen])  # [D, T]
        ok = np.isfinite(per_donor)
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(per_donor, axis=0) / np.maximum(n, 1)
            var = np.nansum((per_donor - mean) ** 2, axis=0) / (n - 1)
            var = np.where(n >= 2, var, np.nan)
            cv = np.where(np.abs(mean) >= 1e-10, np.sqrt(var) / np.abs(mean), np.nan)
        d_idx, t_idx = np.nonzero(ok)
        cols["cytokine"].append(np.full(d_idx.size, code))
        cols["cell_type"].append(t_idx)
        cols["donor_id"].append(d_idx)
        cols["signature"].append(chosen[t_idx])
        cols["signature_type"].append(sigs.types[chosen[t_idx]])
        cols["activity_diff"].append(per_donor[d_idx, t_idx])
        cols["mean_activity_diff"].append(r4(mean)[t_idx])
        cols["variance"].append(r4(var)[t_idx])
        cols["cv"].append(r4(cv)[t_idx])


def _ground_truth(writer: Writer, seed: int, cytokines, conditions, cell_types, sigs,
                  blocks: dict, control: np.ndarray, sums: np.ndarray, counts: np.ndarray,
                  effect_diff: dict, te_p: dict) -> None:
    """Does each cytokine's own signature recover its stimulation (one row per signature)."""
    rows: dict[str, list] = {k: [] for k in (
        "cytokine", "matched_treatment", "signature_type", "auc_roc", "n_treated", "n_control",
        "mean_self_activity", "mean_nonself_activity", "activity_diff", "pvalue",
        "best_celltype", "best_celltype_diff", "best_celltype_pval", "donor_consistency",
        "n_donors_consistency")}
    total_sum = sums[1:].sum(axis=0)
    total_n = counts[1:].sum()
    for type_name in sigs.type_names:
        seen = set()
        for c in cytokines:
            target = c[3] if type_name == "CytoSig" else c[4]
            s = sigs.find(type_name, target) if target else None
            if s is None or target in seen:
                continue
            seen.add(target)
            i = conditions.index(c[0])
            treated = blocks[c[0]][:, :, s].ravel()
            treated = treated[np.isfinite(treated)]
            ctrl = control[:, :, s].ravel()
            ctrl = ctrl[np.isfinite(ctrl)]
            u, n1, n2 = mwu_u(treated[None, :], ctrl[None, :])
            p = max(float(mwu_asymptotic(u, n1, n2, "greater")[0]), PARSE_MIN_P)
            nonself = (total_sum[s] - sums[i, s]) / max(total_n - counts[i], 1)
            diff_t = effect_diff[c[0]][:, s]
            best = int(np.nanargmax(diff_t))
            amp = rng(seed, "parse10m", "amplitude", c[0]).uniform(1.5, 5.0)
            g = rng(seed, "parse10m_ground_truth", type_name, target)
            consistency = 0.4 + 0.5 * (amp - 1.5) / 3.5 * g.uniform(0.7, 1.0) + g.normal(0, 0.03)
            self_mean = float(r4(treated.mean()))
            rows["cytokine"].append(target)
            rows["matched_treatment"].append(c[0])
            rows["signature_type"].append(type_name.lower())  # the real producer writes lowercase
            rows["auc_roc"].append(float(u[0] / (n1[0] * n2[0])))
            rows["n_treated"].append(int(n1[0]))
            rows["n_control"].append(int(n2[0]))
            rows["mean_self_activity"].append(self_mean)
            rows["mean_nonself_activity"].append(float(r4(nonself)))
            rows["activity_diff"].append(float(r4(self_mean - float(r4(nonself)))))
            rows["pvalue"].append(p)
            rows["best_celltype"].append(cell_types[best])
            rows["best_celltype_diff"].append(float(diff_t[best]))
            rows["best_celltype_pval"].append(max(float(te_p[c[0]][best, s]), PARSE_MIN_P)
                                              if np.isfinite(te_p[c[0]][best, s]) else np.nan)
            rows["donor_consistency"].append(float(np.clip(consistency, 0.3, 0.95)))
            rows["n_donors_consistency"].append(len(names.DONORS))
    cols = {k: np.array(v) if k not in ("cytokine", "matched_treatment", "signature_type",
                                         "best_celltype") else v for k, v in rows.items()}
    cols["auc_roc"] = r4(cols["auc_roc"])
    cols["donor_consistency"] = r4(cols["donor_consistency"])
    cols["fdr"] = sig6(bh(cols["pvalue"], np.array(rows["signature_type"])))
    cols["pvalue"] = sig6(cols["pvalue"])
    cols["best_celltype_pval"] = sig6(cols["best_celltype_pval"])
    writer.csv(T("parse10m_ground_truth"), cols)


# --- Tahoe-100M ----------------------------------------------------------------------------------

def _drug_effects(seed: int, drug: str, classes: tuple[str, ...], sigs: Signatures) -> np.ndarray:
    """E[signature]: class effects on the expected signatures plus sparse off-target effects."""
    r = rng(seed, "tahoe", "effect", drug)
    e = np.zeros(len(sigs))
    off = r.random(len(sigs)) < 0.02
    e[off] = r.normal(0.0, 0.4, off.sum())
    potency = r.uniform(0.6, 1.4)
    for cls in classes:
        for target, sign in names.DRUG_CLASS_EFFECTS[cls].items():
            magnitude = r.uniform(1.0, 3.0) * potency
            for type_name, name, weight in (("CytoSig", target, 1.0),
                                            ("SecAct", names.cytosig_gene(target), 0.8)):
                i = sigs.find(type_name, name)
                if i is not None:
                    e[i] += sign * magnitude * weight
    return e


def _tahoe(writer: Writer, scale: Scale, seed: int, sigs: Signatures) -> None:
    drugs = names.DRUGS[:scale.drugs]
    dose_drugs = {d for d, _ in drugs[:scale.dose_drugs]}
    lines = names.CELL_LINES[:scale.cell_lines]
    line_names = [c[0] for c in lines]
    L, S = len(lines), len(sigs)
    drug_names = [names.DMSO] + [d for d, _ in drugs]

    # Plates: each drug on one screen plate (1-12), a third also on the replicate plate 14, the
    # dose-series drugs also on plate 13; DMSO_TF on every plate.
    plates = {names.DMSO: list(names.PLATES)}
    for d, _ in drugs:
        r = rng(seed, "tahoe", "plates", d)
        p = [int(r.integers(1, 13))]
        if r.random() < 0.35:
            p.append(names.REPLICATE_PLATE)
        if d in dose_drugs:
            p.append(names.DOSE_PLATE)
        plates[d] = sorted(p)

    effects = {d: _drug_effects(seed, d, cls, sigs) for d, cls in drugs}
    sens = {d: np.exp(rng(seed, "tahoe", "sensitivity", d).normal(0.0, 0.4, L)) for d, _ in drugs}
    cytotoxic = {d for d, cls in drugs if {"dna_damage", "proteasome_inhibitor"} & set(cls)}

    def block(drug: str, plate: int) -> np.ndarray:
        r = rng(seed, "tahoe_activity", drug, plate)
        if drug == names.DMSO:
            z = r.normal(0.0, 0.3, (L, S))
        else:
            z = sens[drug][:, None] * effects[drug][None, :] + r.normal(0.0, 0.5, (L, S))
        return r4(np.clip(z, -6.0, 6.0))

    acts: dict[tuple[str, int], np.ndarray] = {}
    with writer.csv_stream(T("tahoe_activity")) as out:
        for drug in drug_names:
            for plate in plates[drug]:
                z = block(drug, plate)
                acts[(drug, plate)] = z
                r = rng(seed, "tahoe", "n_cells", drug, plate)
                mean = 3000 if drug == names.DMSO else (700 if drug in cytotoxic else 1500)
                n_cells = lognormal_counts(r, mean, 0.5, L)
                out.write({
                    "plate": np.full(L * S, plate, dtype=np.int32), "drug": drug,
                    "cell_line": cat(np.repeat(np.arange(L), S), line_names),
                    "n_cells": np.repeat(n_cells, S),
                    "signature": cat(np.tile(np.arange(S), L), sigs.names),
                    "signature_type": cat(np.tile(sigs.types, L), sigs.type_names),
                    "activity": z.ravel(),
                })

    # Drug vs plate-matched DMSO_TF per cell line (MWU only with >= 2 plates, exact for small n).
    eff: dict[str, list] = {k: [] for k in ("drug", "mean_treated", "mean_control", "activity_diff",
                                            "n", "statistic", "pvalue")}
    mean_diff = {}
    for k, (drug, _) in enumerate(drugs):
        treated = np.stack([acts[(drug, p)] for p in plates[drug]], axis=-1)  # [L, S, plates]
        ctrl = np.stack([acts[(names.DMSO, p)] for p in plates[drug]], axis=-1)
        mt, mc = r4(treated.mean(axis=-1)), r4(ctrl.mean(axis=-1))
        diff = r4(mt - mc)
        mean_diff[drug] = diff.mean(axis=0)
        n = len(plates[drug])
        if n >= 2:
            u, _, _ = mwu_u(treated.reshape(L * S, n), ctrl.reshape(L * S, n))
            p = mwu_exact_two_sided(u, n, n) if np.all(u == np.floor(u)) else mwu_asymptotic(u, n, n)
        else:
            u = p = np.full(L * S, np.nan)
        eff["drug"].append(np.full(L * S, k + 1))
        eff["mean_treated"].append(mt.ravel())
        eff["mean_control"].append(mc.ravel())
        eff["activity_diff"].append(diff.ravel())
        eff["n"].append(np.full(L * S, n))
        eff["statistic"].append(u)
        eff["pvalue"].append(p)
    nd = len(drugs)
    stype = np.tile(sigs.types, nd * L)
    p = np.concatenate(eff["pvalue"])
    n = np.concatenate(eff["n"])
    writer.csv(T("tahoe_drug_effect"), {
        "drug": cat(np.concatenate(eff["drug"]), drug_names),
        "cell_line": cat(np.tile(np.repeat(np.arange(L), S), nd), line_names),
        "signature": cat(np.tile(np.arange(S), nd * L), sigs.names),
        "signature_type": cat(stype, sigs.type_names),
        "mean_treated": np.concatenate(eff["mean_treated"]),
        "mean_control": np.concatenate(eff["mean_control"]),
        "activity_diff": np.concatenate(eff["activity_diff"]),
        "n_treated": n, "n_control": n,
        "statistic": np.concatenate(eff["statistic"]),
        "pvalue": sig6(p), "qvalue": sig6(bh(p, stype)),
    })

    # Sensitivity: mean/std over replicates, difference to the cell line's DMSO_TF baseline.
    sens_cols: dict[str, list] = {k: [] for k in ("mean", "std", "n", "diff")}
    baseline = None
    for drug in drug_names:  # DMSO_TF first: its mean is the baseline
        values = np.stack([acts[(drug, p)] for p in plates[drug]], axis=-1)
        n = values.shape[-1]
        mean = r4(values.mean(axis=-1))
        std = r4(values.std(axis=-1, ddof=1)) if n > 1 else np.zeros_like(mean)
        if drug == names.DMSO:
            baseline = mean
        sens_cols["mean"].append(mean.ravel())
        sens_cols["std"].append(std.ravel())
        sens_cols["n"].append(np.full(L * S, n, dtype=np.int32))
        sens_cols["diff"].append(r4(mean - baseline).ravel())
    categories = [";".join(dict(drugs).get(d, ())) or "unclassified" for d in drug_names]
    nd1 = len(drug_names)
    drug_codes = np.repeat(np.arange(nd1), L * S)
    writer.csv(T("tahoe_drug_sensitivity"), {
        "drug": cat(drug_codes, drug_names),
        "cell_line": cat(np.tile(np.repeat(np.arange(L), S), nd1), line_names),
        "signature": cat(np.tile(np.arange(S), nd1 * L), sigs.names),
        "signature_type": cat(np.tile(sigs.types, nd1 * L), sigs.type_names),
        "drug_category": cat(drug_codes, categories),
        "mean_activity": np.concatenate(sens_cols["mean"]),
        "std_activity": np.concatenate(sens_cols["std"]),
        "n_replicates": np.concatenate(sens_cols["n"]),
        "activity_diff_vs_control": np.concatenate(sens_cols["diff"]),
    })

    _dose_response(writer, seed, [d for d in drugs if d[0] in dose_drugs], line_names, sigs,
                   effects, sens, cytotoxic)
    _pathways(writer, [d for d, _ in drugs], mean_diff, sigs)
    writer.csv(T("tahoe_cell_line_metadata"), {
        "cell_line": line_names, "cancer_type": [c[1] for c in lines], "tissue": [c[2] for c in lines]})


def _dose_response(writer: Writer, seed: int, drugs, line_names, sigs: Signatures, effects, sens,
                   cytotoxic) -> None:
    """Plate 13: activity(dose) = E * d^h / (EC50^h + d^h) + noise; viability falls with dose."""
    L, S, doses = len(line_names), len(sigs), np.array(names.DOSES)
    cols: dict[str, list] = {k: [] for k in ("drug", "activity", "viability")}
    for k, (drug, _) in enumerate(drugs):
        r = rng(seed, "tahoe_dose_response", drug)
        ec50 = np.exp(r.uniform(np.log(0.05), np.log(20.0), L))
        hill = np.clip(r.normal(1.0, 0.3, L), 0.3, 2.5)
        frac = doses[None, :] ** hill[:, None] / (ec50[:, None] ** hill[:, None] + doses[None, :] ** hill[:, None])
        top = sens[drug][:, None] * effects[drug][None, :]  # [L, S]
        act = top[:, None, :] * frac[:, :, None] + r.normal(0.0, 0.15, (L, 3, S))  # [L, dose, S]
        vmax = r.uniform(0.2, 0.9, L) if drug in cytotoxic else r.uniform(0.0, 0.4, L)
        ic50 = np.exp(r.uniform(np.log(0.1), np.log(30.0), L))
        viability = 1 - vmax[:, None] * doses[None, :] / (doses[None, :] + ic50[:, None])
        viability = np.clip(viability + r.normal(0.0, 0.03, (L, 3)), 0.05, 1.0)
        cols["drug"].append(np.full(L * 3 * S, k))
        cols["activity"].append(r4(np.clip(act, -6, 6)).ravel())
        cols["viability"].append(np.repeat(r4(viability).ravel(), S))
    nd = len(drugs)
    writer.csv(T("tahoe_dose_response"), {
        "drug": cat(np.concatenate(cols["drug"]), [d for d, _ in drugs]),
        "cell_line": cat(np.tile(np.repeat(np.arange(L), 3 * S), nd), line_names),
        "dose": np.tile(np.repeat(doses, S), nd * L),
        "dose_unit": "uM",
        "signature": cat(np.tile(np.arange(S), nd * L * 3), sigs.names),
        "signature_type": cat(np.tile(sigs.types, nd * L * 3), sigs.type_names),
        "activity": np.concatenate(cols["activity"]),
        "viability": np.concatenate(cols["viability"]),
    })


def _pathways(writer: Writer, drugs: list[str], mean_diff: dict, sigs: Signatures) -> None:
    """Mean activity_diff of each pathway's members; MWU of members vs the other signatures."""
    cols: dict[str, list] = {k: [] for k in ("drug", "pathway", "signature_type", "activity",
                                             "pvalue", "n_signatures")}
    M = np.stack([mean_diff[d] for d in drugs])  # [drug, sig]: mean diff over cell lines
    for type_name in sigs.type_names:
        idx = sigs.of_type(type_name)
        ranks = np.argsort(np.argsort(M[:, idx], axis=1, kind="stable"), axis=1) + 1.0
        for pathway, members in names.PATHWAYS.items():
            wanted = members if type_name == "CytoSig" else tuple(
                dict.fromkeys([names.cytosig_gene(m) for m in members] +
                              list(names.PATHWAY_SECACT_EXTRA[pathway])))
            member = np.isin(idx, sigs.indices(type_name, wanted))
            n1 = int(member.sum())
            if n1 == 0:
                continue
            n2 = idx.size - n1
            u = ranks[:, member].sum(axis=1) - n1 * (n1 + 1) / 2
            cols["drug"] += drugs
            cols["pathway"] += [pathway] * len(drugs)
            cols["signature_type"] += [type_name] * len(drugs)
            cols["activity"].append(r4(M[:, idx[member]].mean(axis=1)))
            cols["pvalue"].append(sig6(mwu_asymptotic(u, n1, n2)))
            cols["n_signatures"].append(np.full(len(drugs), n1, dtype=np.int32))
    writer.csv(T("tahoe_pathway_activation"), {
        "drug": cols["drug"], "pathway": cols["pathway"], "signature_type": cols["signature_type"],
        "activity": np.concatenate(cols["activity"]), "pvalue": np.concatenate(cols["pvalue"]),
        "n_signatures": np.concatenate(cols["n_signatures"]),
    })
