"""Demo-data generator: every spec'd source exists with the spec's columns, generation is
deterministic, and the DOMAIN.md §8.4 invariants hold on the sources themselves.

The sources are read with DuckDB (CSV) or json (small JSON files at the minimum scale) and exposed
as views under the served table names and column names, so the checks read like the served tables.
"""

from __future__ import annotations

import json
import pathlib

import duckdb
import pyarrow as pa
import pytest

from builders import demo_data
from cytoatlas.domains import DOMAINS
from builders.demo_data import names
from builders.demo_data._scale import Scale
from cytoatlas.domains.spec import NON_NEGATIVE, PROBABILITY, TableSpec
from tests.conftest import TEST_SCALE

SCALE = demo_data.MIN_SCALE
SOURCE_SPECS = [(d, t) for d, spec in DOMAINS.items() for t in spec.tables if t.source]
LOWERCASE_TYPES = {"parse10m_ground_truth", "cross_sample_correlations",  # as the real producers
                   "exhaustion", "exhaustion_comparison", "exhaustion_by_subset"}
# q rounded to fixed decimals beside a p kept to its significant digits by the real writers: a tiny p
# can exceed its q (rounded to 0.0).
Q_ROUNDED = {"inflammation_celltype_correlations", "inflammation_differential"}


@pytest.fixture(scope="module")
def generated(source_dir, tmp_path_factory) -> tuple[pathlib.Path, dict[str, list[pathlib.Path]], list[str]]:
    """The demo sources at the test scale: the session's (conftest), with what it wrote and logged."""
    record = source_dir.parent / "written.json"
    if SCALE != TEST_SCALE or not record.exists():  # another scale, or sources made beforehand
        out = tmp_path_factory.mktemp("demo")
        lines: list[str] = []
        return out, demo_data.generate(out, scale=SCALE, seed=0, log=lines.append), lines
    written = {d: [pathlib.Path(p) for p in files] for d, files in json.loads(record.read_text()).items()}
    return source_dir, written, (source_dir.parent / "log.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def db(generated) -> duckdb.DuckDBPyConnection:
    """One view per source table, with the served column names."""
    out, _, _ = generated
    con = duckdb.connect()
    for _, spec in SOURCE_SPECS:
        _register(con, out, spec)
    yield con
    con.close()


def _files(out: pathlib.Path, spec: TableSpec) -> list[pathlib.Path]:
    """The files the builder reads (a glob's matches less the spec's exclusions)."""
    from builders.ingest import resolve_sources

    return [f.path for f in resolve_sources(spec, out)]


def _source_columns(spec: TableSpec, found: list[str] | None = None) -> list[str]:
    """The source's columns: every spec column but the computed ones, and but one with a default
    that the source (its columns `found`) leaves out, as real sources may."""
    skip = {spec.source_file_column} | ({"category"} if spec.json_layout == "dict_of_lists" else set())
    return [c.candidates[0] for c in spec.columns if c.name not in skip and c.expression is None
            and (c.default is None or found is None or c.candidates[0] in found)]


def _records(path: pathlib.Path, spec: TableSpec) -> list[dict]:
    doc = json.loads(path.read_text())
    if spec.json_layout == "records":
        return _typed(doc, spec)
    if spec.json_layout == "data":
        return doc[spec.json_key]
    return [{**r, "category": category} for category, rows in doc.items() for r in rows]


def _typed(records: list[dict], spec: TableSpec) -> list[dict]:
    """Numbers a real writer stored as text (a small p-value) read as numbers, as the builder does."""
    numeric = {c.candidates[0] for c in spec.columns if c.type == "DOUBLE"}
    return [{k: float(v) if k in numeric and isinstance(v, str) else v for k, v in r.items()} for r in records]


def _queried(spec: TableSpec) -> bool:
    """Sources read through the table's own source_sql or reader: read here by the builder's reader."""
    return bool(spec.source_sql) or spec.format == "reader"


def _builder_select(con: duckdb.DuckDBPyConnection, path: pathlib.Path, spec: TableSpec) -> str:
    from builders.ingest import SourceFile, TableSource

    return TableSource(con, spec, [SourceFile(path, path.name)], path.parent).select_sql()


def _register(con: duckdb.DuckDBPyConnection, out: pathlib.Path, spec: TableSpec) -> None:
    if _queried(spec):  # a reader's batches are read once: kept as a table
        kind = "TABLE" if spec.format == "reader" else "VIEW"
        con.execute(f'CREATE {kind} "{spec.name}" AS {_builder_select(con, _files(out, spec)[0], spec)}')
        return
    renames = {c.candidates[0]: c.name for c in spec.columns
               if c.name != spec.source_file_column and c.expression is None}
    if spec.format == "csv":
        parts = []
        for path in _files(out, spec):
            extra = f", '{path.stem}' AS {spec.source_file_column}" if spec.source_file_column else ""
            parts.append(f"SELECT *{extra} FROM read_csv('{path}', header = true)")
        con.execute(f"CREATE VIEW raw_{spec.name} AS " + " UNION ALL BY NAME ".join(parts))
    else:
        rows = _records(_files(out, spec)[0], spec)
        con.register(f"raw_{spec.name}", pa.Table.from_pylist(rows))
    present = set(con.sql(f"SELECT * FROM raw_{spec.name} LIMIT 0").columns)
    select = ", ".join(f'"{src}" AS "{name}"' if src in present else f"'{spec.column(name).default}' AS \"{name}\""
                       for src, name in renames.items()
                       if src in present or (spec.column(name).default is not None and not spec.column(name).expression))
    if spec.source_file_column:
        select += f", {spec.source_file_column}"
    computed = "".join(f', {c.expression} AS "{c.name}"' for c in spec.columns if c.expression)  # as the builder
    con.execute(f'CREATE VIEW "{spec.name}" AS SELECT *{computed} FROM (SELECT {select} FROM raw_{spec.name})')


def _one(con, sql: str):
    return con.execute(sql).fetchone()[0]


# --- (a) files and columns ----------------------------------------------------------------------

@pytest.mark.parametrize("domain,spec", SOURCE_SPECS, ids=[t.name for _, t in SOURCE_SPECS])
def test_source_exists_with_spec_columns(generated, domain, spec):
    out, written, _ = generated
    files = _files(out, spec)
    assert files, f"{spec.source} not written"
    assert set(files) <= set(written[domain])
    for path in files:
        if _queried(spec):  # the builder's own reader finds every spec column (or raises)
            con = duckdb.connect()  # the connection a reader's batches are registered on
            columns = con.execute(f"DESCRIBE {_builder_select(con, path, spec)}").fetchall()
            assert [c[0] for c in columns] == list(spec.column_names), path.name
            continue
        if spec.format == "csv":
            header = duckdb.execute(f"DESCRIBE SELECT * FROM read_csv('{path}', header = true)").fetchall()
            columns = [row[0] for row in header]
        else:
            columns = list(_records(path, spec)[0])
            if spec.json_layout == "dict_of_lists":
                columns.remove("category")
        assert columns == _source_columns(spec, columns), path.name


def test_writes_only_spec_sources_and_logs_each_file(generated):
    out, written, lines = generated
    # every file a spec's source pattern matches, including those its exclusions leave out (decoys
    # standing for other writers' files in the same directory)
    expected = {p for _, spec in SOURCE_SPECS for p in out.glob(spec.source)}
    produced = [p for files in written.values() for p in files]
    assert sorted(set(produced)) == sorted(expected)  # the API's static name mapping: every domain writes it
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(expected)
    assert len(lines) == len(produced) and all(" rows" in line for line in lines)
    for spec in DOMAINS["perturbation"].tables:
        if spec.derived_sql:
            assert spec.source is None


def test_cross_sample_correlations_are_several_files(generated):
    out, _, _ = generated
    stems = {p.stem for p in _files(out, DOMAINS["atlas"].table("cross_sample_correlations"))}
    assert {"cima_correlations", "inflammation_main_correlations", "gtex_correlations"} <= stems
    assert "all_correlations" not in stems  # the concatenation the writer adds is left out


# --- (b) determinism ----------------------------------------------------------------------------

def _snapshot(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.reliability  # two more generations of the demo data: a long run
def test_same_seed_is_byte_identical_other_seed_differs(generated, tmp_path):
    out, _, _ = generated
    demo_data.generate(tmp_path / "again", scale=SCALE, seed=0)
    demo_data.generate(tmp_path / "other", scale=SCALE, seed=1, domains=["perturbation"])  # one domain shows it
    first, again, other = _snapshot(out), _snapshot(tmp_path / "again"), _snapshot(tmp_path / "other")
    assert again.keys() == first.keys()
    assert [k for k in first if first[k] != again[k]] == []
    assert other.keys() <= first.keys()
    path = "results/parse10m/parse10m_pseudobulk_activity.csv"
    assert other[path] != first[path]


def test_domain_subset_and_bad_arguments(tmp_path):
    written = demo_data.generate(tmp_path, scale=SCALE, domains=("spatial",))
    assert list(written) == ["spatial"] and not (tmp_path / "results" / "parse10m").exists()
    for bad in (dict(scale=0), dict(scale=1.5), dict(seed=-1), dict(domains=("nope",))):
        with pytest.raises(ValueError):
            demo_data.generate(tmp_path / "bad", **bad)


def test_scale_one_reaches_real_perturbation_cardinalities():
    full = Scale(1.0)
    assert (full.secact, full.cytokines, full.drugs, full.cell_lines, full.dose_drugs) == (1249, 90, 95, 50, 25)
    assert len(names.CYTOSIG) == 43 and len(names.DONORS) == 12 and len(names.PARSE_CELL_TYPES) == 18
    assert len(names.PLATES) == 14 and len(names.DOSES) == 3
    floor = Scale(SCALE)
    assert floor.cytokines >= 8 and floor.drugs >= 5 and floor.cell_lines >= 10 and floor.secact >= 40
    assert Scale(SCALE / 2) == Scale(SCALE) or Scale(SCALE / 2).secact == floor.secact


def test_default_scale_feeds_the_1m_row_benchmark(tmp_path):
    """At 0.2 (<= 0.3) parse10m_activity already has >= 1,000,000 SecAct rows."""
    demo_data.generate(tmp_path, scale=0.2, domains=("perturbation",))
    path = tmp_path / "results/parse10m/parse10m_pseudobulk_activity.csv"
    n = _one(duckdb, f"SELECT count(*) FROM read_csv('{path}') WHERE signature_type = 'SecAct'")
    assert n >= 1_000_000
    assert demo_data.DEFAULT_SCALE >= 0.2


# --- (c) invariants (§8.4) ----------------------------------------------------------------------

@pytest.mark.parametrize("domain,spec", SOURCE_SPECS, ids=[t.name for _, t in SOURCE_SPECS])
def test_keys_checks_and_signature_types(db, domain, spec):
    t = f'"{spec.name}"'
    assert _one(db, f"SELECT count(*) FROM {t}") > 0
    # A key part with a fallback may be left out by the source: the builder fills it in.
    key_sql = [f'coalesce("{k}", "{spec.column(k).fallback}")' if spec.column(k).fallback else f'"{k}"'
               for k in spec.key]
    keys = ", ".join(key_sql)
    nulls = " OR ".join(f"{k} IS NULL" for k in key_sql)
    assert _one(db, f"SELECT count(*) FROM {t} WHERE {nulls}") == 0, "NULL key"
    dupes = f"SELECT count(*) FROM (SELECT {keys} FROM {t} GROUP BY ALL HAVING count(*) > 1)"
    assert _one(db, dupes) == 0, "duplicate key"
    checks = []  # (what, predicate of a bad row): counted in one scan of the table
    for col in spec.columns:
        if col.expression is not None:  # computed by the builder, not in the source
            continue
        c = f'"{col.name}"'
        if not col.nullable and not col.fallback:
            checks.append((f"{col.name} NULL", f"{c} IS NULL"))
        if col.type == "DOUBLE":
            checks.append((f"{col.name} not finite", f"NOT isfinite({c}::DOUBLE)"))
        if col.check == PROBABILITY:
            checks.append((f"{col.name} not a probability", f"{c} < 0 OR {c} > 1"))
        if col.check == NON_NEGATIVE:
            checks.append((f"{col.name} negative", f"{c} < 0"))
    if checks:
        counts = db.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {p})" for _, p in checks)
                            + f" FROM {t}").fetchone()
        assert {what: n for (what, _), n in zip(checks, counts) if n} == {}
    if "signature_type" in spec.column_names:
        allowed = set(spec.signature_types) if domain == "atlas" else {"CytoSig", "SecAct"}
        if spec.name in LOWERCASE_TYPES:
            allowed = {a.lower() for a in allowed}
        found = {r[0] for r in db.execute(f"SELECT DISTINCT signature_type FROM {t}").fetchall()}
        assert found <= allowed and found
    for p, q in (("pvalue", "qvalue"), ("pvalue", "fdr")):
        if {p, q} <= set(spec.column_names) and spec.name not in Q_ROUNDED:
            assert _one(db, f"SELECT count(*) FROM {t} WHERE {q} < {p}") == 0


