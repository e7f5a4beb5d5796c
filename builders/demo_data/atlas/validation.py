"""Demo sources of the validation pages, in the real writers' formats and nesting:

- `bulk_rnaseq_validation.json` (scripts/14): derived from the demo cross-sample correlation CSVs
  of gtex and tcga exactly as the writer derives it (the 'all' rows of every level, rho 4 dp, p 6 dp,
  LinCytoSig matched figures from the 'matched' rows; summary = their counts, median, mean and share
  of positive rhos), plus the stratified scatter of the SQLite's bulk rows;
- `validation_scatter.db` (scripts/14 `write_sqlite_db`: its DDL, insertion order donor ->
  celltype -> bulk_rnaseq, zlib-compressed compact JSON points); rho is the Spearman correlation of
  the stored points (average ranks), p from Fisher's z (3 significant figures as `%.2e` keeps),
  the CI Fisher's z (n >= 6); LinCytoSig donor targets carry the matched figures of the atlas
  CSV's 'matched' rows, as the writer looks them up;
- `validation/celltype_scatter/*.json` (scripts/17: one point per cell type) with two of scripts/14's
  split files beside them (the table leaves those out), and `validation/resampled_scatter/*.json`
  (cell type x 10 bootstraps; the CI is the 2.5/97.5 percentiles of the bootstrap rhos);
- `validation/{cima,inflammation,scatlas}_validation.json` (generate_validation_data.py): per signature
  type CytoSig, LinCytoSig (the writer's 9 fallback names), SecAct and per signature the six records;
  cell-type points take the activity of the atlas's cell-type table (cima_celltype,
  inflammation_celltype, scatlas_celltypes, read back from the files just written) exactly, Type 3
  its first 15 rows, Type 5 ranks its cell types; regression stats are computed from the stored
  points; single-cell records share one sample of cells per atlas (the writer's batch mode);
- `validation_corr_boxplot.json` (scripts/17): 8 categories, rho lists of scaled entity counts
  capped at 50 (sorted when subsampled, as the writer does).

Scatter point counts: each target of a scatter set has min(real points, cap) points, cap =
max(30, round(500 x scale)) (30 at the test scale, 125 at 0.25, 500 at 1): the real counts
(421 CIMA donors ... 19,788 GTEx samples; ~300M points over ~39K targets) are kept only where they
fall under the cap.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import zlib

import duckdb
import numpy as np

from builders.demo_data import names
from builders.demo_data._io import Writer
from builders.demo_data._scale import Signatures, scaled
from builders.demo_data._stats import mwu_asymptotic, mwu_u, p_correlation, rng
from builders.demo_data.atlas.common import ATLAS_CELLS, AtlasDemo
from builders.demo_data.atlas.pan_atlas import _gene, cross_sample_levels
from cytoatlas.domains.atlas import DOMAIN, validation as spec

T = DOMAIN.table
SIG_TYPES = ("cytosig", "lincytosig", "secact")  # scripts/14's order
DONOR_SETS = (("cima", 421), ("inflammation_main", 817), ("inflammation_val", 144), ("inflammation_ext", 86),
              ("scatlas_normal", 706), ("scatlas_cancer", 1_062), ("gtex", 19_788), ("tcga", 11_069))
CELLTYPE_SETS = (("cima", "donor_l1", 2_525), ("cima", "donor_l2", 10_251), ("inflammation_main", "donor_l1", 11_327),
                 ("scatlas_normal", "donor_organ", 5_500), ("gtex", "by_tissue", 19_759), ("tcga", "by_cancer", 11_000))
BULK_LEVELS = {"gtex": "by_tissue", "tcga": "by_cancer"}
# generate_validation_data.py constants
KNOWN_ASSOCIATIONS = (("IL17A", "Th17"), ("IFNG", "CD8_CTL"), ("IFNG", "NK"), ("TNF", "Mono"), ("IL10", "Treg"),
                      ("IL4", "Th2"), ("IL2", "CD4"), ("TGFB1", "Treg"), ("IL6", "Mono"), ("CXCL8", "Mono"),
                      ("IL21", "Tfh"), ("IL1B", "Mono"))
FALLBACK_SIGNATURES = ("IFNG", "TNF", "IL17A", "IL6", "IL10", "IL1B", "TGFB1", "IL2", "IL4")
FALLBACK_CELL_TYPES = ("CD4_naive", "CD4_memory", "CD8_naive", "CD8_CTL", "Th17", "Th1", "Th2", "Treg", "NK", "Mono",
                       "B_naive", "DC")
FALLBACK_PB_CELL_TYPES = ("CD4_naive", "CD8_CTL", "NK", "Mono", "B_naive", "DC")
VALIDATION_ATLASES = (("cima", "CIMA", "cima_celltype"), ("inflammation", "Inflammation", "inflammation_celltype"),
                      ("scatlas", "scAtlas_Normal", "scatlas_celltypes"))
BOXPLOT_CATEGORIES = (("gtex_tissue", "GTEx (per tissue)", 29), ("tcga_cancer", "TCGA (per cancer)", 33),
                      ("cima_donor", "CIMA (per donor)", 421), ("cima_celltype", "CIMA (per celltype)", 6),
                      ("inflam_donor", "Inflam (per donor)", 817), ("inflam_celltype", "Inflam (per celltype)", 17),
                      ("scatlas_norm_donor", "scAtlas norm (per donor)", 706),
                      ("scatlas_canc_donor", "scAtlas canc (per donor)", 1_062))


def generate(writer: Writer, demo: AtlasDemo) -> None:
    sigs = Signatures.build(demo.scale, lincytosig=True)
    groups = {(atlas, level): g for atlas, _, level, g, _ in cross_sample_levels(demo)}
    with duckdb.connect() as con:
        csv = _cross_sample(con, writer)
        matched = _matched_lookup(con, csv)
        scatter = _scatter_db(writer, demo, sigs, groups, matched)
        _bulk_rnaseq(writer, con, csv, scatter, groups, demo)
    _keyed_scatter(writer, demo, sigs, scatter)
    _validation_files(writer, demo)
    _boxplot(writer, demo, sigs, groups)


# --- helpers ------------------------------------------------------------------------------------

def _r(x, digits: int):
    """round() as the writers do, None for a missing value."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)


