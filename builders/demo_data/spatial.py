"""Spatial demo sources: SpatialCorpus datasets, activity, niches, coordinates (DOMAIN.md §8.2).

Activity = tissue programme T + technology bias B + file effect F (+ cell-type effect C for
niches). Tier A (Visium) files get every signature; Tier B panels only the signatures whose gene
coverage is >= 0.5; Tier C (ISS, mouse) none. The tissue summary and the technology comparison
are computed from the written spatial_activity values.
"""

from __future__ import annotations

import itertools

import numpy as np

from cytoatlas.domains import spatial as spec
from builders.demo_data import names
from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import Scale, Signatures
from builders.demo_data.signature_names import write_mapping
from builders.demo_data._stats import (
    group_stats, lognormal_counts, p_correlation, r4, rng, sig6, spearman,
)

T = spec.DOMAIN.table
TECHS = tuple(names.TECHNOLOGIES)
MATRIX_GENES = {"CytoSig": 4_881, "SecAct": 7_919}
_ACCESSION = {
    "GEO": lambda r: f"GSE{r.integers(140_000, 280_000)}",
    "10x Genomics": lambda r: f"10x-{r.integers(1000, 9999)}",
    "HTAPP": lambda r: f"HTAPP-{r.integers(100, 999)}",
    "CELLxGENE": lambda r: f"cxg-{r.integers(16 ** 7, 16 ** 8):08x}",
    "Vizgen": lambda r: f"vizgen-{r.integers(100, 999)}",
    "NanoString": lambda r: f"cosmx-{r.integers(100, 999)}",
    "Zenodo": lambda r: f"zenodo.{r.integers(4_000_000, 9_000_000)}",
    "Broad SCP": lambda r: f"SCP{r.integers(1000, 2999)}",
}


def generate(writer: Writer, scale: Scale, seed: int) -> None:
    sigs = Signatures.build(scale)
    datasets = _datasets(scale, seed)
    writer.csv(T("spatial_dataset_metadata"), {k: [d[k] for d in datasets] for k in (
        "dataset_id", "filename", "technology", "tissue", "species", "tier", "source", "accession")}
        | {"n_cells": np.array([d["n_cells"] for d in datasets]),
           "n_genes": np.array([d["n_genes"] for d in datasets], dtype=np.int32)})

    coverage = _coverage(seed, sigs)
    effects = _Effects(seed, sigs)
    activity = _activity(writer, seed, sigs, datasets, coverage, effects)
    _tissue_summary(writer, sigs, activity)
    _technology_comparison(writer, sigs, activity)
    cell_types = _neighborhood(writer, seed, sigs, datasets, coverage, effects)
    _gene_coverage(writer, seed, sigs, datasets, coverage)
    _coordinates(writer, seed, scale, sigs, datasets, coverage, effects, cell_types)
    write_mapping(writer, T("spatial_signature_aliases"))


def _datasets(scale: Scale, seed: int) -> list[dict]:
    by_weight = sorted(names.SPATIAL_TISSUES, key=lambda t: -names.SPATIAL_TISSUES[t])
    weights = np.array([names.SPATIAL_TISSUES[t] for t in by_weight], dtype=np.float64)
    out = []
    for tech in TECHS:
        _, species, tier, mean_cells, (g_lo, g_hi) = names.TECHNOLOGIES[tech]
        for k in range(scale.spatial_files(tech)):
            r = rng(seed, "spatial", "dataset", tech, k)
            if tech == "Visium":  # the first files cover the largest tissues, then by share
                tissue = by_weight[k] if k < 6 else str(r.choice(by_weight, p=weights / weights.sum()))
            else:
                tissue = names.TECH_FIRST_TISSUE[tech] if k == 0 else str(r.choice(names.TECH_TISSUES[tech]))
            dataset_id = f"{tech.lower()}_{tissue.replace(' ', '_')}_{k + 1:03d}"
            source = str(r.choice(names.TECH_SOURCES[tech]))
            out.append({
                "dataset_id": dataset_id, "filename": dataset_id + ".h5ad", "technology": tech,
                "tissue": tissue, "species": species, "tier": tier,
                "n_cells": int(lognormal_counts(r, mean_cells, 0.6, 1)[0]) + 500,
                "n_genes": int(r.integers(g_lo, g_hi + 1)), "source": source,
                "accession": _ACCESSION[source](r),
            })
    return out


