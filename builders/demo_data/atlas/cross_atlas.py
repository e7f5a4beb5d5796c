"""Demo visualization/data/cross_atlas.json, in the shape the last real writers leave it (P06/P07
summary, comparison, meta_analysis, pathways; GAC atlas_comparison and signature_reliability; RCC
conserved; GCM celltype_mapping; GSC correlation), derived from the demo atlas tables already
written (read back through the builder's own readers, so the numbers agree with the served tables
whatever the atlas modules generate):

- harmonised cell types: each atlas's demo cell types mapped by name rules to the 8 coarse lineages
  and the real fine types (CTM's lists); unmapped (non-immune) types are left out, as in CTM.
- pseudobulk points (GAC celltype_aggregated_*): per harmonised type, the n_samples-weighted mean of
  cima_celltype / inflammation_celltype mean_activity and the n_cells-weighted mean of
  scatlas_celltypes; n_samples = the summed n_samples (scAtlas: the mapped organ x cell type rows).
  Only types both atlases have, every signature, sorted by (type, signature) as GAC writes them.
- single-cell points (GAC singlecell_mean_*): the same over singlecell_activity (n_cells-weighted),
  n_cells = round(50,000 x the type's share of the atlas), types under 10 cells in either atlas left out.
- P07's integrated comparison: the coarse CytoSig pseudobulk points under P07's common names.
- pair statistics: Spearman over each block's points; p from n (Fisher z).
- conserved (RCC): per signature, the n_samples-weighted mean of the CIMA / Inflammation cell-type
  tables and the n_cells-weighted mean of scAtlas single-cell means; active = |mean| > 0.3; a SecAct
  name equal to a CytoSig name is dropped (CytoSig wins); sorted by (n_atlases desc, signature).
- reliability (GAC): per signature and pair, Spearman over its coarse pseudobulk points (>= 3), the
  categories exactly as GAC assigns them, sorted by (-pairs with data, -mean correlation).
- meta-analysis (P07): age/BMI effects = CIMA rho of cima_correlations (se = 1/sqrt(n - 3)) and a
  drawn Inflammation rho (n 700-817); sex = the CIMA CytoSig median difference of cima_differential
  (sex, cell type All; se from its n_g1, n_g2); fixed-effect pooling and I² as P07 computes them.
- cell-type mapping (GCM): every name of the real cell-type lists, with the demo cell counts (0 for a
  type this scale leaves out, as GCM writes a mapped type an atlas lacks); scAtlas cells per organ x
  cell type are drawn here (scatlas_cells), as scatlas_celltypes counts pseudobulk columns.
- pathways (P07): P07's constant KEGG/Reactome/Hallmark gene sets against the CytoSig names,
  one-sided Fisher test on a background of 1,000, BH per database.
- signature correlations (GSC): Spearman between signatures over the CIMA and Inflammation cell-type
  rows; SecAct cut to the 200 most variable; modules = the nearest of 4 (CytoSig) / 8 (SecAct) seeds.
Cardinalities: cross_atlas = harmonised types shared by a pair x signatures x 3 pairs x 2 views, so
it scales with the SecAct count (about 220K rows at scale 1, the real ~213K).
"""

from __future__ import annotations

import math
import pathlib
import re
import tempfile

import duckdb
import numpy as np
import pyarrow as pa

from builders.demo_data import names
from builders.demo_data._io import Records, Writer
from builders.demo_data._stats import bh, lognormal_counts, p_correlation, rng, spearman
from builders.demo_data.atlas.common import ATLAS_CELLS, ATLAS_SAMPLES, AtlasDemo, correlations
from builders.ingest import SourceFile, TableSource
from cytoatlas.domains.atlas import DOMAIN

ATLASES = ("CIMA", "Inflammation", "scAtlas")
KEYS = {"CIMA": "cima", "Inflammation": "inflammation", "scAtlas": "scatlas"}
PAIRS = (("CIMA", "Inflammation"), ("CIMA", "scAtlas"), ("Inflammation", "scAtlas"))
COARSE = ("CD4_T", "CD8_T", "NK", "B", "Plasma", "Myeloid", "Unconventional_T", "Progenitor")
FINE = ("CD4_Naive", "CD4_Memory", "CD4_Effector", "Treg", "Tfh", "CD8_Naive", "CD8_Memory", "CD8_Effector",
        "CD8_Trm", "MAIT", "gdT", "NKT", "ILC", "NK_CD56bright", "NK_CD56dim", "NK_other", "B_Naive", "B_Memory",
        "B_Transitional", "B_GC", "Plasmablast", "Plasma", "Mono_Classical", "Mono_NonClassical", "Macrophage",
        "cDC1", "cDC2", "pDC", "Neutrophil", "Mast", "HSPC", "Progenitor_other")
P07_NAMES = {"CD4_T": "CD4 T", "CD8_T": "CD8 T", "NK": "NK", "B": "B cell", "Plasma": "Plasma",
             "Myeloid": "Monocyte", "Unconventional_T": "MAIT", "Progenitor": "HSPC"}
