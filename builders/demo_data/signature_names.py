"""The CytoAtlas API's hand-curated signature_gene_mapping.json, in its real shape: every domain's
alias table reads it, so every domain's generator writes it (byte-identical). A static file of the
API repository (cytoatlas-api/static/data/), not pipeline output: it covers the 43 CytoSig names at
every scale. (gene_info.json, the atlas gene page's, is written by builders/demo_data/atlas/gene.py.)
"""

from __future__ import annotations

from builders.demo_data import names
from builders.demo_data._io import Writer
from cytoatlas.domains.signature_aliases import MAPPING_SOURCE

# Symbols of a CytoSig target with two genes: the real mapping lists the second one only in
# hgnc_to_signature (IFN1 <- IFNA1, IFNB1; IL12 <- IL12A, IL12B).
SECOND_GENES = {"IFNB1": "IFN1", "IL12B": "IL12"}


def mapping_document() -> dict:
    renamed = [s for s in names.CYTOSIG if names.cytosig_gene(s) != s]
    to_hgnc = {s: names.cytosig_gene(s) for s in names.CYTOSIG}
    return {
        "description": "Mapping between signature names used in CytoSig/SecAct and official HGNC gene symbols",
        "generated": "2026-02-02",
        "cytosig_mapping": {s: {"hgnc_symbol": g, "hgnc_id": f"HGNC:{names.stable_int('hgnc', g) % 40000}",
                                "notes": "Direct match" if g == s else f"{s} is encoded by {g}"}
                            for s, g in to_hgnc.items()},
        "secact_notes": "SecAct signatures use HGNC gene symbols directly",
        "signature_to_hgnc": to_hgnc,
        "hgnc_to_signature": {**{g: s for s, g in to_hgnc.items()}, **SECOND_GENES},
        "mapping_requiring_rename": [{"signature": s, "hgnc": to_hgnc[s]} for s in renamed],
    }


def write_mapping(writer: Writer, spec) -> None:
    """signature_gene_mapping.json for `spec` (a domain's alias table, which reads it)."""
    assert spec.source == MAPPING_SOURCE
    document = mapping_document()
    rows = len({(g.lower(), "CytoSig") for g in document["hgnc_to_signature"]
                if document["hgnc_to_signature"][g] != g}) + len(document["mapping_requiring_rename"])
    writer.nested_json(spec, document, rows)
