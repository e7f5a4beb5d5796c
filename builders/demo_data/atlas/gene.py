"""Demo sources of the gene page: gene_expression.json, expression_boxplot.json, gene_list.json and
the API's static gene_info.json and signature_gene_mapping.json.

Expression follows the E7E scripts: the 77 KEY_GENES (75 are symbols; `TNFA` and `TRAIL` match no
gene, so they have no rows), per atlas cell type (CIMA level 2, the 17 Inflammation Level1 types,
scAtlas '<organ>: <cell type>'), from min(300, n_cells) sampled cells: a cell expresses the gene with
a probability set by the cell type's programme (IFNG/GZMB/PRF1 in NK and CD8, IL1B/IL6/TNF in
monocytes, FOXP3 in Treg, ...); an expressing cell's value ~ LogNormal. mean_expression is the mean
over all sampled cells (zeros included) and pct_expressed the share expressing, both rounded as the
scripts round them; the boxplot row of the same draws (over expressing cells, population SD) exists
when >= 3 cells express, so mean_all = mean_expression and the pct_expressed agree exactly.
Cardinality: 75 genes x (CIMA types + Inflammation Level1 types + scAtlas organ x cell types), about
24K rows at scale 1 (the E7E-only real file; the all-gene 07d file would be far larger).
n_cells: CIMA's from cima_celltype; scAtlas's per organ x cell type as the cross-atlas demo draws them
(cross_atlas.scatlas_cells); Inflammation Level1 types get a share of the atlas's cells. gene_list: the expressed genes, the CytoSig genes, the demo SecAct names, a few
`C<n>orf<m>` symbols and LOC filler up to 36,326 x scale (floor 1,500; CIMA alone has 36,326 genes).
gene_info: every CytoSig name and 94% of the demo SecAct names (real: 1,170 of up to 1,249), ids null
for ~94% of SecAct as in the real file.
"""

from __future__ import annotations

import re

import numpy as np

from builders.demo_data import names
from builders.demo_data._io import Writer, cat
from builders.demo_data._scale import scaled
from builders.demo_data._stats import r4, rng
from builders.demo_data.atlas.common import ATLAS_CELLS, AtlasDemo
from builders.demo_data.atlas.cross_atlas import scatlas_cells, written_tables
from builders.demo_data.signature_names import SECOND_GENES, write_mapping
from cytoatlas.domains.atlas import DOMAIN

T = DOMAIN.table
KEY_GENES = (
    "IFNG", "IFNA1", "IFNB1", "IFNL1",
    "IL1A", "IL1B", "IL2", "IL4", "IL5", "IL6", "IL7", "IL10", "IL12A", "IL12B",
    "IL13", "IL15", "IL17A", "IL17F", "IL18", "IL21", "IL22", "IL23A", "IL27",
    "TNF", "TNFA", "LTA", "LTB", "FASLG", "TRAIL", "CD40LG",
    "CCL2", "CCL3", "CCL4", "CCL5", "CCL7", "CCL8", "CCL11", "CCL17", "CCL19", "CCL20", "CCL21", "CCL22",
    "CXCL1", "CXCL2", "CXCL3", "CXCL8", "CXCL9", "CXCL10", "CXCL11", "CXCL12", "CXCL13",
    "TGFB1", "TGFB2", "TGFB3", "VEGFA", "EGF", "FGF2", "PDGFA", "PDGFB",
    "CSF1", "CSF2", "CSF3",
    "CD274", "PDCD1", "CTLA4", "LAG3", "HAVCR2", "TIGIT",
    "GZMA", "GZMB", "GZMK", "PRF1", "GNLY",
    "FOXP3", "RORC", "TBX21", "GATA3",
)
GENES = tuple(g for g in KEY_GENES if g not in ("TNFA", "TRAIL"))  # not gene symbols: no var matches them
INFLAMMATION_LEVEL1 = ("T_CD4_Naive", "Mono", "T_CD8_NonNaive", "B", "NK", "T_CD4_NonNaive", "T_CD8_Naive",
                       "pDC", "DC", "Plasma", "UTC", "Neutrophil", "ILC", "Progenitors", "Cycling_cells",
                       "Platelets", "RBC")
