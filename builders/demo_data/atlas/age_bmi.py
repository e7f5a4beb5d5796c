"""Age/BMI boxplot demo sources: age_bmi_boxplots.json and age_bmi_boxplots_filtered.json, with
both sections (cima, inflammation) in every record shape the real file holds.

The real file is written by P06 (scripts/06_preprocess_viz_data.py:1012-1276) and patched by three
archive scripts; the demo writes each writer's records with that writer's rules:
  cima          P06  CytoSig, sample level: bins <30, 30-40, 40-50, 50-60, >60 (pd.cut, right-closed),
                     no cell_type key, `values` + mean/median/n, bins with >= 3 samples
                CBX  both types per cell type: bins <30, 30-39, ..., 70+ (age < 30, ...: left-closed),
                     unrounded min/q1/median/q3/max/mean/n, every non-empty bin
                SBX  SecAct, sample level: decade bins (pd.cut), `cell_type: null`, 1.5 IQR whiskers as
                     min/max, q1/q3, 4 decimals, >= 3 samples
  inflammation  P06  both types, 'All' (sample level): `values` + mean/median/n; CytoSig per cell type
                     (cell types with >= 10 samples): mean/median/n only; bins from binned_age
                IBX  SecAct per cell type: whiskers and quartiles, >= 3 samples
Sample-level activity is the n_cells-weighted mean over a sample's cell types. CIMA rows come from
the CIMA cohort of cima.py (the same donors as every other CIMA table); the Inflammation section
from a cohort of its own here: scaled(817, s, 60) samples (the main cohort's samples with
metadata), binned_age as the metadata writes it, BMI known for about half, the demo's Inflammation
cell types.

age_bmi_boxplots_filtered (no writer in the repository; "same structure", 115 of 235 MB): the
demo's rule is the one of the other `_filtered` twins: every record of a CytoSig signature or of
the first scaled(204, s, 20) SecAct signatures (names.SECACT priority order), name lists alike.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from builders.demo_data import names
from builders.demo_data._io import Records, Writer
from builders.demo_data._scale import scaled
from builders.demo_data._stats import lognormal_counts, r4, rng
from builders.demo_data.atlas.cima import AGEING, CimaCohort, cohort_of
from builders.demo_data.atlas.common import ATLAS_CELLS, ATLAS_SAMPLES, AtlasDemo
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table
DECADES = ("<30", "30-39", "40-49", "50-59", "60-69", "70+")
P06_CIMA_AGE = ("<30", "30-40", "40-50", "50-60", ">60")
BMI_CLASSES = ("Underweight", "Normal", "Overweight", "Obese")
# Inflammation metadata `binned_age` and P06's map of it onto the decades (P06:1140-1146).
BINNED_AGE = ("<18", "18-30", "31-40", "41-50", "51-60", "61-70", "71-80", ">80")
BINNED_AGE_SHARE = (0.02, 0.15, 0.15, 0.17, 0.18, 0.17, 0.12, 0.04)
BINNED_AGE_DECADE = (0, 0, 1, 2, 3, 4, 5, 5)
INFLAMMATION_SAMPLES = 817  # main-cohort samples with metadata
FILTERED_SECACT = 204  # SecAct signatures kept by the `_filtered` twins


def generate(writer: Writer, demo: AtlasDemo) -> None:
    sections = {"cima": _cima(cohort_of(demo)), "inflammation": _inflammation(demo)}
    writer.json_tree(T("age_bmi_boxplots"), _document(sections))
    keep = filtered_signatures(demo)
    writer.json_tree(T("age_bmi_boxplots_filtered"), _document(sections, keep))


def filtered_signatures(demo: AtlasDemo) -> set[tuple[str, str]]:
    """(signature type, signature) of the `_filtered` twin: all CytoSig, the first SecAct ones."""
    sigs = demo.sigs
    secact = sigs.of_type("SecAct")[:scaled(FILTERED_SECACT, demo.scale.s, 20)]
    return {(sigs.type_names[sigs.types[i]], sigs.names[i]) for i in (*sigs.of_type("CytoSig"), *secact)}


def _document(sections: dict, keep: set | None = None) -> dict:
    def kept(table: pa.Table) -> pa.Table:
        if keep is None:
            return table
        key = pc.binary_join_element_wise(table["sig_type"], table["signature"], "\t")
        return table.filter(pc.is_in(key, pa.array(sorted(f"{t}\t{s}" for t, s in keep))))

    kept_names = {s for _, s in keep} if keep is not None else None
    out = {}
    for atlas, section in sections.items():
        out[atlas] = {}
        for key, value in section.items():
            if isinstance(value, list) and value and isinstance(value[0], pa.Table):
                out[atlas][key] = Records(*(kept(t) for t in value))
            elif key.endswith("signatures") and kept_names is not None:
                out[atlas][key] = [s for s in value if s in kept_names]
            else:
                out[atlas][key] = value
    return out


# --- one bin of one group of samples -> records ----------------------------------------------------


def _records(values: np.ndarray, codes: np.ndarray, labels, sig_names: list[str], sig_type: str, shape: str,
             cell_type: str | None = None, minimum: int = 3) -> list[pa.Table]:
    """Boxplot records of `values` ([samples, signatures]) per bin (`codes` index `labels`, -1 none)
    in one writer's `shape`: p06 (values, mean, median, n), p06_plain (mean, median, n), cbx
    (unrounded min..max, mean, n), whiskers (4 decimals, 1.5 IQR whiskers as min/max)."""
    tables = []
    S = len(sig_names)
    for b, label in enumerate(labels):
        v = values[codes == b]
        n = v.shape[0]
        if n < minimum or n == 0:
            continue
        cols: dict[str, pa.Array] = {}
        if shape != "cbx":
            cols["signature"], cols["sig_type"] = pa.array(sig_names), pa.array([sig_type] * S)
            if cell_type is not None or shape == "whiskers":
                cols["cell_type"] = pa.array([cell_type] * S, pa.string())
            cols["bin"] = pa.array([label] * S)
        q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0], axis=0)
        mean = v.mean(axis=0)
        if shape in ("p06", "p06_plain"):
            if shape == "p06" and cell_type is None:  # CIMA: values before the statistics
                cols["values"] = _lists(r4(v.T), S, n)
            cols["mean"], cols["median"], cols["n"] = pa.array(r4(mean)), pa.array(r4(q[2])), pa.array(np.full(S, n))
            if shape == "p06" and cell_type is not None:
                cols["values"] = _lists(r4(v.T), S, n)
        elif shape == "cbx":
            for k, name in enumerate(("min", "q1", "median", "q3", "max")):
                cols[name] = pa.array(q[k])
            cols["mean"], cols["n"] = pa.array(mean), pa.array(np.full(S, n))
            cols["signature"], cols["sig_type"] = pa.array(sig_names), pa.array([sig_type] * S)
            cols["cell_type"], cols["bin"] = pa.array([cell_type] * S), pa.array([label] * S)
        else:  # whiskers
            iqr = q[3] - q[1]
            low, high = np.maximum(q[0], q[1] - 1.5 * iqr), np.minimum(q[4], q[3] + 1.5 * iqr)
            for name, stat in (("min", low), ("q1", q[1]), ("median", q[2]), ("q3", q[3]), ("max", high),
                               ("mean", mean)):
                cols[name] = pa.array(r4(stat))
            cols["n"] = pa.array(np.full(S, n))
        tables.append(pa.table(cols))
    return [pa.concat_tables(tables)] if tables else []


def _lists(matrix: np.ndarray, rows: int, width: int) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(np.arange(rows + 1, dtype=np.int32) * width), pa.array(matrix.ravel()))


def _right_closed(x: np.ndarray, edges) -> np.ndarray:
    """pd.cut(x, [0, *edges, 100]) as a bin index (right-closed bins); NaN -> -1."""
    return np.where(np.isnan(x), -1, np.searchsorted(edges, x, side="left"))


def _left_closed(x: np.ndarray, edges) -> np.ndarray:
    """The archive scripts' `x < edge` chains as a bin index; NaN -> -1 (left out)."""
    return np.where(np.isnan(x), -1, np.searchsorted(edges, x, side="right"))


