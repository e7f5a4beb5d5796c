"""What the atlas demo modules share: the demo's entities (AtlasDemo), the cell-type and disease
effect profiles every per-cell-type table is drawn from, and small column helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from builders.demo_data import names
from builders.demo_data._io import cat
from builders.demo_data._scale import Scale, Signatures
from builders.demo_data._io import Writer
from builders.demo_data._stats import p_two_sided, r4, rng
from cytoatlas.domains.atlas import DOMAIN

ATLAS_CELLS = {"CIMA": 6_484_974, "Inflammation": 6_340_934, "scAtlas_Normal": 2_293_951,
               "scAtlas_Cancer": 4_146_975}
ATLAS_SAMPLES = {"CIMA": 428, "Inflammation": 1_047, "scAtlas_Normal": 706, "scAtlas_Cancer": 1_062}


@dataclass(frozen=True)
class AtlasDemo:
    """The entities every atlas table is generated over, chosen once per (scale, seed)."""

    seed: int
    scale: Scale
    sigs: Signatures
    profiles: "Profiles"
    cell_types: dict[str, list[str]]  # atlas (names.ATLASES) -> its cell types
    organs: list[str]  # scAtlas normal organs
    organ_types: dict[str, list[str]]  # organ -> its cell types
    diseases: list[tuple[str, str]]  # (disease, disease group)

    @classmethod
    def build(cls, scale: Scale, seed: int) -> "AtlasDemo":
        sigs = Signatures.build(scale)
        organs = list(names.SCATLAS_ORGANS[:scale.organs])
        organ_types = {o: organ_cell_types(seed, o) for o in organs}
        normal_types = list(dict.fromkeys(ct for o in organs for ct in organ_types[o]))
        cell_types = {
            "CIMA": list(names.CIMA_CELL_TYPES[:scale.cima_cell_types]),
            "Inflammation": list(names.INFLAMMATION_CELL_TYPES[:scale.inflammation_cell_types]),
            "scAtlas_Normal": normal_types,
            "scAtlas_Cancer": list(names.SCATLAS_CANCER_CELL_TYPES[:scale.cancer_cell_types]),
        }
        return cls(seed, scale, sigs, Profiles(seed, sigs), cell_types, organs, organ_types,
                   list(names.DISEASES[:scale.diseases]))


class Profiles:
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


def organ_cell_types(seed: int, organ: str) -> list[str]:
    r = rng(seed, "atlas", "organ_cell_types", organ)
    generic = [names.SCATLAS_GENERIC[i] for i in sorted(r.choice(len(names.SCATLAS_GENERIC), 5, replace=False))]
    return list(names.SCATLAS_SPECIFIC.get(organ, ("Epithelial cell",))) + generic


def sig_columns(sigs: Signatures, sig_idx: np.ndarray, target: str = "signature",
                 type_col: str = "signature_type") -> dict:
    return {target: cat(sig_idx, sigs.names), type_col: cat(sigs.types[sig_idx], sigs.type_names)}


def differential_p(r: np.random.Generator, diff: np.ndarray, n1, n2, sd: float = 0.6) -> np.ndarray:
    """p from the effect size and group sizes: z = diff / (sd * sqrt(1/n1 + 1/n2)), with jitter."""
    z = diff / (sd * np.sqrt(1.0 / n1 + 1.0 / n2)) + r.normal(0.0, 0.5, diff.shape)
    return p_two_sided(z)


def correlations(r: np.random.Generator, S: int, positive: np.ndarray | None = None) -> np.ndarray:
    """rho ~ N(0, 0.08); ~5% with |rho| 0.2-0.4 (positive for the `positive` signatures)."""
    rho = r.normal(0.0, 0.08, S)
    strong = r.random(S) < 0.05
    rho[strong] = r.choice([-1.0, 1.0], strong.sum()) * r.uniform(0.2, 0.4, strong.sum())
    if positive is not None and positive.size:
        rho[positive] = r.uniform(0.2, 0.4, positive.size)
    return np.clip(rho, -0.99, 0.99)


def celltype_summary(writer: Writer, table: str, atlas: str, seed: int, sigs: Signatures, profiles,
                      cell_types: list[str]) -> None:
    writer.json(DOMAIN.table(table), celltype_columns(table, atlas, seed, sigs, profiles, cell_types))


def celltype_columns(table: str, atlas: str, seed: int, sigs: Signatures, profiles, cell_types: list[str]) -> dict:
    """The columns of an atlas's cell-type summary (one row per cell type x signature)."""
    S = len(sigs)
    r = rng(seed, table)
    share = r.dirichlet(np.full(len(cell_types), 2.0))
    n_cells = np.maximum(50, np.rint(share * ATLAS_CELLS[atlas])).astype(np.int64)
    n_samples = np.minimum(ATLAS_SAMPLES[atlas], r.integers(ATLAS_SAMPLES[atlas] // 3, ATLAS_SAMPLES[atlas] + 1,
                                                             len(cell_types)))
    mean = np.stack([profiles.cell_type(ct) for ct in cell_types]) + r.normal(0.0, 0.1, (len(cell_types), S))
    return {
        "cell_type": cat(np.repeat(np.arange(len(cell_types)), S), cell_types),
        **sig_columns(sigs, np.tile(np.arange(S), len(cell_types))),
        "mean_activity": r4(np.clip(mean, -6, 6)).ravel(),
        "n_samples": np.repeat(n_samples, S), "n_cells": np.repeat(n_cells, S),
    }


