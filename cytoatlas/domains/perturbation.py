"""Perturbation domain: parse_10M cytokine stimulation and Tahoe-100M drug response (DOMAIN.md §2)."""

from cytoatlas.domains.search_index import entity_type_of, search_tables
from cytoatlas.domains.signature_aliases import alias_table
from cytoatlas.domains.spec import (
    DomainSpec, TableSpec, count, integer, key_text, pvalue, qvalue, real, signature,
    signature_type, text, Column, NON_NEGATIVE, PROBABILITY,
)

P = "results/parse10m/"
T = "results/tahoe/"

# The search index (cytoatlas/domains/search_index.py): signatures (cytokine = CytoSig, protein =
# SecAct), the parse_10M stimulation cytokines, cell types, Tahoe drugs, drug classes, cell lines
# with their cancer types and tissues, pathways, and the two datasets. Contexts are the datasets
# (parse_10M, Tahoe). A stimulation whose CytoSig signature parse10m_cytokine_metadata names is
# that signature's cytokine entity (IL-6 -> cytokine:IL6, the treatment name an alias), so a
# cytokine is one entity whatever the table calls it; an unmapped one (CCL2) is named as treated.
_SIG = entity_type_of("signature_type")
_STIMULATION = "coalesce(m.signature, x.cytokine)"
SEARCH_MENTIONS_SQL = f"""
    SELECT {_SIG} AS entity_type, signature AS name, 'parse_10M' AS context,
           'parse10m_treatment_effect' AS source_table, count(*) AS n_rows
    FROM parse10m_treatment_effect GROUP BY ALL
    UNION ALL SELECT {_SIG}, signature, 'Tahoe', 'tahoe_drug_effect', count(*) FROM tahoe_drug_effect GROUP BY ALL
    UNION ALL SELECT 'cytokine', {_STIMULATION}, 'parse_10M', 'parse10m_activity', count(*)
    FROM parse10m_activity x LEFT JOIN parse10m_cytokine_metadata m USING (cytokine)
    WHERE x.cytokine <> 'PBS' AND x.signature_type = 'CytoSig' GROUP BY ALL
    UNION ALL SELECT 'cell_type', cell_type, 'parse_10M', 'parse10m_treatment_effect', count(*)
    FROM parse10m_treatment_effect GROUP BY ALL
    UNION ALL SELECT 'drug', drug, 'Tahoe', 'tahoe_drug_effect', count(*) FROM tahoe_drug_effect
    WHERE drug <> 'DMSO_TF' GROUP BY ALL
    UNION ALL SELECT 'drug_class', unnest(string_split(drug_category, ';')), 'Tahoe', 'tahoe_drug_sensitivity', 1
    FROM (SELECT DISTINCT drug, drug_category FROM tahoe_drug_sensitivity WHERE drug <> 'DMSO_TF')
    UNION ALL SELECT 'cell_line', cell_line, 'Tahoe', 'tahoe_drug_effect', count(*) FROM tahoe_drug_effect GROUP BY ALL
    UNION ALL SELECT 'cell_line', cell_line, 'Tahoe', 'tahoe_cell_line_metadata', 1 FROM tahoe_cell_line_metadata
    UNION ALL SELECT 'cancer_type', cancer_type, 'Tahoe', 'tahoe_cell_line_metadata', count(*)
    FROM tahoe_cell_line_metadata GROUP BY ALL
    UNION ALL SELECT 'tissue', tissue, 'Tahoe', 'tahoe_cell_line_metadata', count(*) FROM tahoe_cell_line_metadata GROUP BY ALL
    UNION ALL SELECT 'pathway', pathway, 'Tahoe', 'tahoe_pathway_activation', count(*)
    FROM tahoe_pathway_activation GROUP BY ALL
    UNION ALL SELECT 'dataset', 'parse_10M', 'parse_10M', 'parse10m_treatment_effect', count(*) FROM parse10m_treatment_effect
    UNION ALL SELECT 'dataset', 'Tahoe', 'Tahoe', 'tahoe_drug_effect', count(*) FROM tahoe_drug_effect
"""
SEARCH_ENTITIES_SQL = f"""
    SELECT DISTINCT {_SIG} AS entity_type, signature AS name, NULL AS description, signature_type
    FROM parse10m_treatment_effect
    UNION ALL SELECT 'cytokine', coalesce(signature, cytokine),
        CASE WHEN signature IS NULL THEN 'parse_10M stimulation cytokine' ELSE 'CytoSig cytokine signature; parse_10M '
             || 'stimulation ' || cytokine END || ' (' || concat_ws(', ', family, subfamily) || ')', NULL
    FROM parse10m_cytokine_metadata
    UNION ALL SELECT DISTINCT 'drug', drug, 'Tahoe-100M drug (' || replace(drug_category, ';', ', ') || ')', NULL
    FROM tahoe_drug_sensitivity WHERE drug <> 'DMSO_TF'
    UNION ALL SELECT 'cell_line', cell_line, 'Tahoe-100M cell line: ' || cancer_type || ' (' || tissue || ')', NULL
    FROM tahoe_cell_line_metadata
    UNION ALL SELECT * FROM (VALUES
        ('dataset', 'parse_10M', 'parse_10M: cytokine stimulation of PBMCs (12 donors x 90 cytokines + PBS)', NULL),
        ('dataset', 'Tahoe', 'Tahoe-100M: drug response of cancer cell lines', NULL))
"""
# Other spellings: the alias table, a stimulation's treatment name, the datasets' full names.
SEARCH_ALIASES_SQL = f"""
    SELECT {_SIG} AS entity_type, signature AS name, alias AS term, kind AS term_kind FROM perturbation_signature_aliases
    UNION ALL SELECT 'cytokine', signature, cytokine, 'treatment' FROM parse10m_cytokine_metadata
    WHERE signature IS NOT NULL
    UNION ALL SELECT * FROM (VALUES ('dataset', 'parse_10M', 'parse10M', 'alias'),
                                    ('dataset', 'Tahoe', 'Tahoe-100M', 'alias'))
"""

