"""The atlas file's search index (cytoatlas/domains/search_index.py): atlas_search_mentions,
atlas_search_entities, atlas_search_terms, derived from the tables built before them.

Entities: signatures (cytokine = CytoSig, protein = SecAct, lincytosig), genes (gene_list,
gene_expression, cima_eqtl, the HGNC symbols of gene_info and signature_aliases), cell types
(activity and the three cell-type tables), diseases and disease groups (Inflammation), organs
(scAtlas), cancer types (scAtlas cancer tables, labelled from cancer_type_labels), the atlases
themselves, the bulk validation cohorts (dataset) and the cross-atlas enrichment pathways.
Contexts are the atlases as `activity` names them (CIMA, Inflammation, scAtlas_Normal,
scAtlas_Cancer).
"""

from cytoatlas.domains.search_index import entity_type_of, search_tables

_SIG = entity_type_of("signature_type")

MENTIONS_SQL = f"""
    SELECT {_SIG} AS entity_type, signature AS name, atlas AS context, 'activity' AS source_table, count(*) AS n_rows
    FROM activity GROUP BY ALL
    UNION ALL SELECT {_SIG}, signature, 'Inflammation', 'inflammation_differential', count(*)
    FROM inflammation_differential GROUP BY ALL
    UNION ALL SELECT {_SIG}, signature, 'CIMA', 'cima_correlations', count(*) FROM cima_correlations GROUP BY ALL
    UNION ALL SELECT {_SIG}, signature, 'scAtlas_Normal', 'scatlas_organs', count(*) FROM scatlas_organs GROUP BY ALL
    UNION ALL SELECT 'gene', gene, atlas, 'gene_expression', count(*) FROM gene_expression GROUP BY ALL
    UNION ALL SELECT 'gene', gene, '', 'gene_list', count(*) FROM gene_list GROUP BY ALL
    UNION ALL SELECT 'gene', gene, 'CIMA', 'cima_eqtl', count(*) FROM cima_eqtl GROUP BY ALL
    UNION ALL SELECT 'cell_type', cell_type, atlas, 'activity', count(*) FROM activity GROUP BY ALL
    UNION ALL SELECT 'cell_type', cell_type, 'CIMA', 'cima_celltype', count(*) FROM cima_celltype GROUP BY ALL
    UNION ALL SELECT 'cell_type', cell_type, 'Inflammation', 'inflammation_celltype', count(*)
    FROM inflammation_celltype GROUP BY ALL
    UNION ALL SELECT 'cell_type', cell_type, 'scAtlas_Normal', 'scatlas_celltypes', count(*)
    FROM scatlas_celltypes GROUP BY ALL
    UNION ALL SELECT 'disease', disease, 'Inflammation', 'inflammation_disease', count(*)
    FROM inflammation_disease GROUP BY ALL
    UNION ALL SELECT 'disease', disease, 'Inflammation', 'inflammation_differential', count(*)
    FROM inflammation_differential GROUP BY ALL
    UNION ALL SELECT 'disease_group', disease_group, 'Inflammation', 'inflammation_disease', count(*)
    FROM inflammation_disease GROUP BY ALL
    UNION ALL SELECT 'organ', organ, 'scAtlas_Normal', 'scatlas_organs', count(*) FROM scatlas_organs GROUP BY ALL
    UNION ALL SELECT 'organ', organ, 'scAtlas_Normal', 'scatlas_celltypes', count(*) FROM scatlas_celltypes GROUP BY ALL
    UNION ALL SELECT 'cancer_type', cancer_type, 'scAtlas_Cancer', 'cancer_types', count(*) FROM cancer_types GROUP BY ALL
    UNION ALL SELECT 'cancer_type', cancer_type, 'scAtlas_Cancer', 'exhaustion', count(*) FROM exhaustion GROUP BY ALL
    UNION ALL SELECT 'cancer_type', cancer_type, 'scAtlas_Cancer', 'immune_infiltration', count(*)
    FROM immune_infiltration GROUP BY ALL
    UNION ALL SELECT 'atlas', atlas, atlas, 'activity', count(*) FROM activity GROUP BY ALL
    UNION ALL SELECT 'dataset', dataset, '', 'validation_bulk_datasets', count(*) FROM validation_bulk_datasets GROUP BY ALL
    UNION ALL SELECT 'pathway', pathway, '', 'cross_atlas_pathways', count(*) FROM cross_atlas_pathways GROUP BY ALL
"""

