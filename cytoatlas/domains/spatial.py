"""Spatial domain: SpatialCorpus-110M tissue, neighborhood and technology tables (DOMAIN.md §3)."""

from cytoatlas.domains.search_index import entity_type_of, search_tables
from cytoatlas.domains.signature_aliases import alias_table
from cytoatlas.domains.spec import (
    Column, DomainSpec, NON_NEGATIVE, PROBABILITY, TableSpec, count, integer, key_text, pvalue,
    real, signature, signature_type, text,
)

S = "results/spatial/"

# The search index (cytoatlas/domains/search_index.py): signatures (cytokine = CytoSig, protein =
# SecAct), tissues, technologies, datasets (the file name and accession as aliases), the cell types
# of the neighbourhood and coordinate tables, and the niches (neighbourhood labels). Contexts are
# the technologies (a signature occurs in every one of the 251 datasets: listing those would say
# nothing); a dataset's context is its technology.
_SIG = entity_type_of("signature_type")
_TECHNOLOGY = "LEFT JOIN (SELECT dataset_id, technology FROM spatial_dataset_metadata) d"
SEARCH_MENTIONS_SQL = f"""
    SELECT {_SIG} AS entity_type, signature AS name, technology AS context, 'spatial_activity' AS source_table,
           count(*) AS n_rows
    FROM spatial_activity GROUP BY ALL
    UNION ALL SELECT {_SIG}, signature, '', 'spatial_tissue_summary', count(*) FROM spatial_tissue_summary GROUP BY ALL
    UNION ALL SELECT 'tissue', tissue, technology, 'spatial_dataset_metadata', count(*)
    FROM spatial_dataset_metadata GROUP BY ALL
    UNION ALL SELECT 'tissue', tissue, '', 'spatial_tissue_summary', count(*) FROM spatial_tissue_summary GROUP BY ALL
    UNION ALL SELECT 'technology', technology, technology, 'spatial_dataset_metadata', count(*)
    FROM spatial_dataset_metadata GROUP BY ALL
    UNION ALL SELECT 'dataset', dataset_id, technology, 'spatial_dataset_metadata', 1 FROM spatial_dataset_metadata
    UNION ALL SELECT 'cell_type', n.cell_type, coalesce(d.technology, ''), 'spatial_neighborhood', count(*)
    FROM spatial_neighborhood n {_TECHNOLOGY} ON d.dataset_id = n.file GROUP BY ALL
    UNION ALL SELECT 'cell_type', c.cell_type, coalesce(d.technology, ''), 'spatial_coordinates', count(*)
    FROM spatial_coordinates c {_TECHNOLOGY} USING (dataset_id) WHERE c.cell_type IS NOT NULL GROUP BY ALL
    UNION ALL SELECT 'niche', n.neighborhood, coalesce(d.technology, ''), 'spatial_neighborhood', count(*)
    FROM spatial_neighborhood n {_TECHNOLOGY} ON d.dataset_id = n.file WHERE n.neighborhood IS NOT NULL GROUP BY ALL
"""
SEARCH_ENTITIES_SQL = f"""
    SELECT DISTINCT {_SIG} AS entity_type, signature AS name, NULL AS description, signature_type
    FROM spatial_tissue_summary
    UNION ALL SELECT 'dataset', dataset_id, concat_ws(' ', technology, tissue, 'dataset') || ' ('
        || concat_ws(', ', species, 'tier ' || tier, source, accession) || ')', NULL FROM spatial_dataset_metadata
"""
# Other spellings: the alias table; a dataset's file name and accession.
SEARCH_ALIASES_SQL = f"""
    SELECT {_SIG} AS entity_type, signature AS name, alias AS term, kind AS term_kind FROM spatial_signature_aliases
    UNION ALL SELECT 'dataset', dataset_id, filename, 'filename' FROM spatial_dataset_metadata
    UNION ALL SELECT 'dataset', dataset_id, accession, 'accession' FROM spatial_dataset_metadata
"""

