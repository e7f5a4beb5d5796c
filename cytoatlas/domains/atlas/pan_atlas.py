"""Atlas tables that span the three atlases: activity distributions, single-cell summaries and
the cross-sample correlations of activity with expression."""

from cytoatlas.domains.atlas.columns import V, sig
from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, NON_NEGATIVE, Column, TableSpec, count, key_text, pvalue, real, signature_type, text,
)

TABLES = (
    TableSpec(
        name="activity",
        description="Activity distribution (boxplot statistics) per atlas x cell type x signature.",
        source=V + "activity_boxplot.json",
        format="json",
        columns=(
            key_text("atlas", "CIMA, Inflammation, scAtlas_Normal or scAtlas_Cancer."),
            key_text("cell_type"),
            *sig(),
            real("min"), real("q1"), real("median"), real("q3"), real("max"),
            real("mean"), real("std", check=NON_NEGATIVE),
            count("n", "Samples in the distribution."),
        ),
        key=("signature_type", "atlas", "cell_type", "signature"),
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
            *sig(),
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
)
