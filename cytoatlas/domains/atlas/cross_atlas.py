"""The cross-atlas page: visualization/data/cross_atlas.json, one table per grain of the file.

The file is a dict of sections that different scripts write and overwrite (P06 builds it from
scratch; the archive scripts replace whole keys: atlas_comparison, signature_reliability,
celltype_mapping, correlation, conserved), so every section is optional: each table reads its
section(s) with its own source_sql (DuckDB's JSON functions), and a section that is absent gives
an empty table, not a failed build. Several sections exist in two shapes (P07/P06 and the archive
scripts); both are read. Bare NaN tokens (json.dump of NaN) load as NULL.
"""

from cytoatlas.domains.atlas.columns import V
from cytoatlas.domains.sql import json_entries, json_items
from cytoatlas.domains.spec import (
    NON_NEGATIVE, PROBABILITY, Column, TableSpec, count, integer, key_text, pvalue, real, signature_type, text,
)

SOURCE = V + "cross_atlas.json"
ATLASES = ("CIMA", "Inflammation", "scAtlas")
# Atlas pair keys -> (atlas on x, atlas on y). P07 spells the last pair `inflam_vs_scatlas`.
PAIRS = {"cima_vs_inflammation": ("CIMA", "Inflammation"), "cima_vs_scatlas": ("CIMA", "scAtlas"),
         "inflammation_vs_scatlas": ("Inflammation", "scAtlas"), "inflam_vs_scatlas": ("Inflammation", "scAtlas")}
# atlas_comparison block keys -> (view, level); P07's `comparison` section is view integrated, level common.
VIEWS = {"celltype_aggregated_coarse": ("pseudobulk", "coarse"), "celltype_aggregated_fine": ("pseudobulk", "fine"),
         "singlecell_mean_coarse": ("singlecell", "coarse"), "singlecell_mean_fine": ("singlecell", "fine"),
         "integrated": ("integrated", "common"), "agnostic": ("agnostic", "atlas_mean")}
SUMMARY_ATLASES = {"cima": "CIMA", "inflammation": "Inflammation", "scatlas_normal": "scAtlas_Normal",
                   "scatlas_cancer": "scAtlas_Cancer"}


def _case(column: str, mapping: dict, index: int | None = None) -> str:
    """SQL mapping the key in `column` through `mapping` (NULL for an unknown key: the build then
    names the record whose key column is missing)."""
    whens = " ".join(f"WHEN '{k}' THEN '{v if index is None else v[index]}'" for k, v in mapping.items())
    return f"CASE {column} {whens} END"


_F = "f AS (SELECT json FROM {json})"
_PAIR = f"{_case('pair', PAIRS, 0)} AS atlas1, {_case('pair', PAIRS, 1)} AS atlas2"
_VIEW = f"{_case('block', VIEWS, 0)} AS view, {_case('block', VIEWS, 1)} AS level"

# atlas_comparison.{cytosig|secact}.{pair}.{block} = {"data": [points], "correlation": ..., ...}
# (GAC, PCS) and P07's comparison.{pair} = {"data": [points], "correlation": ..., "n": ...}.
_BLOCKS = f"""{_F},
    t AS (SELECT {json_entries('st', 'v', "json->'atlas_comparison'")} FROM f),
    p AS (SELECT st, {json_entries('pair', 'v', 'v')} FROM t),
    c AS (SELECT {json_entries('pair', 'v', "json->'comparison'")} FROM f),
    b AS (SELECT st, pair, {json_entries('block', 'v', 'v')} FROM p
          UNION ALL
          SELECT 'CytoSig', pair, 'integrated', v FROM c)"""

POINTS_SQL = f"""
    WITH {_BLOCKS},
    d AS (SELECT st, pair, block, {json_items('r', 'v', '$.data')} FROM b)
    SELECT st AS signature_type, {_VIEW}, {_PAIR},
           r->>'cell_type' AS cell_type, r->>'signature' AS signature, r->>'x' AS x, r->>'y' AS y,
           r->>'n_samples_x' AS n_samples_x, r->>'n_samples_y' AS n_samples_y,
           r->>'n_cells_x' AS n_cells_x, r->>'n_cells_y' AS n_cells_y
    FROM d
"""