def _coverage(seed: int, sigs: Signatures) -> dict[str, np.ndarray]:
    """Share of each signature's genes a technology measures; >= 0.5 counts as covered."""
    out = {}
    for tech in TECHS:
        r = rng(seed, "spatial", "coverage", tech)
        _, pass_rate = names.TECH_COVERAGE[tech]
        passed = r.random(len(sigs)) < pass_rate
        lo = 0.8 if pass_rate >= 0.99 else 0.5
        out[tech] = r4(np.where(passed, r.uniform(lo, 1.0, len(sigs)), r.uniform(0.0, 0.45, len(sigs))))
    return out


class _Effects:
    """Tissue programmes T, technology biases B and cell-type effects C (all per signature)."""

    def __init__(self, seed: int, sigs: Signatures):
        self.seed, self.sigs = seed, sigs
        self._tissue, self._cell = {}, {}
        self.tech = {t: rng(seed, "spatial", "tech_bias", t).normal(0.0, 0.2, len(sigs)) for t in TECHS}

    def _programme(self, r: np.random.Generator, wanted, base_sd: float) -> np.ndarray:
        S = len(self.sigs)
        e = r.normal(0.0, base_sd, S)
        hot = r.random(S) < 0.1
        e[hot] += r.normal(0.0, 0.5, hot.sum())
        idx = [i for t in self.sigs.type_names for i in self.sigs.indices(t, wanted)]
        e[idx] += r.uniform(0.8, 1.6, len(idx))
        return e

    def tissue(self, tissue: str) -> np.ndarray:
        if tissue not in self._tissue:
            r = rng(self.seed, "spatial", "tissue_effect", tissue)
            if tissue == "Unknown":
                self._tissue[tissue] = r.normal(0.0, 0.1, len(self.sigs))
            else:
                wanted = names.TISSUE_PROGRAMMES.get(names.tissue_kind(tissue), ())
                self._tissue[tissue] = self._programme(r, wanted, 0.3)
        return self._tissue[tissue]

    def cell_type(self, cell_type: str) -> np.ndarray:
        if cell_type not in self._cell:
            r = rng(self.seed, "spatial", "cell_type_effect", cell_type)
            self._cell[cell_type] = self._programme(r, names.CELL_TYPE_PROGRAMMES.get(cell_type, ()), 0.2)
        return self._cell[cell_type]

    def file(self, dataset_id: str) -> np.ndarray:
        return rng(self.seed, "spatial", "file_effect", dataset_id).normal(0.0, 0.2, len(self.sigs))


def _allowed(d: dict, coverage: dict) -> np.ndarray:
    """Signatures inferred for a dataset: all for Tier A, covered ones for Tier B, none for C."""
    if d["tier"] == "A":
        return np.arange(coverage[d["technology"]].size)
    if d["tier"] == "B":
        return np.flatnonzero(coverage[d["technology"]] >= 0.5)
    return np.arange(0)


def _activity(writer: Writer, seed: int, sigs: Signatures, datasets, coverage, effects) -> dict:
    cols: dict[str, list] = {k: [] for k in ("file", "tissue", "technology", "signature", "mean_activity",
                                             "std_activity", "n_groups", "n_cells", "gene_coverage")}
    tissues = ["Unknown"] + list(names.SPATIAL_TISSUES)
    for f, d in enumerate(datasets):
        allowed = _allowed(d, coverage)
        if allowed.size == 0:
            continue
        r = rng(seed, "spatial_activity", d["dataset_id"])
        # some sections also have unannotated spots, summarised as tissue 'Unknown'
        main = r.uniform(0.85, 0.95) if r.random() < 0.15 else 1.0
        regions = [(d["tissue"], main)] + ([("Unknown", 1.0 - main)] if main < 1.0 else [])
        base = effects.tech[d["technology"]] + effects.file(d["dataset_id"])
        for tissue, frac in regions:
            n = allowed.size
            mean = effects.tissue(tissue)[allowed] + base[allowed]
            cols["file"].append(np.full(n, f))
            cols["tissue"].append(np.full(n, tissues.index(tissue)))
            cols["technology"].append(np.full(n, TECHS.index(d["technology"])))
            cols["signature"].append(allowed)
            cols["mean_activity"].append(r4(mean + r.normal(0.0, 0.05, n)))
            cols["std_activity"].append(r4(r.uniform(0.3, 1.2, n)))
            cols["n_groups"].append(r.integers(1, 41, n))
            cols["n_cells"].append(np.full(n, max(1, int(d["n_cells"] * frac))))
            cols["gene_coverage"].append(coverage[d["technology"]][allowed])
    raw = {k: np.concatenate(v) for k, v in cols.items()}
    writer.csv(T("spatial_activity"), {
        **raw,
        "file": cat(raw["file"], [d["dataset_id"] for d in datasets]),
        "tissue": cat(raw["tissue"], tissues),
        "technology": cat(raw["technology"], TECHS),
        "signature": cat(raw["signature"], sigs.names),
        "signature_type": cat(sigs.types[raw["signature"]], sigs.type_names),
    })
    return raw | {"tissues": tissues}


