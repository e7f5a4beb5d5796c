"""The gene page: expression of genes per cell type (gene_expression, expression_boxplot, gene_list),
the API's curated gene descriptions (gene_info) and name aliases, and three builder-made tables
that put each signature's rows from several atlas tables in one place, ranked as the page ranks
them (atlas_celltype_activity, gene_disease_activity, gene_correlations)."""

from cytoatlas.domains.atlas import cima
from cytoatlas.domains.atlas.columns import V
from cytoatlas.domains.signature_aliases import STATIC, alias_table
from cytoatlas.domains.sql import json_entries
from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, NON_NEGATIVE, Column, TableSpec, count, key_text, pvalue, qvalue, real, signature_type,
    text,
)

GENE_INFO_SOURCE = STATIC + "gene_info.json"

# {"cytosig": {name: {hgnc_symbol, ids..., description}}, "secact": {...}, "metadata": {...}}
GENE_INFO_SQL = f"""
    WITH f AS (SELECT json FROM {{json}}),
    t AS (SELECT * FROM (SELECT {json_entries('st', 'v', 'json')} FROM f) WHERE st IN ('cytosig', 'secact')),
    s AS (SELECT st, {json_entries('signature', 'r', 'v')} FROM t)
    SELECT st AS signature_type, signature, r->>'hgnc_symbol' AS hgnc_symbol, r->>'hgnc_id' AS hgnc_id,
           r->>'entrez_id' AS entrez_id, r->>'uniprot_id' AS uniprot_id, r->>'ensembl_id' AS ensembl_id,
           r->>'description' AS description
    FROM s
"""

# The three atlases' cell-type tables in one: what the gene page ranks in one list (the real API
# concatenates CIMA, Inflammation, scAtlas rows and sorts them by mean_activity). scAtlas rows are
# labelled "<cell type> (<organ>)" as the page shows them.
CELLTYPE_ACTIVITY_SQL = """
    SELECT signature_type, signature, 'CIMA' AS atlas, cell_type, cell_type AS base_cell_type,
           NULL::VARCHAR AS organ, mean_activity, n_samples, n_cells FROM cima_celltype
    UNION ALL
    SELECT signature_type, signature, 'Inflammation', cell_type, cell_type, NULL, mean_activity, n_samples, n_cells
    FROM inflammation_celltype
    UNION ALL
    SELECT signature_type, signature, 'scAtlas', cell_type || ' (' || organ || ')', cell_type, organ, mean_activity,
           NULL, n_cells FROM scatlas_celltypes
"""

# Disease vs healthy differences with each disease's group (from inflammation_disease; a disease it
# lacks, such as the pooled 'All Diseases', is 'Other' as on the real page).
DISEASE_ACTIVITY_SQL = """
    WITH groups AS (SELECT disease, min(disease_group) AS disease_group FROM inflammation_disease GROUP BY disease)
    SELECT d.signature_type, d.signature, d.disease, coalesce(g.disease_group, 'Other') AS disease_group,
           d.group1, d.group2, d.activity_diff, abs(d.activity_diff) AS abs_activity_diff, d.mean_g1, d.mean_g2,
           d.pvalue, d.qvalue, d.neg_log10_pval, d.n_g1, d.n_g2, coalesce(d.qvalue < 0.05, false) AS is_significant
    FROM inflammation_differential AS d LEFT JOIN groups AS g USING (disease)
"""

# CIMA correlations of one signature, every category in one table ranked by |rho|. The per-cell-type
# age/BMI correlations and the metabolite correlations are added when the file has their tables.
_CORRELATION_PARTS = {
    "cima_correlations": "SELECT signature_type, signature, category, 'All' AS cell_type, feature AS variable, "
                         "rho, pvalue, qvalue, n FROM cima_correlations",
    "cima_celltype_correlations": "SELECT signature_type, signature, category, cell_type, category, rho, pvalue, "
                                  "qvalue, n FROM cima_celltype_correlations",
    "cima_metabolites_top": "SELECT signature_type, signature, 'metabolites', 'All', feature, rho, pvalue, qvalue, "
                            "n FROM cima_metabolites_top",
}
_CIMA = {t.name for t in cima.TABLES}
CORRELATION_TABLES = tuple(t for t in _CORRELATION_PARTS if t in _CIMA)
CORRELATIONS_SQL = ("SELECT *, abs(rho) AS abs_rho FROM ("
                    + " UNION ALL ".join(_CORRELATION_PARTS[t] for t in CORRELATION_TABLES) + ")")


def _expression_columns() -> tuple[Column, ...]:
    return (
        key_text("gene", "HGNC symbol (the expression matrix's var name)."),
        key_text("atlas", "CIMA, Inflammation, scAtlas_Normal (scAtlas_Cancer from the all-gene script)."),
        key_text("cell_type", "Cell type; scAtlas: '<organ>: <cell type>'."),
        text("organ", "scAtlas organ."),
        text("base_cell_type", "scAtlas cell type without the organ."),
    )


