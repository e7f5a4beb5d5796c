"""The signature-name alias table every domain's file carries: HGNC gene symbol <-> signature name
(TNF -> CytoSig TNFA, INHBA -> CytoSig Activin A, TNFA -> SecAct TNF), read from the CytoAtlas API's
hand-curated mapping file. The typed RPCs resolve the names users type through it
(cytoatlas/serving/typed_rpc.py); exact and case-insensitive matches need no table.

Every domain gets its own copy (the names are the same signature matrices in all three), under a
name of its own because a table is served by exactly one service.
"""

from cytoatlas.domains.spec import TableSpec, key_text, text
from cytoatlas.domains.sql import json_entries

# Under --source, where the real repository keeps it (cytoatlas-api/static/data/).
STATIC = "cytoatlas-api/static/data/"
MAPPING_SOURCE = STATIC + "signature_gene_mapping.json"
ALIAS_TABLES = {"atlas": "signature_aliases", "perturbation": "perturbation_signature_aliases",
                "spatial": "spatial_signature_aliases"}

# {"signature_to_hgnc": {"TNFA": "TNF", "Activin A": "INHBA", ...},
#  "hgnc_to_signature": {"TNF": "TNFA", "IFNB1": "IFN1", "IL12B": "IL12", ...}, ...}
# Every spelling that differs from the name it stands for, one row per (spelling, signature type):
#   CytoSig: each HGNC symbol -> its CytoSig name (both maps; IFNB1 and IL12B only in the second);
#   SecAct:  each CytoSig name -> the HGNC symbol, which is the SecAct name of the same protein.
# Identity rows (BDNF -> BDNF) are left out: an exact match needs no alias.
ALIASES_SQL = f"""
    WITH f AS (SELECT json FROM {{json}}),
    h AS (SELECT hgnc, sig->>'$' AS sig FROM (SELECT {json_entries('hgnc', 'sig', "json->'hgnc_to_signature'")} FROM f)),
    s AS (SELECT sig, hgnc->>'$' AS hgnc FROM (SELECT {json_entries('sig', 'hgnc', "json->'signature_to_hgnc'")} FROM f)),
    a AS (SELECT hgnc AS alias, 'CytoSig' AS signature_type, sig AS signature, hgnc AS hgnc_symbol,
                 'hgnc_symbol' AS kind FROM h
          UNION SELECT hgnc, 'CytoSig', sig, hgnc, 'hgnc_symbol' FROM s
          UNION SELECT sig, 'SecAct', hgnc, hgnc, 'cytosig_name' FROM s)
    SELECT lower(alias) AS alias_key, signature_type, alias, signature, hgnc_symbol, kind
    FROM a WHERE alias IS NOT NULL AND signature IS NOT NULL AND alias <> signature
"""


def alias_table(domain: str) -> TableSpec:
    """The alias table of one domain's file (same source and rows in every domain)."""
    return TableSpec(
        name=ALIAS_TABLES[domain],
        description="Other spellings of signature names (HGNC symbol <-> CytoSig name), from the API's "
                    "signature_gene_mapping.json; typed RPCs resolve names through it.",
        source=MAPPING_SOURCE,
        format="json",
        source_sql=ALIASES_SQL,
        columns=(
            key_text("alias_key", "lower(alias): the lookup column (names are ASCII)."),
            key_text("signature_type", "The signature family the alias names a signature of."),
            key_text("alias", "The spelling, as in the source (TNF, INHBA, TNFA)."),
            key_text("signature", "The signature name the data tables use for it (TNFA, Activin A, TNF)."),
            text("hgnc_symbol", "HGNC symbol of the gene encoding the target."),
            key_text("kind", "hgnc_symbol (a gene symbol of a CytoSig target) or cytosig_name (a CytoSig "
                             "name standing for the SecAct protein)."),
        ),
        # One signature per spelling and type: a second would make the alias ambiguous (a build error).
        key=("alias_key", "signature_type"),
    )