# --- the sections ----------------------------------------------------------------------------------


def _cima(cohort: CimaCohort) -> dict:
    sigs = cohort.sigs
    by_type = {t: sigs.of_type(t) for t in ("CytoSig", "SecAct")}
    sig_names = {t: [sigs.names[i] for i in idx] for t, idx in by_type.items()}
    sample = cohort.weighted_activity
    age, bmi = cohort.age, cohort.bmi
    sections = {"age": [], "bmi": []}
    # P06: CytoSig at the sample level (its SecAct rows were replaced by SBX's below)
    idx = by_type["CytoSig"]
    sections["age"] += _records(sample[:, idx], _right_closed(age, [30, 40, 50, 60]), P06_CIMA_AGE,
                                sig_names["CytoSig"], "CytoSig", "p06")
    sections["bmi"] += _records(sample[:, idx], _right_closed(bmi, [18.5, 25, 30]), BMI_CLASSES,
                                sig_names["CytoSig"], "CytoSig", "p06")
    # CBX: per cell type, CytoSig then SecAct (each cell type's matrix drawn once)
    per_type = {"CytoSig": {"age": [], "bmi": []}, "SecAct": {"age": [], "bmi": []}}
    for c, ct in enumerate(cohort.cell_types):
        here = cohort.present[c]
        x = cohort.matrix(c)[here]
        for type_name, idx in by_type.items():
            per_type[type_name]["age"] += _records(x[:, idx], _left_closed(age[here], [30, 40, 50, 60, 70]), DECADES,
                                                   sig_names[type_name], type_name, "cbx", ct, minimum=1)
            per_type[type_name]["bmi"] += _records(x[:, idx], _left_closed(bmi[here], [18.5, 25, 30]), BMI_CLASSES,
                                                   sig_names[type_name], type_name, "cbx", ct, minimum=1)
    for key in sections:
        sections[key] += per_type["CytoSig"][key] + per_type["SecAct"][key]
    # SBX: SecAct at the sample level
    idx = by_type["SecAct"]
    sections["age"] += _records(sample[:, idx], _right_closed(age, [30, 40, 50, 60, 70]), DECADES,
                                sig_names["SecAct"], "SecAct", "whiskers")
    sections["bmi"] += _records(sample[:, idx], _right_closed(bmi, [18.5, 25, 30]), BMI_CLASSES,
                                sig_names["SecAct"], "SecAct", "whiskers")
    cytosig, secact = sorted(sig_names["CytoSig"]), sorted(sig_names["SecAct"])
    return {**sections, "cytosig_signatures": cytosig, "secact_signatures": secact,
            "all_signatures": cytosig + secact, "cell_types": sorted(cohort.cell_types)}


