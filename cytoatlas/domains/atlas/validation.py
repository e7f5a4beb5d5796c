"""The validation pages: how well inferred activity tracks the target gene's expression.

Four groups of real sources (docs: /work/notes/atlas-validation.md):
- GTEx/TCGA bulk RNA-seq (`bulk_rnaseq_validation.json`, scripts/14): donor-level correlations,
  sample counts, tissue/cancer lists, summaries per dataset and signature type;
- scatter plots of expression vs activity: the SQLite `validation_scatter.db` (scripts/14: donor,
  cell-type and bulk scatter, one zlib-compressed JSON blob of points per target) read by a Python
  reader, and the cell-type-only scatter JSON files of scripts/17 (and the resampled scatter of the
  same shape, which no script writes at HEAD: optional);
- `validation/{atlas}_validation.json` (cytoatlas-api/scripts/generate_validation_data.py): six
  record sections (sample, cell type, pseudobulk vs single cell, single cell, gene coverage, CV
  stability) and the biological associations, each record's nested stats flattened and its point
  arrays exploded into a table of their own;
- `validation_corr_boxplot.json` (scripts/17): per-entity correlation lists per category.
Signature types arrive as CytoSig/SecAct/LinCytoSig or lowercase and are normalised.
"""

import json
from dataclasses import dataclass

from cytoatlas.domains.atlas.columns import V
from cytoatlas.domains.spec import (
    ATLAS_SIGNATURE_TYPES, NON_NEGATIVE, Column, TableSpec, count, integer, key_text, pvalue, real, signature_type,
    text,
)

VALIDATION = V + "validation/"
P17C_ATLASES = ("cima", "inflammation_main", "inflammation_val", "inflammation_ext", "scatlas_normal",
                "scatlas_cancer")


def _target() -> Column:
    return Column("signature", "VARCHAR", "Signature target.", nullable=False, source_names=("target",))


def _bool(name: str, description: str = "", **kw) -> Column:
    return Column(name, "BOOLEAN", description, **kw)


def _significant() -> Column:
    return _bool("significant", "pval < 0.05; false when pval is missing (the real API counts p = 0 as not "
                 "significant: fixed).", nullable=False, expression="coalesce(pval < 0.05, false)")


# --- A. bulk RNA-seq (GTEx, TCGA) ------------------------------------------------------------

BULK = V + "bulk_rnaseq_validation.json"
# Every source below is parsed once per file by json_transform (objects keyed by name as MAPs) and
# its lists unnested in the projection: a lateral json_each over a big document would copy the
# document into every row it produces.
_DATASETS = "FROM (SELECT unnest(map_entries(CAST(f.json AS MAP(VARCHAR, JSON)))) AS d FROM {json} AS f)"
_DONOR_LEVEL = ("MAP(VARCHAR, STRUCT(target VARCHAR, gene VARCHAR, level VARCHAR, rho JSON, pval JSON, n JSON, "
                "mean_expr JSON, mean_activity JSON, significant JSON, lincytosig_celltype VARCHAR, matched_rho JSON, "
                "matched_pval JSON, matched_n JSON, matched_atlas_celltypes VARCHAR)[])")
_SUMMARY = ("MAP(VARCHAR, STRUCT(n_targets JSON, n_significant JSON, median_rho JSON, mean_rho JSON, "
            "pct_positive JSON))")