# Cell-type programmes (substring of the cell-type name -> genes it expresses), beside the activity
# programmes' genes (names.ATLAS_CELL_PROGRAMMES through names.cytosig_gene).
GENE_PROGRAMMES = (
    ("Treg", ("FOXP3", "CTLA4", "IL10")), ("Th17", ("RORC", "IL17A", "IL17F", "IL22")),
    ("Th1", ("TBX21", "IFNG")), ("CD4", ("GATA3", "IL7", "LTB")), ("CD8", ("GZMK", "GZMA", "PDCD1", "LAG3")),
    ("NK", ("GNLY", "GZMB", "PRF1", "TBX21")), ("Mono", ("CCL2", "CXCL8", "CD274", "CCL3", "CCL4")),
    ("DC", ("CCL17", "CCL22", "CD274", "CCL19")), ("Macrophage", ("CXCL9", "CXCL10", "CCL2")),
    ("Neutrophil", ("CXCL8", "CXCL1", "CXCL2")), ("Tfh", ("CXCL13", "IL21", "PDCD1", "TIGIT")),
    ("Fibroblast", ("CXCL12", "TGFB3", "PDGFA")), ("Endothelial", ("VEGFA", "PDGFB")),
)
SAMPLED = 300  # cells sampled per cell type (E7E)


def generate(writer: Writer, demo: AtlasDemo) -> None:
    con = written_tables(writer, ("cima_celltype", "scatlas_celltypes"))
    try:
        cima = dict(con.execute("SELECT cell_type, any_value(n_cells) FROM cima_celltype GROUP BY ALL").fetchall())
        organ = scatlas_cells(con, demo.seed)
    finally:
        con.close()
    r = rng(demo.seed, "gene_expression", "inflammation_level1")
    level1 = INFLAMMATION_LEVEL1[:scaled(len(INFLAMMATION_LEVEL1), demo.scale.s, 8)]
    share = r.dirichlet(np.full(len(level1), 2.0))
    types = ([("CIMA", ct, None, ct, cima[ct]) for ct in demo.cell_types["CIMA"]]
             + [("Inflammation", ct, None, ct, max(50, int(s * ATLAS_CELLS["Inflammation"])))
                for ct, s in zip(level1, share)]
             + [("scAtlas_Normal", f"{o}: {ct}", o, ct, organ[(o, ct)])
                for o in demo.organs for ct in demo.organ_types[o] if (o, ct) in organ])
    _expression(writer, demo, types)
    _gene_list(writer, demo)
    _gene_info(writer, demo)
    write_mapping(writer, T("signature_aliases"))


def _programme(cell_type: str) -> set[str]:
    genes = set()
    for pattern, signatures in names.ATLAS_CELL_PROGRAMMES:
        if pattern.lower() in cell_type.lower():
            genes |= {names.cytosig_gene(s) for s in signatures}
    for pattern, wanted in GENE_PROGRAMMES:
        if pattern.lower() in cell_type.lower():
            genes |= set(wanted)
    return genes


