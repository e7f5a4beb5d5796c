"""Inflammation atlas: cell-type and disease activity, disease vs healthy differences, age/BMI
correlations, severity and timepoint strata, cell-type drivers, treatment-response prediction,
cross-cohort validation and the study -> disease -> group flow (the /atlases/inflammation pages).

Sources are the real pipeline's files under visualization/data/ (scripts/06_preprocess_viz_data.py,
archive/scripts/utility/run_inflammation_viz_data.py); the nested ones (cell drivers, treatment
response, longitudinal, sankey) become several keyed tables each. `_filtered` twins are tables of
their own with the parent's columns and key: the real files the dashboard prefers (no writer in the
repository; the demo writes the parent's rows whose signature is among the dashboard's 247: all
CytoSig and the first 204 SecAct).
"""

from cytoatlas.domains.atlas.columns import V, celltype_summary, protein_sig, sig
from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, NON_NEGATIVE, PROBABILITY, Column, TableSpec, count, integer, key_text, pvalue,
    qvalue, real, signature, signature_type, text,
)

DRIVING = "(pvalue < 0.05 AND abs(effect) > 0.5)"  # the real service's is_driving rule


def _disease_activity(name: str, description: str) -> TableSpec:
    return TableSpec(
        name=name,
        description=description,
        source=V + f"{name}.json",
        format="json",
        columns=(
            key_text("disease", "Disease as in the sample metadata, 'healthy' included."),
            text("disease_group"),
            key_text("cell_type"),
            *sig(),
            real("mean_activity", "Mean over the (sample x cell type) pseudobulk columns of the group."),
            count("n_samples", "Pseudobulk columns averaged (>= 3)."),
            count("n_cells"),
        ),
        key=("signature_type", "disease", "cell_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    )


def _correlations(name: str, description: str, per_cell_type: bool) -> TableSpec:
    return TableSpec(
        name=name,
        description=description,
        source=V + f"{name}.json",
        format="json",
        json_layout="dict_of_lists",  # {"age": [...], "bmi": [...]}
        columns=(
            key_text("category", "age or bmi (the source's top-level key)."),
            *((key_text("cell_type"),) if per_cell_type else (text("feature", "Age or BMI."),)),
            *protein_sig(),
            real("rho", "Spearman rho (NULL where it is undefined)."),
            pvalue(description="Spearman p-value."),
            qvalue(description="BH FDR over the category, both signature types together"
                   + (" (rounded to 4 decimals, so it can fall below a tiny p)." if per_cell_type else ".")),
            count("n", "Samples."),
        ),
        key=("signature_type", "category", *(("cell_type",) if per_cell_type else ()), "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    )


def _severity(name: str, description: str) -> TableSpec:
    return TableSpec(
        name=name,
        description=description,
        source=V + f"{name}.json",
        format="json",
        columns=(
            key_text("disease"),
            key_text("severity", "Severity stage label."),
            integer("severity_order", "Stage rank, mild to severe (1-based)."),
            *sig(),
            real("mean_activity"),
            real("std_activity", check=NON_NEGATIVE),
            real("median_activity"),
            count("n_samples"),
            count("n_records", "Pseudobulk records behind the mean."),
        ),
        key=("signature_type", "disease", "severity", "signature"),
    )


TREATMENT = V + "treatment_response.json"
CELL_DRIVERS = V + "inflammation_cell_drivers.json"
LONGITUDINAL = V + "inflammation_longitudinal.json"
SANKEY = V + "disease_sankey.json"
COHORTS = V + "cohort_validation.json"
_SCALAR = "json_type({v}) NOT IN ('OBJECT', 'ARRAY', 'NULL')"

TABLES = (
    celltype_summary("inflammation_celltype", "Inflammation", "66 level-2 cell types"),
    _disease_activity("inflammation_disease", "Inflammation atlas: mean activity per disease x cell type."),
    _disease_activity("inflammation_disease_filtered",
                      "inflammation_disease for the dashboard's signature subset (all CytoSig, 204 SecAct)."),
    TableSpec(
        name="inflammation_differential",
        description="Disease vs healthy sample-level activity difference (Wilcoxon rank-sum, BH FDR); "
                    "'All Diseases' rows pool every disease.",
        source=V + "inflammation_differential.json",
        format="json",
        columns=(
            key_text("disease", "Disease, or 'All Diseases' for the pooled comparison."),
            key_text("group1"),
            key_text("group2", "Reference group, 'healthy'."),
            *protein_sig(),
            real("mean_g1"), real("mean_g2"),
            real("activity_diff", "mean_g1 - mean_g2."),
            # p < 0.01 is written as text ("3.10e-04") by the real writer; read as a number.
            pvalue(description="Wilcoxon rank-sum p-value."),
            qvalue(description="BH FDR over the per-disease rows of a signature type; the pooled rows "
                               "have their own pass."),
            real("neg_log10_pval", "-log10(max(p, 1e-300))."),
            count("n_g1"), count("n_g2"),
            text("comparison", "study_matched, all_healthy (no healthy sample in the disease's "
                               "studies) or pooled."),
            text("healthy_note", "Which healthy samples were the reference, in words."),
        ),
        key=("signature_type", "disease", "group1", "group2", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    _correlations("inflammation_correlations",
                  "Sample-level Spearman correlation of activity (n_cells-weighted over cell types) with "
                  "age and BMI.", per_cell_type=False),
    _correlations("inflammation_celltype_correlations",
                  "Per-cell-type Spearman correlation of activity with age and BMI.", per_cell_type=True),
    _severity("inflammation_severity", "Activity per disease severity stage."),
    _severity("inflammation_severity_filtered",
              "inflammation_severity for the dashboard's signature subset (all CytoSig, 204 SecAct)."),
    TableSpec(
        name="inflammation_cell_drivers",
        description="Disease vs study-matched healthy activity difference within each cell type (only "
                    "p < 0.1 is written).",
        source=CELL_DRIVERS,
        format="json",
        json_layout="data",
        json_key="effects",  # beside it: the lists inflammation_cell_driver_sets reads
        columns=(
            key_text("disease"),
            key_text("cell_type"),
            signature(source_names=("signature", "cytokine")),  # the older writer says cytokine
            signature_type(default="CytoSig"),  # ... and is CytoSig only, naming no type
            real("effect", "Mean activity, disease - matched healthy."),
            pvalue(description="Wilcoxon rank-sum p-value."),
            count("n_healthy"), count("n_disease"),
            Column("is_driving", "BOOLEAN", "p < 0.05 and |effect| > 0.5 (the real service's rule).",
                   expression=f"coalesce({DRIVING}, false)"),
            real("abs_effect", "|effect|.", expression="abs(effect)"),
            integer("population", "Id of the (signature type, disease, cell type) group, 1, 2, ... in "
                    "that order.", expression="dense_rank() OVER (ORDER BY signature_type, disease, cell_type)"),
            integer("driving_rank", "Rank of a driving signature in its group by |effect| (ties by "
                    "signature); NULL when not driving.",
                    expression=f"CASE WHEN {DRIVING} THEN row_number() OVER (PARTITION BY signature_type, "
                               f"disease, cell_type, {DRIVING} ORDER BY abs(effect) DESC, signature) END"),
        ),
        key=("signature_type", "disease", "cell_type", "signature"),
    ),
    TableSpec(
        name="inflammation_cell_driver_sets",
        description="What the cell-driver analysis covered: its diseases, cell types, cytokines (CytoSig) "
                    "and secact_proteins, as listed beside the effects.",
        source=CELL_DRIVERS,
        format="json",
        # Lists of scalars under the top-level keys; the effects array is set aside first (unnested
        # beside it, its whole text would be copied into each of its rows).
        source_sql=f"""
            WITH l AS MATERIALIZED (
                SELECT l.key, l.value FROM {{json}} AS f, json_each(f.json) AS l
                WHERE json_type(l.value) = 'ARRAY' AND {_SCALAR.format(v="json_extract(l.value, '$[0]')")})
            SELECT l.key AS list_name, CAST(i.key AS INTEGER) AS ordinal,
                   json_extract_string(i.value, '$') AS value
            FROM l, json_each(l.value) AS i
            WHERE {_SCALAR.format(v='i.value')}
        """,
        columns=(
            key_text("list_name", "diseases, cell_types, cytokines or secact_proteins."),
            integer("ordinal", "0-based position in the list.", nullable=False),
            key_text("value"),
        ),
        key=("list_name", "ordinal"),
    ),
    TableSpec(
        name="inflammation_longitudinal",
        description="Activity per disease x sampling timepoint (cross-sectional: different patients).",
        source=LONGITUDINAL,
        format="json",
        json_layout="data",
        json_key="timepoint_activity",  # beside it: the counts and scalars of the two tables below
        columns=(
            key_text("disease"),
            key_text("timepoint", "T0, T1, ..."),
            integer("timepoint_num", "The timepoint's number, for ordering."),
            *sig(),
            real("mean_activity"),
            real("std_activity", check=NON_NEGATIVE),
            real("median_activity"),
            count("n_samples"),
            count("n_records"),
            count("n_timepoints", "Distinct timepoints of the disease (any signature type).",
                  expression="count(DISTINCT timepoint) OVER (PARTITION BY disease)"),
        ),
        key=("signature_type", "disease", "timepoint", "signature"),
    ),
    TableSpec(
        name="inflammation_longitudinal_counts",
        description="Sample counts of the longitudinal file: timepoint_distribution {timepoint: n}, "
                    "disease_timepoints {disease: {timepoint: n}}, treatment_by_timepoint {a: {b: n}}.",
        source=LONGITUDINAL,
        format="json",
        # The objects under the top-level keys (the activity array set aside first, as in
        # inflammation_cell_driver_sets), then one or two levels of keys down to the counts.
        source_sql="""
            WITH s AS MATERIALIZED (SELECT s.key, s.value FROM {json} AS f, json_each(f.json) AS s
                                    WHERE json_type(s.value) = 'OBJECT')
            SELECT s.key AS section, '' AS group_key, i.key AS item, i.value AS n
            FROM s, json_each(s.value) AS i WHERE json_type(i.value) <> 'OBJECT'
            UNION ALL
            SELECT s.key, g.key, i.key, i.value
            FROM s, json_each(s.value) AS g, json_each(g.value) AS i WHERE json_type(g.value) = 'OBJECT'
        """,
        columns=(
            key_text("section", "The top-level key."),
            key_text("group_key", "The outer key of a two-level section; '' for a one-level one."),
            key_text("item", "The inner key."),
            count("n"),
        ),
        key=("section", "group_key", "item"),
    ),
    TableSpec(
        name="inflammation_longitudinal_info",
        description="The longitudinal file's scalars: has_longitudinal, note.",
        source=LONGITUDINAL,
        format="json",
        source_sql=f"""
            SELECT s.key AS name,
                   CASE WHEN json_type(s.value) = 'VARCHAR' THEN json_extract_string(s.value, '$')
                        ELSE CAST(s.value AS VARCHAR) END AS value
            FROM {{json}} AS f, json_each(f.json) AS s
            WHERE {_SCALAR.format(v='s.value')}
        """,
        columns=(key_text("name"), text("value", "As text; booleans are 'true' / 'false'.")),
        key=("name",),
    ),
    TableSpec(
        name="treatment_response_roc",
        description="ROC curves of therapy-response prediction, one row per curve point.",
        source=TREATMENT,
        format="json",
        # roc_curves[].fpr and .tpr are parallel arrays: exploded together, by index; an array
        # shorter than its partner leaves a NULL, which the build refuses (fpr and tpr NOT NULL).
        source_sql="""
            SELECT c.value->>'disease' AS disease, c.value->>'model' AS model,
                   c.value->>'signature_type' AS signature_type, p.i AS point,
                   json_extract(c.value, '$.fpr[' || p.i || ']') AS fpr,
                   json_extract(c.value, '$.tpr[' || p.i || ']') AS tpr,
                   c.value->'auc' AS auc, c.value->'n_samples' AS n_samples
            FROM {json} AS f, json_each(f.json, '$.roc_curves') AS c,
                 range(CAST(greatest(json_array_length(c.value, '$.fpr'),
                                     json_array_length(c.value, '$.tpr')) AS BIGINT)) AS p(i)
        """,
        columns=(
            key_text("disease", "Disease, or 'All Diseases'."),
            key_text("model", "Logistic Regression or Random Forest."),
            signature_type(),
            integer("point", "0-based index into the curve's fpr/tpr arrays.", nullable=False),
            real("fpr", "False positive rate.", nullable=False, check=PROBABILITY),
            real("tpr", "True positive rate.", nullable=False, check=PROBABILITY),
            real("auc", "The curve's AUC.", check=PROBABILITY),
            count("n_samples", "Patients behind the curve."),
            integer("curve", "Id of the curve: (signature type, disease, model) numbered 1, 2, ... in that "
                    "order.", expression="dense_rank() OVER (ORDER BY signature_type, disease, model)"),
        ),
        key=("signature_type", "disease", "model", "point"),
    ),
    TableSpec(
        name="treatment_response_features",
        description="Top features of each therapy-response model: Random Forest importance, or Logistic "
                    "Regression |coefficient| / max |coefficient|.",
        source=TREATMENT,
        format="json",
        json_layout="data",
        json_key="feature_importance",
        columns=(
            key_text("disease"),
            key_text("model", default="Random Forest"),
            signature_type(),
            signature(source_names=("feature",)),
            real("importance", check=NON_NEGATIVE),
            real("coefficient", "Logistic Regression coefficient; NULL for Random Forest."),
            integer("rank", "1-based rank by importance within (signature type, disease, model); ties by "
                    "signature.", expression="row_number() OVER (PARTITION BY signature_type, disease, model "
                                             "ORDER BY importance DESC NULLS LAST, signature)"),
        ),
        key=("signature_type", "disease", "model", "signature"),
    ),
    TableSpec(
        name="treatment_response_predictions",
        description="Cross-validated response probability per patient and model.",
        source=TREATMENT,
        format="json",
        source_sql="""
            SELECT CAST(p.key AS INTEGER) AS prediction, p.value->>'disease' AS disease,
                   p.value->>'model' AS model, p.value->>'signature_type' AS signature_type,
                   p.value->>'response' AS response, p.value->'probability' AS probability
            FROM {json} AS f, json_each(f.json, '$.predictions') AS p
        """,
        columns=(
            key_text("disease"),
            key_text("model", default="Random Forest"),  # one writer names no model: Random Forest only
            signature_type(),
            integer("prediction", "0-based position in the source's predictions.", nullable=False),
            key_text("response", "Responder or Non-responder (the truth)."),
            real("probability", "Predicted probability of response.", check=PROBABILITY),
        ),
        key=("signature_type", "disease", "model", "prediction"),
    ),
    TableSpec(
        name="treatment_response",
        description="One row per therapy-response model (ROC curve): AUC, patients, responders.",
        derived_sql="""
            SELECT r.*, p.n_responders, p.n_non_responders
            FROM (SELECT signature_type, disease, model, min(curve) AS curve, max(auc) AS auc,
                         max(n_samples) AS n_samples, count(*) AS n_points
                  FROM treatment_response_roc GROUP BY signature_type, disease, model) AS r
            LEFT JOIN (SELECT signature_type, disease, model,
                              count(*) FILTER (WHERE response = 'Responder') AS n_responders,
                              count(*) FILTER (WHERE response = 'Non-responder') AS n_non_responders
                       FROM treatment_response_predictions GROUP BY signature_type, disease, model) AS p
            USING (signature_type, disease, model)
        """,
        depends_on=("treatment_response_roc", "treatment_response_predictions"),
        columns=(
            key_text("disease"),
            key_text("model"),
            signature_type(),
            integer("curve", "Id of the curve in treatment_response_roc.", nullable=False),
            real("auc", check=PROBABILITY),
            count("n_samples"),
            count("n_points", "Points of the ROC curve."),
            count("n_responders", "Predictions of responders; NULL when the model has none."),
            count("n_non_responders", "Predictions of non-responders; NULL when the model has none."),
        ),
        key=("signature_type", "disease", "model"),
    ),
    TableSpec(
        name="cohort_validation",
        description="Per-signature Spearman correlation of cell-type activity profiles between the main, "
                    "validation and external cohorts.",
        source=COHORTS,
        format="json",
        json_layout="data",
        json_key="correlations",
        columns=(
            signature(),
            signature_type(),
            real("main_validation_r"), real("main_external_r"), real("validation_external_r"),
            pvalue(description="p of main_validation_r (1 where undefined)."),
        ),
        key=("signature_type", "signature"),
    ),
    TableSpec(
        name="cohort_validation_consistency",
        description="Mean cross-cohort correlation per cohort pair and signature type.",
        source=COHORTS,
        format="json",
        json_layout="data",
        json_key="consistency",
        columns=(
            key_text("cohort_pair", "Main vs Validation, Main vs External or Validation vs External."),
            signature_type(),
            real("mean_r"),
            count("n_signatures"),
        ),
        key=("signature_type", "cohort_pair"),
    ),
    TableSpec(
        name="disease_sankey",
        description="Sample flow study -> disease -> disease group: the links (node indexes of "
                    "disease_sankey_nodes).",
        source=SANKEY,
        format="json",
        json_layout="data",
        json_key="links",
        columns=(
            integer("source", "Index of the source node.", nullable=False),
            integer("target", "Index of the target node.", nullable=False),
            count("value", "Samples."),
        ),
        key=("source", "target"),
    ),
    TableSpec(
        name="disease_sankey_nodes",
        description="Nodes of the sample-flow diagram: studies (cohort), diseases and disease groups.",
        source=SANKEY,
        format="json",
        source_sql="""
            SELECT CAST(n.key AS INTEGER) AS node_index, n.value->>'name' AS name, n.value->>'type' AS type
            FROM {json} AS f, json_each(f.json, '$.nodes') AS n
        """,
        columns=(
            integer("node_index", "0-based position in the source's nodes (what links refer to).",
                    nullable=False),
            key_text("name"),
            key_text("type", "cohort, disease or disease_group."),
        ),
        key=("node_index",),
    ),
    TableSpec(
        name="inflammation_disease_group_activity",
        description="Mean activity per disease group x cell type (mean over the group's diseases); group "
                    "'all' = the mean of the group means (the real /disease-activity-summary bar data).",
        derived_sql="""
            WITH g AS (SELECT signature_type, signature, disease_group, cell_type,
                              avg(mean_activity) AS mean_activity, count(mean_activity) AS n_averaged
                       FROM inflammation_disease WHERE disease_group IS NOT NULL
                       GROUP BY signature_type, signature, disease_group, cell_type)
            SELECT * FROM g
            UNION ALL
            SELECT signature_type, signature, 'all', cell_type, avg(mean_activity), count(mean_activity)
            FROM g GROUP BY signature_type, signature, cell_type
        """,
        depends_on=("inflammation_disease",),
        columns=(
            *sig(),
            key_text("disease_group", "A disease group, or 'all'."),
            key_text("cell_type"),
            real("mean_activity"),
            count("n_averaged", "Means averaged: diseases for a group, groups for 'all'."),
        ),
        key=("signature_type", "signature", "disease_group", "cell_type"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="inflammation_conserved_programs",
        description="Signatures with |mean_activity| > 0.5 in several diseases (the real "
                    "/conserved-programs figures, its formula included).",
        derived_sql="""
            SELECT signature_type, signature, count(DISTINCT disease) AS n_diseases,
                   sum(mean_activity) / count(DISTINCT disease) AS mean_activity_diff,
                   abs(sum(sign(mean_activity))) / count(*) AS consistency_score
            FROM inflammation_disease WHERE abs(mean_activity) > 0.5
            GROUP BY signature_type, signature
        """,
        depends_on=("inflammation_disease",),
        columns=(
            *sig(),
            count("n_diseases", "Diseases with a cell type where |mean_activity| > 0.5."),
            real("mean_activity_diff", "Sum of those mean_activity / n_diseases (as the real API)."),
            real("consistency_score", "|sum of their signs| / their number: 1 = one direction.",
                 check=PROBABILITY),
        ),
        key=("signature_type", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="inflammation_conserved_program_diseases",
        description="The diseases of each conserved program (inflammation_conserved_programs).",
        derived_sql="""
            SELECT DISTINCT signature_type, signature, disease
            FROM inflammation_disease WHERE abs(mean_activity) > 0.5
        """,
        depends_on=("inflammation_disease",),
        columns=(*sig(), key_text("disease")),
        key=("signature_type", "signature", "disease"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)