BULK_TABLES = (
    TableSpec(
        name="bulk_validation",
        description="GTEx/TCGA donor-level correlation of activity with the target gene's expression: the "
                    "'all' rows of the cross-sample correlations, per dataset, level and signature type.",
        source=BULK, format="json",
        source_sql=f"""
            SELECT dataset, signature_type, r['target'] AS target, r['gene'] AS gene, r['level'] AS level,
                   r['rho'] AS rho, r['pval'] AS pval, r['n'] AS n, r['mean_expr'] AS mean_expr,
                   r['mean_activity'] AS mean_activity, r['significant'] AS significant,
                   r['lincytosig_celltype'] AS lincytosig_celltype, r['matched_rho'] AS matched_rho,
                   r['matched_pval'] AS matched_pval, r['matched_n'] AS matched_n,
                   r['matched_atlas_celltypes'] AS matched_atlas_celltypes
            FROM (SELECT dataset, s.key AS signature_type, unnest(s.value) AS r
                  FROM (SELECT d.key AS dataset,
                               unnest(map_entries(json_transform(d.value, '{{"donor_level": "{_DONOR_LEVEL}"}}')['donor_level'])) AS s
                        {_DATASETS}))""",
        columns=(
            key_text("dataset", "gtex or tcga."),
            key_text("level", "gtex: donor_only, by_tissue; tcga: donor_only, by_cancer, primary_only, "
                     "primary_by_cancer."),
            _target(), signature_type(),
            text("gene", "Gene the target resolved to."),
            real("rho", "Spearman rho (4 dp)."),
            pvalue("pval", "Spearman p (6 dp)."),
            count("n", "Samples."),
            real("mean_expr"), real("mean_activity"),
            _bool("significant", "pval < 0.05 as the writer stores it (false when missing)."),
            text("lincytosig_celltype", "LinCytoSig: the cell type of the signature."),
            real("matched_rho", "LinCytoSig: rho within the matched cell types."),
            pvalue("matched_pval", "LinCytoSig: p within the matched cell types."),
            count("matched_n"),
            text("matched_atlas_celltypes", "Comma-joined matched cell types."),
        ),
        key=("signature_type", "dataset", "level", "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="validation_bulk_datasets",
        description="The bulk RNA-seq datasets of the validation pages and their sample counts.",
        source=BULK, format="json",
        source_sql=f"SELECT d.key AS dataset, json_extract(d.value, '$.n_samples') AS n_samples {_DATASETS}",
        columns=(key_text("dataset", "gtex or tcga."), count("n_samples", "Samples (0: the writer found none).")),
        key=("dataset",),
    ),
    TableSpec(
        name="validation_bulk_groups",
        description="Tissue (GTEx) and cancer (TCGA) types of the bulk datasets, sorted as the source lists them.",
        source=BULK, format="json",
        source_sql=f"""
            WITH g AS (SELECT d.key AS dataset,
                              json_transform(d.value, '{{"tissue_types": ["VARCHAR"], "cancer_types": ["VARCHAR"]}}') AS g
                       {_DATASETS})
            SELECT dataset, 'tissue_types' AS group_kind, generate_subscripts(g['tissue_types'], 1) - 1 AS group_index,
                   unnest(g['tissue_types']) AS group_name FROM g
            UNION ALL
            SELECT dataset, 'cancer_types', generate_subscripts(g['cancer_types'], 1) - 1, unnest(g['cancer_types'])
            FROM g""",
        columns=(
            key_text("dataset"),
            key_text("group_kind", "tissue_types or cancer_types."),
            integer("group_index", "Position in the list (0-based).", nullable=False),
            key_text("group_name"),
        ),
        key=("dataset", "group_kind", "group_index"),
    ),
    TableSpec(
        name="validation_bulk_summary",
        description="Per bulk dataset and signature type: targets, significant targets and rho figures over "
                    "the 'all' rows of every level (so a target counts once per level, as in the source).",
        source=BULK, format="json",
        source_sql=f"""
            SELECT dataset, s.key AS signature_type, s.value['n_targets'] AS n_targets,
                   s.value['n_significant'] AS n_significant, s.value['median_rho'] AS median_rho,
                   s.value['mean_rho'] AS mean_rho, s.value['pct_positive'] AS pct_positive
            FROM (SELECT d.key AS dataset,
                         unnest(map_entries(json_transform(d.value, '{{"summary": "{_SUMMARY}"}}')['summary'])) AS s
                  {_DATASETS})""",
        columns=(
            key_text("dataset"), signature_type(),
            count("n_targets"), count("n_significant"),
            real("median_rho"), real("mean_rho"), real("pct_positive", "Percent of rhos above 0."),
        ),
        key=("signature_type", "dataset"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)


# --- B. scatter plots ------------------------------------------------------------------------

SCATTER_DB = V + "validation_scatter.db"
READER = "builders.readers.validation_scatter:"
_SCATTER_KEY = ("signature_type", "source", "atlas", "level")


def _scatter_scope() -> tuple[Column, ...]:
    return (signature_type(),
            key_text("source", "donor, celltype or bulk_rnaseq."),
            key_text("atlas", "cima, inflammation_main/_val/_ext, scatlas_normal/_cancer, gtex, tcga (bulk: the "
                     "dataset)."),
            key_text("level", "'' for donor scatter and the bulk donor fallback; the grouping otherwise "
                     "(donor_l1, donor_organ, by_tissue, ...)."))


def _target_stats() -> tuple[Column, ...]:
    return (text("gene", "Gene the target resolved to."),
            real("rho", "Spearman rho of expression vs activity (4 dp)."),
            pvalue("pval", "Spearman p (3 significant digits, as `%.2e` keeps them)."),
            count("n", "Points."),
            real("rho_ci_lo", "95% CI of rho, low end (Fisher z; bootstrap percentiles for resampled)."),
            real("rho_ci_hi", "95% CI of rho, high end."))


def _points(group_description: str) -> tuple[Column, ...]:
    return (integer("point_index", "Position in the target's point list (0-based).", nullable=False),
            real("expression_z", "Expression z-scored across the target's points (2 dp).", nullable=False),
            real("activity", "Activity (2 dp).", nullable=False),
            integer("group_index", "Index into the group list; -1 = a label not in it; NULL without groups."),
            text("group_name", group_description))


def _keyed_scatter_sql() -> str:
    """JSON files {target: {gene, rho, pval, n, rho_ci, groups, points: [[x, y, g], ...]}} named
    {atlas}_{level}_{sigtype}.json -> one row per point."""
    atlases = "|".join(P17C_ATLASES)
    name = f"NULLIF(regexp_extract({{path}}, '/({atlases})_([a-z0-9_]+)_(cytosig|lincytosig|secact)\\.json$', ?), '')"
    targets = ('"MAP(VARCHAR, STRUCT(gene VARCHAR, rho JSON, pval JSON, n JSON, rho_ci JSON[], groups VARCHAR[], '
               'points DOUBLE[][]))"')
    return f"""
        SELECT {name.replace('?', '1')} AS atlas, {name.replace('?', '2')} AS level,
               {name.replace('?', '3')} AS signature_type, * EXCLUDE (pt), pt[1] AS expression_z, pt[2] AS activity,
               pt[3] AS group_index
        FROM (SELECT target, gene, rho, pval, n, rho_ci_lo, rho_ci_hi, generate_subscripts(points, 1) - 1 AS point_index,
                     unnest(points) AS pt, unnest(names) AS group_name
              FROM (SELECT t.key AS target, t.value['gene'] AS gene, t.value['rho'] AS rho, t.value['pval'] AS pval,
                           t.value['n'] AS n, t.value['rho_ci'][1] AS rho_ci_lo, t.value['rho_ci'][2] AS rho_ci_hi,
                           t.value['points'] AS points,
                           list_transform(t.value['points'], lambda p: CASE WHEN p[3] >= 0
                                          THEN t.value['groups'][CAST(p[3] AS INTEGER) + 1] END) AS names
                    FROM (SELECT unnest(map_entries(json_transform(f.json, '{targets}'))) AS t FROM {{json}} AS f)))"""


def _keyed_scatter(name: str, description: str, source: str, **kw) -> TableSpec:
    return TableSpec(
        name=name, description=description, source=source, format="json", source_sql=_keyed_scatter_sql(),
        columns=(
            signature_type(),
            key_text("atlas", "cima, inflammation_main/_val/_ext, scatlas_normal/_cancer (from the file name)."),
            key_text("level", "The grouping (from the file name)."),
            _target(), *_target_stats(), _significant(),
            *_points("Cell type of the point (the group list's label)."),
        ),
        key=("signature_type", "atlas", "level", "signature", "point_index"),
        signature_types=ATLAS_SIGNATURE_TYPES, **kw)


SCATTER_TABLES = (
    TableSpec(
        name="scatter_targets",
        description="Scatter targets of the validation pages (donor, cell-type and bulk RNA-seq scatter): one "
                    "row per (signature type, source, atlas, level, target) with its correlation.",
        source=SCATTER_DB, format="reader", reader=READER + "scatter_targets",
        columns=(
            *_scatter_scope(), _target(),
            integer("target_id", "Row id in the source SQLite (joins its points).", nullable=False),
            *_target_stats(),
            integer("n_groups", "Groups (cell types, tissues, cancers) of the scatter; NULL for donor scatter."),
            _significant(),
            real("matched_rho", "LinCytoSig donor scatter: rho within the matched cell types."),
            pvalue("matched_pval", "LinCytoSig donor scatter: p within the matched cell types."),
            count("matched_n"),
            text("lincytosig_celltype"),
            text("matched_atlas_celltypes"),
        ),
        key=(*_SCATTER_KEY, "signature"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="validation_scatter_groups",
        description="The group labels (cell types, tissues, cancers) of each scatter file, in the order its "
                    "points' group indices refer to.",
        source=SCATTER_DB, format="reader", reader=READER + "scatter_groups",
        columns=(*_scatter_scope(), integer("group_index", nullable=False), key_text("group_name")),
        key=(*_SCATTER_KEY, "group_index"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    TableSpec(
        name="scatter_points",
        description="The points of every scatter target: z-scored expression vs activity, one row per point "
                    "(a donor, or a donor x group).",
        source=SCATTER_DB, format="reader", reader=READER + "scatter_points",
        columns=(*_scatter_scope(), _target(),
                 integer("target_id", "Row id of the target in the source SQLite.", nullable=False),
                 *_points("Label of group_index in the file's group list.")),
        key=(*_SCATTER_KEY, "signature", "point_index"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    _keyed_scatter(
        "celltype_only_scatter",
        "Cell-type-only scatter (scripts/17): one point per cell type pooled over donors, one row per point.",
        VALIDATION + "celltype_scatter/*.json",
        # scripts/14 writes its donor x cell type scatter (levels donor_*, by_*) into the same directory;
        # those points are in scatter_points.
        source_exclude=("*_donor_*", "*_by_*")),
    _keyed_scatter(
        "validation_resampled_scatter",
        "Resampled (bootstrap) cell-type scatter: cell type x bootstrap points, rho CI from the bootstrap "
        "rhos. No script writes these files at HEAD (scripts/14 has the function but no call): empty then.",
        VALIDATION + "resampled_scatter/*.json", optional=True),
    TableSpec(
        name="validation_celltype_levels",
        description="Cell-type scatter levels per atlas and signature type, and the table holding them.",
        derived_sql="""
            SELECT atlas, level, signature_type, 'scatter_targets' AS source_table, count(*) AS n_targets
            FROM scatter_targets WHERE source = 'celltype' GROUP BY ALL
            UNION ALL
            SELECT atlas, level, signature_type, 'celltype_only_scatter', count(DISTINCT signature)
            FROM celltype_only_scatter GROUP BY ALL""",
        depends_on=("scatter_targets", "celltype_only_scatter"),
        columns=(
            key_text("atlas"), key_text("level"), signature_type(),
            key_text("source_table", "scatter_targets (scripts/14 levels) or celltype_only_scatter (scripts/17)."),
            count("n_targets"),
        ),
        key=("atlas", "level", "signature_type"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)


# --- C. {atlas}_validation.json --------------------------------------------------------------

VALIDATION_FILES = VALIDATION + "*_validation.json"
_KEY = ("signature_type", "atlas", "signature")
TEXT, VALUE, LABEL = "VARCHAR", "JSON", "LABEL"  # LABEL: text where the writer's str() wrote 'nan' for none


@dataclass(frozen=True)
class Spread:
    """A JSON list of at most n values -> columns name_1..name_n; a longer list fails the build."""

    name: str
    n: int
    item: str = VALUE


Fields = dict  # column -> (JSON path, TEXT | VALUE | LABEL) or a Spread under its list's path


def _structure(fields: Fields) -> str:
    """json_transform's structure: text as VARCHAR, numbers and flags as JSON (the builder casts
    them, naming a bad value by record and column), lists as [type]."""
    tree: dict = {}
    for path, kind in fields.values():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = ([kind.item] if isinstance(kind, Spread) else kind if isinstance(kind, (list, dict))
                          else TEXT if kind == LABEL else kind)
    return json.dumps(tree).replace("'", "''")


def _select(var: str, fields: Fields) -> list[str]:
    out = []
    for name, (path, kind) in fields.items():
        ref = var + "".join(f"['{p}']" for p in path)
        if isinstance(kind, Spread):
            check = f"CASE WHEN len({ref}) > {kind.n} THEN error('{kind.name}: more than {kind.n} values') END"
            out += [f"coalesce({check}, {ref}[1]) AS {kind.name}_1"]
            out += [f"{ref}[{i}] AS {kind.name}_{i}" for i in range(2, kind.n + 1)]
        else:
            out.append(f"{f'NULLIF({ref}, {chr(39)}nan{chr(39)})' if kind == LABEL else ref} AS {name}")
    return out


_RECORD_KEY: Fields = {"atlas": (("atlas",), TEXT), "signature_type": (("signature_type",), TEXT),
                       "signature": (("signature",), TEXT)}


def _records(section: str, structure: str) -> str:
    """FROM clause: the records of `$.<section>` of each file, parsed once, as struct `s`."""
    return (f"FROM (SELECT unnest(json_transform(f.json, '{{\"{section}\": [{structure}]}}')['{section}']) AS s "
            f"FROM {{json}} AS f)")


def _record_sql(section: str, fields: Fields) -> str:
    """One row per record of `$.<section>` of each file."""
    fields = _RECORD_KEY | fields
    return f"SELECT {', '.join(_select('s', fields))} {_records(section, _structure(fields))}"


def _points_sql(section: str, points: str, fields: Fields) -> str:
    """One row per element of each record's `points` list, with the record's key."""
    item = {path[0]: TEXT if kind == LABEL else kind for path, kind in fields.values()}
    structure = _structure(_RECORD_KEY | {points: ((points,), [item])})
    return (f"SELECT atlas, signature_type, signature, point_index, {', '.join(_select('p', fields))} "
            f"FROM (SELECT {', '.join(_select('s', _RECORD_KEY))}, generate_subscripts(s['{points}'], 1) - 1 "
            f"AS point_index, unnest(s['{points}']) AS p {_records(section, structure)})")


def _fields(*names: str, kind: str = VALUE, under: tuple[str, ...] = (), prefix: str = "") -> Fields:
    return {prefix + n: ((*under, n), kind) for n in names}


_STATS = ("slope", "intercept", "r_squared", "pearson_r", "spearman_rho", "p_value", "n_points")


def _stats_columns(prefix: str = "", what: str = "") -> tuple[Column, ...]:
    return (real(prefix + "slope", f"Least-squares slope{what}."), real(prefix + "intercept"),
            real(prefix + "r_squared"), real(prefix + "pearson_r"), real(prefix + "spearman_rho"),
            pvalue(prefix + "p_value", "Regression p."), count(prefix + "n_points"))


def _record_key() -> tuple[Column, ...]:
    return (key_text("atlas", "cima, inflammation or scatlas."), signature_type(),
            key_text("signature", "Signature target."))


def _section(name: str, description: str, section: str, columns: tuple[Column, ...], fields: Fields) -> TableSpec:
    return TableSpec(name=name, description=description, source=VALIDATION_FILES, format="json",
                     source_sql=_record_sql(section, fields), columns=(*_record_key(), *columns), key=_KEY,
                     signature_types=ATLAS_SIGNATURE_TYPES)


def _point_table(name: str, description: str, section: str, points: str, columns: tuple[Column, ...],
                 fields: Fields) -> TableSpec:
    return TableSpec(name=name, description=description, source=VALIDATION_FILES, format="json",
                     source_sql=_points_sql(section, points, fields),
                     columns=(*_record_key(), integer("point_index", "Position in the record's list (0-based).",
                                                      nullable=False), *columns),
                     key=(*_KEY, "point_index"), signature_types=ATLAS_SIGNATURE_TYPES)


_ASSOCIATION: Fields = (_fields("signature", "expected_cell_type", "expected_direction", kind=TEXT)
                        | _fields("observed_rank", "observed_activity", "observed_percentile")
                        | {"top_5_cell_types": (("top_5_cell_types",), Spread("top_cell_type", 5, TEXT))}
                        | _fields("is_validated") | _fields("validation_criteria", kind=TEXT))

RECORD_TABLES = (
    TableSpec(
        name="validation_atlases",
        description="The atlases with validation data (one file each) and the signature types each covers.",
        source=VALIDATION_FILES, format="json",
        source_sql="""
            SELECT t['atlas'] AS atlas, unnest(t['signature_types']) AS signature_type,
                   generate_subscripts(t['signature_types'], 1) - 1 AS type_index
            FROM (SELECT json_transform(f.json, '{"atlas": "VARCHAR", "signature_types": ["VARCHAR"]}') AS t
                  FROM {json} AS f)""",
        columns=(key_text("atlas"), signature_type(), integer("type_index", nullable=False)),
        key=("atlas", "signature_type"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    _section("validation_sample_level",
             "Type 1, sample level: expression vs activity across samples, per signature (stats from "
             "the atlas's age correlations where the writer had them).",
             "sample_validations",
             (count("n_samples"), *_stats_columns(), text("stats_source", "'real' or NULL (the writer's fallback)."),
              text("interpretation")),
             _fields("n_samples") | _fields(*_STATS, under=("stats",))
             | _fields("stats_source", "interpretation", kind=TEXT)),
    _point_table("validation_sample_points", "Type 1 points: one per sample.", "sample_validations", "points",
                 (text("sample_id", nullable=False), real("expression"), real("activity"), text("label")),
                 {"sample_id": (("id",), TEXT), "expression": (("x",), VALUE), "activity": (("y",), VALUE),
                  "label": (("label",), TEXT)}),
    _section("validation_celltype_level",
             "Type 2, cell-type level: expression vs mean activity across cell types, per signature.",
             "celltype_validations",
             (count("n_cell_types"), *_stats_columns(),
              *(text(f"observed_top_cell_type_{i}", "Cell types by activity, highest first.") for i in range(1, 6)),
              text("expression_source", "real or estimated."), text("interpretation")),
             _fields("n_cell_types") | _fields(*_STATS, under=("stats",))
             | {"observed_top_cell_types": (("observed_top_cell_types",), Spread("observed_top_cell_type", 5, TEXT))}
             | _fields("expression_source", "interpretation", kind=TEXT)),
    _point_table("validation_celltype_points", "Type 2 points: one per cell type (scAtlas: per organ x cell type).",
                 "celltype_validations", "points",
                 (text("cell_type", nullable=False), real("expression"), real("activity"), count("n_cells"),
                  count("n_samples")),
                 _fields("cell_type", kind=TEXT) | _fields("expression", "activity", "n_cells", "n_samples")),
    _section("validation_pb_vs_sc",
             "Type 3: pseudobulk expression vs single-cell mean and median activity across cell types.",
             "pseudobulk_vs_sc",
             (count("n_cell_types"), *_stats_columns("mean_", " vs the single-cell mean"),
              *_stats_columns("median_", " vs the single-cell median"),
              text("expression_source"), text("interpretation")),
             _fields("n_cell_types") | _fields(*_STATS, under=("stats_vs_mean",), prefix="mean_")
             | _fields(*_STATS, under=("stats_vs_median",), prefix="median_")
             | _fields("expression_source", "interpretation", kind=TEXT)),
    _point_table("validation_pb_vs_sc_points", "Type 3 points: one per cell type (at most 15).",
                 "pseudobulk_vs_sc", "points",
                 (text("cell_type", nullable=False), real("pseudobulk_expression"), real("sc_activity_mean"),
                  real("sc_activity_median"), real("sc_activity_std"), count("n_cells")),
                 _fields("cell_type", kind=TEXT) | _fields("pseudobulk_expression", "sc_activity_mean",
                                                           "sc_activity_median", "sc_activity_std", "n_cells")),
    _section("validation_singlecell",
             "Type 4: activity of cells expressing the target gene vs the others, per signature.",
             "singlecell_validations",
             (real("expression_threshold"), count("n_total_cells"), count("n_expressing"),
              count("n_non_expressing"), pvalue("expressing_fraction", "n_expressing / n_total_cells."),
              real("mean_activity_expressing"), real("mean_activity_non_expressing"),
              real("activity_fold_change", "mean_activity_expressing - mean_activity_non_expressing."),
              pvalue("activity_p_value", "One-sided Mann-Whitney U (expressing greater)."),
              text("data_source", "real or synthetic."), text("interpretation")),
             _fields("expression_threshold", "n_total_cells", "n_expressing", "n_non_expressing", "expressing_fraction",
                     "mean_activity_expressing", "mean_activity_non_expressing", "activity_fold_change",
                     "activity_p_value") | _fields("data_source", "interpretation", kind=TEXT)),
    _point_table("validation_singlecell_points", "Type 4 points: the sampled cells (at most 500 per record).",
                 "singlecell_validations", "sampled_points",
                 (real("expression"), real("activity"), _bool("is_expressing", nullable=False),
                  text("donor"), text("cell_type"), text("organ"),
                  integer("expressing", "1 when is_expressing, else 0.", expression="CAST(is_expressing AS INTEGER)"),
                  real("activity_expressing", "activity of an expressing cell, else NULL.",
                       expression="CASE WHEN is_expressing THEN activity END"),
                  real("activity_non_expressing", "activity of a non-expressing cell, else NULL.",
                       expression="CASE WHEN NOT is_expressing THEN activity END")),
                 _fields("expression", "activity", "is_expressing") | _fields("donor", "cell_type", "organ", kind=LABEL)),
    TableSpec(
        name="validation_singlecell_spearman",
        description="Spearman rho of expression vs activity over each Type 4 record's sampled cells (as the "
                    "single-cell page computes it per request): rank correlation with average ranks for "
                    "ties, NULL under 10 points; one row per Type 4 record.",
        derived_sql="""
            WITH ranked AS (
                SELECT signature_type, atlas, signature,
                       rank() OVER (PARTITION BY signature_type, atlas, signature ORDER BY expression)
                         + (count(*) OVER (PARTITION BY signature_type, atlas, signature, expression) - 1) / 2.0 AS rx,
                       rank() OVER (PARTITION BY signature_type, atlas, signature ORDER BY activity)
                         + (count(*) OVER (PARTITION BY signature_type, atlas, signature, activity) - 1) / 2.0 AS ry
                FROM validation_singlecell_points WHERE expression IS NOT NULL AND activity IS NOT NULL)
            SELECT signature_type, atlas, signature, count(ranked.rx) AS n_sampled,
                   CASE WHEN count(ranked.rx) >= 10 THEN round(corr(rx, ry), 4) END AS sampled_rho
            FROM validation_singlecell LEFT JOIN ranked USING (signature_type, atlas, signature)
            GROUP BY ALL""",
        depends_on=("validation_singlecell", "validation_singlecell_points"),
        columns=(*_record_key(), count("n_sampled", "Sampled cells with both values."),
                 real("sampled_rho", "Spearman rho (4 dp).")),
        key=_KEY,
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
    _section("validation_gene_coverage", "Signature genes detected in the atlas, per signature.", "gene_coverage",
             (count("n_signature_genes"), count("n_detected"), count("n_missing"),
              real("coverage_pct", "Percent of the signature genes detected (0-100)."),
              real("mean_expression_detected"), real("median_expression_detected"),
              text("coverage_quality", "excellent, good, moderate or poor."), text("interpretation")),
             _fields("n_signature_genes", "n_detected", "n_missing", "coverage_pct", "mean_expression_detected",
                     "median_expression_detected") | _fields("coverage_quality", "interpretation", kind=TEXT)),
    _section("validation_cv_stability", "Cross-validation stability of each signature's activity.", "cv_stability",
             (count("n_folds"), real("mean_activity"), real("std_activity", check=NON_NEGATIVE),
              real("cv_coefficient"),
              *(real(f"fold_activity_{i}", "Activity in one fold.") for i in range(1, 6)),
              pvalue("stability_score", "0-1."), text("stability_grade", "excellent, good, moderate or poor.")),
             _fields("n_folds", "mean_activity", "std_activity", "cv_coefficient", "stability_score")
             | {"fold_activities": (("fold_activities",), Spread("fold_activity", 5))}
             | _fields("stability_grade", kind=TEXT)),
    TableSpec(
        name="validation_biological_associations",
        description="Type 5: known cytokine - cell type associations and whether the atlas ranks the expected "
                    "cell type in the top 3. The source's results carry no signature type: each signature "
                    "type's run appends every association once, in order, so the n-th occurrence of an "
                    "association belongs to the n-th of the file's signature_types.",
        source=VALIDATION_FILES, format="json",
        source_sql=f"""
            SELECT atlas, types[occurrence] AS signature_type, * EXCLUDE (atlas, types, occurrence)
            FROM (SELECT *, row_number() OVER (PARTITION BY atlas, signature, expected_cell_type
                                               ORDER BY result_index) AS occurrence
                  FROM (SELECT atlas, types, result_index, {', '.join(_select('s', _ASSOCIATION))}
                        FROM (SELECT b['atlas'] AS atlas, b['signature_types'] AS types,
                                     generate_subscripts(b['results'], 1) - 1 AS result_index, unnest(b['results']) AS s
                              FROM (SELECT json_transform(f.json, '{{"biological_associations": {{"atlas": "VARCHAR",
                                           "signature_types": ["VARCHAR"], "results": [{_structure(_ASSOCIATION)}]}}}}')
                                           ['biological_associations'] AS b
                                    FROM {{json}} AS f))))""",
        columns=(
            key_text("atlas"), signature_type(), key_text("signature"),
            key_text("expected_cell_type"),
            integer("result_index", "Position in the file's results (the real response order).", nullable=False),
            text("expected_direction"),
            integer("observed_rank", "Rank of the expected cell type by activity (1 = highest)."),
            real("observed_activity", "Activity of the top cell type."),
            real("observed_percentile", "100 - 5 x (rank - 1)."),
            *(text(f"top_cell_type_{i}", "Cell types by activity, highest first.") for i in range(1, 6)),
            _bool("is_validated", "Rank <= 3."),
            text("validation_criteria"),
        ),
        key=("signature_type", "atlas", "signature", "expected_cell_type"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)


# --- D. summary tab: validation_corr_boxplot.json ----------------------------------------------

BOXPLOT = V + "validation_corr_boxplot.json"

BOXPLOT_TABLES = (
    TableSpec(
        name="validation_corr_boxplot_categories",
        description="Categories of the validation summary boxplot (dataset x entity kind), in display order.",
        source=BOXPLOT, format="json",
        source_sql="""
            SELECT generate_subscripts(c, 1) - 1 AS category_index, unnest(c)['key'] AS category,
                   unnest(c)['label'] AS label
            FROM (SELECT json_transform(f.json, '{"categories": [{"key": "VARCHAR", "label": "VARCHAR"}]}')['categories']
                         AS c FROM {json} AS f)""",
        columns=(integer("category_index", nullable=False), key_text("category"), key_text("label")),
        key=("category",),
    ),
    TableSpec(
        name="validation_corr_boxplot",
        description="Per signature and category, the Spearman rhos of activity vs expression per entity "
                    "(tissue, cancer, donor or cell type; at most 50, subsampled and sorted beyond that).",
        source=BOXPLOT, format="json",
        source_sql="""
            SELECT signature_type, target, category, generate_subscripts(rhos, 1) - 1 AS rho_index, unnest(rhos) AS rho
            FROM (SELECT signature_type, target, c.key AS category, c.value AS rhos
                  FROM (SELECT signature_type, t.key AS target, unnest(map_entries(t.value)) AS c
                        FROM (SELECT s.key AS signature_type,
                                     unnest(map_entries(json_transform(s.value,
                                         '{"rhos": "MAP(VARCHAR, MAP(VARCHAR, JSON[]))"}')['rhos'])) AS t
                              FROM (SELECT unnest(map_entries(CAST(f.json AS MAP(VARCHAR, JSON)))) AS s
                                    FROM {json} AS f)
                              WHERE s.key <> 'categories')))""",
        columns=(signature_type(), _target(), key_text("category"),
                 integer("rho_index", "Position in the category's list.", nullable=False),
                 real("rho", "Spearman rho (4 dp).")),
        key=("signature_type", "signature", "category", "rho_index"),
        signature_types=ATLAS_SIGNATURE_TYPES,
    ),
)

TABLES = (*BULK_TABLES, *SCATTER_TABLES, *RECORD_TABLES, *BOXPLOT_TABLES)
