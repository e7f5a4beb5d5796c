"""scAtlas demo sources: the normal organ atlas and the pan-cancer atlas, as the real pipeline
derives them (scripts/03_scatlas_analysis.py, 06_preprocess_viz_data.py, 08_scatlas_immune_analysis.py).

Two latent pseudobulk matrices carry every number:
- normal Z_N[column, signature], one column per organ x cell type: scatlas_celltypes *is* Z_N;
  organ means, specificity and the top-10 table are computed from it with P03's formulas, the
  normal boxplots of adjacent_tissue from it too;
- cancer Z_C[column, signature], one column per tissue (Tumor, Adjacent, Blood) x subCluster x
  cancer type with >= 10 cells and a modal donor: cancer_types, immune infiltration, T-cell
  exhaustion, CAFs and the tumour vs adjacent analysis are means, counts and tests over its
  columns, selected by P08's name rules (each subCluster's class is written down once below).
Paired donors around Z_C give cancer_comparison; organ_cancer_matrix joins the two sides over the
real organ -> cancer map. The single-cell summaries are drawn per atlas over its cellType1 names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from builders.demo_data import names
from builders.demo_data._io import Writer, cat, to_table
from builders.demo_data._scale import Signatures
from builders.demo_data._stats import (
    bh, lognormal_counts, mwu_asymptotic, mwu_exact_two_sided, p_correlation, p_two_sided, r4, rng,
)
from builders.demo_data.atlas.common import ATLAS_CELLS, AtlasDemo, sig_columns
from cytoatlas.domains.atlas import DOMAIN
from cytoatlas.domains.atlas.scatlas import IMMUNE_CATEGORIES

T = DOMAIN.table
V = "visualization/data/"
TISSUES = ("Tumor", "Adjacent", "Blood")
N_DONORS_NORMAL = 317  # the real atlas's (EMBEDDED_STATS); normal donors are not modelled
# subCluster -> (profile name, first immune category or Other, TME class, T subset, T state, CAF class
# of a fibroblast or None), each as 08_scatlas_immune_analysis.py classifies the name (subCluster
# prefixes first: CD4T/CD8T -> T_cell, so no subCluster is CD8_T/CD4_T/Treg; 'cd8' before 'cd4'
# before 'treg' for the subset, so the Treg subCluster is CD4; exhausted > cytotoxic > memory > naive).
SUBCLUSTERS = {
    "Epi_Malignant_EPCAM": ("Malignant cell", "Other", "Malignant", None, None, None),
    "CD8T05_Tex_PDCD1": ("CD8 T exhausted", "T_cell", "Immune", "CD8", "exhausted", None),
    "CD8T06_Tex_CXCL13": ("CD8 T exhausted CXCL13", "T_cell", "Immune", "CD8", "exhausted", None),
    "CD8T02_Tem_GZMK": ("CD8 T effector memory", "T_cell", "Immune", "CD8", "cytotoxic", None),
    "CD8T04_Tcm_IL7R": ("CD8 T central memory", "T_cell", "Immune", "CD8", "memory", None),
    "CD4T01_Tn_CCR7": ("CD4 T naive", "T_cell", "Immune", "CD4", "naive", None),
    "CD4T08_Treg_FOXP3": ("Treg", "T_cell", "Immune", "CD4", "other_tcell", None),
    "M09_Mph_SPP1": ("SPP1+ macrophage", "Macrophage", "Immune", None, None, None),
    "M05_Mo_CD14": ("Monocyte CD14", "Monocyte", "Immune", None, None, None),
    "M02_cDC2_CD1C": ("cDC2", "DC", "Immune", None, None, None),
    "M13_Neu_CXCL8": ("Neutrophil", "Neutrophil", "Immune", None, None, None),
    "M15_Mast_TPSAB1": ("Mast cell", "Mast", "Immune", None, None, None),
    "I01_NK_FCGR3A": ("NK cell", "NK", "Immune", None, None, None),
    "I08_ILC3_KIT": ("ILC3", "ILC", "Immune", None, None, None),
    "B01_Naive_TCL1A": ("B_naive", "B_cell", "Immune", None, None, None),
    "S22_iCAF_CXCL12": ("iCAF", "Other", "Stromal", None, None, "iCAF"),
    "S23_myCAF_ACTA2": ("myCAF", "Other", "Stromal", None, None, "myCAF"),
    "S24_apCAF_HLA-DRA": ("apCAF", "Other", "Stromal", None, None, "apCAF"),
    "S05_Fb_PI16": ("Fibroblast PI16", "Other", "Stromal", None, None, "Other"),
    "E01_Endo_ACKR1": ("Endothelial venous", "Other", "Stromal", None, None, None),
    "B12_Plasma_IGHA2": ("Plasma cell", "B_cell", "Immune", None, None, None),
    "M03_pDC_LILRA4": ("pDC", "DC", "Immune", None, None, None),
    "CD4T03_Tfh_CXCL13": ("Tfh", "T_cell", "Immune", "CD4", "other_tcell", None),
    "M07_Mph_C1QC": ("C1QC+ macrophage", "Macrophage", "Immune", None, None, None),
    "S15_Peri_RGS5": ("Pericyte", "Other", "Stromal", None, None, None),
    "CD4T05_Tem_ANXA1": ("CD4 T memory", "T_cell", "Immune", "CD4", "memory", None),
    "E03_Lymph_PROX1": ("Lymphatic endothelial", "Other", "Stromal", None, None, None),
    "Epi_Cycling_MKI67": ("Malignant cycling", "Other", "Malignant", None, None, None),
    "M06_Mo_FCGR3A": ("Monocyte FCGR3A", "Monocyte", "Immune", None, None, None),
    "I02_NK_XCL1": ("NK cell XCL1", "NK", "Immune", None, None, None),
    "S12_Fb_COL1A1": ("Myofibroblast", "Other", "Stromal", None, None, "myCAF"),
    "M01_cDC1_CLEC9A": ("cDC1", "DC", "Immune", None, None, None),
    "CD8T03_Temra_GZMB": ("CD8 T effector", "T_cell", "Immune", "CD8", "cytotoxic", None),
    "S20_SMC_MYH11": ("Smooth muscle", "Other", "Stromal", None, None, None),
    "B05_Memory_CD27": ("B_memory", "B_cell", "Immune", None, None, None),
    "M18_Mph_LYVE1": ("Macrophage LYVE1", "Macrophage", "Immune", None, None, None),
}
assert set(SUBCLUSTERS) == set(names.SCATLAS_CANCER_SUBCLUSTERS)
BLOOD_CATEGORIES = {"T_cell", "NK", "B_cell", "Monocyte", "DC", "Neutrophil"}
ADJACENT_TYPES = ("CRC", "HCC", "LUAD", "KIRC", "HNSC", "ICC", "cSCC", "BRCA", "STAD")
CANCER_LABELS = {  # 06_preprocess_viz_data.py, cancer_types.json
    "BRCA": "Breast Cancer", "CRC": "Colorectal Cancer", "ESCA": "Esophageal Cancer",
    "HCC": "Hepatocellular Carcinoma", "HNSC": "Head & Neck Squamous", "ICC": "Intrahepatic Cholangiocarcinoma",
    "KIRC": "Kidney Renal Clear Cell", "LUAD": "Lung Adenocarcinoma", "LYM": "Lymphoma",
    "PAAD": "Pancreatic Adenocarcinoma", "STAD": "Stomach Adenocarcinoma", "THCA": "Thyroid Carcinoma",
    "cSCC": "Cutaneous Squamous Cell",
}
CANCER_ORGAN_MAP = {"CRC": "Colon", "HCC": "Liver", "HNSC": "Oral", "ICC": "Liver", "KIRC": "Kidney",
                    "LUAD": "Lung", "cSCC": "Skin"}  # adjacent_tissue.json, as written
ORGAN_CANCER_MAP = {  # organ_cancer_matrix.json's fixed map
    "Liver": ["HCC", "ICC", "LIHC"], "Lung": ["LUAD", "LUSC", "NSCLC"], "Breast": ["BRCA"], "Colon": ["CRC", "COAD"],
    "Kidney": ["KIRC", "KIRP"], "Pancreas": ["PAAD"], "Stomach": ["STAD"], "Prostate": ["PRAD"], "Ovary": ["OV"],
    "Skin": ["SKCM", "ALM"], "Thyroid": ["THCA"],
}
STUDY_NOTES = {"KIRP": ("GSE152938", "no malignant cells in primary tumor samples"),
               "TGCT": ("GSE197778", "no malignant cells in primary tumor samples"),
               "NET": ("GSE140312", "no immune cells (single donor)")}
TUMOR_PROGRAMME = (("TGFB1", 0.4), ("VEGFA", 0.5), ("IL6", 0.3), ("SPP1", 0.4), ("IL10", 0.3), ("GDF15", 0.4))


def generate(writer: Writer, demo: AtlasDemo) -> None:
    normal = _Normal.build(demo)
    _normal_tables(writer, demo, normal)
    _singlecell(writer, demo)
    cancer = _Cancer.build(demo)
    z = cancer.latent(demo)
    cancer_means = _cancer_types(writer, demo, cancer, z)
    _organ_cancer_matrix(writer, demo, normal, cancer, cancer_means)
    _cancer_comparison(writer, demo, cancer, z)
    _adjacent(writer, demo, normal, cancer, z)
    _immune(writer, demo, cancer, z)
    _exhaustion(writer, demo, cancer, z)
    _caf(writer, demo, cancer, z)


def summary(demo: AtlasDemo) -> dict:
    """This atlas's figures and name lists in summary_stats.json (the `scatlas` object): the ones
    06_preprocess_viz_data.py writes, plus the atlas-level ones only the legacy dashboard's
    EMBEDDED_STATS shows (cells, donors, cancer cell types and types)."""
    normal, cancer = _Normal.build(demo), _Cancer.build(demo)
    S = len(demo.sigs)
    return {
        "n_organs": len(demo.organs), "n_cell_types": len(normal.cell_types),
        "n_organ_signatures": len(demo.organs) * S, "n_celltype_signatures": len(normal.organ) * S,
        "organs": sorted(demo.organs),
        "cytosig_signatures": sorted(demo.sigs.names[i] for i in demo.sigs.of_type("CytoSig")),
        "n_cell_types_normal": len(normal.cell_types), "n_cell_types_cancer": len(cancer.subclusters),
        "n_cancer_types": len(cancer.types), "n_donors_normal": N_DONORS_NORMAL,
        "n_donors_cancer": len(cancer.donor_type),
        "n_cells_normal": ATLAS_CELLS["scAtlas_Normal"], "n_cells_cancer": ATLAS_CELLS["scAtlas_Cancer"],
    }


# --- the normal atlas ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Normal:
    """Z_N: one pseudobulk column per organ x cell type (4-decimal values, as the file holds them)."""

    organ: np.ndarray  # [N] index into demo.organs
    cell_type: np.ndarray  # [N] index into cell_types
    cell_types: list[str]  # in order of first appearance
    z: np.ndarray  # [N, S]

    @classmethod
    def build(cls, demo: AtlasDemo) -> "_Normal":
        S = len(demo.sigs)
        organ, types, values = [], [], []
        for o, name in enumerate(demo.organs):
            r = rng(demo.seed, "scatlas_celltypes", name)
            shift = r.normal(0.0, 0.25, S)
            for ct in demo.organ_types[name]:
                organ.append(o)
                types.append(ct)
                values.append(demo.profiles.cell_type(ct) + shift + r.normal(0.0, 0.15, S))
        cell_types = list(dict.fromkeys(types))
        return cls(np.array(organ), np.array([cell_types.index(t) for t in types]), cell_types,
                   r4(np.clip(np.stack(values), -6, 6)))

    def organ_stats(self, n_organs: int) -> dict[str, np.ndarray]:
        """P03 compute_organ_signatures over the columns: organ mean, other-organ mean, specificity."""
        onehot = (self.organ[None, :] == np.arange(n_organs)[:, None]).astype(np.float64)
        n = onehot.sum(axis=1)
        total = self.z.sum(axis=0)
        mean = onehot @ self.z / n[:, None]
        other = (total[None, :] - onehot @ self.z) / (len(self.organ) - n)[:, None]
        return {"mean": mean, "other": other, "n": n, **_specificity(self.z, mean)}


def _specificity(z: np.ndarray, mean: np.ndarray) -> dict[str, np.ndarray]:
    """(group mean - mean of all columns) / SD of all columns (ddof 0; an SD under 1e-6 counts 1)."""
    sd = z.std(axis=0)
    sd[sd < 1e-6] = 1.0
    return {"specificity": (mean - z.mean(axis=0)[None, :]) / sd[None, :]}


def _normal_tables(writer: Writer, demo: AtlasDemo, normal: _Normal) -> None:
    sigs, S, O = demo.sigs, len(demo.sigs), len(demo.organs)
    N = len(normal.organ)
    cytosig = sigs.of_type("CytoSig")
    # scAtlas_celltypes.json: the columns themselves, with P06's side lists.
    # top_cell_types: the 100 with the largest sample variance of their CytoSig values (all organs).
    ct_var = np.array([normal.z[normal.cell_type == k][:, cytosig].var(ddof=1) for k in range(len(normal.cell_types))])
    top = [normal.cell_types[k] for k in np.argsort(-ct_var, kind="stable")[:100]]
    type_sigs = {t: sorted(sigs.names[i] for i in sigs.of_type(t)) for t in sigs.type_names}
    table = to_table(T("scatlas_celltypes"), {
        "organ": cat(np.repeat(normal.organ, S), demo.organs),
        "cell_type": cat(np.repeat(normal.cell_type, S), normal.cell_types),
        **sig_columns(sigs, np.tile(np.arange(S), N)),
        "mean_activity": normal.z.ravel(), "n_cells": np.ones(N * S, dtype=np.int64),
    })
    writer.json_object(V + "scatlas_celltypes.json", [
        ("data", table), ("all_cell_types", normal.cell_types), ("top_cell_types", top),
        ("organs", sorted(demo.organs)), ("cytosig_signatures", type_sigs["CytoSig"]),
        ("secact_signatures", type_sigs["SecAct"]),
        ("signature_counts", {t: len(v) for t, v in type_sigs.items()})], table.num_rows)

    st = normal.organ_stats(O)
    organ_idx, sig_idx = np.repeat(np.arange(O), S), np.tile(np.arange(S), O)
    writer.json(T("scatlas_organs"), {
        "organ": cat(organ_idx, demo.organs), **sig_columns(sigs, sig_idx),
        "mean_activity": r4(st["mean"]).ravel(), "specificity_score": r4(st["specificity"]).ravel(),
        "n_cells": np.repeat(st["n"].astype(np.int64), S),
    })
    # Top 10 by specificity per organ and signature type, descending (pandas nlargest: ties keep order).
    picks = [(o, idx[np.argsort(-st["specificity"][o, idx], kind="stable")[:10]])
             for o in range(O) for idx in (sigs.of_type(t) for t in sigs.type_names)]
    o_idx = np.concatenate([np.full(p.size, o) for o, p in picks])
    s_idx = np.concatenate([p for _, p in picks])
    writer.json(T("scatlas_organs_top"), {
        "organ": cat(o_idx, demo.organs), **sig_columns(sigs, s_idx),
        "mean_activity": r4(st["mean"][o_idx, s_idx]), "other_mean": r4(st["other"][o_idx, s_idx]),
        "activity_diff": st["mean"][o_idx, s_idx] - st["other"][o_idx, s_idx],  # P06 leaves it unrounded
        "specificity_score": r4(st["specificity"][o_idx, s_idx]),
        "n_cells": st["n"][o_idx].astype(np.int64),
    })


# --- single-cell summaries -----------------------------------------------------------------------


def _singlecell(writer: Writer, demo: AtlasDemo) -> None:
    """Per atlas, one draw over its cellType1 names and every signature; each file is the slice of
    one signature type (as 07e writes them from one pass over the cells)."""
    sigs, S = demo.sigs, len(demo.sigs)
    for part, atlas in (("normal", "scAtlas_Normal"), ("cancer", "scAtlas_Cancer")):
        types = demo.cell_types[atlas]
        r = rng(demo.seed, "scatlas_singlecell", atlas)
        mean = r4(np.clip(np.stack([demo.profiles.cell_type(ct) for ct in types]) * 0.8
                          + r.normal(0.0, 0.1, (len(types), S)), -6, 6))
        std = r4(r.uniform(0.6, 1.6, (len(types), S)))
        low = r4(mean - r.uniform(2.5, 4.0, (len(types), S)) * std)
        high = r4(mean + r.uniform(2.5, 4.0, (len(types), S)) * std)
        n_cells = lognormal_counts(r, ATLAS_CELLS[atlas] / max(len(types), 1), 1.0, len(types)) + 10
        for kind in sigs.type_names:
            idx = sigs.of_type(kind)
            writer.json(T(f"scatlas_{part}_singlecell_{kind.lower()}"), {
                "cell_type": cat(np.repeat(np.arange(len(types)), idx.size), types),
                **sig_columns(sigs, np.tile(idx, len(types))), "atlas": atlas,
                "mean_activity": mean[:, idx].ravel(), "std_activity": std[:, idx].ravel(),
                "min_activity": low[:, idx].ravel(), "max_activity": high[:, idx].ravel(),
                "n_cells": np.repeat(n_cells, idx.size),
            })


# --- the cancer atlas ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cancer:
    """The cancer pseudobulk design: columns (tissue x subCluster x cancer type) and donors."""

    types: list[str]
    subclusters: list[str]
    col_type: np.ndarray  # [N] index into types
    col_tissue: np.ndarray  # [N] index into TISSUES
    col_sub: np.ndarray  # [N] index into subclusters
    col_cells: np.ndarray  # [N]
    col_donor: np.ndarray  # [N] modal donor, index into donor_type
    donor_type: np.ndarray  # [D] cancer type of each donor
    donor_tissues: np.ndarray  # [D, 3] bool: the donor has tissue t

    @classmethod
    def build(cls, demo: AtlasDemo) -> "_Cancer":
        scale = demo.scale
        types = list(names.SCATLAS_CANCER_TYPES[:scale.scatlas_cancer_types])
        subs = list(names.SCATLAS_CANCER_SUBCLUSTERS[:scale.scatlas_subclusters])
        r = rng(demo.seed, "scatlas_cancer", "design")
        per = scale.scatlas_donors_per_cancer_type
        donor_type = np.repeat(np.arange(len(types)), per)
        has = np.zeros((donor_type.size, 3), dtype=bool)
        has[:, 0] = True
        adjacent = np.array([t in ADJACENT_TYPES for t in types])
        blood = np.arange(len(types)) % 3 == 0
        has[:, 1] = adjacent[donor_type] & (r.random(donor_type.size) < 0.6)
        has[:, 2] = blood[donor_type] & (r.random(donor_type.size) < 0.5)
        for c in range(len(types)):  # every tissue a cancer type has, at least two donors have
            for t in (1, 2):
                if (adjacent, blood)[t - 1][c]:
                    has[np.flatnonzero(donor_type == c)[:2], t] = True
        info = [SUBCLUSTERS[s] for s in subs]
        p = np.array([[1.0 if i[2] == "Malignant" else 0.85,
                       0.0 if i[2] == "Malignant" else 0.7,
                       0.75 if i[1] in BLOOD_CATEGORIES else 0.0] for i in info])  # [K, 3]
        c_idx, t_idx, k_idx = (a.ravel() for a in np.meshgrid(np.arange(len(types)), np.arange(3),
                                                               np.arange(len(subs)), indexing="ij"))
        tissue_ok = np.where(t_idx == 0, True, np.where(t_idx == 1, adjacent[c_idx], blood[c_idx]))
        keep = tissue_ok & (r.random(c_idx.size) < p[k_idx, t_idx])
        c_idx, t_idx, k_idx = c_idx[keep], t_idx[keep], k_idx[keep]
        mean_cells = np.where([info[k][2] == "Malignant" for k in k_idx], 3000.0, 600.0)
        cells = lognormal_counts(r, mean_cells, 1.0, c_idx.size) + 10
        donors = np.empty(c_idx.size, dtype=np.int64)  # modal donor: one of the type's donors with the tissue
        for i, (c, t) in enumerate(zip(c_idx.tolist(), t_idx.tolist())):
            pool = np.flatnonzero((donor_type == c) & has[:, t])
            donors[i] = pool[r.integers(pool.size)]
        return cls(types, subs, c_idx, t_idx, k_idx, cells, donors, donor_type, has)

    def latent(self, demo: AtlasDemo) -> np.ndarray:
        """Z_C[column, signature] = profile(subCluster) + cancer type shift + tissue shift + noise."""
        sigs, S = demo.sigs, len(demo.sigs)
        profile = np.stack([demo.profiles.cell_type(SUBCLUSTERS[s][0]) for s in self.subclusters])
        shift = np.stack([demo.profiles.disease(t) for t in self.types])
        r = rng(demo.seed, "scatlas_cancer", "latent")
        tissue = r.normal(0.0, 0.08, (3, S))
        for name, boost in TUMOR_PROGRAMME:
            tissue[0, sigs.indices("CytoSig", [name]) + sigs.indices("SecAct", [name])] += boost
        tissue[2] -= 0.15
        z = profile[self.col_sub] * 0.9 + shift[self.col_type] + tissue[self.col_tissue]
        return np.clip(z + r.normal(0.0, 0.3, z.shape), -6, 6)

    def info(self, field: int) -> np.ndarray:
        """One SUBCLUSTERS attribute per column (0 profile, 1 category, 2 TME, 3 subset, 4 state, 5 CAF)."""
        values = np.array([SUBCLUSTERS[s][field] or "" for s in self.subclusters], dtype=object)
        return values[self.col_sub]

    def name_has(self, *parts: str) -> np.ndarray:
        """Columns whose subCluster name contains one of `parts` (case-insensitive)."""
        hit = np.array([any(p.lower() in s.lower() for p in parts) for s in self.subclusters])
        return hit[self.col_sub]


def _group_mean(z: np.ndarray, group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Unweighted mean of the rows of `z` per group code (-1 = in no group): ([G, S], n [G])."""
    onehot = (group[None, :] == np.arange(n_groups)[:, None]).astype(np.float64)
    n = onehot.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return onehot @ z / n[:, None], n