def _tissue_summary(writer: Writer, sigs: Signatures, a: dict) -> None:
    """Exact GROUP BY tissue, signature over spatial_activity (mean of means, SD across files)."""
    S = len(sigs)
    key = a["tissue"].astype(np.int64) * S + a["signature"]
    stats = group_stats(key, a["mean_activity"])
    tissue, sig = np.divmod(stats["group"], S)
    n_tech = np.unique(np.stack([key, a["technology"]]), axis=1)[0]
    n_tech = np.searchsorted(stats["group"], n_tech)
    writer.csv(T("spatial_tissue_summary"), {
        "tissue": cat(tissue, a["tissues"]),
        "signature": cat(sig, sigs.names),
        "signature_type": cat(sigs.types[sig], sigs.type_names),
        "mean_activity": r4(stats["mean"]), "median_activity": r4(stats["median"]),
        "std_activity": r4(stats["sd"]),
        "n_technologies": np.bincount(n_tech, minlength=stats["group"].size).astype(np.int32),
        "n_files": stats["n"].astype(np.int32),
    })


def _technology_comparison(writer: Writer, sigs: Signatures, a: dict) -> None:
    """Spearman rho and sign concordance of per-signature means between technologies in a tissue."""
    S = len(sigs)
    key = (a["tissue"].astype(np.int64) * len(TECHS) + a["technology"]) * S + a["signature"]
    stats = group_stats(key, a["mean_activity"])
    tt, sig = np.divmod(stats["group"], S)
    tissue, tech = np.divmod(tt, len(TECHS))
    rows: dict[str, list] = {k: [] for k in ("tissue", "technology_a", "technology_b", "signature_type",
                                             "spearman_rho", "pvalue", "concordance", "n_shared_signatures")}
    for t in np.unique(tissue):
        if a["tissues"][t] == "Unknown":
            continue
        present = np.unique(tech[tissue == t])
        for ta, tb in itertools.combinations(present, 2):
            for type_code, type_name in enumerate(sigs.type_names):
                sel_a = (tissue == t) & (tech == ta) & (sigs.types[sig] == type_code)
                sel_b = (tissue == t) & (tech == tb) & (sigs.types[sig] == type_code)
                shared, ia, ib = np.intersect1d(sig[sel_a], sig[sel_b], return_indices=True)
                if shared.size < 5:
                    continue
                va, vb = stats["mean"][sel_a][ia], stats["mean"][sel_b][ib]
                rho = spearman(va, vb)
                rows["tissue"].append(a["tissues"][t])
                rows["technology_a"].append(TECHS[ta])
                rows["technology_b"].append(TECHS[tb])
                rows["signature_type"].append(type_name)
                rows["spearman_rho"].append(rho)
                rows["pvalue"].append(float(p_correlation(rho, shared.size)))
                rows["concordance"].append(float(np.mean(np.sign(va) == np.sign(vb))))
                rows["n_shared_signatures"].append(shared.size)
    writer.csv(T("spatial_technology_comparison"), {
        **{k: rows[k] for k in ("tissue", "technology_a", "technology_b", "signature_type")},
        "spearman_rho": r4(rows["spearman_rho"]), "pvalue": sig6(rows["pvalue"]),
        "concordance": r4(rows["concordance"]),
        "n_shared_signatures": np.array(rows["n_shared_signatures"], dtype=np.int32),
    })