ACTIVE = 0.3  # RCC's |mean| threshold
KEGG = {
    "Cytokine-cytokine receptor interaction": ["IFNG", "TNF", "IL6", "IL1B", "IL10", "IL17A", "IL4", "IL13", "TGFB1",
                                               "CCL2", "CXCL10", "IL2", "IL21", "IL12A", "CSF2", "IL18"],
    "JAK-STAT signaling": ["IFNG", "IL6", "IL10", "IL4", "IL13", "IL2", "IL21", "IL12A", "CSF2", "IL23A"],
    "NF-kappa B signaling": ["TNF", "IL1B", "IL17A", "LTA", "CD40LG"],
    "TNF signaling pathway": ["TNF", "LTA", "IL1B", "IL6", "CCL2", "CXCL10"],
    "IL-17 signaling pathway": ["IL17A", "IL17F", "IL6", "CCL2", "CXCL8", "CSF2", "CSF3"],
    "Th1 and Th2 cell differentiation": ["IFNG", "IL4", "IL12A", "IL2", "TNF"],
    "Th17 cell differentiation": ["IL17A", "IL17F", "IL21", "IL23A", "IL6", "TGFB1"],
    "T cell receptor signaling": ["IFNG", "TNF", "IL2", "IL4", "IL10", "CSF2"],
    "Toll-like receptor signaling": ["TNF", "IL1B", "IL6", "IL12A", "IFNG", "CXCL10", "CCL5"],
    "Chemokine signaling pathway": ["CCL2", "CCL5", "CXCL8", "CXCL10", "CXCL1", "CXCL12"],
    "Inflammatory bowel disease": ["IFNG", "TNF", "IL6", "IL1B", "IL17A", "IL10", "IL12A", "IL23A", "TGFB1"],
    "Rheumatoid arthritis": ["TNF", "IL6", "IL1B", "IL17A", "IFNG", "CSF2", "CCL2"],
}
REACTOME = {
    "Interleukin-6 signaling": ["IL6", "IL6R", "IL6ST"],
    "Interferon gamma signaling": ["IFNG", "IRF1", "STAT1"],
    "Interferon alpha/beta signaling": ["IFNA1", "IFNB1"],
    "Signaling by Interleukins": ["IL1B", "IL2", "IL4", "IL6", "IL10", "IL12A", "IL17A", "IL18", "IL21", "IL23A"],
    "Cytokine Signaling in Immune system": ["IFNG", "TNF", "IL6", "IL1B", "IL10", "IL4", "IL13", "IL2"],
    "TRAF6 mediated NF-kB activation": ["TNF", "IL1B", "IL17A"],
    "MyD88 cascade": ["IL1B", "IL18", "TNF"],
    "Toll Like Receptor Cascades": ["TNF", "IL1B", "IL6", "IL12A", "CXCL10"],
}
HALLMARK = {
    "INFLAMMATORY_RESPONSE": ["TNF", "IL1B", "IL6", "CCL2", "CXCL8", "CXCL10"],
    "INTERFERON_GAMMA_RESPONSE": ["IFNG", "CXCL10", "IRF1", "STAT1"],
    "IL6_JAK_STAT3_SIGNALING": ["IL6", "IL10", "IL11", "LIF", "OSM"],
    "IL2_STAT5_SIGNALING": ["IL2", "IL4", "IL7", "IL15", "IL21"],
    "TNFA_SIGNALING_VIA_NFKB": ["TNF", "IL1B", "IL6", "CCL2", "CXCL8"],
    "COMPLEMENT": ["C3", "C5", "CFB", "CFH"],
    "ALLOGRAFT_REJECTION": ["IFNG", "TNF", "IL2", "GZMB", "PRF1"],
}
MODULE_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#ffff33", "#a65628", "#f781bf")


# --- harmonisation: demo cell-type names -> coarse lineage / fine type (CTM-like rules) ---------------

def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[_\s:()+-]+", name.lower()) if t]


def coarse_type(name: str) -> str | None:
    t, low = _tokens(name), name.lower()
    if {"nkt", "mait", "gdt", "ilc"} & set(t) or low.startswith("gdt"):
        return "Unconventional_T"
    if "cd4" in t or {"treg", "th1", "th17", "th2", "tfh"} & set(t) or "thymocyte" in t:
        return "CD4_T"
    if "cd8" in t:
        return "CD8_T"
    if "nk" in t:
        return "NK"
    if low.startswith("plasma"):
        return "Plasma"
    if "b" in t:
        return "B"
    if {"mono", "monocyte", "macrophage", "neutrophil", "mast", "basophil", "eosinophil", "pdc", "cdc1", "cdc2",
            "cdc3", "dc", "dendritic", "kupffer", "microglia"} & set(t):
        return "Myeloid"
    if {"hspc", "progenitor", "megakaryocyte"} & set(t):
        return "Progenitor"
    return None


