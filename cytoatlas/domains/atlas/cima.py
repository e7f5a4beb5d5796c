"""CIMA (healthy donors): cell-type activity, group differences, correlations with age, BMI, blood
biochemistry and plasma metabolites, the biochemistry scatter samples, population stratification,
eQTLs and the single-cell summary.

Every source is a file of the real pipeline under visualization/data/ (writers:
scripts/01_cima_activity.py, scripts/06_preprocess_viz_data.py, the archive's 07e single-cell pass;
the eQTL files have no writer in the repository, their shape is the one their readers expect).
Files holding two shapes (the biochemistry scatter, the population stratification) give two tables.
"""

from cytoatlas.domains.atlas.columns import V, celltype_summary, protein_sig, singlecell_summary
from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, PROBABILITY, Column, TableSpec, count, integer, key_text, pvalue, qvalue, real,
    signature, signature_type, text,
)

_ALL = "'All': the rows are over sample-level activity (the file names no cell type)."

# cima_population_stratification.json: each effect record names its two groups only through the
# keys of their sample counts (P06 calc_effect_sizes: n1_label, n2_label).
STRATIFICATION_COUNTS = {  # count key -> (group label, 1 = first group / 2 = second group)
    "n_male": ("Male", 1), "n_female": ("Female", 2),
    "n_older": ("Older (>60)", 1), "n_young": ("Young (<40)", 2),
    "n_obese": ("Obese", 1), "n_normal": ("Normal", 2),
    "n_type_o": ("O", 1), "n_type_a": ("A", 2),
    "n_current": ("Current", 1), "n_never": ("Never", 2),
}


def _group(side: int) -> tuple[str, str]:
    keys = [k for k, (_, s) in STRATIFICATION_COUNTS.items() if s == side]
    label = "CASE " + " ".join(f"WHEN (e.value->'{k}') IS NOT NULL THEN '{STRATIFICATION_COUNTS[k][0]}'"
                               for k in keys) + " END"
    n = "COALESCE(" + ", ".join(f"e.value->'{k}'" for k in keys) + ")"
    return label, n