def _p3(p) -> float | None:
    """`float(f"{p:.2e}")`: the scatter writers' p."""
    return None if p is None or not math.isfinite(p) else float(f"{p:.2e}")


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), as scipy.stats.rankdata."""
    order = np.argsort(v, axis=-1, kind="stable")
    s = np.take_along_axis(v, order, axis=-1)
    n = v.shape[-1]
    pos = np.broadcast_to(np.arange(n), v.shape)
    new = np.ones(v.shape, dtype=bool)
    new[..., 1:] = s[..., 1:] != s[..., :-1]
    last = np.ones(v.shape, dtype=bool)
    last[..., :-1] = new[..., 1:]
    first_pos = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
    last_pos = np.flip(np.minimum.accumulate(np.flip(np.where(last, pos, n - 1), -1), axis=-1), -1)
    ranks = np.empty(v.shape)
    np.put_along_axis(ranks, order, (first_pos + last_pos) / 2.0 + 1.0, axis=-1)
    return ranks


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair (average ranks for ties); NaN for a constant row."""
    a, b = _ranks(x), _ranks(y)
    a -= a.mean(axis=-1, keepdims=True)
    b -= b.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=-1) / np.where(denom > 0, denom, 1.0), np.nan)


def _fisher_ci(rho: float, n: int) -> list[float] | None:
    if n < 6 or not math.isfinite(rho) or abs(rho) >= 1.0:
        return None
    z, se = math.atanh(rho), 1.0 / math.sqrt(n - 3)
    return [round(math.tanh(z - 1.96 * se), 4), round(math.tanh(z + 1.96 * se), 4)]


def _r2(x: np.ndarray) -> np.ndarray:
    return np.round(x, 2) + 0.0


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=-1, keepdims=True)
    return np.where(sd > 1e-10, (x - x.mean(axis=-1, keepdims=True)) / np.where(sd > 1e-10, sd, 1.0), x)


_SPLICE = re.compile(r'"\\u0000(\d+)\\u0000"')


