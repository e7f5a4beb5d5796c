"""scAtlas: the normal organ atlas (organs, organ x cell type pseudobulk, single cells) and the
pan-cancer atlas (cancer types, tumour vs adjacent, immune infiltration, T-cell exhaustion, CAFs).

Every mean of the organ / cancer tables is an unweighted mean over pseudobulk columns, as the real
pipeline computes it (scripts/03_scatlas_analysis.py): a normal column is one organ x subCluster with
at least 10 cells, a cancer column one tissue (Tumor, Adjacent, Blood, ...) x subCluster x cancer
type. Sources are the files scripts/06_preprocess_viz_data.py and 08_scatlas_immune_analysis.py
write under visualization/data/; several tables are read from one file (its records under
different keys).
"""

from cytoatlas.domains.atlas.columns import V, sig, singlecell_summary
from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, NON_NEGATIVE, PROBABILITY, Column, TableSpec, count, integer, key_text, pvalue,
    qvalue, real, signature, signature_type, text,
)

# The 13 immune categories of 08_scatlas_immune_analysis.py (IMMUNE_PATTERNS), in its order. The
# files name the proportion columns prop_<category> / immune_<category> (prop_T_cell, ...); the
# tables lower-case them (prop_t_cell), the names typed RPC fields take.
IMMUNE_CATEGORIES = ("T_cell", "CD8_T", "CD4_T", "Treg", "NK", "ILC", "B_cell", "Macrophage", "Monocyte",
                     "DC", "Neutrophil", "Mast", "Myeloid")


def _shares(prefix: str, of: str) -> tuple[Column, ...]:
    return tuple(real(f"{prefix}_{c.lower()}", f"{c} cells / {of}.", check=PROBABILITY,
                      source_names=(f"{prefix}_{c}",)) for c in IMMUNE_CATEGORIES)


def _fields(record: str, *names: str) -> str:
    """SQL projecting the named fields of the JSON value `record` as text (cast later to the spec
    types); an absent field is NULL."""
    return ", ".join(f"json_extract_string({record}, '$.{n}') AS {n}" for n in names)


def _records(key: str) -> str:
    """The records of the array under top-level `key`, one JSON value `r` each. One parse of the
    file; unnest(from_json(...)) keeps the file from being copied per record (json_each would)."""
    return f"SELECT unnest(from_json(json -> '$.{key}', '[\"JSON\"]')) AS r FROM doc"


_ADJACENT_FIELDS = ("cancer_type", "signature", "signature_type", "mean_tumor", "mean_adjacent", "activity_diff",
                    "pvalue", "qvalue", "neg_log10_pval", "n_tumor", "n_adjacent", "direction")
_BOX_FIELDS = ("min", "q1", "median", "q3", "max", "mean", "n")
_COMPARISON_FIELDS = ("cell_type", "signature", "signature_type", "mean_tumor", "mean_adjacent", "mean_difference",
                      "std_difference", "n_pairs", "p_value")