PAIR_STATS_SQL = f"""
    WITH {_BLOCKS},
    r AS (SELECT {json_entries('st', 'v', "json->'signature_reliability'")} FROM f),
    s AS (SELECT * FROM b
          UNION ALL
          SELECT st, pair, 'agnostic', v
          FROM (SELECT st, {json_entries('pair', 'v', "v->'agnostic_pair_correlations'")} FROM r))
    SELECT st AS signature_type, {_VIEW}, {_PAIR},
           coalesce(v->>'correlation', v->>'overall_correlation') AS correlation,
           coalesce(v->>'pvalue', v->>'overall_pvalue') AS pvalue,
           v->>'n' AS n, v->>'n_celltypes' AS n_celltypes, v->>'n_signatures' AS n_signatures,
           v->>'n_cells_atlas1' AS n_cells_atlas1, v->>'n_cells_atlas2' AS n_cells_atlas2, v->>'note' AS note
    FROM s
"""

SUMMARY_SQL = f"""
    WITH {_F}, a AS (SELECT {json_entries('k', 'v', "json->'summary'")} FROM f)
    SELECT coalesce({_case('k', SUMMARY_ATLASES)}, k) AS atlas, v->>'cells' AS cells, v->>'samples' AS samples,
           v->>'cell_types' AS cell_types, v->>'organs' AS organs
    FROM a
"""

# conserved.signatures: RCC's records carry signature_type; P07's (CytoSig only) do not.
CONSERVED_SQL = f"""
    WITH {_F}, c AS (SELECT {json_items('r', 'json', '$.conserved.signatures')} FROM f)
    SELECT r->>'signature' AS signature, r->>'signature_type' AS signature_type, r->>'cima' AS cima,
           r->>'inflammation' AS inflammation, r->>'scatlas' AS scatlas, r->>'n_atlases' AS n_atlases,
           r->>'cima_mean' AS cima_mean, r->>'inflammation_mean' AS inflammation_mean,
           r->>'scatlas_mean' AS scatlas_mean
    FROM c
"""
_MEANS = "list_filter([cima_mean, inflammation_mean, scatlas_mean], lambda m: m IS NOT NULL)"

_RELIABILITY_PAIRS = {"cima_inflammation": "cima_vs_inflammation", "cima_scatlas": "cima_vs_scatlas",
                      "inflammation_scatlas": "inflammation_vs_scatlas"}
RELIABILITY_SQL = f"""
    WITH {_F},
    t AS (SELECT {json_entries('st', 'v', "json->'signature_reliability'")} FROM f),
    s AS (SELECT st, {json_items('r', 'v', '$.signatures')} FROM t)
    SELECT st AS signature_type, r->>'signature' AS signature, r->>'category' AS category,
           r->>'mean_correlation' AS mean_correlation, r->>'n_pairs_with_data' AS n_pairs_with_data,
           r->>'n_reliable_pairs' AS n_reliable_pairs,
           {", ".join(f"r->'correlations'->'{key}'->>'{stat}' AS {stat}_{name}"
                      for name, key in _RELIABILITY_PAIRS.items() for stat in ("r", "p", "n"))},
           r->'atlas_means'->>'cima' AS cima_mean, r->'atlas_means'->>'inflammation' AS inflammation_mean,
           r->'atlas_means'->>'scatlas' AS scatlas_mean, r->>'mean_across_atlases' AS mean_across_atlases,
           r->>'std_across_atlases' AS std_across_atlases
    FROM s
"""

META_SQL = f"""
    WITH {_F},
    a AS (SELECT {json_entries('analysis', 'v', "json->'meta_analysis'")} FROM f),
    m AS (SELECT analysis, {json_items('r', 'v', '$')} FROM a)
    SELECT analysis, r->>'signature' AS signature, r->>'sig_type' AS sig_type, r->>'atlas' AS atlas,
           r->>'effect' AS effect, r->>'se' AS se, r->>'pvalue' AS pvalue, r->>'n' AS n, r->>'I2' AS I2,
           r->>'pooled_effect' AS pooled_effect, r->>'pooled_se' AS pooled_se, r->>'ci_low' AS ci_low,
           r->>'ci_high' AS ci_high, r->>'n_atlases' AS n_atlases
    FROM m
"""