def test_lincytosig_only_in_atlas_cross_sample(db):
    assert _one(db, "SELECT count(*) FROM cross_sample_correlations WHERE signature_type = 'lincytosig'") > 0


def test_parse_treatment_effect_is_computed_from_activity(db):
    assert _one(db, "SELECT max(abs(activity_diff - (mean_treated - mean_control))) "
                    "FROM parse10m_treatment_effect") < 1e-9
    mismatches = _one(db, """
        WITH a AS (SELECT cytokine, cell_type, signature_type, signature,
                          round(avg(activity), 4) AS mean_treated, count(*) AS n
                   FROM parse10m_activity WHERE cytokine <> 'PBS' GROUP BY ALL),
             c AS (SELECT cell_type, signature_type, signature, round(avg(activity), 4) AS mean_control
                   FROM parse10m_activity WHERE cytokine = 'PBS' GROUP BY ALL)
        SELECT count(*) FROM parse10m_treatment_effect te
        JOIN a USING (cytokine, cell_type, signature_type, signature)
        JOIN c USING (cell_type, signature_type, signature)
        WHERE abs(te.mean_treated - a.mean_treated) > 0.00011 OR te.n_treated <> a.n
           OR abs(te.mean_control - c.mean_control) > 0.00011""")
    assert mismatches == 0
    assert _one(db, "SELECT count(*) FROM parse10m_treatment_effect") == _one(
        db, "SELECT count(DISTINCT (cytokine, cell_type, signature_type, signature)) "
            "FROM parse10m_activity WHERE cytokine <> 'PBS'")