class Points:
    """A point list [[x, y], ...] or [[x, y, g], ...] (g an integer), encoded as compact JSON text
    in one call: floats through json, then the group's ".0" dropped (it is the last of each point)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, g: np.ndarray | None = None):
        self.columns = (x, y) if g is None else (x, y, g.astype(np.float64))

    def json(self) -> str:
        text = json.dumps(np.column_stack(self.columns).tolist(), separators=(",", ":"))
        return text if len(self.columns) == 2 else text.replace(".0]", "]")


def _compact(document) -> str:
    """Compact JSON; Points are spliced in as their own text."""
    spliced: list[str] = []

    def default(value):
        if isinstance(value, Points):
            spliced.append(value.json())
            return f"\0{len(spliced) - 1}\0"
        raise TypeError(type(value).__name__)

    text = json.dumps(document, separators=(",", ":"), default=default)
    return _SPLICE.sub(lambda m: spliced[int(m.group(1))], text) if spliced else text


# --- cross-sample CSVs -> bulk JSON and the matched figures of the scatter ------------------------

def _cross_sample(con, writer: Writer) -> str:
    """The demo cross-sample CSVs just written, as one table (source column names)."""
    folder = writer.output / "results/cross_sample_validation/correlations"
    paths = [str(p) for p in sorted(folder.glob("*_correlations.csv")) if p.name != "all_correlations.csv"]
    con.execute(f"CREATE TABLE cross_sample AS SELECT * FROM read_csv({paths}, header = true, union_by_name = true)")
    return "cross_sample"


def _matched_lookup(con, csv: str) -> dict[tuple[str, str, str], dict]:
    """(atlas, target, sigtype) -> the figures scripts/14 adds to a LinCytoSig donor scatter target."""
    rows = con.execute(f"SELECT atlas, target, signature, spearman_rho, spearman_pval, n_samples, lincytosig_celltype, "
                       f"matched_atlas_celltypes FROM {csv} WHERE celltype = 'matched' ORDER BY ALL").fetchall()
    return {(a, t, s): {"matched_rho": _r(rho, 4), "matched_pval": _r(p, 6), "matched_n": int(n),
                        "lincytosig_celltype": str(lct), "matched_atlas_celltypes": str(mac)}
            for a, t, s, rho, p, n, lct, mac in rows}


def _bulk_rnaseq(writer: Writer, con, csv: str, scatter: dict, groups: dict, demo: AtlasDemo) -> None:
    """bulk_rnaseq_validation.json as build_bulk_rnaseq_json writes it, from the gtex/tcga CSVs."""
    document, rows = {}, 0
    for dataset, n_samples in (("gtex", 19_788), ("tcga", 11_069)):
        entry: dict = {"n_samples": n_samples}
        kind = "tissue_types" if dataset == "gtex" else "cancer_types"
        entry[kind] = sorted(groups[(dataset, BULK_LEVELS[dataset])])
        summary = con.execute(f"""
            SELECT signature, count(*), count(*) FILTER (WHERE spearman_pval < 0.05), median(spearman_rho),
                   avg(spearman_rho), 100.0 * count(*) FILTER (WHERE spearman_rho > 0) / count(spearman_rho)
            FROM {csv} WHERE atlas = ? AND celltype = 'all' GROUP BY signature ORDER BY signature""",
                              [dataset]).fetchall()
        entry["summary"] = {s: {"n_targets": n, "n_significant": k, "median_rho": _r(med, 4), "mean_rho": _r(mean, 4),
                                "pct_positive": _r(pct, 2)} for s, n, k, med, mean, pct in summary}
        records = con.execute(f"""
            SELECT a.signature, a.target, a.gene, a.level, a.spearman_rho, a.spearman_pval, a.n_samples, a.mean_expr,
                   a.mean_activity, a.lincytosig_celltype, m.spearman_rho, m.spearman_pval, m.n_samples,
                   m.matched_atlas_celltypes
            FROM {csv} AS a LEFT JOIN {csv} AS m ON m.atlas = a.atlas AND m.level = a.level AND m.target = a.target
                 AND m.signature = a.signature AND m.celltype = 'matched'
            WHERE a.atlas = ? AND a.celltype = 'all' ORDER BY a.signature, a.level, a.target""", [dataset]).fetchall()
        donor_level: dict[str, list] = {}
        for sigtype, target, gene, level, rho, p, n, mexpr, mact, lct, mrho, mp, mn, mac in records:
            item = {"target": target, "gene": gene, "level": level, "rho": _r(rho, 4), "pval": _r(p, 6), "n": int(n),
                    "mean_expr": _r(mexpr, 4), "mean_activity": _r(mact, 4),
                    "significant": bool(p < 0.05) if p is not None else False}
            if lct:
                item["lincytosig_celltype"] = lct
                if mrho is not None or mn is not None:
                    item |= {"matched_rho": _r(mrho, 4), "matched_pval": _r(mp, 6), "matched_n": int(mn)}
                    if mac:
                        item["matched_atlas_celltypes"] = mac
            donor_level.setdefault(sigtype, []).append(item)
            rows += 1
        entry["donor_level"] = donor_level
        level = BULK_LEVELS[dataset]
        entry["stratified_scatter"] = {level: {s: {t: {k: v for k, v in e.items() if k not in ("rho_ci", "celltypes")}
                                                   for t, e in scatter.get(("bulk_rnaseq", dataset, level, s), {}).items()}
                                               for s in SIG_TYPES}}
        document[dataset] = entry
    path = writer.new_file(spec.BULK)
    path.write_text(_compact(document) + "\n")
    writer.written(path, rows)


# --- the scatter SQLite ---------------------------------------------------------------------------

def _scatter_set(demo: AtlasDemo, sigs: Signatures, key: tuple, n_real: int, group_names: list[str] | None,
                 matched: dict) -> dict[str, dict]:
    """{sigtype: {target: entry}} for one scatter file: points of n = min(real, cap) donors (x donor
    group), the same donors for every target, activity = beta x expression + group shift + noise."""
    source, atlas, level = key
    cap = max(30, round(500 * demo.scale.s))
    n = min(n_real, cap)
    r = rng(demo.seed, "validation_scatter", source, atlas, level)
    G = len(group_names or ())
    g = r.integers(0, G, n) if G else None
    shift = r.normal(0.0, 0.6, G) if G else np.zeros(1)
    out = {}
    for sigtype, type_name in zip(SIG_TYPES, ("CytoSig", "LinCytoSig", "SecAct")):
        idx = sigs.of_type(type_name)
        x = r.normal(0.0, 1.0, (idx.size, n)) + (shift[g] if G else 0.0)
        y = r.normal(0.25, 0.2, idx.size)[:, None] * x + (r.normal(0.0, 0.4, G)[g] if G else 0.0) \
            + r.normal(0.0, 1.0, (idx.size, n))
        ez, act = _r2(_zscore(x)), _r2(y)
        rho = spearman_rows(ez, act)
        p = p_correlation(np.nan_to_num(rho), n)
        entries = {}
        for t, s in enumerate(idx.tolist()):
            entry = {"gene": _gene(sigs.names[s], type_name), "rho": _r(rho[t], 4), "pval": _p3(p[t]), "n": n,
                     "rho_ci": _fisher_ci(rho[t], n)}
            if G:
                entry |= {"celltypes": group_names, "groups": group_names}
            entry["points"] = Points(ez[t], act[t], g)
            if source == "donor":
                entry |= matched.get((atlas, sigs.names[s], sigtype), {})
            entries[sigs.names[s]] = entry
        out[sigtype] = entries
    return out


def _scatter_db(writer: Writer, demo: AtlasDemo, sigs: Signatures, groups: dict, matched: dict) -> dict:
    """validation_scatter.db; returns {(source, atlas, level, sigtype): {target: entry}}."""
    files: dict[tuple, dict] = {}
    for atlas, n_real in DONOR_SETS:
        for sigtype, entries in _scatter_set(demo, sigs, ("donor", atlas, ""), n_real, None, matched).items():
            files[("donor", atlas, "", sigtype)] = entries
    for atlas, level, n_real in CELLTYPE_SETS:
        for sigtype, entries in _scatter_set(demo, sigs, ("celltype", atlas, level), n_real,
                                             sorted(groups[(atlas, level)]), matched).items():
            files[("celltype", atlas, level, sigtype)] = entries
    for dataset, level in BULK_LEVELS.items():  # the same H5ADs and computation; no rho_ci, no celltypes
        for sigtype in SIG_TYPES:
            if (dataset, sigtype) == ("tcga", "lincytosig"):  # none resolved (the API then lists donor-level rows)
                continue
            files[("bulk_rnaseq", dataset, level, sigtype)] = {
                t: {**{k: v for k, v in e.items() if k not in ("rho_ci", "celltypes")}, "rho_ci": None}
                for t, e in files[("celltype", dataset, level, sigtype)].items()}
    path = writer.new_file(spec.SCATTER_DB)
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE scatter_targets (
            id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, atlas TEXT NOT NULL,
            level TEXT NOT NULL DEFAULT '', sigtype TEXT NOT NULL, target TEXT NOT NULL, gene TEXT, rho REAL,
            pval REAL, n INTEGER, rho_ci_lo REAL, rho_ci_hi REAL, groups_json TEXT, extra_json TEXT);
        CREATE TABLE scatter_points (
            target_id INTEGER PRIMARY KEY REFERENCES scatter_targets(id), points_blob BLOB NOT NULL);""")
    extra_keys = ("matched_rho", "matched_pval", "matched_n", "lincytosig_celltype", "matched_atlas_celltypes")
    n_targets = 0
    for (source, atlas, level, sigtype), entries in files.items():
        for target, e in entries.items():
            ci = e.get("rho_ci")
            groups_json = _compact(e["groups"]) if e.get("groups") else None
            extra = {k: e[k] for k in extra_keys if k in e}
            cursor = con.execute(
                "INSERT INTO scatter_targets (source, atlas, level, sigtype, target, gene, rho, pval, n, rho_ci_lo, "
                "rho_ci_hi, groups_json, extra_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (source, atlas, level, sigtype, target, e["gene"], e["rho"], e["pval"], e["n"],
                 ci[0] if ci else None, ci[1] if ci else None, groups_json, _compact(extra) if extra else None))
            con.execute("INSERT INTO scatter_points (target_id, points_blob) VALUES (?, ?)",
                        (cursor.lastrowid, zlib.compress(_compact(e["points"]).encode(), 6)))
            n_targets += 1
    con.executescript("""
        CREATE UNIQUE INDEX idx_targets_unique ON scatter_targets(source, atlas, level, sigtype, target);
        CREATE INDEX idx_targets_lookup ON scatter_targets(source, atlas, level, sigtype);""")
    con.commit()
    con.execute("VACUUM")
    con.close()
    writer.written(path, n_targets)
    return files