def _neighborhood(writer: Writer, seed: int, sigs: Signatures, datasets, coverage, effects) -> dict:
    """Niche (kNN-smoothed) vs own-cell activity per file x cell type; returns file -> cell types."""
    cols: dict[str, list] = {k: [] for k in ("file", "tissue", "cell_type", "neighborhood", "signature",
                                             "mean_niche_activity", "std_niche_activity",
                                             "mean_cell_activity", "n_cells", "gene_coverage")}
    all_types = sorted({ct for t in list(names.SPATIAL_TISSUES) for ct in names.tissue_cell_types(t)})
    niches = sorted({n for t in names.SPATIAL_TISSUES for n in names.tissue_niches(t)})
    tissues = list(names.SPATIAL_TISSUES)
    chosen: dict[str, list[str]] = {}
    for f, d in enumerate(datasets):
        r = rng(seed, "spatial_neighborhood", d["dataset_id"])
        pool = names.tissue_cell_types(d["tissue"])
        k = int(r.integers(min(10, len(pool)), min(30, len(pool)) + 1))
        types = [pool[i] for i in sorted(r.choice(len(pool), k, replace=False))]
        chosen[d["dataset_id"]] = types
        allowed = _allowed(d, coverage)
        if allowed.size == 0:
            continue
        context = (effects.tissue(d["tissue"]) + effects.tech[d["technology"]]
                   + effects.file(d["dataset_id"]))[allowed]
        cells = np.maximum(1, np.rint(d["n_cells"] * r.dirichlet(np.full(k, 2.0)))).astype(np.int64)
        labels = names.tissue_niches(d["tissue"])
        n = allowed.size
        for j, ct in enumerate(types):
            cell = context + effects.cell_type(ct)[allowed] + r.normal(0.0, 0.3, n)
            niche = 0.6 * cell + 0.4 * context + r.normal(0.0, 0.05, n)
            std_cell = r.uniform(0.4, 1.2, n)
            label = niches.index(labels[int(r.integers(len(labels)))]) if labels else -1
            cols["file"].append(np.full(n, f))
            cols["tissue"].append(np.full(n, tissues.index(d["tissue"])))
            cols["cell_type"].append(np.full(n, all_types.index(ct)))
            cols["neighborhood"].append(np.full(n, label))
            cols["signature"].append(allowed)
            cols["mean_niche_activity"].append(r4(np.clip(niche, -6, 6)))
            cols["std_niche_activity"].append(r4(std_cell * r.uniform(0.4, 0.6, n)))
            cols["mean_cell_activity"].append(r4(np.clip(cell, -6, 6)))
            cols["n_cells"].append(np.full(n, cells[j]))
            cols["gene_coverage"].append(coverage[d["technology"]][allowed])
    raw = {k: np.concatenate(v) for k, v in cols.items()}
    label = raw["neighborhood"]  # -1: no niche annotation -> NULL
    writer.csv(T("spatial_neighborhood"), {
        **raw,
        "file": cat(raw["file"], [d["dataset_id"] for d in datasets]),
        "tissue": cat(raw["tissue"], tissues),
        "cell_type": cat(raw["cell_type"], all_types),
        "neighborhood": cat(label, niches),
        "signature": cat(raw["signature"], sigs.names),
        "signature_type": cat(sigs.types[raw["signature"]], sigs.type_names),
    })
    return chosen


def _gene_coverage(writer: Writer, seed: int, sigs: Signatures, datasets, coverage) -> None:
    rows: dict[str, list] = {k: [] for k in ("technology", "signature_type", "n_genes_total", "n_matrix_genes",
                                             "n_matrix_genes_covered", "matrix_gene_coverage", "n_targets",
                                             "n_targets_covered", "target_coverage")}
    for tech in TECHS:
        panel = [d["n_genes"] for d in datasets if d["technology"] == tech]
        r = rng(seed, "spatial_gene_coverage", tech)
        (lo, hi), _ = names.TECH_COVERAGE[tech]
        for type_name in sigs.type_names:
            idx = sigs.of_type(type_name)
            total = MATRIX_GENES[type_name]
            covered = int(round(r.uniform(lo, hi) * total))
            n_cov = int((coverage[tech][idx] >= 0.5).sum())
            rows["technology"].append(tech)
            rows["signature_type"].append(type_name)
            rows["n_genes_total"].append(int(np.median(panel)))
            rows["n_matrix_genes"].append(total)
            rows["n_matrix_genes_covered"].append(covered)
            rows["matrix_gene_coverage"].append(covered / total)
            rows["n_targets"].append(idx.size)
            rows["n_targets_covered"].append(n_cov)
            rows["target_coverage"].append(n_cov / idx.size)
    ints = ("n_genes_total", "n_matrix_genes", "n_matrix_genes_covered", "n_targets", "n_targets_covered")
    writer.csv(T("spatial_gene_coverage"), {
        **{k: (np.array(v, dtype=np.int32) if k in ints else v) for k, v in rows.items()},
        "matrix_gene_coverage": r4(rows["matrix_gene_coverage"]),
        "target_coverage": r4(rows["target_coverage"]),
    })


