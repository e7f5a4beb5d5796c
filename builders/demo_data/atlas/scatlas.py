"""scAtlas demo sources: normal organs and their cell types."""

from __future__ import annotations

import numpy as np

from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import Signatures
from builders.demo_data._stats import lognormal_counts, r4, rng
from builders.demo_data.atlas.common import AtlasDemo, sig_columns
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table

def generate(writer: Writer, demo: AtlasDemo) -> None:
    _scatlas(writer, demo.seed, demo.sigs, demo.profiles, demo.organs, demo.organ_types)


def summary(demo: AtlasDemo) -> dict:
    """This atlas's figures and name lists in summary_stats.json (the `scatlas` object)."""
    return {"n_organs": len(demo.organs), "n_cell_types": len(demo.cell_types["scAtlas_Normal"]),
            "organs": list(demo.organs)}


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
        **sig_columns(sigs, np.tile(np.arange(S), len(cell_rows))),
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
        **sig_columns(sigs, np.tile(np.arange(S), O)),
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
        "organ": cat(o_idx, organs), **sig_columns(sigs, s_idx),
        "mean_activity": organ_mean[o_idx, s_idx], "other_mean": other[o_idx, s_idx],
        "specificity_score": specificity[o_idx, s_idx],
    })