# celltype_mapping.{coarse,fine}_mapping[] = {"lineage"|"fine_type": ..., "cima": {"types": [{"name",
# "cells"}], "total_cells"}, "inflammation": {...}, "scatlas": {...}} (GCM). P06's {nodes, links}
# shape has neither list: no rows.
CELLTYPE_MAPPING_SQL = f"""
    WITH {_F},
    m AS (SELECT 'coarse' AS level, {json_items('v', 'json', '$.celltype_mapping.coarse_mapping')} FROM f
          UNION ALL
          SELECT 'fine', {json_items('v', 'json', '$.celltype_mapping.fine_mapping')} FROM f),
    a AS (SELECT level, coalesce(v->>'lineage', v->>'fine_type') AS harmonized_type,
                 {json_entries('k', 'types', "json_object('CIMA', v->'cima'->'types', 'Inflammation', "
                                         "v->'inflammation'->'types', 'scAtlas', v->'scatlas'->'types')")}
          FROM m),
    t AS (SELECT level, harmonized_type, k AS atlas, {json_items('r', 'types', '$')} FROM a)
    SELECT level, harmonized_type, atlas, r->>'name' AS name, r->>'cells' AS cells FROM t
"""

PATHWAYS_SQL = f"""
    WITH {_F},
    d AS (SELECT {json_entries('database', 'v', "json->'pathways'")} FROM f),
    p AS (SELECT database, {json_items('r', 'v', '$')} FROM d)
    SELECT database, r->>'pathway' AS pathway, r->>'pathway_id' AS pathway_id, r->>'n_genes' AS n_genes,
           r->>'n_pathway_total' AS n_pathway_total, r->>'pvalue' AS pvalue, r->>'odds_ratio' AS odds_ratio,
           r->>'genes' AS genes, r->>'fdr' AS fdr, r->>'neg_log_fdr' AS neg_log_fdr
    FROM p
"""

# correlation.{cytosig|secact} = {"signatures": [...], "matrix": [[...]], "modules": [...]} (GSC); P06
# (and GSC's CytoSig copy) put one CytoSig block at the top of `correlation`: read only when no
# typed block is there.
_CORRELATION_BLOCKS = f"""{_F},
    typed AS (SELECT * FROM (SELECT {json_entries('st', 'v', "json->'correlation'")} FROM f)
              WHERE st IN ('cytosig', 'secact')),
    blocks AS (SELECT * FROM typed
               UNION ALL
               SELECT 'CytoSig', json->'correlation' FROM f
               WHERE json_type(json, '$.correlation.signatures') = 'ARRAY'
                 AND NOT EXISTS (SELECT 1 FROM typed WHERE st = 'cytosig'))"""

SIGNATURE_CORRELATIONS_SQL = f"""
    WITH {_CORRELATION_BLOCKS},
    names AS (SELECT st, unnest(range(CAST(json_array_length(v, '$.signatures') AS BIGINT))) AS i,
                     unnest(json_extract_string(v, '$.signatures[*]')) AS name FROM blocks),
    rows AS (SELECT st, unnest(range(CAST(json_array_length(v, '$.matrix') AS BIGINT))) AS i,
                    unnest(json_extract(v, '$.matrix[*]')) AS row FROM blocks),
    cells AS (SELECT st, i, unnest(range(CAST(json_array_length(row) AS BIGINT))) AS j,
                     unnest(json_extract_string(row, '$[*]')) AS rho FROM rows)
    SELECT cells.st AS signature_type, a.name AS signature_a, b.name AS signature_b, rho
    FROM cells JOIN names AS a ON a.st = cells.st AND a.i = cells.i
               JOIN names AS b ON b.st = cells.st AND b.i = cells.j
"""

MODULES_SQL = f"""
    WITH {_CORRELATION_BLOCKS},
    m AS (SELECT st, {json_items('m', 'v', '$.modules')} FROM blocks),
    s AS (SELECT st, m, unnest(json_extract_string(m, '$.members[*]')) AS signature FROM m)
    SELECT st AS signature_type, m->>'name' AS name, signature, m->>'color' AS color,
           m->>'n_members' AS n_members, m->>'mean_correlation' AS mean_correlation
    FROM s
"""