# --- keyed scatter JSON: scripts/17 cell-type-only scatter and the resampled scatter --------------

def _keyed_scatter(writer: Writer, demo: AtlasDemo, sigs: Signatures, scatter: dict) -> None:
    folder = spec.VALIDATION + "celltype_scatter/"
    normal_types = sorted(demo.cell_types["scAtlas_Normal"])
    celltype_only = (("cima", "l1", sorted(names.CIMA_L1), 1), ("cima", "l2", sorted(demo.cell_types["CIMA"]), 1),
                     ("inflammation_main", "l2", sorted(demo.cell_types["Inflammation"]), 1),
                     ("scatlas_normal", "celltype", normal_types, 1))
    resampled = (("cima", "l1", sorted(names.CIMA_L1), 10),
                 ("inflammation_main", "l1", sorted(names.CROSS_SAMPLE_L1["inflammation"]), 10),
                 ("scatlas_normal", "celltype", normal_types, 10))
    for sets, where in ((celltype_only, folder), (resampled, spec.VALIDATION + "resampled_scatter/")):
        for atlas, level, cell_types, boots in sets:
            r = rng(demo.seed, "keyed_scatter", where, atlas, level)
            C, n = len(cell_types), len(cell_types) * boots
            g = np.tile(np.arange(C), boots)
            base = r.normal(0.0, 1.0, C)
            for sigtype, type_name in zip(SIG_TYPES, ("CytoSig", "LinCytoSig", "SecAct")):
                idx = sigs.of_type(type_name)
                act = base[g] * r.uniform(-0.5, 1.0, (idx.size, 1)) + r.normal(0.0, 0.6, (idx.size, n))
                expr = act * r.uniform(0.0, 1.0, (idx.size, 1)) + r.normal(0.0, 0.7, (idx.size, n))
                ez, y = _r2(_zscore(expr)), _r2(act)
                rho = spearman_rows(ez, y)
                p = p_correlation(np.nan_to_num(rho), n)
                if boots > 1:  # per-bootstrap rhos -> percentile CI (>= 10 of them)
                    boot = np.stack([spearman_rows(ez[:, b * C:(b + 1) * C], y[:, b * C:(b + 1) * C])
                                     for b in range(boots)], axis=1)
                    cis = [[_r(np.percentile(row, 2.5), 4), _r(np.percentile(row, 97.5), 4)]
                           if np.isfinite(row).sum() >= 10 else None for row in boot]
                else:
                    cis = [_fisher_ci(v, n) for v in rho]
                document = {sigs.names[s]: {"gene": _gene(sigs.names[s], type_name), "rho": _r(rho[t], 4),
                                            "pval": _p3(p[t]), "n": n, "rho_ci": cis[t], "celltypes": cell_types,
                                            "groups": cell_types, "points": Points(ez[t], y[t], g)}
                            for t, s in enumerate(idx.tolist())}
                path = writer.new_file(f"{where}{atlas}_{level}_{sigtype}.json")
                path.write_text(_compact(document))
                writer.written(path, n * idx.size)
    # scripts/14 writes its split files into the same directory (the build leaves them out)
    for key in (("celltype", "cima", "donor_l1", "cytosig"), ("celltype", "gtex", "by_tissue", "cytosig")):
        path = writer.new_file(f"{folder}{key[1]}_{key[2]}_{key[3]}.json")
        path.write_text(_compact(scatter[key]))
        writer.written(path, 0)