def test_parse_p_values_respect_the_12_donor_floor(db):
    for table, col in (("parse10m_treatment_effect", "pvalue"), ("parse10m_ground_truth", "pvalue"),
                       ("parse10m_ground_truth", "best_celltype_pval")):
        assert _one(db, f"SELECT min({col}) FROM {table}") >= 7.4e-7


def test_parse_heatmap_sql_runs_on_the_sources(db):
    spec = DOMAINS["perturbation"].table("parse10m_cytokine_heatmap")
    rows = db.execute(spec.derived_sql).fetchall()
    keys = {(r[0], r[1], r[2]) for r in rows}
    assert len(keys) == len(rows) > 0
    assert all(r[3] is not None and r[4] is not None for r in rows)


def test_parse_ground_truth_and_metadata_are_consistent(db):
    assert _one(db, "SELECT max(abs(activity_diff - (mean_self_activity - mean_nonself_activity))) "
                    "FROM parse10m_ground_truth") < 1e-9
    bad = _one(db, """
        SELECT count(*) FROM parse10m_ground_truth g
        LEFT JOIN parse10m_treatment_effect te
          ON te.cytokine = g.matched_treatment AND te.cell_type = g.best_celltype
         AND lower(te.signature_type) = g.signature_type AND te.signature = g.cytokine
        WHERE te.activity_diff IS DISTINCT FROM g.best_celltype_diff""")
    assert bad == 0
    mapped = db.execute("SELECT DISTINCT signature FROM parse10m_cytokine_metadata "
                        "WHERE signature IS NOT NULL").fetchall()
    assert mapped and {m[0] for m in mapped} <= set(names.CYTOSIG)
    assert _one(db, "SELECT count(*) FROM parse10m_cytokine_metadata WHERE signature IS NULL") > 0
    assert _one(db, "SELECT count(DISTINCT donor_id) FROM parse10m_activity") == 12
    assert _one(db, "SELECT count(DISTINCT cell_type) FROM parse10m_activity") == 18