# adjacent_tissue.json: {"tumor_vs_adjacent": [rec], "by_cancer_type": [rec + boxplot objects],
# "boxplot_data": [...], "cancer_organ_map": {...}, "summary": {...}, lists}: the two differential
# arrays, the array's key as `category`.
ADJACENT_SQL = f"""
    WITH doc AS (SELECT json FROM {{json}}),
         rec AS (SELECT 'tumor_vs_adjacent' AS category, r FROM ({_records('tumor_vs_adjacent')})
                 UNION ALL SELECT 'by_cancer_type', r FROM ({_records('by_cancer_type')}))
    SELECT category, {_fields('r', *_ADJACENT_FIELDS)} FROM rec
"""
# One row per boxplot object ("adjacent", "tumor", optional "normal") of each record of the
# pan-cancer boxplot_data and of by_cancer_type; the object's label names the tissue.
ADJACENT_BOXPLOTS_SQL = f"""
    WITH doc AS (SELECT json FROM {{json}}),
         rec AS (SELECT r FROM ({_records('boxplot_data')}) UNION ALL SELECT r FROM ({_records('by_cancer_type')})),
         box AS (SELECT r, json_extract(r, '$.' || part) AS b FROM rec, (VALUES ('adjacent'), ('tumor'), ('normal')) AS p(part))
    SELECT {_fields('r', 'cancer_type', 'signature', 'signature_type')}, json_extract_string(b, '$.label') AS tissue,
           {_fields('b', *_BOX_FIELDS)}
    FROM box WHERE json_type(b) = 'OBJECT'
"""
# A JSON object of scalars under `key` -> one row per entry (name, value).
_OBJECT_SQL = """
    WITH obj AS (SELECT json -> '$.{key}' AS o FROM {{json}})
    SELECT e.key AS {name}, json_extract_string(e.value, '$') AS {value} FROM obj, json_each(obj.o) AS e
"""
# cancer_comparison.json: records under "data" and two scalars beside them, repeated on every row.
CANCER_COMPARISON_SQL = f"""
    WITH doc AS (SELECT json FROM {{json}}),
         figures AS (SELECT json ->> '$.n_paired_donors' AS n_paired_donors,
                            json ->> '$.analysis_type' AS analysis_type FROM doc)
    SELECT {_fields('r', *_COMPARISON_FIELDS)}, n_paired_donors, analysis_type
    FROM ({_records('data')}) AS rec, figures
"""
# /caf-full's class proportions (what the real service recomputes per request): each (cancer type,
# CAF subtype) counted once with its cells, summed per CAF class, as a share of the cancer type's.
CAF_CLASS_PROPORTIONS_SQL = """
    SELECT signature_type, cancer_type, caf_class, sum(n_cells) AS n_cells,
           sum(n_cells) / sum(sum(n_cells)) OVER (PARTITION BY signature_type, cancer_type) AS proportion
    FROM (SELECT DISTINCT signature_type, cancer_type, caf_subtype, caf_class, n_cells FROM caf_signatures_subtypes)
    GROUP BY signature_type, cancer_type, caf_class
"""


def _json(name: str, source: str, columns, key, **kw) -> TableSpec:
    description = kw.pop("description")
    return TableSpec(name=name, description=description, source=V + source, format="json", columns=columns,
                     key=key, signature_types=ATLAS_SIGNATURE_TYPES, **kw)


PSEUDOBULK = "Pseudobulk columns averaged (organ x cell type groups), not cells."

NORMAL = (
    _json("scatlas_organs", "scatlas_organs.json", description=(
        "scAtlas normal organs: mean activity over the organ's pseudobulk columns and organ specificity."),
        columns=(
            key_text("organ", "One of the 35 organs (Bladder, Blood, BoneMarrow, ...)."),
            *sig(),
            real("mean_activity", "Mean over the organ's pseudobulk columns (organ x cell type)."),
            real("specificity_score", "(mean_activity - mean of all columns) / SD of all columns."),
            count("n_cells", PSEUDOBULK),
        ),
        key=("signature_type", "organ", "signature")),
    _json("scatlas_organs_top", "scatlas_organs_top.json", description=(
        "scAtlas: the 10 most organ-specific signatures per organ and signature type (top rows of "
        "scatlas_organs by specificity_score)."),
        columns=(
            key_text("organ"),
            *sig(),
            real("mean_activity"),
            real("other_mean", "Mean over the other organs' pseudobulk columns."),
            real("activity_diff", "mean_activity - other_mean."),
            real("specificity_score"),
            count("n_cells", PSEUDOBULK),
            integer("rank", "1 = most specific: position by specificity_score (descending, then signature) "
                    "within the organ and signature type; computed by the builder.", nullable=False,
                    expression="row_number() OVER (PARTITION BY signature_type, organ "
                               "ORDER BY specificity_score DESC NULLS LAST, signature)"),
        ),
        key=("signature_type", "organ", "signature")),
    _json("scatlas_celltypes", "scatlas_celltypes.json", description=(
        "scAtlas: mean activity per organ x cell type (subCluster), one pseudobulk column each."),
        json_layout="data",
        columns=(
            key_text("organ"),
            key_text("cell_type", "subCluster."),
            *sig(),
            real("mean_activity"),
            count("n_cells", "Pseudobulk columns behind the row (1 in the current pipeline: each organ x "
                  "cell type is one column)."),
        ),
        key=("signature_type", "organ", "cell_type", "signature")),
)

SINGLE_CELL = tuple(
    singlecell_summary(f"scatlas_{part.lower()}_singlecell_{kind.lower()}", f"scAtlas_{part}",
                       f"{part.lower()} atlas cellType1")
    for kind in ("CytoSig", "SecAct") for part in ("Normal", "Cancer"))