def _section(name: str, description: str, sql: str, columns, key, **kw) -> TableSpec:
    return TableSpec(name=name, description=description, source=SOURCE, format="json", source_sql=sql,
                     columns=tuple(columns), key=key, **kw)


def _pair_columns() -> tuple[Column, ...]:
    return (
        signature_type(),
        key_text("view", "pseudobulk (celltype_aggregated), singlecell (singlecell_mean), integrated (P07's "
                         "CytoSig comparison) or agnostic (signature means, pair statistics only)."),
        key_text("level", "coarse (8 lineages), fine (harmonised types), common (P07 names) or atlas_mean."),
        key_text("atlas1", "Atlas on the x axis: CIMA or Inflammation."),
        key_text("atlas2", "Atlas on the y axis: Inflammation or scAtlas."),
    )


TABLES = (
    _section(
        "cross_atlas",
        "Mean activity of one harmonised cell type x signature in two atlases (the pairwise scatter points).",
        POINTS_SQL,
        (*_pair_columns(),
         key_text("cell_type", "Harmonised cell type (lineage, fine type or P07 common name)."),
         key_text("signature", "Signature target."),
         real("x", "Mean activity in atlas1 (over its pseudobulk samples or sampled cells of the type)."),
         real("y", "Mean activity in atlas2."),
         count("n_samples_x", "Pseudobulk samples of atlas1 in the type (pseudobulk view)."),
         count("n_samples_y", "Pseudobulk samples of atlas2 in the type."),
         count("n_cells_x", "Sampled cells of atlas1 in the type (single-cell view)."),
         count("n_cells_y", "Sampled cells of atlas2 in the type.")),
        ("signature_type", "view", "level", "atlas1", "atlas2", "cell_type", "signature"),
    ),
    _section(
        "cross_atlas_pair_stats",
        "Spearman correlation of one atlas pair over its scatter points (or, view agnostic, over the "
        "signatures' atlas means).",
        PAIR_STATS_SQL,
        (*_pair_columns(),
         real("correlation", "Spearman rho (`correlation`, or `overall_correlation` in single-cell blocks)."),
         pvalue("pvalue", "Its p-value."),
         count("n", "Points (agnostic: signatures)."),
         count("n_celltypes", "Harmonised cell types both atlases have."),
         count("n_signatures", "Signatures both atlases have."),
         count("n_cells_atlas1", "Sampled cells of atlas1 with a harmonised type (single-cell view)."),
         count("n_cells_atlas2", "Same, atlas2."),
         text("note", "Why a block is empty (e.g. no pseudobulk data for an atlas).")),
        ("signature_type", "view", "level", "atlas1", "atlas2"),
    ),
    TableSpec(
        name="cross_atlas_comparison",
        description="One harmonised cell type x signature with the three atlases side by side: each atlas's "
                    "value (from the pairs it is in), their mean, population SD and CV.",
        derived_sql="""
            WITH v AS (SELECT signature_type, view, level, cell_type, signature, atlas1 AS atlas, x AS activity
                       FROM cross_atlas
                       UNION ALL
                       SELECT signature_type, view, level, cell_type, signature, atlas2, y FROM cross_atlas),
            w AS (SELECT signature_type, view, level, cell_type, signature,
                         avg(activity) FILTER (WHERE atlas = 'CIMA') AS cima_activity,
                         avg(activity) FILTER (WHERE atlas = 'Inflammation') AS inflammation_activity,
                         avg(activity) FILTER (WHERE atlas = 'scAtlas') AS scatlas_activity
                  FROM v GROUP BY ALL),
            l AS (SELECT *, list_filter([cima_activity, inflammation_activity, scatlas_activity],
                                        lambda a: a IS NOT NULL) AS vals FROM w)
            SELECT signature_type, view, level, cell_type, signature, cima_activity, inflammation_activity,
                   scatlas_activity, list_avg(vals) AS mean_activity,
                   CASE WHEN len(vals) > 1 THEN list_aggregate(vals, 'stddev_pop') ELSE 0 END AS std_activity,
                   CASE WHEN list_avg(vals) = 0 OR len(vals) < 2 THEN 0
                        ELSE abs(list_aggregate(vals, 'stddev_pop') / list_avg(vals)) END AS cv,
                   len(vals) AS n_atlases
            FROM l WHERE len(vals) > 0""",
        depends_on=("cross_atlas",),
        columns=(
            signature_type(),
            key_text("view"), key_text("level"), key_text("cell_type"), key_text("signature"),
            real("cima_activity"), real("inflammation_activity"), real("scatlas_activity"),
            real("mean_activity", "Mean of the atlas values present."),
            real("std_activity", "Their population SD (0 with one value).", check=NON_NEGATIVE),
            real("cv", "|std / mean| (0 when the mean is 0)."),
            integer("n_atlases", "Atlases with a value.", nullable=False),
        ),
        key=("signature_type", "view", "level", "cell_type", "signature"),
    ),
    _section(
        "cross_atlas_summary",
        "Cells, samples and cell types per atlas, as the cross-atlas page summarises them.",
        SUMMARY_SQL,
        (key_text("atlas", "CIMA, Inflammation, scAtlas_Normal or scAtlas_Cancer (the source key otherwise)."),
         count("cells"), count("samples", "Samples (0 for scAtlas in P07)."), count("cell_types"),
         count("organs", "Organs (scAtlas normal).")),
        ("atlas",),
    ),
    _section(
        "cross_atlas_conserved",
        "Per signature: whether it is active (|mean| above a threshold) in each atlas and its mean there.",
        CONSERVED_SQL,
        (signature_type(default="CytoSig"),
         key_text("signature", "Signature target."),
         Column("active_cima", "BOOLEAN", "|mean| above the threshold in CIMA.", source_names=("cima",)),
         Column("active_inflammation", "BOOLEAN", "Same, Inflammation.", source_names=("inflammation",)),
         Column("active_scatlas", "BOOLEAN", "Same, scAtlas.", source_names=("scatlas",)),
         integer("n_atlases", "Atlases where active (0-3)."),
         real("cima_mean"), real("inflammation_mean"), real("scatlas_mean"),
         real("mean_activity", "Mean of the atlas means present.", expression=f"list_avg({_MEANS})"),
         real("std_activity", "Their population SD (0 with one mean).", check=NON_NEGATIVE,
              expression=f"CASE WHEN len({_MEANS}) > 1 THEN list_aggregate({_MEANS}, 'stddev_pop') "
                         f"WHEN len({_MEANS}) = 1 THEN 0 END"),
         real("consistency_score", "1 / (1 + |std / mean|); 1 when std or mean is 0.",
              expression=f"CASE WHEN len({_MEANS}) = 0 THEN NULL "
                         f"WHEN len({_MEANS}) = 1 OR list_aggregate({_MEANS}, 'stddev_pop') = 0 "
                         f"OR list_avg({_MEANS}) = 0 THEN 1.0 "
                         f"ELSE 1.0 / (1 + abs(list_aggregate({_MEANS}, 'stddev_pop') / list_avg({_MEANS}))) END")),
        ("signature_type", "signature"),
    ),
    _section(
        "cross_atlas_reliability",
        "Per signature: Spearman correlation of its coarse pseudobulk points in each atlas pair, and its "
        "reliability category.",
        RELIABILITY_SQL,
        (signature_type(),
         key_text("signature"),
         key_text("category", "highly_conserved, moderately_conserved, atlas_specific, insufficient_data or unknown."),
         real("mean_correlation", "Mean rho over the pairs with data (0 when none, as written)."),
         integer("n_pairs_with_data"), integer("n_reliable_pairs", "Pairs with rho > 0.7."),
         *(c for name in _RELIABILITY_PAIRS for c in (
             real(f"r_{name}", f"Spearman rho, {name.replace('_', ' vs ')}."),
             pvalue(f"p_{name}", "Its p-value."),
             count(f"n_{name}", "Points (cell types)."))),
         real("cima_mean"), real("inflammation_mean"), real("scatlas_mean"),
         real("mean_across_atlases"), real("std_across_atlases", check=NON_NEGATIVE)),
        ("signature_type", "signature"),
    ),
    _section(
        "cross_atlas_meta_analysis",
        "Fixed-effect meta-analysis of age, BMI and sex effects across atlases: one row per atlas, each "
        "carrying the signature's pooled values.",
        META_SQL,
        (key_text("analysis", "age, bmi or sex."),
         key_text("signature"),
         signature_type(source_names=("sig_type",)),
         key_text("atlas"),
         real("effect", "Spearman rho (age, BMI) or median difference (sex)."),
         real("se", check=NON_NEGATIVE), pvalue("pvalue", "The atlas's p-value."), count("n", "Samples."),
         real("i2", "Heterogeneity I² (0-100).", check=NON_NEGATIVE, source_names=("I2",)),
         real("pooled_effect"), real("pooled_se", check=NON_NEGATIVE), real("ci_low"), real("ci_high"),
         integer("n_atlases"),
         real("abs_pooled_effect", "|pooled_effect| (the forest plot's order).", expression="abs(pooled_effect)"),
         Column("consistent_direction", "BOOLEAN", "effect and pooled_effect have the same sign (NULL without an "
                "effect).", expression="effect * pooled_effect > 0")),
        ("signature_type", "analysis", "signature", "atlas"),
    ),
    _section(
        "cross_atlas_celltype_mapping",
        "Which original cell types of each atlas map to each harmonised lineage (coarse) or type (fine), "
        "with their cell counts.",
        CELLTYPE_MAPPING_SQL,
        (key_text("level", "coarse or fine."),
         key_text("harmonized_type", "Lineage (coarse) or fine type."),
         key_text("atlas", "CIMA, Inflammation or scAtlas."),
         key_text("cell_type", "The atlas's own cell type name.", source_names=("name",)),
         count("n_cells", "Cells of that type in the atlas (0 when it has none).", source_names=("cells",))),
        ("level", "harmonized_type", "atlas", "cell_type"),
    ),
    _section(
        "cross_atlas_pathways",
        "Pathway over-representation of the CytoSig signature names (one-sided Fisher, BH within a database).",
        PATHWAYS_SQL,
        (signature_type(default="CytoSig"),
         key_text("database", "kegg, reactome or hallmark."),
         key_text("pathway"), text("pathway_id"),
         count("n_genes", "Signatures in the pathway."), count("n_pathway_total", "Genes of the pathway."),
         pvalue("pvalue", "One-sided Fisher p-value."), real("odds_ratio"),
         text("genes", "The overlapping signature names, comma-separated (as written)."),
         Column("fdr", "DOUBLE", "BH FDR within the database.", check=PROBABILITY),
         real("neg_log_fdr", "-log10(fdr + 1e-10).")),
        ("signature_type", "database", "pathway"),
    ),
    TableSpec(
        name="cross_atlas_pathway_genes",
        description="The signatures of each enriched pathway, one row each (cross_atlas_pathways.genes split).",
        derived_sql="SELECT DISTINCT signature_type, database, pathway, trim(unnest(string_split(genes, ','))) "
                    "AS signature FROM cross_atlas_pathways WHERE genes IS NOT NULL AND genes <> ''",
        depends_on=("cross_atlas_pathways",),
        columns=(signature_type(), key_text("database"), key_text("pathway"), key_text("signature")),
        key=("signature_type", "signature", "database", "pathway"),
    ),
    _section(
        "cross_atlas_signature_correlations",
        "Spearman correlation between two signatures over the samples of the three atlases (the page's "
        "signature-by-signature matrix, long form).",
        SIGNATURE_CORRELATIONS_SQL,
        (signature_type(), key_text("signature_a"), key_text("signature_b"), real("rho")),
        ("signature_type", "signature_a", "signature_b"),
    ),
    _section(
        "cross_atlas_modules",
        "Signature modules (clusters of the correlation matrix): one row per member.",
        MODULES_SQL,
        (signature_type(), key_text("module", source_names=("name",)), key_text("signature"), text("color"),
         count("n_members"), real("mean_correlation")),
        ("signature_type", "module", "signature"),
    ),
)