def fine_type(name: str) -> str | None:
    t, low, coarse = set(_tokens(name)), name.lower(), coarse_type(name)
    if coarse == "CD4_T":
        if "treg" in t:
            return "Treg"
        if "tfh" in t:
            return "Tfh"
        if "naive" in t:
            return "CD4_Naive"
        return "CD4_Memory" if {"tcm", "tem", "cm", "em", "memory", "cell"} & t else "CD4_Effector"
    if coarse == "CD8_T":
        if "naive" in t:
            return "CD8_Naive"
        return "CD8_Memory" if {"tcm", "tem", "cm", "em", "memory", "cell"} & t else "CD8_Effector"
    if coarse == "Unconventional_T":
        return next(f for f in ("MAIT", "NKT", "ILC", "gdT") if f.lower() in low)
    if coarse == "NK":
        return "NK_CD56bright" if "cd56bright" in t else "NK_CD56dim" if "cd56dim" in t else "NK_other"
    if coarse == "B":
        return ("B_Naive" if "naive" in t else "B_Transitional" if "transitional" in t
                else "B_Memory" if "memory" in t or t == {"b", "cell"} else None)
    if coarse == "Plasma":
        return "Plasmablast" if "plasmablast" in low else "Plasma"
    if coarse == "Myeloid":
        if {"cd14", "classical", "monocyte"} & t:
            return "Mono_Classical"
        if {"cd16", "nonclassical"} & t:
            return "Mono_NonClassical"
        for token, fine in (("macrophage", "Macrophage"), ("kupffer", "Macrophage"), ("microglia", "Macrophage"),
                            ("cdc1", "cDC1"), ("cdc2", "cDC2"), ("dendritic", "cDC2"), ("pdc", "pDC"),
                            ("neutrophil", "Neutrophil"), ("mast", "Mast")):
            if token in t:
                return fine
        return None
    if coarse == "Progenitor":
        return "HSPC" if "hspc" in t else "Progenitor_other"
    return None


def _scatlas_immune_names() -> list[str]:
    """Every scAtlas cell type name the demo can produce that maps to a lineage (GCM's scAtlas list)."""
    pool = list(names.SCATLAS_GENERIC) + [ct for types in names.SCATLAS_SPECIFIC.values() for ct in types]
    return sorted({ct for ct in pool if coarse_type(ct)})


def harmonisation(demo: AtlasDemo) -> list[tuple[str, str, str, str | None, bool]]:
    """(atlas, cell type, coarse, fine, in the demo at this scale) for every mappable name."""
    full = {"CIMA": names.CIMA_CELL_TYPES, "Inflammation": names.INFLAMMATION_CELL_TYPES,
            "scAtlas": sorted(set(_scatlas_immune_names()) | set(demo.cell_types["scAtlas_Normal"]))}
    present = {"CIMA": set(demo.cell_types["CIMA"]), "Inflammation": set(demo.cell_types["Inflammation"]),
               "scAtlas": set(demo.cell_types["scAtlas_Normal"])}
    return [(atlas, ct, coarse_type(ct), fine_type(ct), ct in present[atlas])
            for atlas in ATLASES for ct in full[atlas] if coarse_type(ct)]


# --- reading back the demo tables already written ------------------------------------------------------