DOMAIN = DomainSpec(
    name="spatial",
    file_name="spatial_data.duckdb",
    schema_version=1,
    tables=(
        TableSpec(
            name="spatial_dataset_metadata",
            description="Catalog of the SpatialCorpus datasets (one row per H5AD file).",
            source=S + "spatial_dataset_metadata.csv",
            columns=(
                key_text("dataset_id", "File stem, e.g. visium_breast_012."),
                text("filename"),
                text("technology", "Visium, Xenium, MERFISH, MERSCOPE, CosMx, ISS, SlideSeq, 10x."),
                text("tissue"),
                text("species", "human or mouse."),
                text("tier", "A (full inference), B (panel, covered signatures only), C (skipped)."),
                count("n_cells"),
                integer("n_genes", check=NON_NEGATIVE),
                text("source"),
                text("accession"),
            ),
            key=("dataset_id",),
        ),
        TableSpec(
            name="spatial_activity",
            description="Mean activity per dataset x tissue x signature (Tier A, and Tier B where covered).",
            source=S + "spatial_activity_by_tissue.csv",
            columns=(
                key_text("file", "Dataset id (H5AD stem)."),
                key_text("tissue", "'Unknown' when unannotated."),
                key_text("technology"),
                signature(),
                signature_type(),
                real("mean_activity"),
                real("std_activity", check=NON_NEGATIVE),
                count("n_groups"),
                count("n_cells"),
                real("gene_coverage", "Share of signature-matrix genes present (0-1).", check=PROBABILITY),
            ),
            key=("signature_type", "technology", "tissue", "file", "signature"),
        ),
        TableSpec(
            name="spatial_tissue_summary",
            description="Activity per tissue across datasets and technologies.",
            source=S + "spatial_activity_by_tissue_summary.csv",
            columns=(
                key_text("tissue"),
                signature(),
                signature_type(),
                real("mean_activity", "Mean of dataset means."),
                real("median_activity"),
                real("std_activity", "SD across datasets.", check=NON_NEGATIVE),
                integer("n_technologies", check=NON_NEGATIVE),
                integer("n_files", check=NON_NEGATIVE),
            ),
            key=("signature_type", "tissue", "signature"),
        ),
        TableSpec(
            name="spatial_neighborhood",
            description="Niche (kNN-smoothed) vs own-cell activity per dataset x cell type.",
            source=S + "spatial_neighborhood_activity.csv",
            columns=(
                key_text("file", "Dataset id."),
                key_text("tissue"),
                key_text("cell_type"),
                text("neighborhood", "Niche label when annotated (portal, cortical, tumour margin, ...)."),
                signature(),
                signature_type(),
                real("mean_niche_activity"),
                real("std_niche_activity", check=NON_NEGATIVE),
                real("mean_cell_activity"),
                count("n_cells"),
                real("gene_coverage", check=PROBABILITY),
            ),
            key=("signature_type", "tissue", "file", "cell_type", "signature"),
        ),
        TableSpec(
            name="spatial_technology_comparison",
            description="Pairwise agreement of technologies within a tissue.",
            source=S + "spatial_technology_comparison.csv",
            columns=(
                key_text("tissue"),
                key_text("technology_a"),
                key_text("technology_b"),
                signature_type(),
                real("spearman_rho", "Spearman rho of per-signature mean activity."),
                pvalue(description="Spearman p-value."),
                real("concordance", "Share of signatures with equal sign.", check=PROBABILITY),
                integer("n_shared_signatures", check=NON_NEGATIVE),
            ),
            key=("signature_type", "tissue", "technology_a", "technology_b"),
        ),
        TableSpec(
            name="spatial_gene_coverage",
            description="How much of each signature matrix a technology's gene panel covers.",
            source=S + "spatial_gene_coverage.csv",
            columns=(
                key_text("technology"),
                signature_type(),
                integer("n_genes_total", "Genes in the technology's panel.", check=NON_NEGATIVE),
                integer("n_matrix_genes", "Genes in the signature matrix.", check=NON_NEGATIVE),
                integer("n_matrix_genes_covered", check=NON_NEGATIVE),
                real("matrix_gene_coverage", "n_matrix_genes_covered / n_matrix_genes.", check=PROBABILITY),
                integer("n_targets", "Signatures in the matrix.", check=NON_NEGATIVE),
                integer("n_targets_covered", "Signatures with >= 50% of their genes present.",
                        check=NON_NEGATIVE),
                real("target_coverage", "n_targets_covered / n_targets.", check=PROBABILITY),
            ),
            key=("technology", "signature_type"),
        ),
        TableSpec(
            name="spatial_coordinates",
            description="Sampled cell/spot coordinates (<= ~10,000 points per dataset).",
            source=S + "spatial_coordinates_sampled.csv",
            columns=(
                key_text("dataset_id"),
                key_text("cell_id"),
                Column("x", "DOUBLE", "Micrometres.", nullable=False),
                Column("y", "DOUBLE", "Micrometres.", nullable=False),
                text("cell_type"),
            ),
            key=("dataset_id", "cell_id"),
        ),
        TableSpec(
            name="spatial_coordinate_activity",
            description="Activity at each sampled point (long form beside spatial_coordinates).",
            source=S + "spatial_coordinates_activity.csv",
            columns=(
                key_text("dataset_id"),
                key_text("cell_id"),
                signature(),
                signature_type(),
                real("activity"),
            ),
            key=("dataset_id", "signature_type", "signature", "cell_id"),
        ),
        alias_table("spatial"),  # signature-name aliases, as in every domain's file
        *search_tables("spatial", SEARCH_MENTIONS_SQL, SEARCH_ENTITIES_SQL, SEARCH_ALIASES_SQL,
                       depends_on=("spatial_activity", "spatial_tissue_summary", "spatial_dataset_metadata",
                                   "spatial_neighborhood", "spatial_coordinates", "spatial_signature_aliases")),
    ),
)