def _coordinates(writer: Writer, seed: int, scale: Scale, sigs: Signatures, datasets, coverage,
                 effects, cell_types: dict) -> None:
    """Points as Gaussian cell-type blobs in a 6,500 um section; activity = RBF bumps + cell type."""
    max_points = scale.coordinate_points
    ids = np.char.add("cell_", np.char.zfill(np.arange(max_points).astype(str), 5))
    all_types = sorted({ct for v in cell_types.values() for ct in v})
    shown = [(t, n) for t, n in names.COORDINATE_SIGNATURES if sigs.find(t, n) is not None]
    shown_idx = np.array([sigs.find(t, n) for t, n in shown])
    coords: dict[str, list] = {k: [] for k in ("dataset", "cell", "x", "y", "cell_type")}
    acts: dict[str, list] = {k: [] for k in ("dataset", "cell", "signature", "activity")}
    for f, d in enumerate(datasets):
        r = rng(seed, "spatial_coordinates", d["dataset_id"])
        n = min(max_points, d["n_cells"])
        types = cell_types[d["dataset_id"]]
        centers = r.uniform(500.0, 6000.0, (len(types), 2))
        spread = r.uniform(300.0, 1200.0, len(types))
        ct = r.choice(len(types), n, p=r.dirichlet(np.full(len(types), 2.0)))
        xy = np.clip(centers[ct] + r.normal(0.0, 1.0, (n, 2)) * spread[ct, None], 0.0, 6500.0)
        coords["dataset"].append(np.full(n, f))
        coords["cell"].append(np.arange(n))
        coords["x"].append(np.round(xy[:, 0], 2))
        coords["y"].append(np.round(xy[:, 1], 2))
        type_codes = np.array([all_types.index(t) for t in types])
        coords["cell_type"].append(type_codes[ct])

        allowed = set(_allowed(d, coverage).tolist())
        keep = [j for j, s in enumerate(shown_idx) if s in allowed]
        if not keep:
            continue
        k = len(keep)
        bumps = r.uniform(0.0, 6500.0, (k, 4, 2))
        width = r.uniform(400.0, 1500.0, (k, 4))
        height = r.normal(0.0, 1.2, (k, 4))
        d2 = ((xy[None, :, None, :] - bumps[:, None, :, :]) ** 2).sum(axis=-1)  # [sig, point, bump]
        field = (height[:, None, :] * np.exp(-d2 / (2 * width[:, None, :] ** 2))).sum(axis=-1)
        ct_effect = np.stack([effects.cell_type(t)[shown_idx[keep]] for t in types])  # [type, sig]
        value = field + 0.5 * ct_effect[ct].T + r.normal(0.0, 0.3, (k, n))
        acts["dataset"].append(np.full(k * n, f))
        acts["cell"].append(np.tile(np.arange(n), k))
        acts["signature"].append(np.repeat(shown_idx[keep], n))
        acts["activity"].append(r4(np.clip(value, -6, 6)).ravel())
    dataset_ids = [d["dataset_id"] for d in datasets]
    c = {k: np.concatenate(v) for k, v in coords.items()}
    writer.csv(T("spatial_coordinates"), {
        "dataset_id": cat(c["dataset"], dataset_ids), "cell_id": cat(c["cell"], ids),
        "x": c["x"], "y": c["y"], "cell_type": cat(c["cell_type"], all_types)})
    a = {k: np.concatenate(v) for k, v in acts.items()}
    writer.csv(T("spatial_coordinate_activity"), {
        "dataset_id": cat(a["dataset"], dataset_ids), "cell_id": cat(a["cell"], ids),
        "signature": cat(a["signature"], sigs.names),
        "signature_type": cat(sigs.types[a["signature"]], sigs.type_names),
        "activity": a["activity"]})