def test_tahoe_effects_sensitivity_and_metadata(db):
    assert _one(db, "SELECT max(abs(activity_diff - (mean_treated - mean_control))) FROM tahoe_drug_effect") < 1e-9
    mismatches = _one(db, """
        WITH a AS (SELECT drug, cell_line, signature_type, signature,
                          round(avg(activity), 4) AS mean_treated, count(*) AS n
                   FROM tahoe_activity GROUP BY ALL)
        SELECT count(*) FROM tahoe_drug_effect e JOIN a USING (drug, cell_line, signature_type, signature)
        WHERE abs(e.mean_treated - a.mean_treated) > 0.00011 OR e.n_treated <> a.n""")
    assert mismatches == 0
    assert _one(db, """
        SELECT max(abs(s.activity_diff_vs_control - (s.mean_activity - d.mean_activity)))
        FROM tahoe_drug_sensitivity s JOIN tahoe_drug_sensitivity d
          ON d.drug = 'DMSO_TF' AND d.cell_line = s.cell_line AND d.signature_type = s.signature_type
         AND d.signature = s.signature""") < 1e-9
    for table in ("tahoe_activity", "tahoe_drug_effect", "tahoe_drug_sensitivity", "tahoe_dose_response"):
        orphans = _one(db, f"SELECT count(*) FROM {table} WHERE cell_line NOT IN "
                           "(SELECT cell_line FROM tahoe_cell_line_metadata)")
        assert orphans == 0, table
    assert _one(db, "SELECT count(DISTINCT plate) FROM tahoe_activity WHERE drug = 'DMSO_TF'") == 14
    assert {r[0] for r in db.execute("SELECT DISTINCT dose FROM tahoe_dose_response").fetchall()} == {0.1, 1.0, 10.0}
    assert _one(db, "SELECT count(*) FROM tahoe_drug_effect WHERE drug NOT IN "
                    "(SELECT drug FROM tahoe_activity)") == 0


