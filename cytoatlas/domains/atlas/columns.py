"""Column groups and table shapes the atlas modules share. Sources are the real pipeline's JSON
files (several call the target `protein` and the signature type `signature`) and CSVs."""

from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, NON_NEGATIVE, TableSpec, count, key_text, real, signature, signature_type, Column,
    text,
)

V = "visualization/data/"


def sig():
    return signature(), signature_type()


def protein_sig():
    """Sources where `protein` is the target and `signature` the signature type."""
    return (
        Column("signature", "VARCHAR", "Signature target.", nullable=False, source_names=("protein",)),
        signature_type(source_names=("signature",)),
    )


def celltype_summary(name: str, atlas: str, n_cell_types: str) -> TableSpec:
    return TableSpec(
        name=name,
        description=f"{atlas}: mean activity per cell type ({n_cell_types}).",
        source=V + f"{name}.json",
        format="json",
        columns=(
            key_text("cell_type"),
            *sig(),
            real("mean_activity"),
            count("n_samples"),
            count("n_cells"),
        ),
        key=("signature_type", "cell_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    )


def singlecell_summary(name: str, atlas: str, cell_types: str) -> TableSpec:
    """One `<atlas>_singlecell_<signature type>.json` file of the single-cell activity pass
    (archive/scripts/early_pipeline/07e_singlecell_activity_json.py): per cell type x signature, the
    activity distribution over the atlas's single cells (cell types under 10 cells left out). Each
    file holds one atlas and one signature type: the rows of `singlecell_activity` with those."""
    return TableSpec(
        name=name,
        description=f"{atlas}: single-cell activity per cell type ({cell_types}), one signature type.",
        source=V + f"{name}.json",
        format="json",
        columns=(
            key_text("cell_type", cell_types),
            *sig(),
            text("atlas", f"The writer's atlas label ({atlas}); the same on every row of the file."),
            real("mean_activity", "Mean over the cell type's cells."),
            real("std_activity", "Population SD over the cells.", check=NON_NEGATIVE),
            real("min_activity"), real("max_activity"),
            count("n_cells", "Cells (at least 10)."),
        ),
        key=("signature_type", "cell_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    )
