"""Age and BMI boxplots of CIMA and the Inflammation atlas (age_bmi_boxplots.json and its filtered
twin), one long table each.

The file is {atlas: {"age": [record], "bmi": [record], <name lists>...}}, written by
scripts/06_preprocess_viz_data.py and patched in place by three archive scripts (CIMA cell types,
CIMA SecAct samples, Inflammation SecAct cell types), so its records come in several shapes:
sample-level rows without a cell type (CIMA), with `cell_type: null` (CIMA SecAct) or `'All'`
(Inflammation); per-cell-type rows; quartiles written, or only the raw `values`, or neither. One
table holds them all: the sample level is cell_type 'All', quartiles missing from a record are
computed from its `values` where it has them (then dropped), and `bin_low` orders the bins.
"""

from cytoatlas.domains.atlas.columns import V
from cytoatlas.domains.spec import ATLAS_SIGNATURE_TYPES, TableSpec, count, key_text, real, signature, signature_type

# Every bin label the writers use, by section, with the lower edge that orders it. CIMA's
# sample-level CytoSig rows keep the first writer's bins (<30, 30-40, 40-50, 50-60, >60); every
# other row uses decades (<30, 30-39, ..., 70+). An unknown label fails the build.
BIN_LOW = {
    "<30": 0, "30-39": 30, "30-40": 30, "40-49": 40, "40-50": 40, "50-59": 50, "50-60": 50,
    "60-69": 60, ">60": 60, "70+": 70,
    "Underweight": 0, "Normal": 18.5, "Overweight": 25, "Obese": 30,
}
_BIN_LOW_SQL = "CASE bin " + " ".join(f"WHEN '{b}' THEN {low}" for b, low in BIN_LOW.items()) + " END"


def _statistic(name: str, from_values: str) -> str:
    return f"COALESCE(CAST(rec.value->'{name}' AS DOUBLE), {from_values}) AS {name}"


# Arrays of records two levels down; the name lists beside them (arrays of strings) are skipped.
# The levels are unnested as MAPs (chained json_each calls copy the enclosing value into every row).
AGE_BMI_SQL = f"""
    WITH a AS (SELECT unnest(map_entries(CAST(f.json AS MAP(VARCHAR, MAP(VARCHAR, JSON))))) AS a FROM {{json}} AS f),
         s AS (SELECT a.key AS atlas, unnest(map_entries(a.value)) AS s FROM a),
         r AS (SELECT atlas, s.key AS section, unnest(CAST(s.value AS JSON[])) AS value
               FROM s WHERE json_type(s.value) = 'ARRAY'),
         rec AS (SELECT atlas, section, value, CAST(value->'values' AS DOUBLE[]) AS vals
                 FROM r WHERE json_type(value) = 'OBJECT')
    SELECT atlas, section, rec.value->>'signature' AS signature, rec.value->>'sig_type' AS sig_type,
           rec.value->>'cell_type' AS cell_type, rec.value->>'bin' AS bin,
           {_statistic('min', 'list_min(vals)')},
           {_statistic('q1', "list_aggregate(vals, 'quantile_cont', 0.25)")},
           {_statistic('median', "list_aggregate(vals, 'quantile_cont', 0.5)")},
           {_statistic('q3', "list_aggregate(vals, 'quantile_cont', 0.75)")},
           {_statistic('max', 'list_max(vals)')},
           {_statistic('mean', 'list_avg(vals)')},
           rec.value->'n' AS n
    FROM rec
"""


def _boxplots(name: str, description: str) -> TableSpec:
    return TableSpec(
        name=name,
        description=description,
        source=V + f"{name}.json",
        format="json",
        source_sql=AGE_BMI_SQL,
        columns=(
            key_text("atlas", "The file's top-level key: cima or inflammation."),
            key_text("section", "age or bmi."),
            signature(),
            signature_type(source_names=("sig_type",)),
            key_text("cell_type", "Cell type; 'All' for the sample level (n_cells-weighted mean over the "
                     "sample's cell types).", default="All"),
            key_text("bin", "Age bin (<30, 30-39, ..., 70+; CIMA's sample-level CytoSig rows: <30, 30-40, ..., "
                     ">60) or WHO BMI class (Underweight, Normal, Overweight, Obese), as written."),
            real("bin_low", "Lower edge of the bin (age years, BMI kg/m2): the bins' order.", nullable=False,
                 expression=_BIN_LOW_SQL),
            real("min", "Minimum; for the SecAct rows of the archive patches the lower 1.5 IQR whisker. "
                 "From `values` where the record has no min; NULL when it has neither."),
            real("q1", "First quartile (linear interpolation), as min."),
            real("median", "Median."),
            real("q3", "Third quartile, as q1."),
            real("max", "Maximum, or the upper 1.5 IQR whisker, as min."),
            real("mean", "Mean."),
            count("n", "Samples in the bin."),
        ),
        key=("signature_type", "atlas", "section", "signature", "cell_type", "bin"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    )


TABLES = (
    _boxplots("age_bmi_boxplots", "CIMA and Inflammation: activity distribution per age bin and BMI class, "
                                  "sample level and per cell type."),
    _boxplots("age_bmi_boxplots_filtered", "The filtered twin of age_bmi_boxplots (the file the dashboard "
                                           "prefers): the same rows for a subset of the signatures."),
)