def written_tables(writer: Writer, tables: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one table per written source, under the served names and columns
    (read by the builder's own TableSource, so source spellings never matter here)."""
    con = duckdb.connect(config={"threads": 1})  # one thread: float sums in one order, byte-identical files
    con.execute("SET preserve_insertion_order = true")
    with tempfile.TemporaryDirectory() as tmp:
        for name in tables:
            spec = DOMAIN.table(name)
            source = TableSource(con, spec, [SourceFile(writer.output / spec.source, spec.source)], pathlib.Path(tmp))
            con.execute(f'CREATE TABLE "{name}" AS {source.select_sql()}')
    return con


def scatlas_cells(con: duckdb.DuckDBPyConnection, seed: int) -> dict[tuple[str, str], int]:
    """Cells of each scAtlas organ x cell type (scatlas_celltypes counts pseudobulk columns, not cells):
    the atlas's cells shared out LogNormally; the cell-type mapping and the expression rows use them."""
    pairs = con.execute("SELECT DISTINCT organ, cell_type FROM scatlas_celltypes ORDER BY ALL").fetchall()
    r = rng(seed, "scatlas_cell_counts")
    counts = lognormal_counts(r, ATLAS_CELLS["scAtlas_Normal"] / max(1, len(pairs)), 1.0, len(pairs)) + 20
    return dict(zip(pairs, counts.tolist()))


# --- the file ---------------------------------------------------------------------------------------

def generate(writer: Writer, demo: AtlasDemo) -> None:
    con = written_tables(writer, ("cima_celltype", "inflammation_celltype", "scatlas_celltypes",
                                  "singlecell_activity", "cima_correlations", "cima_differential"))
    try:
        mapping = harmonisation(demo)
        con.execute("CREATE TABLE harmonised (atlas VARCHAR, cell_type VARCHAR, coarse VARCHAR, fine VARCHAR)")
        con.executemany("INSERT INTO harmonised VALUES (?, ?, ?, ?)", [m[:4] for m in mapping if m[4]])
        con.execute(_ATLAS_VALUES)
        comparison, blocks = _atlas_comparison(con, demo)
        conserved = _conserved(con, demo)
        reliability = _reliability(con, blocks, conserved)
        document = {
            "summary": _summary(demo),
            "conserved": conserved,
            "atlas_specific_signatures": conserved["overlap_counts"],
            "comparison": _integrated(con),
            "atlas_comparison": comparison,
            "signature_reliability": reliability,
            "celltype_mapping": _celltype_mapping(con, mapping, scatlas_cells(con, demo.seed)),
            "shared_cell_types": _shared_lineages(con),
            "meta_analysis": _meta_analysis(con, demo),
            "correlation": _signature_correlations(con, demo),
            "pathways": _pathways(),
        }
        writer.json_tree(DOMAIN.table("cross_atlas"), document)
    finally:
        con.close()


# Per atlas x level x harmonised type x signature: the aggregated activity, for both views.
_ATLAS_VALUES = """
    CREATE TABLE atlas_values AS
    WITH levels AS (SELECT atlas, cell_type, 'coarse' AS level, coarse AS harmonized FROM harmonised
                    UNION ALL SELECT atlas, cell_type, 'fine', fine FROM harmonised WHERE fine IS NOT NULL),
    pb AS (SELECT 'CIMA' AS atlas, cell_type, signature_type, signature, mean_activity AS v, n_samples AS w,
                  n_samples AS n FROM cima_celltype
           UNION ALL SELECT 'Inflammation', cell_type, signature_type, signature, mean_activity, n_samples, n_samples
           FROM inflammation_celltype
           UNION ALL SELECT 'scAtlas', cell_type, signature_type, signature, mean_activity, n_cells, 1
           FROM scatlas_celltypes),
    -- singlecell_activity names the atlases as the single-cell files do; the pipeline compares the
    -- normal scAtlas and the main Inflammation cohort
    sc AS (SELECT CASE atlas WHEN 'scAtlas_Normal' THEN 'scAtlas' ELSE atlas END AS atlas, cell_type,
                  signature_type, signature, mean_activity, n_cells
           FROM singlecell_activity WHERE atlas IN ('CIMA', 'scAtlas_Normal')
              OR (atlas = 'Inflammation' AND cohort = 'main')),
    sc_types AS (SELECT atlas, cell_type, any_value(n_cells) AS n_cells FROM sc GROUP BY ALL),
    sc_share AS (SELECT atlas, cell_type, n_cells / sum(n_cells) OVER (PARTITION BY atlas) AS share FROM sc_types)
    SELECT 'pseudobulk' AS view, l.level, pb.atlas, l.harmonized, pb.signature_type, pb.signature,
           sum(pb.v * pb.w) / sum(pb.w) AS value, sum(pb.n) AS n
    FROM pb JOIN levels AS l USING (atlas, cell_type) GROUP BY ALL
    UNION ALL
    SELECT 'singlecell', l.level, s.atlas, l.harmonized, s.signature_type, s.signature,
           sum(s.mean_activity * s.n_cells) / sum(s.n_cells), round(50000 * sum(sh.share))
    FROM sc AS s JOIN levels AS l USING (atlas, cell_type) JOIN sc_share AS sh USING (atlas, cell_type)
    GROUP BY ALL
"""

_POINTS = """
    CREATE TABLE points AS
    SELECT a.view, a.level, a.atlas AS atlas1, b.atlas AS atlas2, a.signature_type, a.harmonized AS cell_type,
           a.signature, a.value AS x, b.value AS y, a.n AS n_x, b.n AS n_y
    FROM atlas_values AS a JOIN atlas_values AS b USING (view, level, harmonized, signature_type, signature)
    JOIN (VALUES ('CIMA', 'Inflammation'), ('CIMA', 'scAtlas'), ('Inflammation', 'scAtlas')) AS p(a1, a2)
      ON a.atlas = p.a1 AND b.atlas = p.a2
    WHERE a.view = 'pseudobulk' OR (a.n >= 10 AND b.n >= 10)
    ORDER BY a.view, a.level, atlas1, atlas2, a.signature_type, cell_type, a.signature
"""
_BLOCK_KEYS = {("pseudobulk", "coarse"): "celltype_aggregated_coarse", ("pseudobulk", "fine"): "celltype_aggregated_fine",
               ("singlecell", "coarse"): "singlecell_mean_coarse", ("singlecell", "fine"): "singlecell_mean_fine"}


def _spearman_of(con, where: str, params: list, group: str = "") -> list[tuple]:
    """Spearman rho (Pearson of ranks, in DuckDB) and n over the points matching `where`."""
    partition = f"PARTITION BY {group}" if group else ""
    select = f"{group}, " if group else ""
    return con.execute(
        f"SELECT {select}corr(rx, ry), count(*) FROM (SELECT *, rank() OVER ({partition} ORDER BY x) AS rx, "
        f"rank() OVER ({partition} ORDER BY y) AS ry FROM points WHERE {where}) GROUP BY ALL", params).fetchall()


def _p(rho, n) -> float | None:
    return None if rho is None or n < 3 else float(p_correlation(rho, n))


def _atlas_comparison(con, demo: AtlasDemo) -> tuple[dict, dict]:
    con.execute(_POINTS)
    total_cells = dict(con.execute("SELECT atlas || level, sum(n) FROM (SELECT DISTINCT atlas, level, harmonized, n "
                                   "FROM atlas_values WHERE view = 'singlecell') GROUP BY ALL").fetchall())
    document, blocks = {}, {}
    for type_name in demo.sigs.type_names:
        n_sigs = len(demo.sigs.of_type(type_name))
        document[type_name.lower()] = {}
        for a1, a2 in PAIRS:
            pair = f"{KEYS[a1]}_vs_{KEYS[a2]}"
            document[type_name.lower()][pair] = {}
            for (view, level), key in _BLOCK_KEYS.items():
                where, params = ("view = ? AND level = ? AND atlas1 = ? AND atlas2 = ? AND signature_type = ?",
                                 [view, level, a1, a2, type_name])
                data = con.sql(f"SELECT signature, cell_type, x, y, n_x, n_y FROM points WHERE {where} "
                               "ORDER BY cell_type, signature", params=params).to_arrow_table()
                n_x, n_y = ("n_samples_x", "n_samples_y") if view == "pseudobulk" else ("n_cells_x", "n_cells_y")
                data = data.rename_columns(["signature", "cell_type", "x", "y", n_x, n_y])
                [(rho, n)] = _spearman_of(con, where, params) or [(None, 0)]
                rho = None if n < 3 or rho is None or math.isnan(rho) else float(rho)
                n_types = len(set(data.column("cell_type").to_pylist()))
                block = {"data": Records(data), "n": data.num_rows, "n_celltypes": n_types,
                         "n_signatures": n_sigs if data.num_rows else 0}
                if view == "pseudobulk":
                    block.update(correlation=rho, pvalue=_p(rho, n))
                else:
                    block.update(overall_correlation=rho, overall_pvalue=_p(rho, n),
                                 n_cells_atlas1=int(total_cells.get(a1 + level, 0)),
                                 n_cells_atlas2=int(total_cells.get(a2 + level, 0)))
                document[type_name.lower()][pair][key] = block
                blocks[(type_name, pair, key)] = block
    return document, blocks


def _integrated(con) -> dict:
    """P07's CytoSig comparison: the coarse pseudobulk points under P07's names and pair keys."""
    out = {}
    for a1, a2 in PAIRS:
        pair = f"{'inflam' if a1 == 'Inflammation' else KEYS[a1]}_vs_{KEYS[a2]}"
        rows = con.sql(
            "SELECT signature, cell_type, x, y FROM points WHERE view = 'pseudobulk' AND level = 'coarse' "
            "AND atlas1 = ? AND atlas2 = ? AND signature_type = 'CytoSig' ORDER BY cell_type, signature",
            params=[a1, a2]).to_arrow_table()
        renamed = pa.array([P07_NAMES[c] for c in rows.column("cell_type").to_pylist()], pa.string())
        rows = rows.set_column(1, "cell_type", renamed)
        [(rho, n)] = _spearman_of(con, "view = 'pseudobulk' AND level = 'coarse' AND atlas1 = ? AND atlas2 = ? "
                                       "AND signature_type = 'CytoSig'", [a1, a2]) or [(None, 0)]
        out[pair] = {"data": Records(rows), "correlation": None if rho is None else float(rho), "pvalue": _p(rho, n),
                     "n": rows.num_rows}
    return out


def _conserved(con, demo: AtlasDemo) -> dict:
    """RCC's conserved section (both signature types, CytoSig wins a shared name)."""
    normal = list(demo.cell_types["scAtlas_Normal"])
    rows = con.execute("""
        WITH m AS (SELECT signature_type, signature, sum(mean_activity * n_samples) / sum(n_samples) AS v
                   FROM cima_celltype GROUP BY ALL),
        i AS (SELECT signature_type, signature, sum(mean_activity * n_samples) / sum(n_samples) AS v
              FROM inflammation_celltype GROUP BY ALL),
        s AS (SELECT signature_type, signature, sum(mean_activity * n_cells) / sum(n_cells) AS v
              FROM singlecell_activity WHERE atlas = 'scAtlas_Normal' AND list_contains(?, cell_type) GROUP BY ALL)
        SELECT signature, signature_type, m.v, i.v, s.v FROM m JOIN i USING (signature_type, signature)
        JOIN s USING (signature_type, signature)
        WHERE signature_type = 'CytoSig' OR signature NOT IN (SELECT signature FROM m WHERE signature_type = 'CytoSig')
    """, [normal]).fetchall()
    records = []
    for sig, kind, cima, inflammation, scatlas in rows:
        active = [abs(v) > ACTIVE for v in (cima, inflammation, scatlas)]
        records.append({"signature": sig, "signature_type": kind, "cima": active[0], "inflammation": active[1],
                        "scatlas": active[2], "n_atlases": sum(active), "cima_mean": cima,
                        "inflammation_mean": inflammation, "scatlas_mean": scatlas})
    records.sort(key=lambda r: (-r["n_atlases"], r["signature"]))
    flags = [(r["cima"], r["inflammation"], r["scatlas"]) for r in records]
    counts = {"all_three": (True, True, True), "cima_inflam": (True, True, False), "cima_scatlas": (True, False, True),
              "inflam_scatlas": (False, True, True), "cima_only": (True, False, False),
              "inflam_only": (False, True, False), "scatlas_only": (False, False, True)}
    return {"signatures": records, "overlap_counts": {k: flags.count(v) for k, v in counts.items()}}


def _reliability(con, blocks: dict, conserved: dict) -> dict:
    """GAC's per-signature reliability over the coarse pseudobulk points."""
    pairs = [f"{KEYS[a]}_vs_{KEYS[b]}" for a, b in PAIRS]
    by_pair = {(a, b): p for (a, b), p in zip(PAIRS, pairs)}
    stats = con.execute("""
        SELECT signature_type, atlas1, atlas2, signature, corr(rx, ry), count(*)
        FROM (SELECT *, rank() OVER w_x AS rx, rank() OVER w_y AS ry FROM points
              WHERE view = 'pseudobulk' AND level = 'coarse'
              WINDOW w_x AS (PARTITION BY signature_type, atlas1, atlas2, signature ORDER BY x),
                     w_y AS (PARTITION BY signature_type, atlas1, atlas2, signature ORDER BY y))
        GROUP BY ALL ORDER BY ALL""").fetchall()
    means = {(r["signature"], r["signature_type"]): r for r in conserved["signatures"]}
    out = {}
    for type_name in ("CytoSig", "SecAct"):
        found: dict[str, dict] = {}
        for kind, a1, a2, sig, rho, n in stats:
            if kind != type_name:
                continue
            entry = found.setdefault(sig, {})
            if n >= 3 and rho is not None and not math.isnan(rho):
                entry[by_pair[(a1, a2)]] = {"r": round(float(rho), 3), "p": float(p_correlation(rho, n)), "n": n}
        signatures = []
        for sig in sorted(found):
            correlations = found[sig]
            rs = [c["r"] for c in correlations.values()]
            n_high, n_moderate = sum(r > 0.7 for r in rs), sum(r > 0.5 for r in rs)
            category = ("unknown" if not rs else "insufficient_data" if len(rs) < 2 else "highly_conserved"
                        if n_high >= 2 else "moderately_conserved" if n_moderate >= 2 else "atlas_specific")
            info = {"signature": sig, "correlations": correlations, "n_reliable_pairs": n_high,
                    "n_pairs_with_data": len(rs), "mean_correlation": round(float(np.mean(rs)), 3) if rs else 0,
                    "category": category}
            row = means.get((sig, type_name))
            if row:
                atlas_means = {k: round(row[f"{k}_mean"], 3) for k in ("cima", "inflammation", "scatlas")}
                values = list(atlas_means.values())
                info.update(atlas_means=atlas_means, mean_across_atlases=round(float(np.mean(values)), 3),
                            std_across_atlases=round(float(np.std(values)), 3))
            signatures.append(info)
        signatures.sort(key=lambda s: (-s["n_pairs_with_data"], -s["mean_correlation"]))
        summary = {k: sum(s["category"] == k for s in signatures) for k in
                   ("highly_conserved", "moderately_conserved", "atlas_specific", "insufficient_data")}
        coarse = {p: blocks[(type_name, p, "celltype_aggregated_coarse")] for p in pairs}
        agnostic = {}
        typed = [r for r in conserved["signatures"] if r["signature_type"] == type_name]
        for a1, a2 in PAIRS:
            xs = np.array([r[f"{KEYS[a1]}_mean"] for r in typed])
            ys = np.array([r[f"{KEYS[a2]}_mean"] for r in typed])
            if xs.size >= 3:
                rho = spearman(xs, ys)
                agnostic[by_pair[(a1, a2)]] = {"correlation": round(rho, 3),
                                               "pvalue": float(p_correlation(rho, xs.size)), "n": int(xs.size)}
        out[type_name.lower()] = {
            "signatures": signatures, "summary": {"total": len(signatures), **summary},
            "pair_correlations": {p: {"correlation": b["correlation"], "pvalue": b["pvalue"], "n": b["n"]}
                                  for p, b in coarse.items() if b["correlation"]},
            "agnostic_pair_correlations": agnostic,
        }
    return out


def _summary(demo: AtlasDemo) -> dict:
    return {
        "cima": {"cells": ATLAS_CELLS["CIMA"], "samples": ATLAS_SAMPLES["CIMA"],
                 "cell_types": len(demo.cell_types["CIMA"]), "cell_type_list": list(demo.cell_types["CIMA"])},
        "inflammation": {"cells": ATLAS_CELLS["Inflammation"], "samples": ATLAS_SAMPLES["Inflammation"],
                         "cell_types": len(demo.cell_types["Inflammation"])},
        "scatlas_normal": {"cells": ATLAS_CELLS["scAtlas_Normal"], "samples": 0,
                           "cell_types": len(demo.cell_types["scAtlas_Normal"]), "organs": len(demo.organs)},
        "scatlas_cancer": {"cells": ATLAS_CELLS["scAtlas_Cancer"], "samples": 0,
                           "cell_types": len(demo.cell_types["scAtlas_Cancer"])},
    }


def _celltype_mapping(con, mapping, organ_cells: dict[tuple[str, str], int]) -> dict:
    """GCM's coarse and fine lists: every mapped name, its cells (0 when absent), by -cells."""
    cells = {("CIMA", ct): n for ct, n in con.execute(
        "SELECT cell_type, any_value(n_cells) FROM cima_celltype GROUP BY ALL").fetchall()}
    cells |= {("Inflammation", ct): n for ct, n in con.execute(
        "SELECT cell_type, any_value(n_cells) FROM inflammation_celltype GROUP BY ALL").fetchall()}
    for (_, ct), n in organ_cells.items():  # summed over the organs
        cells[("scAtlas", ct)] = cells.get(("scAtlas", ct), 0) + n

    def entry(label_key: str, label: str, index: int) -> dict:
        out = {label_key: label}
        for atlas in ATLASES:
            types = sorted(({"name": ct, "cells": int(cells.get((atlas, ct), 0))}
                            for a, ct, *targets, _ in mapping if a == atlas and targets[index] == label),
                           key=lambda t: (-t["cells"], t["name"]))
            out[KEYS[atlas]] = {"types": types, "total_cells": sum(t["cells"] for t in types)}
        return out

    fine = sorted({m[3] for m in mapping if m[3]})
    return {"coarse_mapping": [entry("lineage", lineage, 0) for lineage in COARSE],
            "fine_mapping": [entry("fine_type", f, 1) for f in fine],
            "lineages": list(COARSE)}


def _shared_lineages(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT harmonized FROM atlas_values WHERE view = 'pseudobulk' AND "
                                      "level = 'coarse' GROUP BY ALL HAVING count(DISTINCT atlas) = 3 "
                                      "ORDER BY 1").fetchall()]


def _meta_analysis(con, demo: AtlasDemo) -> dict:
    out = {}
    for analysis in ("age", "bmi", "sex"):
        if analysis == "sex":
            rows = con.execute("SELECT signature, signature_type, median_g1 - median_g2, pvalue, n_g1, n_g2 "
                               "FROM cima_differential WHERE comparison = 'sex' AND cell_type = 'All' "
                               "AND signature_type = 'CytoSig' ORDER BY signature").fetchall()
            n1, n2 = np.array([r[4] for r in rows], dtype=np.float64), np.array([r[5] for r in rows], dtype=np.float64)
            parts = [("CIMA", [r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows]),
                      np.sqrt(1 / n1 + 1 / n2) * 1.5, np.array([r[3] for r in rows]), (n1 + n2).astype(np.int64))]
        else:
            rows = con.execute("SELECT signature, signature_type, rho, pvalue, n FROM cima_correlations "
                               "WHERE category = ? AND signature_type IN ('CytoSig', 'SecAct') "
                               "ORDER BY signature_type, signature", [analysis]).fetchall()
            sig, kind = [r[0] for r in rows], [r[1] for r in rows]
            rho, n = np.array([r[2] for r in rows]), np.array([r[4] for r in rows])
            r = rng(demo.seed, "cross_atlas", "meta", analysis)
            inflammation_rho = np.round(correlations(r, len(rows)), 4)
            inflammation_n = r.integers(700, 818, len(rows))
            parts = [("CIMA", sig, kind, rho, 1 / np.sqrt(n - 3), np.array([r[3] for r in rows]), n),
                     ("Inflammation", sig, kind, inflammation_rho, 1 / np.sqrt(inflammation_n - 3),
                      p_correlation(inflammation_rho, inflammation_n), inflammation_n)]
        effects = np.stack([p[3] for p in parts])  # [atlases, signatures]
        ses = np.stack([p[4] for p in parts])
        weights = 1 / ses ** 2
        pooled = (weights * effects).sum(axis=0) / weights.sum(axis=0)
        pooled_se = np.sqrt(1 / weights.sum(axis=0))
        q = (weights * (effects - pooled) ** 2).sum(axis=0)
        k = len(parts)
        i2 = np.where(q > 0, np.maximum(0, (q - (k - 1)) / np.where(q > 0, q, 1) * 100), 0.0) if k > 1 \
            else np.zeros_like(q)
        records = []
        for a, (atlas, sigs, kinds, effect, se, p, n) in enumerate(parts):
            table = {"analysis": analysis, "signature": sigs, "sig_type": kinds, "atlas": [atlas] * len(sigs),
                     "effect": effect, "se": se, "pvalue": p, "n": np.asarray(n, dtype=np.int64), "I2": i2,
                     "pooled_effect": pooled, "pooled_se": pooled_se, "ci_low": pooled - 1.96 * pooled_se,
                     "ci_high": pooled + 1.96 * pooled_se, "n_atlases": np.full(len(sigs), k)}
            records.append(pa.table({key: (pa.array([v] * len(sigs)) if isinstance(v, str) else pa.array(v))
                                     for key, v in table.items()}))
        out[analysis] = Records(*records)
    return out