_G1, _N1 = _group(1)
_G2, _N2 = _group(2)
# Nested objects are unnested as MAPs (map_entries keeps the keys' file order): chained json_each
# calls copy the enclosing value into every row they yield, which is quadratic on these files.
# {"CytoSig": {"effect_sizes": {"sex": [{"cytokine", "signature", "effect", "pvalue", "n_male", "n_female"},
#  ...], ...}}, ...}
STRATIFICATION_EFFECTS_SQL = f"""
    WITH t AS (SELECT unnest(map_entries(CAST(f.json AS MAP(VARCHAR, JSON)))) AS t FROM {{json}} AS f),
         v AS (SELECT t.key AS signature_type,
                      unnest(map_entries(CAST(t.value->'effect_sizes' AS MAP(VARCHAR, JSON[])))) AS v FROM t),
         e AS (SELECT signature_type, v.key AS variable, unnest(v.value) AS value FROM v)
    SELECT signature_type, variable, COALESCE(e.value->>'signature', e.value->>'cytokine') AS signature,
           {_G1} AS group1, {_G2} AS group2,
           e.value->'effect' AS effect, e.value->'pvalue' AS pvalue, {_N1} AS n_group1, {_N2} AS n_group2
    FROM e
"""
# {"CytoSig": {"groups": {"sex": {"Male": {"IFNG": 0.0123, ...}, "Female": {...}}, ...}}, ...}; a
# group's ordinal is its position in its object.
STRATIFICATION_MEANS_SQL = """
    WITH t AS (SELECT unnest(map_entries(CAST(f.json AS MAP(VARCHAR, JSON)))) AS t FROM {json} AS f),
         v AS (SELECT t.key AS signature_type, unnest(map_entries(
                   CAST(t.value->'groups' AS MAP(VARCHAR, MAP(VARCHAR, MAP(VARCHAR, DOUBLE)))))) AS v FROM t),
         g AS (SELECT signature_type, v.key AS variable, unnest(map_entries(v.value)) AS g,
                      unnest(generate_series(1, CAST(cardinality(v.value) AS BIGINT))) AS group_order FROM v)
    SELECT signature_type, variable, g.key AS group_name, group_order,
           unnest(map_keys(g.value)) AS signature, unnest(map_values(g.value)) AS mean_activity
    FROM g
"""
# {"samples": [{"sample", "age", "sex", "bmi", "biochem": {marker: value}, "activity": {cytokine: value},
#  "secact_activity": {protein: value}}, ...], "biochem_features": [...], "cytokines": [...], "secact_proteins": [...]}
_SAMPLES = "s AS (SELECT unnest(CAST(f.json->'samples' AS JSON[])) AS s FROM {json} AS f)"
BIOCHEM_SCATTER_SQL = f"""
    WITH {_SAMPLES},
         k AS (SELECT s->>'sample' AS sample, s->'age' AS age, s->>'sex' AS sex, s->'bmi' AS bmi,
                      CAST(s->'activity' AS MAP(VARCHAR, DOUBLE)) AS cytosig,
                      CAST(s->'secact_activity' AS MAP(VARCHAR, DOUBLE)) AS secact FROM s)
    SELECT sample, 'CytoSig' AS signature_type, unnest(map_keys(cytosig)) AS signature,
           unnest(map_values(cytosig)) AS activity, age, sex, bmi FROM k
    UNION ALL
    SELECT sample, 'SecAct', unnest(map_keys(secact)), unnest(map_values(secact)), age, sex, bmi FROM k
"""
BIOCHEM_MARKERS_SQL = f"""
    WITH {_SAMPLES},
         o AS (SELECT unnest(CAST(f.json->'biochem_features' AS VARCHAR[])) AS feature,
                      unnest(generate_series(1, CAST(json_array_length(f.json->'biochem_features') AS BIGINT)))
                          AS feature_order
               FROM {{json}} AS f),
         m AS (SELECT s->>'sample' AS sample, CAST(s->'biochem' AS MAP(VARCHAR, DOUBLE)) AS biochem FROM s),
         v AS (SELECT sample, unnest(map_keys(biochem)) AS feature, unnest(map_values(biochem)) AS value FROM m)
    SELECT v.sample, v.feature, v.value, o.feature_order FROM v LEFT JOIN o USING (feature)
"""


def _eqtl(name: str, description: str) -> TableSpec:
    """cima_eqtl.json / cima_eqtl_top.json: {"summary": {...}, "cell_types": [...], "genes": [...],
    "eqtls": [{"gene", "variant", "celltype", "pvalue", "beta", "chr", "pos", "af"}, ...]}; only the
    records are stored (the summary and the name lists are aggregates of them)."""
    return TableSpec(
        name=name,
        description=description,
        source=V + f"{name}.json",
        format="json",
        json_layout="data",
        json_key="eqtls",
        columns=(
            key_text("cell_type", "CIMA cell type the eQTL was mapped in.", source_names=("celltype", "cell_type")),
            key_text("gene", "Gene whose expression the variant affects."),
            key_text("variant", "Variant id, chr<chr>_<pos>."),
            text("chr", "Chromosome without the 'chr' prefix: 1-22, X, Y."),
            Column("pos", "BIGINT", "Position on the chromosome (bp)."),
            real("beta", "Effect size of the alternative allele on expression."),
            pvalue(description="eQTL p-value."),
            Column("af", "DOUBLE", "Alternative allele frequency.", check=PROBABILITY),
        ),
        key=("cell_type", "gene", "variant"),
    )