# --- validation/{atlas}_validation.json -----------------------------------------------------------

def _source_records(writer: Writer, table: str) -> list[dict]:
    """A table's demo source just written, as records under the served column names, in file order."""
    t = T(table)
    doc = json.loads((writer.output / t.source).read_text())
    records = doc[t.json_key] if t.json_layout == "data" else doc
    served = {c.candidates[0]: c.name for c in t.columns}
    return [{served.get(k, k): v for k, v in rec.items()} for rec in records]


def _regression(x: np.ndarray, y: np.ndarray) -> dict:
    """_compute_regression_stats over the given points (least squares; p of Pearson's r)."""
    n = x.size
    xm, ym = x - x.mean(), y - y.mean()
    sxx, syy = float((xm * xm).sum()), float((ym * ym).sum())
    slope = float((xm * ym).sum() / sxx) if sxx > 0 else 0.0
    r = float((xm * ym).sum() / math.sqrt(sxx * syy)) if sxx > 0 and syy > 0 else 0.0
    return {"slope": slope, "intercept": float(y.mean() - slope * x.mean()), "r_squared": r * r, "pearson_r": r,
            "spearman_rho": float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1])
            if n > 2 else 0.0,  # continuous values: no ties to average
            "p_value": float(p_correlation(np.clip(r, -0.999999, 0.999999), max(n, 4))), "n_points": n}


def _validation_files(writer: Writer, demo: AtlasDemo) -> None:
    for atlas, label, table in VALIDATION_ATLASES:
        _validation_file(writer, demo, atlas, label, _source_records(writer, table))


def _cells(demo: AtlasDemo, atlas: str, label: str, m: int, r: np.random.Generator) -> list[dict]:
    """The atlas's shared sample of cells (batch mode): donor, level-1 cell type, organ (scAtlas);
    ~2% of the labels are 'nan' (the writer's str() of a missing one)."""
    cell_types = {"cima": names.CIMA_L1, "inflammation": names.CROSS_SAMPLE_L1["inflammation"],
                  "scatlas": names.CROSS_SAMPLE_L1["scatlas"]}[atlas]
    donors = [f"{label}_{i:04d}" for i in range(1, 41)]
    cells = []
    for d, c, o, missing in zip(r.integers(0, len(donors), m).tolist(), r.integers(0, len(cell_types), m).tolist(),
                                r.integers(0, len(demo.organs), m).tolist(), (r.random(m) < 0.02).tolist()):
        cell = {"donor": donors[d], "cell_type": "nan" if missing else cell_types[c]}
        if atlas == "scatlas":
            cell["organ"] = demo.organs[o]
        cells.append(cell)
    return cells