DOMAIN = DomainSpec(
    name="perturbation",
    file_name="perturbation_data.duckdb",
    schema_version=1,
    tables=(
        TableSpec(
            name="parse10m_activity",
            description="parse_10M pseudobulk activity z-scores per donor x cytokine x cell type (PBS = control).",
            source=P + "parse10m_pseudobulk_activity.csv",
            columns=(
                key_text("donor_id", "Donor (D1..D12).", source_names=("donor_id", "donor")),
                key_text("cytokine", "Stimulating cytokine, or PBS for the control."),
                key_text("cell_type", "PBMC cell type."),
                count("n_cells", "Cells in the pseudobulk group."),
                signature(),
                signature_type(),
                real("activity", "Ridge-regression activity z-score."),
            ),
            key=("signature_type", "cytokine", "cell_type", "donor_id", "signature"),
        ),
        TableSpec(
            name="parse10m_treatment_effect",
            description="Cytokine vs PBS activity difference per cell type (Mann-Whitney over donors, BH FDR).",
            source=P + "parse10m_treatment_vs_control.csv",
            columns=(
                key_text("cytokine", "Stimulating cytokine."),
                key_text("cell_type", "PBMC cell type."),
                signature(),
                signature_type(),
                real("mean_treated", "Mean activity over treated donors."),
                real("mean_control", "Mean activity over PBS donors."),
                real("activity_diff", "mean_treated - mean_control."),
                count("n_treated", "Treated donor pseudobulks."),
                count("n_control", "Control donor pseudobulks."),
                real("statistic", "Mann-Whitney U statistic."),
                pvalue(),
                qvalue(),
            ),
            key=("signature_type", "cytokine", "cell_type", "signature"),
        ),
        TableSpec(
            name="parse10m_ground_truth",
            description="Does a cytokine's own signature recover its stimulation? AUC and effect per cytokine.",
            source=P + "parse10m_ground_truth_validation.csv",
            columns=(
                key_text("cytokine", "Signature name of the stimulating cytokine."),
                text("matched_treatment", "parse_10M treatment matched to the signature."),
                signature_type(),
                real("auc_roc", "AUC of self-signature activity, treated vs control.", check=PROBABILITY),
                count("n_treated"),
                count("n_control"),
                real("mean_self_activity"),
                real("mean_nonself_activity"),
                real("activity_diff", "mean_self_activity - mean_nonself_activity."),
                pvalue(description="One-sided Mann-Whitney U p-value."),
                qvalue("fdr"),
                text("best_celltype", "Cell type with the largest self-signature difference."),
                real("best_celltype_diff"),
                pvalue("best_celltype_pval"),
                real("donor_consistency", "Mean pairwise donor Spearman rho."),
                count("n_donors_consistency"),
            ),
            key=("signature_type", "cytokine"),
        ),
        TableSpec(
            name="parse10m_cytokine_metadata",
            description="The 90 parse_10M cytokines: family, dose and the CytoSig signature they map to.",
            source=P + "cytokine_origin_parse10M.csv",
            columns=(
                key_text("cytokine", "Treatment name as in parse_10M."),
                text("family", "Cytokine family (Interleukin, Interferon, TNF superfamily, ...)."),
                text("subfamily"),
                real("concentration", "ng/mL."),
                text("vendor"),
                text("catalog_number"),
                text("signature", "Mapped CytoSig signature name; NULL when unmapped."),
            ),
            key=("cytokine",),
        ),
        TableSpec(
            name="parse10m_cytokine_heatmap",
            description="Cytokine x cell type response: activity_diff of the cytokine's own signature "
                        "(unmapped cytokines: the signature with the largest |activity_diff|).",
            derived_sql="""
                SELECT te.cytokine, te.cell_type, te.signature_type,
                       coalesce(max(te.signature) FILTER (WHERE te.signature = m.signature),
                                arg_max(te.signature, abs(te.activity_diff))) AS signature,
                       coalesce(max(te.activity_diff) FILTER (WHERE te.signature = m.signature),
                                arg_max(te.activity_diff, abs(te.activity_diff))) AS activity
                FROM parse10m_treatment_effect te
                LEFT JOIN parse10m_cytokine_metadata m USING (cytokine)
                GROUP BY te.cytokine, te.cell_type, te.signature_type
            """,
            depends_on=("parse10m_treatment_effect", "parse10m_cytokine_metadata"),
            columns=(
                key_text("cytokine"),
                key_text("cell_type"),
                signature_type(),
                text("signature", "Signature the value comes from."),
                real("activity", "activity_diff vs PBS."),
            ),
            key=("signature_type", "cytokine", "cell_type"),
        ),
        TableSpec(
            name="parse10m_donor_variability",
            description="Per-donor self-signature response to each cytokine, with spread across donors.",
            source=P + "parse10m_donor_variability.csv",
            columns=(
                key_text("cytokine"),
                key_text("cell_type"),
                key_text("donor_id", source_names=("donor_id", "donor")),
                signature(),
                signature_type(),
                real("activity_diff", "This donor's treated - control activity."),
                real("mean_activity_diff", "Mean over donors."),
                real("variance", "Variance over donors.", check=NON_NEGATIVE),
                real("cv", "sd / |mean|; NULL when |mean| < 1e-10."),
            ),
            key=("cytokine", "cell_type", "donor_id", "signature_type", "signature"),
        ),
        TableSpec(
            name="tahoe_activity",
            description="Tahoe-100M pseudobulk activity per plate x drug x cell line (DMSO_TF = control).",
            source=T + "tahoe_pseudobulk_activity.csv",
            columns=(
                Column("plate", "INTEGER", "Plate 1-14 (13 = dose plate).", nullable=False),
                key_text("drug", "Drug, or DMSO_TF for the control."),
                key_text("cell_line", "Cancer cell line."),
                count("n_cells"),
                signature(),
                signature_type(),
                real("activity", "Ridge-regression activity z-score."),
            ),
            key=("signature_type", "drug", "cell_line", "plate", "signature"),
        ),
        TableSpec(
            name="tahoe_drug_effect",
            description="Drug vs DMSO_TF activity difference per cell line.",
            source=T + "tahoe_drug_vs_control.csv",
            columns=(
                key_text("drug"),
                key_text("cell_line"),
                signature(),
                signature_type(),
                real("mean_treated"),
                real("mean_control"),
                real("activity_diff", "mean_treated - mean_control."),
                count("n_treated", "Treated plates/replicates (often 1-2)."),
                count("n_control"),
                real("statistic"),
                pvalue(description="Mann-Whitney U p-value; NULL with fewer than 2 replicates."),
                qvalue(),
            ),
            key=("signature_type", "drug", "cell_line", "signature"),
        ),
        TableSpec(
            name="tahoe_drug_sensitivity",
            description="Drug x cell line x signature activity (long form) with drug class.",
            source=T + "tahoe_drug_sensitivity_matrix.csv",
            columns=(
                key_text("drug"),
                key_text("cell_line"),
                signature(),
                signature_type(),
                text("drug_category", "';'-joined drug classes, or 'unclassified'."),
                real("mean_activity"),
                real("std_activity", check=NON_NEGATIVE),
                integer("n_replicates", check=NON_NEGATIVE),
                real("activity_diff_vs_control", "mean_activity - DMSO_TF baseline."),
            ),
            key=("signature_type", "drug", "cell_line", "signature"),
        ),
        TableSpec(
            name="tahoe_dose_response",
            description="Plate 13 dose series: activity and viability per dose.",
            source=T + "tahoe_dose_response.csv",
            columns=(
                key_text("drug"),
                key_text("cell_line"),
                Column("dose", "DOUBLE", "Dose in dose_unit.", nullable=False),
                text("dose_unit", "Always uM."),
                signature(),
                signature_type(),
                real("activity"),
                real("viability", "Fraction of cells alive (0-1).", check=PROBABILITY),
            ),
            key=("drug", "cell_line", "signature_type", "signature", "dose"),
        ),
        TableSpec(
            name="tahoe_pathway_activation",
            description="Mean activity of each pathway's member signatures per drug.",
            source=T + "tahoe_cytokine_pathway_activation.csv",
            columns=(
                key_text("drug"),
                key_text("pathway", "JAK-STAT, NF-kB, MAPK/ERK, ..."),
                signature_type(),
                real("activity", "Mean activity_diff of member signatures across cell lines."),
                pvalue(description="Mann-Whitney U, members vs non-members."),
                integer("n_signatures", "Member signatures.", check=NON_NEGATIVE),
            ),
            key=("drug", "signature_type", "pathway"),
        ),
        TableSpec(
            name="tahoe_cell_line_metadata",
            description="The 50 Tahoe cancer cell lines.",
            source=T + "tahoe_cell_line_metadata.csv",
            columns=(
                key_text("cell_line"),
                text("cancer_type"),
                text("tissue"),
            ),
            key=("cell_line",),
        ),
        alias_table("perturbation"),  # signature-name aliases, as in every domain's file
        *search_tables("perturbation", SEARCH_MENTIONS_SQL, SEARCH_ENTITIES_SQL, SEARCH_ALIASES_SQL,
                       depends_on=("parse10m_treatment_effect", "parse10m_activity", "parse10m_cytokine_metadata",
                                   "tahoe_drug_effect", "tahoe_drug_sensitivity", "tahoe_cell_line_metadata",
                                   "tahoe_pathway_activation", "perturbation_signature_aliases")),
    ),
)