CANCER = (
    _json("cancer_types", "cancer_types.json", description=(
        "scAtlas pan-cancer: mean activity per cancer type over its pseudobulk columns (every tissue) and "
        "its specificity against the other cancer types."),
        json_layout="data",
        columns=(
            key_text("cancer_type", "Cancer type code (BRCA, CRC, HCC, ...)."),
            *sig(),
            real("mean_activity"),
            real("other_mean", "Mean over the other cancer types' columns."),
            real("activity_diff", "mean_activity - other_mean."),
            real("specificity_score", "(mean_activity - mean of all columns) / SD of all columns."),
            count("n_cells", "Pseudobulk columns (tissue x cell type) of the cancer type, not cells."),
        ),
        key=("signature_type", "cancer_type", "signature")),
    _json("cancer_type_labels", "cancer_types.json", description=(
        "scAtlas pan-cancer: the display name of each labelled cancer type code."),
        source_sql=_OBJECT_SQL.format(name="cancer_type", value="label", key="cancer_labels"),
        columns=(key_text("cancer_type"), text("label", "e.g. Hepatocellular Carcinoma.")),
        key=("cancer_type",)),
    _json("cancer_comparison", "cancer_comparison.json", description=(
        "scAtlas pan-cancer: paired tumour vs adjacent single-cell activity per cell type (donors with "
        "both tissues; at least 3 pairs)."),
        source_sql=CANCER_COMPARISON_SQL,
        columns=(
            key_text("cell_type", "subCluster."),
            *sig(),
            real("mean_tumor", "Mean over the pairs of the donor's mean tumour activity."),
            real("mean_adjacent"),
            real("mean_difference", "Mean over the pairs of tumour - adjacent."),
            real("std_difference", "Population SD of the paired differences.", check=NON_NEGATIVE),
            count("n_pairs", "Donors with the cell type in both tissues."),
            pvalue("p_value", "Paired t-test p-value (1.0 where undefined)."),
            count("n_paired_donors", "Donors with both tumour and adjacent tissue (one figure for the file)."),
            text("analysis_type", "paired_singlecell."),
        ),
        key=("signature_type", "cell_type", "signature")),
    _json("organ_cancer_matrix", "organ_cancer_matrix.json", description=(
        "scAtlas: normal organ vs matching cancer type mean activity (CytoSig), over a fixed organ -> "
        "cancer map."),
        json_layout="data", json_key="comparisons",
        columns=(
            key_text("organ", "The map's organ name (matched to atlas organs by substring)."),
            key_text("cancer_type"),
            signature(),
            signature_type(default="CytoSig"),  # the writer compares CytoSig only and names no type
            real("normal_activity", "scatlas_organs mean_activity."),
            real("cancer_activity", "cancer_types mean_activity."),
            real("difference", "cancer_activity - normal_activity."),
        ),
        key=("signature_type", "organ", "cancer_type", "signature")),
)

ADJACENT = (
    _json("adjacent_tissue", "adjacent_tissue.json", description=(
        "scAtlas pan-cancer: tumour vs adjacent-normal tissue activity (Mann-Whitney over pseudobulk "
        "columns), pan-cancer (cancer_type 'all') and per cancer type."),
        source_sql=ADJACENT_SQL,
        columns=(
            key_text("category", "tumor_vs_adjacent (pan-cancer, with q-values) or by_cancer_type."),
            key_text("cancer_type", "'all' for the pan-cancer rows."),
            *sig(),
            real("mean_tumor"), real("mean_adjacent"),
            real("activity_diff", "mean_adjacent - mean_tumor."),
            pvalue(description="Two-sided Mann-Whitney U p-value, adjacent vs tumour columns."),
            qvalue(description="BH FDR (tumor_vs_adjacent rows only; CytoSig over the pipeline's pan-cancer "
                               "and per-cancer tests, SecAct over its pan-cancer tests)."),
            real("neg_log10_pval", "-log10(max(p, 1e-100))."),
            count("n_tumor", "Tumour pseudobulk columns."), count("n_adjacent", "Adjacent pseudobulk columns."),
            text("direction", "up_in_adjacent or up_in_tumor."),
        ),
        key=("signature_type", "category", "cancer_type", "signature")),
    _json("adjacent_tissue_boxplots", "adjacent_tissue.json", description=(
        "scAtlas pan-cancer: activity distribution over the tumour, adjacent and (pan-cancer) normal "
        "pseudobulk columns, per cancer type and signature."),
        source_sql=ADJACENT_BOXPLOTS_SQL,
        columns=(
            key_text("cancer_type", "'all' for the pan-cancer distributions."),
            *sig(),
            key_text("tissue", "Tumor, Adjacent or Normal (normal organ atlas columns; pan-cancer only)."),
            real("min"), real("q1"), real("median"), real("q3"), real("max"), real("mean"),
            count("n", "Pseudobulk columns."),
        ),
        key=("signature_type", "cancer_type", "signature", "tissue")),
    _json("adjacent_tissue_organ_map", "adjacent_tissue.json", description=(
        "scAtlas pan-cancer: the normal organ each cancer type's adjacent tissue is compared with."),
        source_sql=_OBJECT_SQL.format(name="cancer_type", value="organ", key="cancer_organ_map"),
        columns=(key_text("cancer_type"), key_text("organ")),
        key=("cancer_type",)),
    _json("adjacent_tissue_summary", "adjacent_tissue.json", description=(
        "scAtlas pan-cancer: the figures of the tumour vs adjacent analysis (column and signature "
        "counts, significant signatures)."),
        source_sql=_OBJECT_SQL.format(name="stat", value="value", key="summary"),
        columns=(key_text("stat", "n_tumor_samples, n_adjacent_samples, n_significant_cytosig, ..."),
                 count("value")),
        key=("stat",)),
)