def _validation_file(writer: Writer, demo: AtlasDemo, atlas: str, label: str, celltype_rows: list[dict]) -> None:
    s = demo.scale.s
    by_sig: dict[tuple[str, str], list[dict]] = {}
    for row in celltype_rows:
        by_sig.setdefault((row["signature_type"], row["signature"]), []).append(row)
    n_cells_sample = scaled(500, s, 50)
    r_cells = rng(demo.seed, "validation_cells", atlas)
    cells = _cells(demo, atlas, label, n_cells_sample, r_cells)
    sections = {k: [] for k in ("sample_validations", "celltype_validations", "pseudobulk_vs_sc",
                                "singlecell_validations", "gene_coverage", "cv_stability")}
    results = []
    types = ("CytoSig", "LinCytoSig", "SecAct")
    for type_name in types:
        signatures = (list(FALLBACK_SIGNATURES) if type_name == "LinCytoSig"
                      else sorted({sig for t, sig in by_sig if t == type_name}))
        for sig in signatures:
            r = rng(demo.seed, "validation_record", atlas, type_name, sig)
            rows = by_sig.get((type_name, sig), [])
            base = {"atlas": atlas, "signature": sig, "signature_type": type_name}
            sections["sample_validations"].append(_sample(base, atlas, type_name, sig, r, s))
            sections["celltype_validations"].append(_celltype(base, rows, atlas, r))
            sections["pseudobulk_vs_sc"].append(_pb_vs_sc(base, rows, r))
            sections["singlecell_validations"].append(_singlecell(base, label, type_name, cells, r))
            sections["gene_coverage"].append(_coverage(base, type_name, r))
            sections["cv_stability"].append(_cv(base, r))
        results += _associations(by_sig, atlas, type_name, demo.seed)
    document = {"atlas": atlas, "signature_types": list(types), **sections,
                "biological_associations": {"atlas": atlas, "signature_types": list(types), "results": results,
                                            "n_tested": len(results), "n_validated": 0}}
    path = writer.new_file(f"{spec.VALIDATION}{atlas}_validation.json")
    path.write_text(_compact(document))  # the writer indents (json.dump indent=2): same values
    writer.written(path, sum(len(v) for v in sections.values()) + len(results))


def _interpret_rho(rho: float) -> str:
    if abs(rho) >= 0.5:
        return f"Strong correlation (rho={rho:.2f}) suggests reliable inference"
    if abs(rho) >= 0.3:
        return f"Moderate correlation (rho={rho:.2f}) indicates reasonable inference"
    return f"Weak correlation (rho={rho:.2f}) - interpret with caution"


def _sample(base: dict, atlas: str, type_name: str, sig: str, r: np.random.Generator, s: float) -> dict:
    """Type 1: CIMA and Inflammation CytoSig/SecAct have correlations ('real' stats); the rest
    take the writer's fallback (n 421 for CIMA, else 817; no labels, no stats_source)."""
    real = atlas in ("cima", "inflammation") and type_name != "LinCytoSig"
    n_samples = {"cima": 421, "inflammation": 817}.get(atlas, 817) if real else (421 if atlas == "cima" else 817)
    rho = float(np.clip(r.normal(0.3 if sig in ("IFNG", "IL6", "TNFA") else 0.05, 0.15), -0.9, 0.9))
    n = scaled(min(n_samples, 500), s, 30)
    x = r.normal(5.0, 2.0, n)
    y = x * rho + r.normal(0.0, 1.0, n) * math.sqrt(1 - rho ** 2) if real else x * 0.5 + r.normal(0.0, 0.5, n)
    stats = _regression(x, y)
    points = [{"id": f"sample_{i:03d}", "x": a, "y": b, **({"label": f"Sample {i + 1}"} if real else {})}
              for i, (a, b) in enumerate(zip(x.tolist(), y.tolist()))]
    record = {**base, "validation_level": "sample", "points": points, "n_samples": n_samples, "stats": stats}
    if real:
        stats["spearman_rho"], stats["p_value"] = rho, float(p_correlation(rho, n_samples))
        return record | {"stats_source": "real", "interpretation": _interpret_rho(rho)}
    return record | {"interpretation": f"Sample-level correlation r={stats['pearson_r']:.2f}"}