TABLES = (
    TableSpec(
        name="gene_expression",
        description="Mean expression (log1p of normalised counts, zeros included) and percent of expressing "
                    "cells per gene x atlas x cell type, over sampled cells.",
        source=V + "gene_expression.json",
        format="json",
        columns=(
            *_expression_columns(),
            real("mean_expression", "Mean over the sampled cells of the type."),
            real("pct_expressed", "Percent of sampled cells with a count > 0 (0-100).", check=NON_NEGATIVE),
            count("n_cells", "Cells of the type in the atlas."),
        ),
        key=("gene", "atlas", "cell_type"),
    ),
    TableSpec(
        name="expression_boxplot",
        description="Expression distribution (boxplot statistics over the expressing cells) per gene x atlas x "
                    "cell type.",
        source=V + "expression_boxplot.json",
        format="json",
        columns=(
            *_expression_columns(),
            real("min"), real("q1"), real("median"), real("q3"), real("max"),
            real("mean", "Mean over the expressing cells."),
            real("std", "Population SD over the expressing cells.", check=NON_NEGATIVE),
            real("mean_all", "Mean over all sampled cells (zeros included)."),
            count("n_expressing", "Sampled cells with a count > 0."),
            count("n_total", "Sampled cells."),
            real("pct_expressed", "100 * n_expressing / n_total.", check=NON_NEGATIVE),
            count("n", "Cells in the distribution (= n_expressing)."),
        ),
        key=("gene", "atlas", "cell_type"),
    ),
    TableSpec(
        name="gene_list",
        description="Every gene with expression data (a sorted array of symbols in the source).",
        source=V + "gene_list.json",
        format="json",
        source_sql="SELECT json->>'$' AS gene FROM {json}",  # a top-level array: one value per row
        columns=(
            key_text("gene", "Gene symbol."),
            Column("gene_key", "VARCHAR", "lower(gene): the case-insensitive lookup and prefix column.",
                   nullable=False, expression="lower(gene)"),
        ),
        key=("gene",),
    ),
    TableSpec(
        name="gene_info",
        description="The API's curated record of each signature's gene: HGNC symbol, database ids, description.",
        source=GENE_INFO_SOURCE,
        format="json",
        source_sql=GENE_INFO_SQL,
        columns=(
            signature_type(),
            key_text("signature", "Signature name (the key in gene_info.json)."),
            text("hgnc_symbol", "HGNC symbol of the gene encoding the target."),
            text("hgnc_id"), text("entrez_id"), text("uniprot_id"), text("ensembl_id"),
            text("description", "Curated description of the target."),
        ),
        key=("signature_type", "signature"),
    ),
    alias_table("atlas"),
    TableSpec(
        name="atlas_celltype_activity",
        description="Mean activity per cell type in the three atlases (cima_celltype, inflammation_celltype, "
                    "scatlas_celltypes), one table: the gene page's ranked cell-type list.",
        derived_sql=CELLTYPE_ACTIVITY_SQL,
        depends_on=("cima_celltype", "inflammation_celltype", "scatlas_celltypes"),
        columns=(
            signature_type(), key_text("signature"),
            key_text("atlas", "CIMA, Inflammation or scAtlas."),
            key_text("cell_type", "Cell type; scAtlas: '<cell type> (<organ>)' as the page labels it."),
            key_text("base_cell_type", "Cell type without the organ."),
            text("organ", "scAtlas organ."),
            real("mean_activity"), count("n_samples", "Samples (none for scAtlas)."), count("n_cells"),
        ),
        key=("signature_type", "signature", "atlas", "cell_type"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="gene_disease_activity",
        description="Disease vs healthy activity differences (inflammation_differential) with each disease's "
                    "group, per signature: the gene page's disease list.",
        derived_sql=DISEASE_ACTIVITY_SQL,
        depends_on=("inflammation_differential", "inflammation_disease"),
        columns=(
            signature_type(), key_text("signature"), key_text("disease"),
            key_text("disease_group", "The disease's group in inflammation_disease ('Other' if it has none)."),
            key_text("group1"), key_text("group2"),
            real("activity_diff", "mean_g1 - mean_g2."),
            real("abs_activity_diff", "|activity_diff|: the page's order.", check=NON_NEGATIVE),
            real("mean_g1"), real("mean_g2"), pvalue(), qvalue(), real("neg_log10_pval"),
            count("n_g1"), count("n_g2"),
            Column("is_significant", "BOOLEAN", "qvalue < 0.05.", nullable=False),
        ),
        key=("signature_type", "signature", "disease", "group1", "group2"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="gene_correlations",
        description="CIMA correlations of each signature with age, BMI, blood biochemistry (whole sample, "
                    f"cell_type 'All'){', per-cell-type age and BMI' if 'cima_celltype_correlations' in _CIMA else ''}"
                    f"{' and metabolites' if 'cima_metabolites_top' in _CIMA else ''}, ranked by |rho|: the gene "
                    "page's correlation lists.",
        derived_sql=CORRELATIONS_SQL,
        depends_on=CORRELATION_TABLES,
        columns=(
            signature_type(), key_text("signature"),
            key_text("category", "age, bmi, biochemistry or metabolites."),
            key_text("cell_type", "'All' for the whole sample, else the CIMA cell type."),
            key_text("variable", "The correlate: the category (age, bmi), the marker or the metabolite."),
            real("rho", "Spearman rho."), pvalue(description="Spearman p-value."), qvalue(), count("n", "Samples."),
            real("abs_rho", "|rho|: the page's order.", check=NON_NEGATIVE),
        ),
        key=("signature_type", "signature", "category", "cell_type", "variable"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)