IMMUNE = (
    _json("immune_infiltration", "immune_infiltration.json", description=(
        "scAtlas pan-cancer: immune share of each cancer type's tumour tissue and signature activity in "
        "immune vs non-immune pseudobulk columns (cancer types with at least 5 tumour columns)."),
        json_layout="data",
        columns=(
            key_text("cancer_type"),
            *sig(),
            real("immune_proportion", "Immune cells / all cells of the tumour columns.", check=PROBABILITY),
            count("total_cells"), count("immune_cells"),
            count("n_samples", "Tumour pseudobulk columns of the cancer type."),
            real("mean_immune_activity", "Mean over immune columns (0 when none)."),
            real("mean_nonimmune_activity", "Mean over non-immune columns (0 when none)."),
            real("immune_enrichment", "mean_immune_activity - mean_nonimmune_activity."),
            real("correlation", "Spearman rho of is-immune vs activity over the columns (more than 5)."),
            pvalue(description="Spearman p-value."),
            real("cd8_treg_ratio", "CD8 cells / Treg cells; NULL when infinite.", check=NON_NEGATIVE),
            real("t_myeloid_ratio", "T cells / myeloid cells; NULL when infinite.", check=NON_NEGATIVE),
            text("data_quality", "good, partial or limited."),
            *_shares("prop", "all cells"),
            *_shares("immune", "immune cells"),
        ),
        key=("signature_type", "cancer_type", "signature")),
    _json("immune_infiltration_tme_summary", "immune_infiltration.json", description=(
        "scAtlas pan-cancer: tumour microenvironment composition per cancer type (malignant, immune, "
        "stromal, other cells; immune categories; T-cell ratios)."),
        json_layout="data", json_key="tme_summary",
        columns=(
            key_text("cancer_type"),
            count("total_cells"), count("malignant_cells"), count("immune_cells"), count("stromal_cells"),
            count("other_cells"),
            *(real(f"{c}_proportion", check=PROBABILITY) for c in ("malignant", "immune", "stromal", "other")),
            count("n_samples", "Tumour pseudobulk columns."), count("n_donors"),
            real("cd8_treg_ratio", check=NON_NEGATIVE), real("t_myeloid_ratio", check=NON_NEGATIVE),
            count("cd8_cells"), count("treg_cells"), count("t_cells"), count("myeloid_cells"),
            *_shares("immune", "immune cells"),
            text("data_quality", "high, medium, low or very_low."),
            Column("has_detailed_tcell_annotation", "BOOLEAN"),
            Column("has_malignant_annotation", "BOOLEAN"),
            text("sample_note", "A study-specific caveat, if any."),
        ),
        key=("cancer_type",)),
    _json("immune_infiltration_composition", "immune_infiltration.json", description=(
        "scAtlas pan-cancer: cells of each immune category in each cancer type's tumour tissue."),
        json_layout="data", json_key="composition",
        columns=(
            key_text("cancer_type"),
            key_text("cell_category", "One of the 13 immune categories (T_cell, CD8_T, ...)."),
            count("cell_count"),
            real("proportion_of_tme", check=PROBABILITY), real("proportion_of_immune", check=PROBABILITY),
            count("n_samples", "Pseudobulk columns of the category."),
            count("total_cells"), count("immune_cells"),
        ),
        key=("cancer_type", "cell_category")),
)