def _expression(writer: Writer, demo: AtlasDemo, types: list[tuple]) -> None:
    G, C = len(GENES), len(types)
    r = rng(demo.seed, "gene_expression")
    programmes = [_programme(base) for _, _, _, base, _ in types]
    boost = np.array([[g in genes for g in GENES] for genes in programmes], dtype=np.float64)
    boost = boost.T.reshape(-1)  # gene-major: row k = gene k // C, cell type k % C
    n_cells = np.tile(np.array([t[4] for t in types], dtype=np.int64), G)
    n_total = np.minimum(SAMPLED, n_cells)
    prob = np.clip(r.uniform(0.005, 0.08, G * C) + boost * r.uniform(0.25, 0.7, G * C), 0, 1)
    n_expr = r.binomial(n_total, prob)
    values = np.exp(r.normal(0.3 + 0.7 * boost[:, None], 0.45, (G * C, SAMPLED)))
    expressing = np.arange(SAMPLED)[None, :] < n_expr[:, None]
    values = np.where(expressing, values, 0.0)
    mean_all = r4(values.sum(axis=1) / n_total)
    pct = np.round(100.0 * n_expr / n_total, 2)
    gene_idx = np.repeat(np.arange(G), C)
    type_idx = np.tile(np.arange(C), G)
    labels = [t[1] for t in types]
    atlases = ("CIMA", "Inflammation", "scAtlas_Normal")
    atlas_idx = np.array([atlases.index(t[0]) for t in types])[type_idx]
    organs = sorted({t[2] for t in types if t[2]})
    organ_idx = np.array([organs.index(t[2]) if t[2] else -1 for t in types])[type_idx]
    bases = sorted({t[3] for t in types if t[2]})
    base_idx = np.array([bases.index(t[3]) if t[2] else -1 for t in types])[type_idx]
    location = {"gene": cat(gene_idx, GENES), "atlas": cat(atlas_idx, atlases), "cell_type": cat(type_idx, labels),
                "organ": cat(organ_idx, organs), "base_cell_type": cat(base_idx, bases)}
    writer.json(T("gene_expression"), {**location, "mean_expression": mean_all, "pct_expressed": pct,
                                       "n_cells": n_cells})

    keep = np.flatnonzero(n_expr >= 3)
    n = n_expr[keep]
    ranked = np.sort(np.where(expressing[keep], values[keep], np.inf), axis=1)  # expressing values first
    rows = np.arange(keep.size)
    q = []
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):  # numpy's default (linear) percentile over the expressing values
        position = share * (n - 1)
        low, high = np.floor(position).astype(np.int64), np.ceil(position).astype(np.int64)
        q.append(ranked[rows, low] + (position - low) * (ranked[rows, high] - ranked[rows, low]))
    expressed = np.where(expressing[keep], values[keep], 0.0)
    mean = expressed.sum(axis=1) / n
    std = np.sqrt(np.where(expressing[keep], (values[keep] - mean[:, None]) ** 2, 0.0).sum(axis=1) / n)
    writer.json(T("expression_boxplot"), {
        **{k: v.take(keep) for k, v in location.items()},
        **dict(zip(("min", "q1", "median", "q3", "max"), r4(np.array(q)))),
        "mean": r4(mean), "std": r4(std), "mean_all": mean_all[keep],
        "n_expressing": n_expr[keep], "n_total": n_total[keep], "pct_expressed": pct[keep], "n": n_expr[keep],
    })


def _gene_list(writer: Writer, demo: AtlasDemo) -> None:
    secact = [demo.sigs.names[i] for i in demo.sigs.of_type("SecAct")]
    orfs = [n for n in names.SECACT if re.fullmatch(r"C\d+orf\d+", n)][:5]  # lower-case letters in a symbol
    genes = set(GENES) | {names.cytosig_gene(s) for s in names.CYTOSIG} | set(SECOND_GENES) | set(secact) | set(orfs)
    total = scaled(36_326, demo.scale.s, 1_500)
    filler = [f"LOC{100_000 + i}" for i in range(max(0, total - len(genes)))]
    listed = sorted(genes | set(filler))
    writer.nested_json(T("gene_list"), listed, len(listed), indent=None)


def _gene_info(writer: Writer, demo: AtlasDemo) -> None:
    """gene_info.json: {"cytosig": {name: record}, "secact": {name: record}, "metadata": {...}}."""
    def record(symbol: str, described: str, with_ids: bool) -> dict:
        k = names.stable_int("gene_info", symbol)
        ids = {"entrez_id": str(1000 + k % 90000), "uniprot_id": f"P{k % 100000:05d}",
               "ensembl_id": f"ENSG{k % 10 ** 11:011d}", "hgnc_id": f"HGNC:{k % 40000}"}
        return {"hgnc_symbol": symbol, **(ids if with_ids else dict.fromkeys(ids)),
                "description": f"{described} (demo description of the protein encoded by {symbol})."}

    cytosig = {}
    for s in names.CYTOSIG:
        cytosig[s] = record(names.cytosig_gene(s), f"{s} is a cytokine of the CytoSig set", True)
        if names.cytosig_gene(s) != s:
            cytosig[s]["signature_name"] = s
    secact_names = [demo.sigs.names[i] for i in demo.sigs.of_type("SecAct")]
    secact = {n: record(n, f"{n} is a secreted protein of the SecAct set", names.stable_int("ids", n) % 16 == 0)
              for k, n in enumerate(secact_names) if k % 16 != 15}
    document = {"cytosig": cytosig, "secact": secact,
                "metadata": {"cytosig_count": len(cytosig), "secact_count": len(secact), "last_updated": "2026-02-02",
                             "notes": f"Complete coverage of all CytoSig ({len(cytosig)}) and SecAct ({len(secact)}) "
                                      "signatures"}}
    writer.nested_json(T("gene_info"), document, len(cytosig) + len(secact))
