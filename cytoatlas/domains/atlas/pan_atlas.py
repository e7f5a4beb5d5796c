"""Atlas tables that span the three atlases: activity distributions, single-cell summaries, the
cross-sample correlations of activity with expression, and each atlas's summary figures."""

from cytoatlas.domains.atlas.columns import V, sig
from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, NON_NEGATIVE, Column, TableSpec, count, integer, key_text, pvalue, real, signature_type,
    text,
)

_NUMBER = "json_type({v}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')"
SUMMARY_STATS_SQL = f"""
    SELECT a.key AS atlas, s.key AS stat, 0 AS ordinal,
           CASE WHEN {_NUMBER.format(v='s.value')} THEN s.value END AS value,
           CASE WHEN json_type(s.value) = 'VARCHAR' THEN json_extract_string(s.value, '$') END AS text
    FROM {{json}} AS f, json_each(f.json) AS a, json_each(a.value) AS s
    WHERE json_type(s.value) NOT IN ('ARRAY', 'OBJECT', 'NULL')
    UNION ALL
    SELECT a.key, s.key, CAST(i.key AS INTEGER) + 1,
           CASE WHEN {_NUMBER.format(v='i.value')} THEN i.value END,
           CASE WHEN json_type(i.value) = 'VARCHAR' THEN json_extract_string(i.value, '$') END
    FROM {{json}} AS f, json_each(f.json) AS a, json_each(a.value) AS s, json_each(s.value) AS i
    WHERE json_type(s.value) = 'ARRAY'
"""

_COHORTS = "['main', 'val', 'ext']"
SINGLECELL_SQL = f"""
    SELECT * EXCLUDE (__position, __previous, __block),
           CASE WHEN atlas = 'Inflammation' THEN coalesce({_COHORTS}[CAST(__block AS INTEGER)], CAST(__block AS VARCHAR)) ELSE '' END
             AS cohort
    FROM (SELECT *, sum(CASE WHEN __previous = __position - 1 THEN 0 ELSE 1 END)
                      OVER (PARTITION BY atlas, signature_type ORDER BY __position) AS __block
          FROM (SELECT *, lag(__position) OVER (PARTITION BY atlas, signature_type ORDER BY __position) AS __previous
                FROM (SELECT *, row_number() OVER () AS __position FROM read_json({{path}}, format='array'))))
"""

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
        description="Single-cell activity summarised per atlas x cell type (cells of one cell type, n >= 10).",
        source=V + "singlecell_activity.json",
        format="json",
        # The writer (07e) emits one contiguous block per source file, in the order CIMA, Inflammation
        # main, val, ext, scAtlas normal, cancer (CytoSig then SecAct each), and labels all three
        # Inflammation cohorts 'Inflammation': the n-th block of (atlas, signature type) in the file is
        # its n-th cohort. (A missing cohort file shifts the labels after it.)
        source_sql=SINGLECELL_SQL,
        columns=(
            key_text("atlas", "CIMA, Inflammation, scAtlas_Normal or scAtlas_Cancer."),
            key_text("cohort", "Inflammation: main, val or ext (from the file's block order); '' otherwise."),
            key_text("cell_type"),
            *sig(),
            real("mean_activity"),
            real("std_activity", check=NON_NEGATIVE),
            real("min_activity"),
            real("max_activity"),
            count("n_cells"),
            real("abs_mean_activity", "|mean_activity| (for ranking).", expression="abs(mean_activity)"),
        ),
        key=("signature_type", "atlas", "cohort", "cell_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="cross_sample_correlations",
        description="Cross-sample Spearman correlation of signature activity with its gene's expression.",
        source="results/cross_sample_validation/correlations/*_correlations.csv",
        # all_correlations.csv is the concatenation of the per-atlas files (scripts/13).
        source_exclude=("all_correlations.csv",),
        source_file_column="source_file",
        columns=(
            key_text("atlas", "cima, inflammation_main/_val/_ext/_combined, scatlas_normal/_cancer, gtex, tcga."),
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
    TableSpec(
        name="summary_stats",
        description="Each atlas's summary figures (counts) and name lists, as the atlas pages' /summary shows them.",
        source=V + "summary_stats.json",
        format="json",
        # {"cima": {"n_samples": 421, ...}, "scatlas": {"organs": ["Blood", ...], ...}, ...}: a number
        # is one row (ordinal 0, value); a list is one row per item (ordinal 1.., text or value).
        source_sql=SUMMARY_STATS_SQL,
        columns=(
            key_text("atlas", "The source's top-level key: cima, inflammation or scatlas."),
            key_text("stat", "Figure or list name, e.g. n_samples, organs."),
            integer("ordinal", "0 for a single figure; 1, 2, ... for the items of a list, in source order.",
                    nullable=False),
            real("value", "The figure (or a numeric list item)."),
            text("text", "A text figure or list item."),
        ),
        key=("atlas", "stat", "ordinal"),
    ),
)