def test_spatial_tissue_summary_aggregates_activity(db):
    bad = _one(db, """
        WITH a AS (SELECT tissue, signature_type, signature, avg(mean_activity) AS mean,
                          count(*) AS n_files, count(DISTINCT technology) AS n_tech
                   FROM spatial_activity GROUP BY ALL)
        SELECT count(*) FROM spatial_tissue_summary s FULL JOIN a USING (tissue, signature_type, signature)
        WHERE s.mean_activity IS NULL OR a.mean IS NULL OR abs(s.mean_activity - a.mean) > 0.00006
           OR s.n_files <> a.n_files OR s.n_technologies <> a.n_tech""")
    assert bad == 0


def test_spatial_tiers_and_coordinates(db):
    tiers = dict(db.execute("SELECT DISTINCT m.tier, count(*) OVER (PARTITION BY m.tier) FROM spatial_activity a "
                            "JOIN spatial_dataset_metadata m ON m.dataset_id = a.file").fetchall())
    assert "A" in tiers and "C" not in tiers
    assert _one(db, "SELECT count(*) FROM spatial_activity a JOIN spatial_dataset_metadata m "
                    "ON m.dataset_id = a.file WHERE m.tier = 'B' AND a.gene_coverage < 0.5") == 0
    assert _one(db, "SELECT count(*) FROM spatial_coordinate_activity a ANTI JOIN spatial_coordinates c "
                    "USING (dataset_id, cell_id)") == 0
    assert _one(db, "SELECT max(n) FROM (SELECT count(*) AS n FROM spatial_coordinates GROUP BY dataset_id)") <= 10_000
    assert _one(db, "SELECT count(*) FROM spatial_coordinates WHERE x < 0 OR x > 6500 OR y < 0 OR y > 6500") == 0
    assert _one(db, "SELECT count(DISTINCT technology) FROM spatial_dataset_metadata") == 8


def test_atlas_differences_and_boxplots(db):
    assert _one(db, "SELECT max(abs(activity_diff - (mean_g1 - mean_g2))) FROM inflammation_differential") < 1e-9
    assert _one(db, "SELECT max(abs(activity_diff - (median_g1 - median_g2))) FROM cima_differential") < 1e-9
    assert _one(db, "SELECT count(*) FROM activity WHERE NOT (min <= q1 AND q1 <= median AND median <= q3 "
                    "AND q3 <= max AND min <= mean AND mean <= max)") == 0
    assert _one(db, "SELECT count(DISTINCT category) FROM cima_correlations") == 3
    assert _one(db, "SELECT max(abs(activity_diff - (mean_activity - other_mean))) "
                    "FROM scatlas_organs_top") < 1.01e-4  # mean and other_mean are rounded, the difference not