def _signature_correlations(con, demo: AtlasDemo) -> dict:
    """GSC: Spearman between signatures over the CIMA and Inflammation cell-type rows."""
    out = {}
    for type_name in ("CytoSig", "SecAct"):
        matrix = con.execute("""
            SELECT list(mean_activity ORDER BY cell_type) FROM (
                SELECT 'CIMA: ' || cell_type AS cell_type, signature, mean_activity FROM cima_celltype
                WHERE signature_type = ? UNION ALL
                SELECT 'Inflammation: ' || cell_type, signature, mean_activity FROM inflammation_celltype
                WHERE signature_type = ?)
            GROUP BY signature ORDER BY signature""", [type_name, type_name]).fetchall()
        sigs = [r[0] for r in con.execute("SELECT DISTINCT signature FROM cima_celltype WHERE signature_type = ? "
                                          "ORDER BY 1", [type_name]).fetchall()]
        x = np.array([r[0] for r in matrix], dtype=np.float64)  # [signatures, cell types]
        if type_name == "SecAct" and len(sigs) > 200:
            keep = np.sort(np.argsort(-x.var(axis=1), kind="stable")[:200])
            x, sigs = x[keep], [sigs[i] for i in keep]
        ranks = np.argsort(np.argsort(x, axis=1, kind="stable"), axis=1, kind="stable").astype(np.float64)
        rho = np.round(np.corrcoef(ranks), 4)
        n_modules = 4 if type_name == "CytoSig" else 8
        seeds = np.sort(np.argsort(-x.var(axis=1), kind="stable")[:n_modules])
        member_of = np.argmax(rho[:, seeds], axis=1)
        member_of[seeds] = np.arange(n_modules)
        modules = []
        for m, seed in enumerate(seeds):
            members = np.flatnonzero(member_of == m)
            inner = rho[np.ix_(members, members)][~np.eye(members.size, dtype=bool)]
            modules.append({"name": f"Module {m + 1} ({sigs[seed]})", "members": [sigs[i] for i in members],
                            "color": MODULE_COLORS[m], "n_members": int(members.size),
                            "mean_correlation": round(float(inner.mean()), 3) if inner.size else None})
        out[type_name.lower()] = {"signatures": sigs, "matrix": rho.tolist(), "modules": modules,
                                  "n_signatures": len(sigs), "n_samples": x.shape[1]}
    # GSC keeps the CytoSig block at the top level too (P06's shape).
    out.update({k: out["cytosig"][k] for k in ("signatures", "matrix", "modules")})
    return out