TABLES = (
    celltype_summary("cima_celltype", "CIMA", "27 level-2 cell types"),
    TableSpec(
        name="cima_differential",
        description="CIMA: sample-level activity compared between donor groups (sex, smoking status, blood type), "
                    "Mann-Whitney U for every pair of groups.",
        source=V + "cima_differential.json",
        format="json",
        columns=(
            key_text("comparison", "The donor variable compared: sex, smoking_status or blood_type."),
            key_text("cell_type", _ALL, default="All"),
            key_text("group1", "First group of the pair (pairs follow the groups' first appearance in the samples)."),
            key_text("group2", "Second group of the pair."),
            *protein_sig(),
            real("median_g1", "Median sample-level activity in group1."),
            real("median_g2", "Median sample-level activity in group2."),
            real("activity_diff", "median_g1 - median_g2."),
            count("n_g1", "Samples in group1."),
            count("n_g2", "Samples in group2."),
            real("statistic", "Mann-Whitney U of group1."),
            pvalue(description="Two-sided Mann-Whitney U p-value, rounded to 4 decimals (0.0 below 5e-5)."),
            qvalue(description="BH FDR within one comparison and signature type, rounded to 4 decimals."),
            real("neg_log10_pval", "-log10(max(p, 1e-300)) of the unrounded p."),
        ),
        key=("signature_type", "comparison", "cell_type", "group1", "group2", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="cima_correlations",
        description="CIMA: Spearman correlation of sample-level activity with age, BMI and blood biochemistry.",
        source=V + "cima_correlations.json",
        format="json",
        json_layout="dict_of_lists",
        columns=(
            key_text("category", "age, bmi or biochemistry (the source's top-level key)."),
            key_text("feature", "What activity is correlated with: Age, BMI or a biochemistry marker "
                     "(the category where a source names none).", fallback="category"),
            key_text("cell_type", _ALL, default="All"),
            *protein_sig(),
            real("rho", "Spearman rho."),
            pvalue(description="Spearman p-value, rounded to 4 decimals."),
            qvalue(description="BH FDR within the category and signature type, rounded to 4 decimals."),
            count("n", "Samples with both values."),
        ),
        key=("signature_type", "category", "feature", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="cima_celltype_correlations",
        description="CIMA: Spearman correlation of each cell type's pseudobulk activity with age and BMI.",
        source=V + "cima_celltype_correlations.json",
        format="json",
        json_layout="dict_of_lists",
        columns=(
            key_text("category", "age or bmi (the source's top-level key)."),
            key_text("cell_type", "CIMA level-2 cell type."),
            *protein_sig(),
            real("rho", "Spearman rho over the samples having the cell type and the variable."),
            pvalue(description="Spearman p-value."),
            qvalue(description="BH FDR within the category, over both signature types, rounded to 4 decimals."),
            count("n", "Samples (at least 10)."),
        ),
        key=("signature_type", "category", "cell_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="cima_metabolites_top",
        description="CIMA: the 250 strongest correlations (|rho|) of sample-level activity with plasma "
                    "metabolites, per signature type.",
        source=V + "cima_metabolites_top.json",
        format="json",
        columns=(
            *protein_sig(),
            key_text("feature", "Plasma metabolite or lipid."),
            real("rho", "Spearman rho."),
            pvalue(description="Spearman p-value."),
            qvalue(description="BH FDR over the full signature x metabolite run of the signature type."),
            count("n", "Samples with both values."),
            integer("rank", "1 = the largest |rho| of the signature type (the file's order); ties by "
                    "signature, feature.", nullable=False,
                    expression="row_number() OVER (PARTITION BY signature_type "
                               "ORDER BY abs(rho) DESC NULLS LAST, signature, feature)"),
        ),
        key=("signature_type", "signature", "feature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="cima_biochem_scatter",
        description="CIMA: n_cells-weighted sample-level activity of the donors with blood biochemistry, "
                    "with their age, sex and BMI (the biochemistry scatter plots' points).",
        source=V + "cima_biochem_scatter.json",
        format="json",
        source_sql=BIOCHEM_SCATTER_SQL,
        columns=(
            key_text("sample", "CIMA donor sample."),
            signature_type(),
            signature(),
            real("activity", "Sample-level activity: mean over the sample's cell types weighted by n_cells."),
            integer("age", "Donor age (years)."),
            text("sex", "Donor sex."),
            real("bmi", "Donor BMI."),
        ),
        key=("signature_type", "signature", "sample"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="cima_biochem_scatter_markers",
        description="CIMA: blood biochemistry values of the donors in cima_biochem_scatter (the other half "
                    "of cima_biochem_scatter.json), one row per sample and marker.",
        source=V + "cima_biochem_scatter.json",
        format="json",
        source_sql=BIOCHEM_MARKERS_SQL,
        columns=(
            key_text("sample", "CIMA donor sample."),
            key_text("feature", "Biochemistry marker (ALT, AST, ...)."),
            real("value", "The marker's value."),
            integer("feature_order", "Position of the marker in the file's biochem_features list (1-based).",
                    nullable=False),
        ),
        key=("feature", "sample"),
    ),
    TableSpec(
        name="cima_population_stratification",
        description="CIMA: activity difference between two donor groups per stratification variable "
                    "(Male-Female, Older-Young, Obese-Normal, O-A, Current-Never smokers), Wilcoxon rank-sum.",
        source=V + "cima_population_stratification.json",
        format="json",
        source_sql=STRATIFICATION_EFFECTS_SQL,
        columns=(
            signature_type(),
            key_text("variable", "sex, age, bmi, blood_type or smoking."),
            signature(),
            key_text("group1", "The group whose mean comes first in `effect`."),
            key_text("group2", "The reference group."),
            real("effect", "Mean activity of group1 - mean of group2 (n_cells-weighted sample-level activity)."),
            pvalue(description="Wilcoxon rank-sum p-value (6 decimals)."),
            count("n_group1", "Samples in group1."),
            count("n_group2", "Samples in group2."),
        ),
        key=("signature_type", "variable", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="cima_population_stratification_means",
        description="CIMA: mean sample-level activity per donor group of each stratification variable (the "
                    "other half of cima_population_stratification.json).",
        source=V + "cima_population_stratification.json",
        format="json",
        source_sql=STRATIFICATION_MEANS_SQL,
        columns=(
            signature_type(),
            key_text("variable", "sex, age, bmi, blood_type or smoking."),
            key_text("group_name", "Donor group, e.g. Male, Young (<40), Obese, AB, Current."),
            integer("group_order", "The group's position among its variable's groups (1-based, file order).",
                    nullable=False),
            signature(),
            real("mean_activity", "Mean over the group's samples."),
        ),
        key=("signature_type", "variable", "group_name", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    _eqtl("cima_eqtl", "CIMA: cis-eQTLs per cell type (gene, variant, effect)."),
    _eqtl("cima_eqtl_top", "CIMA: the most significant cis-eQTLs (a subset of cima_eqtl)."),
    singlecell_summary("cima_singlecell_cytosig", "CIMA", "27 level-2 cell types"),
    TableSpec(
        name="cima_celltype_similarity",
        description="CIMA: Pearson correlation between two cell types' mean activity profiles over the "
                    "signatures of a type (derived from cima_celltype; the /cell-type-correlations matrix).",
        derived_sql="""
            SELECT a.signature_type, a.cell_type AS cell_type_1, b.cell_type AS cell_type_2,
                   corr(a.mean_activity, b.mean_activity) AS correlation,
                   count(a.mean_activity + b.mean_activity) AS n_signatures
            FROM cima_celltype AS a JOIN cima_celltype AS b USING (signature_type, signature)
            GROUP BY ALL""",
        depends_on=("cima_celltype",),
        columns=(
            signature_type(),
            key_text("cell_type_1", "Cell type."),
            key_text("cell_type_2", "Cell type."),
            real("correlation", "Pearson r of the two cell types' mean_activity over the signatures both have."),
            count("n_signatures", "Signatures both cell types have a mean activity for."),
        ),
        key=("signature_type", "cell_type_1", "cell_type_2"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)