ENTITIES_SQL = f"""
    SELECT {_SIG} AS entity_type, signature AS name, description, signature_type FROM gene_info
    UNION ALL SELECT DISTINCT {_SIG}, signature, NULL, signature_type FROM activity
    UNION ALL SELECT 'gene', hgnc_symbol, description, NULL FROM gene_info WHERE hgnc_symbol IS NOT NULL
    UNION ALL SELECT 'gene', hgnc_symbol, NULL, NULL FROM signature_aliases WHERE hgnc_symbol IS NOT NULL
    UNION ALL SELECT DISTINCT 'disease', disease, 'Inflammation Atlas disease (' || disease_group || ')', NULL
    FROM inflammation_disease
    UNION ALL SELECT 'cancer_type', cancer_type, label || ' (scAtlas cancer type)', NULL FROM cancer_type_labels
    WHERE cancer_type IN (SELECT name FROM atlas_search_mentions WHERE entity_type = 'cancer_type')
    UNION ALL SELECT DISTINCT 'organ', organ, 'scAtlas organ', NULL FROM scatlas_organs
    UNION ALL SELECT DISTINCT 'atlas', atlas, CASE atlas WHEN 'CIMA' THEN 'Chinese Immune Multi-omics Atlas (healthy donors)'
        WHEN 'Inflammation' THEN 'Inflammation Atlas (immune-mediated and infectious diseases)'
        WHEN 'scAtlas_Normal' THEN 'scAtlas: normal tissues of 35 organs'
        WHEN 'scAtlas_Cancer' THEN 'scAtlas: tumours (pan-cancer)' END, NULL FROM activity
    UNION ALL SELECT 'dataset', dataset, 'Bulk RNA-seq validation cohort (' || upper(dataset) || ')', NULL
    FROM validation_bulk_datasets
"""

# Other spellings: the alias table (HGNC symbol <-> signature name, per signature type), the HGNC
# symbol of a signature (gene_info), a gene's signature names, a cancer type's label.
ALIASES_SQL = f"""
    SELECT {_SIG} AS entity_type, signature AS name, alias AS term, kind AS term_kind FROM signature_aliases
    UNION ALL SELECT {_SIG}, signature, hgnc_symbol, 'hgnc_symbol' FROM gene_info WHERE hgnc_symbol <> signature
    UNION ALL SELECT 'gene', hgnc_symbol, signature, 'signature' FROM gene_info WHERE hgnc_symbol <> signature
    UNION ALL SELECT 'gene', hgnc_symbol, signature, 'signature' FROM signature_aliases
    WHERE signature_type = 'CytoSig' AND hgnc_symbol <> signature
    UNION ALL SELECT 'cancer_type', cancer_type, label, 'label' FROM cancer_type_labels
"""

TABLES = search_tables(
    "atlas", MENTIONS_SQL, ENTITIES_SQL, ALIASES_SQL,
    depends_on=("activity", "inflammation_differential", "cima_correlations", "scatlas_organs", "gene_expression",
                "gene_list", "cima_eqtl", "cima_celltype", "inflammation_celltype", "scatlas_celltypes",
                "inflammation_disease", "cancer_types", "exhaustion", "immune_infiltration",
                "validation_bulk_datasets", "cross_atlas_pathways", "gene_info", "signature_aliases",
                "cancer_type_labels"),
)