def _celltype(base: dict, rows: list[dict], atlas: str, r: np.random.Generator) -> dict:
    """Type 2: activity = the cell-type table's mean_activity; expression = activity + noise."""
    if rows:
        activity = np.array([row["mean_activity"] for row in rows], dtype=np.float64)
        expression = activity + r.normal(0.0, 0.15, activity.size)
        points = [{"cell_type": row["cell_type"], "expression": float(e), "activity": float(a),
                   "n_cells": row.get("n_cells"), "n_samples": row.get("n_samples", 100)}
                  for row, e, a in zip(rows, expression, activity)]
        top = [p["cell_type"] for p in sorted(points, key=lambda p: p["activity"], reverse=True)[:5]]
        stats = _regression(expression, activity)
        return {**base, "validation_level": "celltype", "points": points, "n_cell_types": len(points), "stats": stats,
                "observed_top_cell_types": top, "expression_source": "estimated",
                "interpretation": f"Cell type correlation r={stats['pearson_r']:.2f}, top: {', '.join(top[:3])}"}
    expression = r.normal(3.0, 1.5, len(FALLBACK_CELL_TYPES))
    activity = expression * 0.6 + r.normal(0.0, 0.3, expression.size)
    points = [{"cell_type": ct, "expression": float(e), "activity": float(a), "n_cells": int(c)}
              for ct, e, a, c in zip(FALLBACK_CELL_TYPES, expression, activity, r.integers(1000, 50000, expression.size))]
    stats = _regression(expression, activity)
    return {**base, "validation_level": "celltype", "points": points, "n_cell_types": len(points), "stats": stats,
            "observed_top_cell_types": list(FALLBACK_CELL_TYPES[:5]),
            "interpretation": f"Cell type correlation r={stats['pearson_r']:.2f}"}


def _pb_vs_sc(base: dict, rows: list[dict], r: np.random.Generator) -> dict:
    """Type 3: the first 15 cell-type rows; median = 0.95 x mean, std 0.5 (the tables have none)."""
    if rows:
        rows = rows[:15]
        mean = np.array([row["mean_activity"] for row in rows], dtype=np.float64)
        pb = mean + r.normal(0.0, 0.1, mean.size)
        points = [{"cell_type": row["cell_type"], "pseudobulk_expression": float(e), "sc_activity_mean": float(a),
                   "sc_activity_median": float(a * 0.95), "sc_activity_std": 0.5, "n_cells": row.get("n_cells")}
                  for row, e, a in zip(rows, pb, mean)]
        source = {"expression_source": "estimated"}
        vs_mean, vs_median = _regression(pb, mean), _regression(pb, mean * 0.95)
        text = f"Pseudobulk correlates with SC mean (r={vs_mean['pearson_r']:.2f})"
    else:
        pb = r.normal(4.0, 1.5, len(FALLBACK_PB_CELL_TYPES))
        sc_mean, sc_median = pb * 0.55 + r.normal(0.0, 0.3, pb.size), pb * 0.52 + r.normal(0.0, 0.35, pb.size)
        points = [{"cell_type": ct, "pseudobulk_expression": float(e), "sc_activity_mean": float(a),
                   "sc_activity_median": float(m), "n_cells": int(c)}
                  for ct, e, a, m, c in zip(FALLBACK_PB_CELL_TYPES, pb, sc_mean, sc_median,
                                            r.integers(5000, 100000, pb.size))]
        source, vs_mean, vs_median = {}, _regression(pb, sc_mean), _regression(pb, sc_median)
        text = "Pseudobulk vs single-cell comparison"
    return {**base, "validation_level": "pseudobulk_vs_singlecell", "points": points, "n_cell_types": len(points),
            "stats_vs_mean": vs_mean, "stats_vs_median": vs_median, **source, "interpretation": text}


def _singlecell(base: dict, label: str, type_name: str, cells: list[dict], r: np.random.Generator) -> dict:
    """Type 4: CytoSig/SecAct from the atlas's cells ('real', batch mode: every signature over the
    same sampled cells); LinCytoSig synthetic (50,000 cells, half the points expressing, no labels)."""
    m = len(cells)
    if type_name == "LinCytoSig":
        n_total, frac = 50_000, float(r.uniform(0.15, 0.35))
        is_expr = np.arange(m) < m // 2
        expression = np.where(is_expr, r.uniform(1.0, 5.0, m), 0.0)
        meta = [{}] * m
        source = "synthetic"
    else:
        n_total, frac = ATLAS_CELLS[label], float(r.beta(2.0, 8.0))
        is_expr = r.random(m) < max(frac, 0.05)
        is_expr[:2] = (True, False)
        expression = np.where(is_expr, r.lognormal(0.5, 0.6, m), 0.0)
        meta = cells
        source = "real"
    delta = float(r.normal(0.4, 0.3))
    activity = r.normal(0.0, 0.2) + delta * is_expr + r.normal(0.0, 1.0, m)
    mean_e = float(activity[is_expr].mean() + r.normal(0.0, 0.02))
    mean_n = float(activity[~is_expr].mean() + r.normal(0.0, 0.02))
    u, n1, n2 = mwu_u(activity[is_expr][None], activity[~is_expr][None])
    p = float(mwu_asymptotic(u, n1, n2, "greater")[0])
    n_expr = int(n_total * frac)
    points = [{"expression": e, "activity": a, "is_expressing": x, **c}
              for e, a, x, c in zip(expression.tolist(), activity.tolist(), is_expr.tolist(), meta)]
    return {**base, "validation_level": "singlecell", "expression_threshold": 0.0, "n_total_cells": n_total,
            "n_expressing": n_expr, "n_non_expressing": n_total - n_expr, "expressing_fraction": n_expr / n_total,
            "mean_activity_expressing": mean_e, "mean_activity_non_expressing": mean_n,
            "activity_fold_change": mean_e - mean_n, "activity_p_value": p, "sampled_points": points,
            "data_source": source,
            "interpretation": f"Expressing cells show \u0394 Activity = {mean_e - mean_n:.3f} (p={p:.2e})"}