def _group_sd(z: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Sample SD (ddof 1) per group; NaN for a group of one."""
    mean, n = _group_mean(z, group, n_groups)
    sq, _ = _group_mean(z * z, group, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (sq - mean * mean) * (n / (n - 1))[:, None]
    return np.sqrt(np.maximum(var, 0.0))


def _mwu_p(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sided Mann-Whitney U p per row of a [S, n1] vs b [S, n2] (continuous values: no ties);
    exact when a sample has 8 values or fewer, else the normal approximation (scipy's 'auto')."""
    n1, n2 = a.shape[1], b.shape[1]
    ranks = np.argsort(np.argsort(np.concatenate([a, b], axis=1), axis=1, kind="stable"), axis=1) + 1
    u1 = ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2.0
    if min(n1, n2) <= 8:
        return mwu_exact_two_sided(u1, n1, n2)
    return mwu_asymptotic(u1, n1, n2)


def _records(spec_name: str, keys: dict, stats: dict, sigs: Signatures, lower: bool = False,
             order: str = "type_first", drop: tuple[str, ...] = ()) -> pa.Table:
    """Long records of `rows` groups x every signature: `keys` hold one value per group, `stats`
    one [groups, S] matrix (or one value per group, repeated over signatures). P08 writes all of a
    signature type's records before the next type's ("type_first")."""
    S = len(sigs)
    first = next(v for v in keys.values() if not isinstance(v, str))
    G = len(first[0] if isinstance(first, tuple) else first)
    order_sigs = np.concatenate([sigs.of_type(t) for t in sigs.type_names])
    if order == "type_first":  # type, group, signature
        g_idx = np.concatenate([np.repeat(np.arange(G), sigs.of_type(t).size) for t in sigs.type_names])
        s_idx = np.concatenate([np.tile(sigs.of_type(t), G) for t in sigs.type_names])
    else:  # group, signature
        g_idx, s_idx = np.repeat(np.arange(G), S), np.tile(order_sigs, G)
    columns = {k: (v if isinstance(v, str) else v[g_idx] if isinstance(v, np.ndarray) else _take(v, g_idx))
               for k, v in keys.items()}
    for k, v in stats.items():
        v = np.asarray(v)
        columns[k] = v[g_idx, s_idx] if v.ndim == 2 else v[g_idx]
    type_names = [t.lower() for t in sigs.type_names] if lower else sigs.type_names
    columns.update({"signature": cat(s_idx, sigs.names), "signature_type": cat(sigs.types[s_idx], type_names)})
    return to_table(T(spec_name), columns, drop=drop)


def _take(values, idx: np.ndarray):
    """A string column: (codes, categories) or a list of strings, taken at `idx`."""
    if isinstance(values, tuple):
        codes, categories = values
        return cat(np.asarray(codes)[idx], categories)
    return [values[i] for i in idx.tolist()]


def _cancer_types(writer: Writer, demo: AtlasDemo, cancer: _Cancer, z: np.ndarray) -> np.ndarray:
    """cancer_types.json: P03 compute_organ_signatures over 'cancerType' (every tissue's columns)."""
    C, sigs = len(cancer.types), demo.sigs
    mean, n = _group_mean(z, cancer.col_type, C)
    total = z.sum(axis=0)
    other = (total[None, :] - mean * n[:, None]) / (len(cancer.col_type) - n)[:, None]
    spec = _specificity(z, mean)["specificity"]
    table = _records("cancer_types", {"cancer_type": (np.arange(C), cancer.types)}, {
        "mean_activity": r4(mean), "other_mean": r4(other), "activity_diff": r4(mean - other),
        "specificity_score": r4(spec), "n_cells": n.astype(np.int64)}, sigs)
    type_sigs = {t: sorted(sigs.names[i] for i in sigs.of_type(t)) for t in sigs.type_names}
    writer.json_object(V + "cancer_types.json", [
        ("data", table), ("cancer_types", sorted(cancer.types)),
        ("cancer_labels", CANCER_LABELS), ("cytosig_signatures", type_sigs["CytoSig"]),
        ("secact_signatures", type_sigs["SecAct"][:100]), ("total_secact", len(type_sigs["SecAct"]))],
        table.num_rows + len(CANCER_LABELS))
    return mean


def _organ_cancer_matrix(writer: Writer, demo: AtlasDemo, normal: _Normal, cancer: _Cancer,
                         cancer_means: np.ndarray) -> None:
    """organ_cancer_matrix.json: P06's join of normal organ and cancer type CytoSig means over its
    fixed organ -> cancer map (organs matched by lowercase substring)."""
    organ_mean = normal.organ_stats(len(demo.organs))["mean"]
    cytosig = demo.sigs.of_type("CytoSig")
    by_name = sorted(cytosig, key=lambda i: demo.sigs.names[i])  # pandas groupby order
    normal_organs, cancer_types, parts = [], [], []
    for organ, codes in ORGAN_CANCER_MAP.items():
        matched = [o for o, name in sorted(enumerate(demo.organs), key=lambda x: x[1])
                   if organ.lower() in name.lower()]
        if not matched:
            continue
        normal_organs.append(organ)
        for code in codes:
            if code not in cancer.types:
                continue
            if code not in cancer_types:
                cancer_types.append(code)
            c = cancer.types.index(code)
            for o in matched:
                parts.append((organ, code, organ_mean[o, by_name], cancer_means[c, by_name]))
    k = len(by_name)
    table = to_table(T("organ_cancer_matrix"), {
        "organ": [p[0] for p in parts for _ in range(k)], "cancer_type": [p[1] for p in parts for _ in range(k)],
        "signature": cat(np.tile(by_name, len(parts)), demo.sigs.names),
        "normal_activity": r4(np.concatenate([p[2] for p in parts])) if parts else np.zeros(0),
        "cancer_activity": r4(np.concatenate([p[3] for p in parts])) if parts else np.zeros(0),
        "difference": r4(np.concatenate([p[3] - p[2] for p in parts])) if parts else np.zeros(0),
    }, drop=("signature_type",))
    writer.json_object(V + "organ_cancer_matrix.json", [
        ("normal_organs", normal_organs), ("cancer_types", cancer_types), ("comparisons", table)], table.num_rows)


def _cancer_comparison(writer: Writer, demo: AtlasDemo, cancer: _Cancer, z: np.ndarray) -> None:
    """cancer_comparison.json: donors with tumour and adjacent tissue; per donor x subCluster present
    in both, the donor's mean activity in each (the columns' values plus donor noise); per
    subCluster x signature over >= 3 pairs: means, mean and population SD of tumour - adjacent, and
    the paired t-test p (normal approximation of the t statistic)."""
    sigs, S = demo.sigs, len(demo.sigs)
    r = rng(demo.seed, "cancer_comparison")
    paired = np.flatnonzero(cancer.donor_tissues[:, 0] & cancer.donor_tissues[:, 1])
    col = {(c, t, k): i for i, (c, t, k) in enumerate(zip(cancer.col_type.tolist(), cancer.col_tissue.tolist(),
                                                           cancer.col_sub.tolist()))}
    pairs = [(k, col[c, 0, k], col[c, 1, k]) for d in paired.tolist() for c in [int(cancer.donor_type[d])]
             for k in range(len(cancer.subclusters)) if (c, 0, k) in col and (c, 1, k) in col]
    keep = r.random(len(pairs)) < 0.75
    pairs = [p for p, ok in zip(pairs, keep) if ok]
    k_of = np.array([p[0] for p in pairs], dtype=np.int64)
    tumor = z[[p[1] for p in pairs]] + r.normal(0.0, 0.35, (len(pairs), S))
    adjacent = z[[p[2] for p in pairs]] + r.normal(0.0, 0.35, (len(pairs), S))
    K = len(cancer.subclusters)
    mean_t, n = _group_mean(tumor, k_of, K)
    mean_a, _ = _group_mean(adjacent, k_of, K)
    diff = tumor - adjacent
    mean_d, _ = _group_mean(diff, k_of, K)
    sd1 = _group_sd(diff, k_of, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd0 = sd1 * np.sqrt((n - 1) / n)[:, None]
        t = mean_d / (sd1 / np.sqrt(n)[:, None])
    p = np.where(np.isfinite(t), p_two_sided(t), 1.0)
    groups = np.flatnonzero(n >= 3)
    table = _records("cancer_comparison", {
        "cell_type": (groups, cancer.subclusters)}, {
        "mean_tumor": r4(mean_t[groups]), "mean_adjacent": r4(mean_a[groups]),
        "mean_difference": r4(mean_d[groups]), "std_difference": r4(sd0[groups]),
        "n_pairs": n[groups].astype(np.int64), "p_value": np.round(p[groups], 6)}, sigs,
        drop=("n_paired_donors", "analysis_type"))
    type_sigs = {t: sorted(sigs.names[i] for i in sigs.of_type(t)) for t in sigs.type_names}
    writer.json_object(V + "cancer_comparison.json", [
        ("data", table), ("cell_types", sorted(cancer.subclusters[g] for g in groups)),
        ("cytosig_signatures", type_sigs["CytoSig"]), ("secact_signatures", type_sigs["SecAct"]),
        ("n_paired_donors", int(paired.size)), ("analysis_type", "paired_singlecell")], table.num_rows)


def _table(**columns) -> pa.Table:
    """Records in the given field order (for files whose records no single spec describes)."""
    return pa.table({k: v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(
        v.tolist() if isinstance(v, np.ndarray) else v) for k, v in columns.items()})


def _box(values: np.ndarray, label: str) -> pa.StructArray:
    """P06 compute_boxplot_stats per row of values [rows, n]: quantiles (linear), mean, n, label."""
    q = np.percentile(values, [0, 25, 50, 75, 100], axis=1)
    fields = {"min": r4(q[0]), "q1": r4(q[1]), "median": r4(q[2]), "q3": r4(q[3]), "max": r4(q[4]),
              "mean": r4(values.mean(axis=1)), "n": np.full(values.shape[0], values.shape[1], dtype=np.int64)}
    arrays = [pa.array(v) for v in fields.values()] + [pa.array([label] * values.shape[0])]
    return pa.StructArray.from_arrays(arrays, names=[*fields, "label"])


def _adjacent(writer: Writer, demo: AtlasDemo, normal: _Normal, cancer: _Cancer, z: np.ndarray) -> None:
    """adjacent_tissue.json: Tumor vs Adjacent columns pooled (pan-cancer 'all') and per cancer type
    with >= 2 of each (boxplots + Mann-Whitney); the normal boxplots over every normal column."""
    sigs = demo.sigs
    order = np.concatenate([sigs.of_type(t) for t in sigs.type_names])  # CytoSig rows, then SecAct
    tumor, adjacent = cancer.col_tissue == 0, cancer.col_tissue == 1
    sig_cols = lambda idx: {"signature": cat(idx, sigs.names), "signature_type": cat(sigs.types[idx], sigs.type_names)}
    zt, za = z[tumor][:, order].T, z[adjacent][:, order].T
    boxplot = _table(**sig_cols(order), cancer_type=["all"] * order.size, adjacent=_box(za, "Adjacent"),
                     tumor=_box(zt, "Tumor"), normal=_box(normal.z[:, order].T, "Normal"))
    # Per cancer type (P06 loops signature type, cancer type, signature).
    parts, p_cancer = [], {t: [] for t in sigs.type_names}
    for kind in sigs.type_names:
        idx = sigs.of_type(kind)
        for c, code in enumerate(cancer.types):
            ct, ca = tumor & (cancer.col_type == c), adjacent & (cancer.col_type == c)
            if ct.sum() < 2 or ca.sum() < 2:
                continue
            vt, va = z[ct][:, idx].T, z[ca][:, idx].T
            p = _mwu_p(vt, va)
            p_cancer[kind].append(p)
            mt, ma = vt.mean(axis=1), va.mean(axis=1)
            parts.append(_table(**sig_cols(idx), cancer_type=[code] * idx.size, adjacent=_box(va, "Adjacent"),
                                tumor=_box(vt, "Tumor"), mean_tumor=r4(mt), mean_adjacent=r4(ma),
                                activity_diff=r4(ma - mt), pvalue=p, neg_log10_pval=r4(-np.log10(np.maximum(p, 1e-100))),
                                n_tumor=np.full(idx.size, vt.shape[1]), n_adjacent=np.full(idx.size, va.shape[1]),
                                direction=np.where(ma > mt, "up_in_adjacent", "up_in_tumor")))
    by_cancer = pa.concat_tables(parts) if parts else None
    # Pan-cancer differential: CytoSig from P03's rows (BH over its pan-cancer and per-cancer tests),
    # SecAct computed in P06 (BH over the SecAct pan-cancer tests only).
    rows = []
    for kind in sigs.type_names:
        idx = sigs.of_type(kind)
        vt, va = z[tumor][:, idx].T, z[adjacent][:, idx].T
        p = _mwu_p(va, vt)
        family = np.concatenate([p, *p_cancer[kind]]) if kind == "CytoSig" else p
        q = bh(family)[:idx.size]
        mt, ma = vt.mean(axis=1), va.mean(axis=1)
        rows.append(_table(**sig_cols(idx), cancer_type=["all"] * idx.size, mean_tumor=r4(mt), mean_adjacent=r4(ma),
                           activity_diff=r4(ma - mt), pvalue=p, qvalue=q,
                           neg_log10_pval=r4(-np.log10(np.maximum(p, 1e-100))),
                           n_tumor=np.full(idx.size, vt.shape[1]), n_adjacent=np.full(idx.size, va.shape[1]),
                           direction=np.where(ma > mt, "up_in_adjacent", "up_in_tumor")))
    tva = pa.concat_tables(rows)
    cancer_types = sorted(set(by_cancer.column("cancer_type").to_pylist())) if by_cancer else []
    significant = {k: int(((tva.column("qvalue").to_numpy() < 0.05)
                           & (np.asarray(tva.column("signature_type").to_pylist()) == k)).sum()) for k in sigs.type_names}
    type_sigs = {t: sorted(sigs.names[i] for i in sigs.of_type(t)) for t in sigs.type_names}
    n_rows = tva.num_rows + (by_cancer.num_rows * 3 if by_cancer else 0) + boxplot.num_rows * 3
    writer.json_object(V + "adjacent_tissue.json", [
        ("tumor_vs_adjacent", tva), ("by_cancer_type", by_cancer if by_cancer else []), ("boxplot_data", boxplot),
        ("cytosig_signatures", type_sigs["CytoSig"]), ("secact_signatures", type_sigs["SecAct"]),
        ("cancer_types", cancer_types), ("cancer_organ_map", CANCER_ORGAN_MAP),
        ("summary", {"n_tumor_samples": int(tumor.sum()), "n_adjacent_samples": int(adjacent.sum()),
                     "n_signatures_cytosig": len(type_sigs["CytoSig"]), "n_signatures_secact": len(type_sigs["SecAct"]),
                     "n_cancer_types": len(cancer_types), "n_significant_cytosig": significant["CytoSig"],
                     "n_significant_secact": significant["SecAct"]})], n_rows)


def _ratio(a: float, b: float, infinite):
    """P08's ratios: a / b; when b is 0, `infinite` if a > 0 else 0 (08 writes an infinite one as null)."""
    return round(a / b, 2) if b > 0 else (infinite if a > 0 else 0)


def _immune(writer: Writer, demo: AtlasDemo, cancer: _Cancer, z: np.ndarray) -> None:
    """immune_infiltration.json: tumour columns per cancer type; immune = a subCluster P08 classifies
    into an immune category."""
    sigs = demo.sigs
    category, tme = cancer.info(1), cancer.info(2)
    is_immune = category != "Other"
    cd8, treg = cancer.name_has("CD8"), cancer.name_has("Treg", "FOXP3")
    t_cells = np.isin(category, ["T_cell", "CD8_T", "CD4_T", "Treg"])
    myeloid = np.isin(category, ["Macrophage", "Monocyte", "DC", "Neutrophil"])
    tumor = cancer.col_tissue == 0
    order = np.concatenate([sigs.of_type(t) for t in sigs.type_names])
    groups, scalars, stats, tme_rows, composition = [], [], [], [], []
    for c, code in enumerate(cancer.types):
        cols = tumor & (cancer.col_type == c)
        cells = cancer.col_cells[cols].astype(np.float64)
        total, immune = cells.sum(), cells[is_immune[cols]].sum()
        by_cat = {k: cells[category[cols] == k].sum() for k in IMMUNE_CATEGORIES}
        n_cd8, n_treg = cells[cd8[cols]].sum(), cells[treg[cols]].sum()
        n_t, n_my = cells[t_cells[cols]].sum(), cells[myeloid[cols]].sum()
        n = int(cols.sum())
        if total >= 100:
            malignant = cells[tme[cols] == "Malignant"].sum()
            stromal, other = cells[tme[cols] == "Stromal"].sum(), cells[tme[cols] == "Other"].sum()
            detailed = n_cd8 > 0 or n_treg > 0
            note = STUDY_NOTES.get(code)
            note = (f"{note[0]}: {note[1]}" if note and ((code != "NET" and malignant == 0)
                                                          or (code == "NET" and immune == 0)) else None)
            tme_rows.append({
                "cancer_type": code, "total_cells": int(total), "malignant_cells": int(malignant),
                "immune_cells": int(immune), "stromal_cells": int(stromal), "other_cells": int(other),
                **{f"{k}_proportion": round(v / total, 4) for k, v in
                   (("malignant", malignant), ("immune", immune), ("stromal", stromal), ("other", other))},
                "n_samples": n, "n_donors": int(np.unique(cancer.col_donor[cols]).size),
                "cd8_treg_ratio": round(n_cd8 / n_treg, 2) if n_treg > 0 else None,
                "t_myeloid_ratio": round(n_t / n_my, 2) if n_my > 0 else None,
                "cd8_cells": int(n_cd8), "treg_cells": int(n_treg), "t_cells": int(n_t), "myeloid_cells": int(n_my),
                **{f"immune_{k.lower()}": round(v / immune, 4) if immune > 0 else 0.0 for k, v in by_cat.items()},
                "data_quality": ("high" if n >= 20 and detailed else "medium" if n >= 10 else "low" if n >= 5
                                 else "very_low"),
                "has_detailed_tcell_annotation": bool(detailed), "has_malignant_annotation": bool(malignant > 0),
                "sample_note": note})
            composition += [{"cancer_type": code, "cell_category": k, "cell_count": int(v),
                             "proportion_of_tme": round(v / total, 4),
                             "proportion_of_immune": round(v / immune, 4) if immune > 0 else 0.0,
                             "n_samples": int((category[cols] == k).sum()), "total_cells": int(total),
                             "immune_cells": int(immune)} for k, v in by_cat.items() if v > 0]
        if n < 5:
            continue
        values = z[cols][:, order]  # [n, S] in the file's signature order
        imm = is_immune[cols]
        with np.errstate(invalid="ignore"):
            m_imm = values[imm].mean(axis=0) if imm.any() else np.full(order.size, np.nan)
            m_non = values[~imm].mean(axis=0) if (~imm).any() else np.full(order.size, np.nan)
        rho = np.full(order.size, np.nan)
        if n > 5 and 0 < imm.sum() < n:  # Spearman of is-immune (tied ranks) vs activity
            ranks = np.argsort(np.argsort(values, axis=0, kind="stable"), axis=0) + 1.0
            n0 = (~imm).sum()
            x = np.where(imm, n0 + (imm.sum() + 1) / 2.0, (n0 + 1) / 2.0)
            x, ranks = x - x.mean(), ranks - ranks.mean(axis=0)
            rho = (x[:, None] * ranks).sum(axis=0) / np.sqrt((x * x).sum() * (ranks * ranks).sum(axis=0))
        p = np.where(np.isfinite(rho), np.round(p_correlation(np.nan_to_num(rho), n), 6), np.nan)
        groups.append(c)
        has_cd8 = n_cd8 > 0 or bool(cd8[cols].any())
        scalars.append({
            "immune_proportion": round(immune / total, 4) if total > 0 else 0.0, "total_cells": int(total),
            "immune_cells": int(immune), "n_samples": n,
            "cd8_treg_ratio": _ratio(n_cd8, n_treg, np.nan), "t_myeloid_ratio": _ratio(n_t, n_my, np.nan),
            "data_quality": "good" if n >= 10 and has_cd8 else "partial" if n >= 5 else "limited",
            **{f"prop_{k.lower()}": round(v / total, 4) if total > 0 else 0.0 for k, v in by_cat.items()},
            **{f"immune_{k.lower()}": round(v / immune, 4) if immune > 0 else 0.0 for k, v in by_cat.items()}})
        both = np.isfinite(m_imm) & np.isfinite(m_non)
        stats.append({"mean_immune_activity": r4(np.nan_to_num(m_imm)),
                      "mean_nonimmune_activity": r4(np.nan_to_num(m_non)),
                      "immune_enrichment": np.where(both, r4(m_imm - m_non), 0.0),
                      "correlation": r4(rho), "pvalue": p})
    full = np.empty((len(groups), len(sigs)))
    matrices = {}
    for key in stats[0] if stats else ():
        m = full.copy()
        for g, st in enumerate(stats):
            m[g, order] = st[key]
        matrices[key] = m
    per_group = {k: np.array([s[k] for s in scalars]) for k in (scalars[0] if scalars else ())}
    data = _records("immune_infiltration", {"cancer_type": (np.array(groups), cancer.types)},
                    {**per_group, **matrices}, sigs, order="group")
    spec_tme, spec_comp = T("immune_infiltration_tme_summary"), T("immune_infiltration_composition")
    tme_table = to_table(spec_tme, {c.name: [r[c.name] for r in tme_rows] for c in spec_tme.columns})
    comp_table = to_table(spec_comp, {c.name: [r[c.name] for r in composition] for c in spec_comp.columns})
    type_sigs = {t: [sigs.names[i] for i in sigs.of_type(t)] for t in sigs.type_names}
    writer.json_object(V + "immune_infiltration.json", [
        ("data", data), ("composition", comp_table), ("tme_summary", tme_table),
        ("cytosig_signatures", type_sigs["CytoSig"]), ("secact_signatures", type_sigs["SecAct"]),
        ("signatures", type_sigs["CytoSig"] + type_sigs["SecAct"]), ("cancer_types", list(cancer.types)),
        ("immune_categories", list(IMMUNE_CATEGORIES)),
        ("data_source", "Tumor tissue only (excludes Blood, Adjacent, Metastasis)"),
        ("analysis_note", "Immune proportions represent tumor-infiltrating immune cells in the TME")],
        data.num_rows + tme_table.num_rows + comp_table.num_rows)


def _exhaustion(writer: Writer, demo: AtlasDemo, cancer: _Cancer, z: np.ndarray) -> None:
    """exhaustion.json: the T-cell columns (every tissue) by P08's state and subset; signature types
    written lowercase, as P08 does."""
    sigs = demo.sigs
    subset, state = cancer.info(3), cancer.info(4)
    tcell = subset != ""
    states, comparisons, subsets = [], [], []
    for c, code in enumerate(cancer.types):
        ct = tcell & (cancer.col_type == c)
        if ct.sum() < 5:
            continue
        for s in dict.fromkeys(state[ct].tolist()):
            cols = ct & (state == s)
            if cols.sum() >= 2:
                states.append((code, s, cols))
        exhausted, other = ct & (state == "exhausted"), ct & np.isin(state, ["cytotoxic", "memory", "other_tcell"])
        if exhausted.sum() >= 2 and other.sum() >= 2:
            comparisons.append((code, exhausted, other))
    for sub in ("CD8", "CD4", "Treg"):
        cols = tcell & (subset == sub)
        if cols.sum() < 5:
            continue
        for c in dict.fromkeys(cancer.col_type[cols].tolist()):
            ct = cols & (cancer.col_type == c)
            if ct.sum() >= 3:
                subsets.append((cancer.types[c], sub, ct))
    cells = cancer.col_cells.astype(np.float64)
    mean = lambda sel: np.stack([z[m].mean(axis=0) for *_, m in sel]) if sel else np.zeros((0, len(sigs)))
    state_table = _records("exhaustion", {
        "cancer_type": [s[0] for s in states], "exhaustion_state": [s[1] for s in states]}, {
        "mean_activity": r4(mean(states)),
        "std_activity": r4(np.stack([z[m].std(axis=0, ddof=1) for *_, m in states])) if states else np.zeros((0, 0)),
        "n_samples": np.array([m.sum() for *_, m in states]), "n_cells": np.array([cells[m].sum() for *_, m in states])},
        sigs, lower=True)
    ex = mean([(None, e) for _, e, _ in comparisons])
    non = mean([(None, o) for *_, o in comparisons])
    pvals = np.stack([_p_rows(z[e], z[o]) for _, e, o in comparisons]) if comparisons else np.zeros((0, 0))
    comparison_table = _records("exhaustion_comparison", {"cancer_type": [c[0] for c in comparisons]}, {
        "mean_exhausted": r4(ex), "mean_nonexhausted": r4(non), "activity_diff": r4(ex - non),
        "pvalue": np.round(pvals, 6), "n_exhausted": np.array([e.sum() for _, e, _ in comparisons]),
        "n_nonexhausted": np.array([o.sum() for *_, o in comparisons])}, sigs, lower=True)
    subset_table = _records("exhaustion_by_subset", {
        "cancer_type": [s[0] for s in subsets], "tcell_subset": [s[1] for s in subsets]}, {
        "mean_activity": r4(mean(subsets)),
        "exhaustion_rate": np.array([round(cells[m & (state == "exhausted")].sum() / cells[m].sum(), 4)
                                     for *_, m in subsets]),
        "n_cells": np.array([cells[m].sum() for *_, m in subsets], dtype=np.int64),
        "n_samples": np.array([m.sum() for *_, m in subsets])}, sigs, lower=True)
    type_sigs = {t: [sigs.names[i] for i in sigs.of_type(t)] for t in sigs.type_names}
    writer.json_object(V + "exhaustion.json", [
        ("data", state_table), ("comparison", comparison_table), ("by_subset", subset_table),
        ("cytosig_signatures", type_sigs["CytoSig"]), ("secact_signatures", type_sigs["SecAct"]),
        ("exhaustion_states", ["exhausted", "cytotoxic", "memory", "naive", "other_tcell"]),
        ("tcell_subsets", ["CD8", "CD4", "Treg", "gdT", "MAIT"])],
        state_table.num_rows + comparison_table.num_rows + subset_table.num_rows)


def _p_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mann-Whitney p per signature of columns a [n1, S] vs b [n2, S]."""
    return _mwu_p(a.T, b.T)


def _caf(writer: Writer, demo: AtlasDemo, cancer: _Cancer, z: np.ndarray) -> None:
    """caf_signatures.json: fibroblast columns (every tissue), all CAFs per cancer type and per
    subtype; the fibroblast share of each cancer type's tumour tissue."""
    sigs = demo.sigs
    caf_class = cancer.info(5)
    fb = caf_class != ""
    cells = cancer.col_cells.astype(np.float64)
    overall = [(code, fb & (cancer.col_type == c)) for c, code in enumerate(cancer.types)
               if (fb & (cancer.col_type == c)).sum() >= 2]
    subtypes = []
    for k in dict.fromkeys(cancer.col_sub[fb].tolist()):
        cols = fb & (cancer.col_sub == k)
        if cols.sum() < 2:
            continue
        for c in dict.fromkeys(cancer.col_type[cols].tolist()):
            subtypes.append((cancer.types[c], cancer.subclusters[k], SUBCLUSTERS[cancer.subclusters[k]][5],
                             cols & (cancer.col_type == c)))
    overall_table = _records("caf_signatures", {"cancer_type": [o[0] for o in overall], "caf_subtype": "All_CAF"}, {
        "mean_activity": r4(np.stack([z[m].mean(axis=0) for _, m in overall])),
        "std_activity": r4(np.stack([z[m].std(axis=0, ddof=1) for _, m in overall])),
        "n_cells": np.array([cells[m].sum() for _, m in overall], dtype=np.int64),
        "n_samples": np.array([m.sum() for _, m in overall])}, sigs)
    subtype_table = _records("caf_signatures_subtypes", {
        "cancer_type": [s[0] for s in subtypes], "caf_subtype": [s[1] for s in subtypes],
        "caf_class": [s[2] for s in subtypes]}, {
        "mean_activity": r4(np.stack([z[m].mean(axis=0) for *_, m in subtypes])),
        "n_cells": np.array([cells[m].sum() for *_, m in subtypes], dtype=np.int64),
        "n_samples": np.array([m.sum() for *_, m in subtypes])}, sigs)
    proportions = []
    for c, code in enumerate(cancer.types):
        cols = (cancer.col_tissue == 0) & (cancer.col_type == c)
        total = cells[cols].sum()
        if total >= 100:
            fb_cols = cols & fb
            proportions.append({"cancer_type": code, "caf_proportion": round(cells[fb_cols].sum() / total, 4),
                                "caf_cells": int(cells[fb_cols].sum()), "total_cells": int(total),
                                "n_subtypes": int(np.unique(cancer.col_sub[fb_cols]).size)})
    spec = T("caf_signatures_proportions")
    proportion_table = to_table(spec, {c.name: [r[c.name] for r in proportions] for c in spec.columns})
    type_sigs = {t: [sigs.names[i] for i in sigs.of_type(t)] for t in sigs.type_names}
    writer.json_object(V + "caf_signatures.json", [
        ("data", overall_table), ("subtypes", subtype_table), ("proportions", proportion_table),
        ("cytosig_signatures", type_sigs["CytoSig"]), ("secact_signatures", type_sigs["SecAct"]),
        ("signatures", type_sigs["CytoSig"] + type_sigs["SecAct"]), ("caf_classes", ["myCAF", "iCAF", "apCAF", "Other"])],
        overall_table.num_rows + subtype_table.num_rows + proportion_table.num_rows)
