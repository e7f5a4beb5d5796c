"""CIMA (healthy donors): cell-type activity, group differences, correlations with age, BMI and
blood biochemistry."""

from cytoatlas.domains.atlas.columns import V, celltype_summary, protein_sig
from cytoatlas.domains.spec import ATLAS_SIGNATURE_TYPES, TableSpec, count, key_text, pvalue, qvalue, real

TABLES = (
    celltype_summary("cima_celltype", "CIMA", "27 level-2 cell types"),
    TableSpec(
        name="cima_differential",
        description="CIMA: activity difference between groups (sex, smoking, blood type, ...).",
        source=V + "cima_differential.json",
        format="json",
        columns=(
            key_text("comparison", "sex, smoking, blood_type, ..."),
            key_text("cell_type", "'All' for the whole sample."),
            key_text("group1"), key_text("group2"),
            *protein_sig(),
            real("median_g1"), real("median_g2"),
            real("activity_diff", "median_g1 - median_g2."),
            pvalue(), qvalue(),
            real("neg_log10_pval"),
        ),
        key=("signature_type", "comparison", "cell_type", "group1", "group2", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="cima_correlations",
        description="CIMA: Spearman correlation of activity with age, BMI and blood biochemistry.",
        source=V + "cima_correlations.json",
        format="json",
        json_layout="dict_of_lists",
        columns=(
            key_text("category", "age, bmi or biochemistry (the source's top-level key)."),
            key_text("feature", "Biochemistry marker; for age and bmi, which name none, the category.",
                     fallback="category"),
            *protein_sig(),
            real("rho", "Spearman rho."),
            pvalue(description="Spearman p-value."), qvalue(),
            count("n", "Samples."),
        ),
        key=("signature_type", "category", "feature", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)