def _inflammation(demo: AtlasDemo) -> dict:
    sigs, profiles = demo.sigs, demo.profiles
    cell_types = list(demo.cell_types["Inflammation"])
    N, S, C = scaled(INFLAMMATION_SAMPLES, demo.scale.s, 60), len(sigs), len(cell_types)
    r = rng(demo.seed, "age_bmi_inflammation")
    age = np.array(BINNED_AGE_DECADE)[r.choice(len(BINNED_AGE), N, p=BINNED_AGE_SHARE)]
    bmi = np.where(r.random(N) < 0.5, np.nan, np.round(np.clip(r.normal(25.5, 4.5, N), 15.0, 45.0), 2))
    diseases = [d for d, _ in demo.diseases]
    disease = r.integers(-1, len(diseases), N)  # -1: healthy
    shift = np.vstack([np.zeros(S)] + [profiles.disease(d) for d in diseases])[disease + 1]
    U = r.normal(0.0, 0.3, (N, S)) + shift
    ageing = [i for t in sigs.type_names for i in sigs.indices(t, AGEING)]
    U[:, ageing] += ((age - 2.5) / 1.7)[:, None] * r.uniform(0.1, 0.2, len(ageing))[None, :]
    share = r.dirichlet(np.full(C, 2.0))
    present = r.random((C, N)) < 0.85
    present[np.argmax(share), ~present.any(axis=0)] = True
    cells = ATLAS_CELLS["Inflammation"] / ATLAS_SAMPLES["Inflammation"]
    n_cells = np.where(present, np.maximum(1, lognormal_counts(r, share[:, None] * cells, 0.5, (C, N))), 0)

    def matrix(c: int) -> np.ndarray:  # drawn again when needed: all of them at once would not fit at s = 1
        rc = rng(demo.seed, "age_bmi_inflammation", "cell_type", cell_types[c])
        return profiles.cell_type(cell_types[c])[None, :] + U + rc.normal(0.0, 0.4, (N, S))

    weighted = np.zeros((N, S))
    for c in range(C):
        weighted += matrix(c) * n_cells[c][:, None]
    sample = weighted / n_cells.sum(axis=0)[:, None]
    bmi_codes = _right_closed(bmi, [18.5, 25, 30])
    bins = (("age", age, DECADES), ("bmi", bmi_codes, BMI_CLASSES))
    cytosig, secact = sigs.of_type("CytoSig"), sigs.of_type("SecAct")
    cytosig_names, secact_names = [sigs.names[i] for i in cytosig], [sigs.names[i] for i in secact]
    sections = {"age": [], "bmi": []}
    for idx, names_, type_name in ((cytosig, cytosig_names, "CytoSig"), (secact, secact_names, "SecAct")):
        for key, codes, labels in bins:  # P06: 'All' (sample level)
            sections[key] += _records(sample[:, idx], codes, labels, names_, type_name, "p06", "All")
    per_cell = {"p06": {"age": [], "bmi": []}, "ibx": {"age": [], "bmi": []}}
    for c in np.argsort(cell_types, kind="stable"):
        here = present[c]
        x = matrix(c)[here]
        for key, codes, labels in bins:
            if here.sum() >= 10:  # P06: CytoSig per cell type (its SecAct ones were replaced by IBX's)
                per_cell["p06"][key] += _records(x[:, cytosig], codes[here], labels, cytosig_names, "CytoSig",
                                                 "p06_plain", cell_types[c])
            per_cell["ibx"][key] += _records(x[:, secact], codes[here], labels, secact_names, "SecAct", "whiskers",
                                             cell_types[c])
    for key in sections:
        sections[key] += per_cell["p06"][key] + per_cell["ibx"][key]
    return {**sections, "cytosig_signatures": cytosig_names,
            "secact_signatures": secact_names, "cell_types": sorted(cell_types), "age_bins": list(DECADES),
            "bmi_bins": list(BMI_CLASSES)}
