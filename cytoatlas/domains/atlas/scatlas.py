"""scAtlas: normal organs and their cell types."""

from cytoatlas.domains.atlas.columns import V, sig
from cytoatlas.domains.spec import ATLAS_SIGNATURE_TYPES, TableSpec, count, key_text, real

TABLES = (
    TableSpec(
        name="scatlas_organs",
        description="scAtlas normal organs: mean activity and organ specificity.",
        source=V + "scatlas_organs.json",
        format="json",
        columns=(
            key_text("organ"),
            *sig(),
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
            *sig(),
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
            *sig(),
            real("mean_activity"),
            count("n_cells"),
        ),
        key=("signature_type", "organ", "cell_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)
