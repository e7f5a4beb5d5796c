"""Inflammation atlas: cell-type and disease activity, disease vs healthy differences."""

from cytoatlas.domains.atlas.columns import V, celltype_summary, protein_sig, sig
from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, TableSpec, count, key_text, pvalue, qvalue, real, text,
)

TABLES = (
    celltype_summary("inflammation_celltype", "Inflammation", "66 level-2 cell types"),
    TableSpec(
        name="inflammation_disease",
        description="Inflammation atlas: mean activity per disease x cell type.",
        source=V + "inflammation_disease.json",
        format="json",
        columns=(
            key_text("disease"),
            text("disease_group"),
            key_text("cell_type"),
            *sig(),
            real("mean_activity"),
            count("n_samples"),
            count("n_cells"),
        ),
        key=("signature_type", "disease", "cell_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="inflammation_differential",
        description="Disease vs healthy activity difference (Mann-Whitney U, BH FDR).",
        source=V + "inflammation_differential.json",
        format="json",
        columns=(
            key_text("disease"),
            key_text("group1"),
            key_text("group2", "Reference group, 'healthy'."),
            *protein_sig(),
            real("mean_g1"), real("mean_g2"),
            real("activity_diff", "mean_g1 - mean_g2."),
            pvalue(), qvalue(),
            real("neg_log10_pval", "-log10(max(p, 1e-300))."),
            count("n_g1"), count("n_g2"),
        ),
        key=("signature_type", "disease", "group1", "group2", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)