def _grade(value: float, cuts: tuple[float, float, float]) -> str:
    return "excellent" if value >= cuts[0] else "good" if value >= cuts[1] else "moderate" if value >= cuts[2] else "poor"


def _coverage(base: dict, type_name: str, r: np.random.Generator) -> dict:
    genes = 44 if type_name == "CytoSig" else 100
    coverage = float(r.uniform(0.85, 0.98))
    detected = int(genes * coverage)
    quality = _grade(coverage, (0.90, 0.70, 0.50))
    return {**base, "n_signature_genes": genes, "n_detected": detected, "n_missing": genes - detected,
            "coverage_pct": coverage * 100, "detected_genes": [], "missing_genes": [],
            "mean_expression_detected": float(r.uniform(3, 6)), "median_expression_detected": float(r.uniform(2.5, 5.5)),
            "coverage_quality": quality, "interpretation": f"{quality.capitalize()} gene coverage ({coverage * 100:.1f}%)"}


def _cv(base: dict, r: np.random.Generator) -> dict:
    score = float(r.uniform(0.6, 0.95))
    mean, std = score, (1 - score) * 0.5
    folds = r.normal(mean, std, 5)
    return {**base, "n_folds": 5, "mean_activity": mean, "std_activity": std, "cv_coefficient": std / abs(mean),
            "fold_activities": folds.tolist(), "stability_score": score, "stability_grade": _grade(score, (0.8, 0.6, 0.4))}


def _associations(by_sig: dict, atlas: str, type_name: str, seed: int) -> list[dict]:
    """Type 5: 12 results per signature type, ranked in the cell-type table where the signature is
    (case-insensitive substring match of the expected cell type), else the writer's fallback."""
    results = []
    for sig, expected in KNOWN_ASSOCIATIONS:
        rows = by_sig.get((type_name, sig))
        if rows:
            ranked = sorted(((row["cell_type"], row["mean_activity"]) for row in rows), key=lambda x: x[1], reverse=True)
            rank = next((i for i, (ct, _) in enumerate(ranked, 1) if expected.lower() in ct.lower()), len(ranked))
            activity, top = float(ranked[0][1]), [ct for ct, _ in ranked[:5]]
        else:
            r = rng(seed, "validation_association", atlas, type_name, sig, expected)
            rank = int(r.integers(1, 4)) if r.random() > 0.15 else int(r.integers(5, 15))
            activity, top = float(r.normal() + 2), ["Th17", "CD8_CTL", "NK", "Mono", "Th1"]
        results.append({"signature": sig, "expected_cell_type": expected, "expected_direction": "high",
                        "observed_rank": rank, "observed_activity": activity,
                        "observed_percentile": float(100 - (rank - 1) * 5), "top_5_cell_types": top,
                        "is_validated": rank <= 3, "validation_criteria": "top 3"})
    return results


# --- validation_corr_boxplot.json ---------------------------------------------------------------

def _boxplot(writer: Writer, demo: AtlasDemo, sigs: Signatures, groups: dict) -> None:
    document: dict = {"categories": [{"key": k, "label": label} for k, label, _ in BOXPLOT_CATEGORIES]}
    rows = 0
    for sigtype, type_name in (("cytosig", "CytoSig"), ("secact", "SecAct")):
        rhos = {}
        for s in sorted(sigs.of_type(type_name).tolist(), key=lambda i: sigs.names[i]):
            r = rng(demo.seed, "validation_corr_boxplot", type_name, sigs.names[s])
            mu = r.normal(0.15, 0.15)
            per_category = {}
            for key, _, real in BOXPLOT_CATEGORIES:
                n = scaled(real, demo.scale.s, 5) if r.random() > 0.05 else 0
                values = np.round(np.clip(r.normal(mu, 0.2, n), -1.0, 1.0), 4) + 0.0
                if n > 50:  # subsampled to 50 and sorted, as the writer does
                    values = np.sort(r.choice(values, 50, replace=False))
                per_category[key] = values.tolist()
                rows += len(per_category[key])
            rhos[sigs.names[s]] = per_category
        document[sigtype] = {"targets": sorted(rhos), "rhos": rhos}
    path = writer.new_file(spec.BOXPLOT)
    path.write_text(_compact(document))
    writer.written(path, rows)