def _fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided (greater) Fisher exact p of [[a, b], [c, d]]: P(X >= a), hypergeometric."""
    row1, col1, total = a + b, a + c, a + b + c + d
    denom = math.comb(total, col1)
    return min(1.0, sum(math.comb(row1, k) * math.comb(total - row1, col1 - k)
                        for k in range(a, min(row1, col1) + 1)) / denom)


def _pathways() -> dict:
    """P07's enrichment of the CytoSig names in three fixed pathway databases (top 20 each, P06)."""
    signatures = set(names.CYTOSIG)
    out = {}
    for db, pathways in (("kegg", KEGG), ("reactome", REACTOME), ("hallmark", HALLMARK)):
        rows = []
        for pathway, genes in pathways.items():
            overlap = signatures & set(genes)
            if not overlap:
                continue
            a, b = len(overlap), len(genes) - len(overlap)
            c = len(signatures) - a
            d = max(1, 1000 - len(genes) - c)
            rows.append({"database": db, "pathway": pathway, "pathway_id": f"{db}_{pathway[:20].replace(' ', '_')}",
                         "n_genes": a, "n_pathway_total": len(genes), "pvalue": _fisher_greater(a, b, c, d),
                         "odds_ratio": (a * d) / (b * c) if b * c else 1e6, "genes": ",".join(sorted(overlap))})
        fdr = bh(np.array([r["pvalue"] for r in rows]))
        for r, q in zip(rows, fdr):
            r["fdr"] = float(q)
            r["neg_log_fdr"] = float(-np.log10(q + 1e-10))
        out[db] = sorted(rows, key=lambda r: -r["neg_log_fdr"])[:20]
    return out
