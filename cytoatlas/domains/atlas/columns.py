"""Column groups and table shapes the atlas modules share. Sources are the real pipeline's JSON
files (several call the target `protein` and the signature type `signature`) and CSVs."""

from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, TableSpec, count, key_text, real, signature, signature_type, Column,
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
