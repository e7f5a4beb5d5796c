"""Atlas domain: CIMA, Inflammation and scAtlas observational atlases (DOMAIN.md §4).

The 12 core tables of DOMAIN.md decision 5. Sources are the real pipeline's JSON files (several
call the target `protein` and the signature type `signature`) and the cross-sample CSVs.
"""

from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, DomainSpec, NON_NEGATIVE, TableSpec, count, key_text, pvalue, qvalue,
    real, signature, signature_type, text, Column,
)

V = "visualization/data/"


def _sig():
    return signature(), signature_type()


def _protein_sig():
    """Sources where `protein` is the target and `signature` the signature type."""
    return (
        Column("signature", "VARCHAR", "Signature target.", nullable=False, source_names=("protein",)),
        signature_type(source_names=("signature",)),
    )


def _celltype_summary(name: str, atlas: str, n_cell_types: str) -> TableSpec:
    return TableSpec(
        name=name,
        description=f"{atlas}: mean activity per cell type ({n_cell_types}).",
        source=V + f"{name}.json",
        format="json",
        columns=(
            key_text("cell_type"),
            *_sig(),
            real("mean_activity"),
            count("n_samples"),
            count("n_cells"),
        ),
        key=("signature_type", "cell_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    )


DOMAIN = DomainSpec(
    name="atlas",
    file_name="atlas_data.duckdb",
    schema_version=1,
    tables=(
        TableSpec(
            name="activity",
            description="Activity distribution (boxplot statistics) per atlas x cell type x signature.",
            source=V + "activity_boxplot.json",
            format="json",
            columns=(
                key_text("atlas", "CIMA, Inflammation, scAtlas_Normal or scAtlas_Cancer."),
                key_text("cell_type"),
                *_sig(),
                real("min"), real("q1"), real("median"), real("q3"), real("max"),
                real("mean"), real("std", check=NON_NEGATIVE),
                count("n", "Samples in the distribution."),
            ),
            key=("signature_type", "atlas", "cell_type", "signature"),
            signature_types=ATLAS_SIGNATURE_TYPES,
        ),
        _celltype_summary("cima_celltype", "CIMA", "27 level-2 cell types"),
        _celltype_summary("inflammation_celltype", "Inflammation", "66 level-2 cell types"),
        TableSpec(
            name="inflammation_disease",
            description="Inflammation atlas: mean activity per disease x cell type.",
            source=V + "inflammation_disease.json",
            format="json",
            columns=(
                key_text("disease"),
                text("disease_group"),
                key_text("cell_type"),
                *_sig(),
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
                *_protein_sig(),
                real("mean_g1"), real("mean_g2"),
                real("activity_diff", "mean_g1 - mean_g2."),
                pvalue(), qvalue(),
                real("neg_log10_pval", "-log10(max(p, 1e-300))."),
                count("n_g1"), count("n_g2"),
            ),
            key=("signature_type", "disease", "group1", "group2", "signature"),
            signature_types=ATLAS_SIGNATURE_TYPES,
        ),
        TableSpec(
            name="cima_differential",
            description="CIMA: activity difference between groups (sex, smoking, blood type, ...).",
            source=V + "cima_differential.json",
            format="json",
            columns=(
                key_text("comparison", "sex, smoking, blood_type, ..."),
                key_text("cell_type", "'All' for the whole sample."),
                key_text("group1"), key_text("group2"),
                *_protein_sig(),
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
                *_protein_sig(),
                real("rho", "Spearman rho."),
                pvalue(description="Spearman p-value."), qvalue(),
                count("n", "Samples."),
            ),
            key=("signature_type", "category", "feature", "signature"),
            signature_types=ATLAS_SIGNATURE_TYPES,
        ),
        TableSpec(
            name="scatlas_organs",
            description="scAtlas normal organs: mean activity and organ specificity.",
            source=V + "scatlas_organs.json",
            format="json",
            columns=(
                key_text("organ"),
                *_sig(),
                real("mean_activity"),
                real("specificity_score"),
                count("n_cells"),
            ),
            key=("signature_type", "organ", "signature"),
            signature_types=ATLAS_SIGNATURE_TYPES,
        ),
        TableSpec(
            name="scatlas_organs_top",
            description="scAtlas: the most organ-specific signatures per organ.",
            source=V + "scatlas_organs_top.json",
            format="json",
            columns=(
                key_text("organ"),
                *_sig(),
                real("mean_activity"),
                real("other_mean", "Mean activity in the other organs."),
                real("specificity_score"),
            ),
            key=("signature_type", "organ", "signature"),
            signature_types=ATLAS_SIGNATURE_TYPES,
        ),
        TableSpec(
            name="scatlas_celltypes",
            description="scAtlas: mean activity per organ x cell type.",
            source=V + "scatlas_celltypes.json",
            format="json",
            json_layout="data",
            columns=(
                key_text("organ"),
                key_text("cell_type"),
                *_sig(),
                real("mean_activity"),
                count("n_cells"),
            ),
            key=("signature_type", "organ", "cell_type", "signature"),
            signature_types=ATLAS_SIGNATURE_TYPES,
        ),
        TableSpec(
            name="singlecell_activity",
            description="Single-cell activity summarised per atlas x cell type.",
            source=V + "singlecell_activity.json",
            format="json",
            columns=(
                key_text("atlas"),
                key_text("cell_type"),
                *_sig(),
                real("mean_activity"),
                real("std_activity", check=NON_NEGATIVE),
                count("n_cells"),
            ),
            key=("signature_type", "atlas", "cell_type", "signature"),
            signature_types=ATLAS_SIGNATURE_TYPES,
        ),
        TableSpec(
            name="cross_sample_correlations",
            description="Cross-sample Spearman correlation of signature activity with its gene's expression.",
            source="results/cross_sample_validation/*_correlations.csv",
            source_file_column="source_file",
            columns=(
                key_text("atlas"),
                key_text("level", "donor_only, donor_l1, ..."),
                key_text("celltype", "'all', 'matched', 'unmappable' or a cell type."),
                Column("signature", "VARCHAR", "Signature target.", nullable=False, source_names=("target",)),
                signature_type(source_names=("signature",)),
                text("gene", "Gene encoding the target."),
                real("spearman_rho"),
                pvalue("spearman_pval", "Spearman p-value."),
                count("n_samples"),
                real("mean_expr"), real("std_expr", check=NON_NEGATIVE),
                real("mean_activity"), real("std_activity", check=NON_NEGATIVE),
                text("lincytosig_celltype"),
                text("matched_atlas_celltypes"),
                key_text("source_file", "Source CSV the row came from."),
            ),
            key=("signature_type", "atlas", "level", "celltype", "signature"),
            signature_types=ATLAS_SIGNATURE_TYPES,
        ),
    ),
)