EXHAUSTION = (
    _json("exhaustion", "exhaustion.json", description=(
        "scAtlas pan-cancer: activity per T-cell state (exhausted, cytotoxic, memory, naive, other_tcell) "
        "over the T-cell pseudobulk columns of each cancer type."),
        json_layout="data",
        columns=(
            key_text("cancer_type"),
            key_text("exhaustion_state"),
            *sig(),
            real("mean_activity"),
            real("std_activity", "Sample SD over the columns (0 when undefined).", check=NON_NEGATIVE),
            count("n_samples", "Pseudobulk columns of the state."),
            count("n_cells"),
        ),
        key=("signature_type", "cancer_type", "exhaustion_state", "signature")),
    _json("exhaustion_comparison", "exhaustion.json", description=(
        "scAtlas pan-cancer: exhausted vs non-exhausted (cytotoxic, memory, other) T-cell columns."),
        json_layout="data", json_key="comparison",
        columns=(
            key_text("cancer_type"),
            *sig(),
            real("mean_exhausted"), real("mean_nonexhausted"),
            real("activity_diff", "mean_exhausted - mean_nonexhausted."),
            pvalue(),
            count("n_exhausted", "Exhausted columns."), count("n_nonexhausted", "Non-exhausted columns."),
        ),
        key=("signature_type", "cancer_type", "signature")),
    _json("exhaustion_by_subset", "exhaustion.json", description=(
        "scAtlas pan-cancer: activity and exhausted-cell share per T-cell subset (CD8, CD4, Treg)."),
        json_layout="data", json_key="by_subset",
        columns=(
            key_text("cancer_type"),
            key_text("tcell_subset", "CD8, CD4 or Treg."),
            *sig(),
            real("mean_activity"),
            real("exhaustion_rate", "Exhausted cells / cells of the subset.", check=PROBABILITY),
            count("n_cells"), count("n_samples"),
        ),
        key=("signature_type", "cancer_type", "tcell_subset", "signature")),
)

CAF = (
    _json("caf_signatures", "caf_signatures.json", description=(
        "scAtlas pan-cancer: activity over each cancer type's fibroblast pseudobulk columns (all CAFs)."),
        json_layout="data",
        columns=(
            key_text("cancer_type"),
            text("caf_subtype", "All_CAF."),
            *sig(),
            real("mean_activity"),
            real("std_activity", check=NON_NEGATIVE),
            count("n_cells"), count("n_samples", "Fibroblast pseudobulk columns."),
        ),
        key=("signature_type", "cancer_type", "signature")),
    _json("caf_signatures_subtypes", "caf_signatures.json", description=(
        "scAtlas pan-cancer: activity per fibroblast subtype (subCluster) and cancer type, with its CAF "
        "class."),
        json_layout="data", json_key="subtypes",
        columns=(
            key_text("cancer_type"),
            key_text("caf_subtype", "Fibroblast subCluster."),
            text("caf_class", "iCAF, myCAF, apCAF or Other (by the subCluster's name)."),
            *sig(),
            real("mean_activity"),
            count("n_cells"), count("n_samples"),
        ),
        key=("signature_type", "cancer_type", "caf_subtype", "signature")),
    TableSpec(
        name="caf_signatures_class_proportions",
        description="scAtlas pan-cancer: cells of each CAF class as a share of a cancer type's CAF subtypes.",
        derived_sql=CAF_CLASS_PROPORTIONS_SQL,
        depends_on=("caf_signatures_subtypes",),
        columns=(
            signature_type(),
            key_text("cancer_type"),
            key_text("caf_class"),
            count("n_cells"),
            real("proportion", check=PROBABILITY),
        ),
        key=("signature_type", "cancer_type", "caf_class"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    _json("caf_signatures_proportions", "caf_signatures.json", description=(
        "scAtlas pan-cancer: fibroblast share of each cancer type's tumour tissue."),
        json_layout="data", json_key="proportions",
        columns=(
            key_text("cancer_type"),
            real("caf_proportion", check=PROBABILITY),
            count("caf_cells"), count("total_cells"),
            count("n_subtypes", "Fibroblast subClusters in the tumour tissue."),
        ),
        key=("cancer_type",)),
)

TABLES = (*NORMAL, *SINGLE_CELL, *CANCER, *ADJACENT, *IMMUNE, *EXHAUSTION, *CAF)
