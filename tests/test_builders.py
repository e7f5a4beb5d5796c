"""The build engine: ingest, validation, manifest, atomic publish, partial rebuilds, build_all.

Sources are tiny files written here from the table specs (`write_sources`), so every domain's
specs are exercised without the demo-data generator; one test also builds the generator's output.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cytoatlas.domains import DOMAINS
from builders import demo_data, engine
from builders.engine import BuildError, build_all, build_domain, describe_specs, list_tables
from cytoatlas.domains.spec import (
    NON_NEGATIVE, PROBABILITY, SIGNATURE_TYPE, Column, DomainSpec, TableSpec, key_text, pvalue, real,
    signature_type,
)

ROWS = 6  # rows per generated table


# --- writing a minimal valid source set from the specs -----------------------------------------


def _value(col: Column, i: int, spec: TableSpec):
    if col.check == SIGNATURE_TYPE:
        return spec.signature_types[i % len(spec.signature_types)]
    if col.type == "VARCHAR":
        return f"{col.name}_{i}"
    if col.type == "DOUBLE":
        if col.check == PROBABILITY:
            return round(0.01 * (i + 1), 4)
        if col.check == NON_NEGATIVE or not col.nullable:
            return float(i) + 0.5
        return i - 2.25
    return i  # BIGINT / INTEGER


def table_rows(spec: TableSpec, n: int = ROWS) -> list[dict]:
    """n records keyed by source column names (the first candidate), with unique keys."""
    skip = {spec.source_file_column}
    if spec.format == "json" and spec.json_layout == "dict_of_lists":
        skip.add("category")
    return [{c.candidates[0]: _value(c, i, spec) for c in spec.columns if c.name not in skip and not c.expression}
            for i in range(n)]


def write_table(source: Path, spec: TableSpec, rows: list[dict] | None = None) -> list[Path]:
    rows = table_rows(spec) if rows is None else rows
    if "*" in spec.source:  # a glob: two files, rows split between them
        halves = [rows[: len(rows) // 2], rows[len(rows) // 2:]]
        paths = [source / spec.source.replace("*", name) for name in ("alpha", "beta")]
        for path, part in zip(paths, halves):
            _write(path, spec, part)
        return paths
    path = source / spec.source
    _write(path, spec, rows)
    return [path]


def _write(path: Path, spec: TableSpec, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.format == "csv":
        header = list(rows[0]) if rows else [c.candidates[0] for c in spec.columns]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    elif spec.format == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif spec.json_layout == "records":
        path.write_text(json.dumps(rows))
    elif spec.json_layout == "data":  # several tables may read one file, each its own key
        doc = json.loads(path.read_text()) if path.exists() else {"meta": {"note": "ignored"}}
        path.write_text(json.dumps({**doc, spec.json_key: rows}))
    else:  # dict_of_lists: first half 'age' (which, as in the real file, names no feature), rest 'biochemistry'
        age = [{k: v for k, v in r.items() if k != "feature"} for r in rows[: len(rows) // 2]]
        path.write_text(json.dumps({"age": age, "biochemistry": rows[len(rows) // 2:]}))


def from_demo(spec: TableSpec, domain: str) -> bool:
    """A source read by its table's own source_sql or reader has a shape of its own, and a file
    several tables read holds all their parts: those are the demo generator's files."""
    shared = sum(t.source == spec.source for t in DOMAINS[domain].tables) > 1
    return bool(spec.source_sql) or spec.format == "reader" or shared


def write_sources(source: Path, domain: str) -> Path:
    """Minimal sources from the specs, or the demo generator's file (from_demo)."""
    for spec in DOMAINS[domain].tables:
        if spec.derived_sql:
            continue
        if from_demo(spec, domain):
            for path in demo_sources(domain).glob(spec.source):
                target = source / path.relative_to(demo_sources(domain))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
        else:
            write_table(source, spec)
    return source


@functools.cache
def demo_sources(domain: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"demo-{domain}-"))
    demo_data.generate(root, scale=demo_data.MIN_SCALE, seed=0, domains=[domain])
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(output: Path) -> list[str]:
    return sorted(p.name for p in output.iterdir() if p.name.startswith("."))


@pytest.fixture
def perturbation(tmp_path) -> tuple[Path, Path, Path]:
    """(source dir, output dir, published file) with perturbation already built once."""
    source = write_sources(tmp_path / "src", "perturbation")
    output = tmp_path / "out"
    published = build_domain("perturbation", source, output)
    return source, output, published


@pytest.fixture(scope="module")
def atlas_build(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """(source dir, published file, build log) of the atlas built once from minimal sources: an
    atlas build is ~115 tables, so the atlas tests share one instead of building their own."""
    root = tmp_path_factory.mktemp("atlas")
    source = write_sources(root / "src", "atlas")
    lines: list[str] = []
    return source, build_domain("atlas", source, root / "out", log=lines.append), lines


@pytest.fixture
def atlas(atlas_build, tmp_path) -> tuple[Path, Path, Path]:
    """(source dir, output dir, published file): a copy of the shared atlas build to break."""
    source, published, _ = atlas_build
    shutil.copytree(source, tmp_path / "src")
    (tmp_path / "out").mkdir()
    shutil.copy(published, tmp_path / "out" / published.name)
    return tmp_path / "src", tmp_path / "out", tmp_path / "out" / published.name


def rewrite_csv(path: Path, edit) -> None:
    """Apply edit(rows: list[dict]) to a CSV file in place (keeps the header order)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, list(reader)
    edit(rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def fails(source: Path, output: Path, published: Path, pattern: str, domain: str = "perturbation",
          **kw) -> str:
    """Build must fail with a message matching `pattern`, leave `published` byte-identical and no
    temp file behind. Returns the message."""
    before = sha256(published) if published.exists() else None
    with pytest.raises(BuildError) as info:
        build_domain(domain, source, output, **kw)
    message = str(info.value)
    assert re.search(pattern, message), message
    assert "\n" not in message, message
    if before is not None:
        assert sha256(published) == before
    assert leftovers(output) == []
    return message


# --- happy paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_each_domain_builds_and_reopens_read_only(tmp_path, domain, request):
    if domain == "atlas":
        source, path, lines = request.getfixturevalue("atlas_build")
    else:
        source = write_sources(tmp_path / "src", domain)
        lines = []
        path = build_domain(domain, source, tmp_path / "out", log=lines.append)
    spec = DOMAINS[domain]
    assert path == path.parent / spec.file_name and path.parent.name == "out"
    assert leftovers(path.parent) == []
    con = duckdb.connect(str(path), read_only=True)
    try:
        catalog: dict[str, list[tuple]] = {}
        for table_name, *column in con.execute(
                "SELECT table_name, column_name, data_type, comment, is_nullable FROM duckdb_columns() "
                "ORDER BY table_name, column_index").fetchall():
            catalog.setdefault(table_name, []).append(tuple(column))
        table_comments = dict(con.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall())
        for table in spec.tables:
            columns = catalog[table.name]
            assert [(c, t) for c, t, _, _ in columns] == [(c.name, c.type) for c in table.columns]
            for (name, _, comment, nullable), col in zip(columns, table.columns):
                assert (comment or "") == col.description
                assert nullable == (col.nullable and name not in table.key)
            assert table_comments[table.name] == table.description
            keys = ", ".join(f'"{k}"' for k in table.key)
            stored = con.execute(f'SELECT {keys} FROM "{table.name}"').fetchall()
            assert stored == sorted(stored), f"{table.name} is not stored in key order"
            assert len(stored) == len(set(stored))
            if not (table.derived_sql or from_demo(table, domain)):
                assert len(stored) == ROWS
    finally:
        con.close()
    assert len(lines) == len(spec.tables) + 1
    assert re.fullmatch(rf"{domain}  {spec.tables[0].name}  {ROWS:,} rows  \d+\.\d s", lines[0])
    assert lines[-1].startswith(f"{domain}  published {path}")


def test_manifest(perturbation):
    source, _, path = perturbation
    spec = DOMAINS["perturbation"]
    con = duckdb.connect(str(path), read_only=True)
    try:
        (domain, version, build_id, built_at, builder_version, duckdb_version), = con.execute(
            "SELECT * FROM _cytoatlas_manifest").fetchall()
        assert (domain, version) == ("perturbation", spec.schema_version)
        assert re.fullmatch(r"[0-9a-f]{32}", build_id)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", built_at)
        import cytoatlas
        assert builder_version == cytoatlas.__version__
        assert duckdb_version == duckdb.__version__
        types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() "
                                 "WHERE table_name = '_cytoatlas_tables'").fetchall())
        assert types == {"table_name": "VARCHAR", "description": "VARCHAR", "key_columns": "VARCHAR[]",
                         "row_count": "BIGINT", "source": "VARCHAR", "built_at": "VARCHAR"}
        tables = {r[0]: r[1:] for r in con.execute("SELECT * FROM _cytoatlas_tables").fetchall()}
        assert set(tables) == {t.name for t in spec.tables}
        for t in spec.tables:
            description, keys, rows, src, at = tables[t.name]
            assert (description, tuple(keys), src, at) == (
                t.description, t.key, "derived" if t.derived_sql else t.source, built_at)
            assert rows == con.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0]
        sources = con.execute("SELECT * FROM _cytoatlas_sources ORDER BY table_name").fetchall()
        assert len(sources) == sum(1 for t in spec.tables if not t.derived_sql)
        for table, rel, digest, size, rows in sources:
            assert rel == spec.table(table).source
            assert digest == sha256(source / rel)
            assert size == (source / rel).stat().st_size
            assert rows == (tables[table][2] if spec.table(table).source_sql else ROWS)  # own-shaped: the demo's
    finally:
        con.close()


def test_glob_source_concatenates_files_with_source_file_column(atlas_build):
    _, path, _ = atlas_build
    con = duckdb.connect(str(path), read_only=True)
    try:
        files = con.execute("SELECT source_file, count(*) FROM cross_sample_correlations GROUP BY ALL "
                            "ORDER BY 1").fetchall()
        assert files == [("alpha_correlations.csv", ROWS // 2), ("beta_correlations.csv", ROWS - ROWS // 2)]
        sources = con.execute("SELECT path, row_count FROM _cytoatlas_sources "
                              "WHERE table_name = 'cross_sample_correlations' ORDER BY path").fetchall()
        assert sources == [("results/cross_sample_validation/correlations/alpha_correlations.csv", ROWS // 2),
                           ("results/cross_sample_validation/correlations/beta_correlations.csv", ROWS - ROWS // 2)]
        # json layouts: dict_of_lists puts the top-level key in `category`
        assert con.execute("SELECT category, count(*) FROM cima_correlations GROUP BY ALL ORDER BY 1"
                           ).fetchall() == [("age", ROWS // 2), ("biochemistry", ROWS - ROWS // 2)]
        # a key part the source leaves implicit comes from its fallback column
        assert con.execute("SELECT DISTINCT feature FROM cima_correlations WHERE category = 'age'"
                           ).fetchall() == [("age",)]
        # sources naming the target `protein` and the type `signature` are renamed
        assert con.execute("SELECT DISTINCT signature_type FROM cima_differential ORDER BY 1").fetchall() == [
            ("CytoSig",), ("LinCytoSig",), ("SecAct",)]
    finally:
        con.close()


def test_lowercase_signature_types_are_normalised_and_nan_becomes_null(tmp_path):
    source = write_sources(tmp_path / "src", "perturbation")
    path = source / "results/parse10m/parse10m_pseudobulk_activity.csv"

    def edit(rows):
        rows[0]["signature_type"] = "cytosig"
        rows[1]["signature_type"] = " SECACT "
        rows[2]["activity"] = "NaN"
        rows[3]["activity"] = ""
    rewrite_csv(path, edit)
    out = build_domain("perturbation", source, tmp_path / "out")
    con = duckdb.connect(str(out), read_only=True)
    try:
        assert con.execute("SELECT DISTINCT signature_type FROM parse10m_activity ORDER BY 1").fetchall() == [
            ("CytoSig",), ("SecAct",)]
        assert con.execute("SELECT count(*) FILTER (WHERE activity IS NULL), count(*) FILTER "
                           "(WHERE isnan(activity)) FROM parse10m_activity").fetchone() == (2, 0)
    finally:
        con.close()


def test_extra_source_columns_are_ignored_and_alternative_names_used(tmp_path):
    source = write_sources(tmp_path / "src", "perturbation")
    spec = DOMAINS["perturbation"].table("parse10m_activity")
    rows = table_rows(spec)
    for r in rows:  # `donor` (a source name of donor_id), plus unknown columns, in another order
        r["donor"] = r.pop("donor_id")
        r["Unnamed: 0"] = "x"
        r["notes"] = "free text, with a comma"
    write_table(source, spec, [dict(reversed(list(r.items()))) for r in rows])
    out = build_domain("perturbation", source, tmp_path / "out")
    con = duckdb.connect(str(out), read_only=True)
    try:
        assert con.execute("SELECT count(DISTINCT donor_id) FROM parse10m_activity").fetchone() == (ROWS,)
    finally:
        con.close()


def test_partial_rebuild_keeps_the_other_tables(perturbation):
    source, output, path = perturbation
    con = duckdb.connect(str(path), read_only=True)
    before = {t: con.execute(f'SELECT * FROM "{t}"').fetchall() for t in ("tahoe_activity", "parse10m_activity")}
    (old_build,) = con.execute("SELECT build_id FROM _cytoatlas_manifest").fetchone()
    old_tables = {r[0]: r for r in con.execute("SELECT * FROM _cytoatlas_tables").fetchall()}
    old_sources = con.execute("SELECT * FROM _cytoatlas_sources ORDER BY ALL").fetchall()
    con.close()
    # change the sources of two tables: only the one named in `tables` may pick it up
    spec = DOMAINS["perturbation"]
    write_table(source, spec.table("tahoe_activity"), table_rows(spec.table("tahoe_activity"), 9))
    write_table(source, spec.table("parse10m_activity"), table_rows(spec.table("parse10m_activity"), 8))
    lines: list[str] = []
    build_domain("perturbation", source, output, tables=["tahoe_activity"], log=lines.append)
    assert leftovers(output) == []
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM tahoe_activity").fetchone() == (9,)
        assert con.execute("SELECT * FROM parse10m_activity").fetchall() == before["parse10m_activity"]
        (build_id,) = con.execute("SELECT build_id FROM _cytoatlas_manifest").fetchone()
        assert build_id != old_build
        tables = {r[0]: r for r in con.execute("SELECT * FROM _cytoatlas_tables").fetchall()}
        assert set(tables) == set(old_tables)
        assert tables["parse10m_activity"] == old_tables["parse10m_activity"]
        assert tables["tahoe_activity"][3] == 9
        sources = con.execute("SELECT * FROM _cytoatlas_sources ORDER BY ALL").fetchall()
        unchanged = [s for s in old_sources if s[0] != "tahoe_activity"]
        assert [s for s in sources if s[0] != "tahoe_activity"] == unchanged
        # comments survive the copy
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'parse10m_activity'"
                           ).fetchone() == (spec.table("parse10m_activity").description,)
    finally:
        con.close()
    assert any("tahoe_activity  9 rows" in line for line in lines)
    assert any("parse10m_activity" in line and "copied" in line for line in lines)


def test_partial_rebuild_of_a_derived_table_rebuilds_its_inputs(perturbation):
    source, output, path = perturbation
    lines: list[str] = []
    build_domain("perturbation", source, output, tables=["parse10m_cytokine_heatmap"], log=lines.append)
    rebuilt = {line.split()[1] for line in lines if "rows" in line and "copied" not in line}
    # the search index reads both inputs too: rebuilt with them (its other inputs are copied)
    search = {"perturbation_search_mentions", "perturbation_search_terms", "perturbation_search_entities"}
    assert rebuilt == {"parse10m_cytokine_heatmap", "parse10m_treatment_effect", "parse10m_cytokine_metadata",
                       *search}
    # and rebuilding an input rebuilds the derived tables that read it
    lines.clear()
    build_domain("perturbation", source, output, tables=["parse10m_cytokine_metadata"], log=lines.append)
    rebuilt = {line.split()[1] for line in lines if "rows" in line and "copied" not in line}
    assert rebuilt == {"parse10m_cytokine_heatmap", "parse10m_cytokine_metadata", *search}


def test_partial_rebuild_needs_a_published_file(tmp_path):
    source = write_sources(tmp_path / "src", "perturbation")
    output = tmp_path / "out"
    with pytest.raises(BuildError, match="does not exist yet"):
        build_domain("perturbation", source, output, tables=["tahoe_activity"])
    assert not (output / "perturbation_data.duckdb").exists()


def test_unknown_table_lists_the_domain_tables(perturbation):
    source, output, path = perturbation
    message = fails(source, output, path, "unknown table nope", tables=["nope"])
    assert "parse10m_activity" in message and "tahoe_cell_line_metadata" in message


def test_unknown_domain():
    with pytest.raises(BuildError, match="unknown domain 'nope'"):
        build_domain("nope", Path("."), Path("."))


def test_describe_specs_lists_every_table_with_its_source():
    text = describe_specs()
    for spec in DOMAINS.values():
        assert spec.file_name in text
        for table in spec.tables:
            assert table.name in text
            assert (table.source or "derived from") in text
    assert {r["table"] for r in list_tables("spatial")} == {t.name for t in DOMAINS["spatial"].tables}


# --- failures: precise messages, published file untouched, no temp file left -----------------


ACTIVITY = "results/parse10m/parse10m_pseudobulk_activity.csv"


def test_malformed_csv_value_names_file_line_and_column(perturbation):
    source, output, path = perturbation
    rewrite_csv(source / ACTIVITY, lambda rows: rows[3].update(activity="abc"))
    message = fails(source, output, path, "")
    # row index 3 is line 5 (the header is line 1)
    assert message == f"{ACTIVITY}: line 5, column 'activity': cannot convert 'abc' to DOUBLE"


def test_malformed_csv_line_with_wrong_field_count(perturbation):
    source, output, path = perturbation
    with open(source / ACTIVITY, "a") as f:
        f.write("D1,IL-2\n")
    fails(source, output, path, rf"^{ACTIVITY}: line {ROWS + 2}: expected 7 fields, found 2$")


def test_missing_required_column_is_named(perturbation):
    source, output, path = perturbation
    spec = DOMAINS["perturbation"].table("parse10m_activity")
    rows = table_rows(spec)
    for r in rows:
        del r["cell_type"]
    write_table(source, spec, rows)
    message = fails(source, output, path, rf"^{ACTIVITY}: missing column cell_type; columns found: ")
    assert "donor_id, cytokine, n_cells" in message


def test_missing_column_with_alternative_names_lists_them(perturbation):
    source, output, path = perturbation
    spec = DOMAINS["perturbation"].table("parse10m_activity")
    rows = table_rows(spec)
    for r in rows:
        del r["donor_id"], r["signature"]
    write_table(source, spec, rows)
    fails(source, output, path, r"missing columns donor_id \(looked for donor_id or donor\), signature "
                                r"\(looked for signature or protein or target\)")


def test_missing_source_file_names_the_path(perturbation):
    source, output, path = perturbation
    (source / "results/tahoe/tahoe_dose_response.csv").unlink()
    fails(source, output, path, r"^results/tahoe/tahoe_dose_response.csv: missing source \(expected the file "
                                + re.escape(str(source / "results/tahoe/tahoe_dose_response.csv")))


def test_missing_glob_source(tmp_path):
    source = write_sources(tmp_path / "src", "atlas")
    for p in (source / "results/cross_sample_validation/correlations").glob("*"):
        p.unlink()
    (source / "results/cross_sample_validation/correlations/all_correlations.csv").write_text("target\n")
    fails(source, tmp_path / "out", tmp_path / "out/atlas_data.duckdb",
          r"results/cross_sample_validation/correlations/\*_correlations.csv: missing source: no file matches it "
          r"\(leaving out all_correlations.csv\)", domain="atlas")


def test_duplicate_key_fails_naming_both_lines(perturbation):
    source, output, path = perturbation
    rewrite_csv(source / ACTIVITY, lambda rows: rows.append(dict(rows[1], activity="9.5")))
    message = fails(source, output, path, rf"^{ACTIVITY}: duplicate key \(")
    assert message.endswith(f"at line 3 and line {ROWS + 2}")
    assert "cytokine='cytokine_1'" in message and "donor_id='donor_id_1'" in message


def test_duplicate_key_after_signature_type_normalisation(perturbation):
    source, output, path = perturbation
    rewrite_csv(source / ACTIVITY,
                lambda rows: rows.append(dict(rows[0], signature_type=rows[0]["signature_type"].upper())))
    fails(source, output, path, rf"^{ACTIVITY}: duplicate key \(signature_type='CytoSig'.* at line 2 and line 8$")


def test_null_key_fails_naming_line_and_column(perturbation):
    source, output, path = perturbation
    rewrite_csv(source / ACTIVITY, lambda rows: rows[2].update(cytokine=""))
    fails(source, output, path,
          rf"^{ACTIVITY}: line 4, column 'cytokine': missing value \(NULL\) in a key column$")


def test_null_key_from_an_alternative_source_name(perturbation):
    source, output, path = perturbation
    spec = DOMAINS["perturbation"].table("parse10m_activity")
    rows = table_rows(spec)
    for r in rows:
        r["donor"] = r.pop("donor_id")
    rows[4]["donor"] = ""
    write_table(source, spec, rows)
    fails(source, output, path, rf"^{ACTIVITY}: line 6, column 'donor_id' \(source column 'donor'\): "
                                r"missing value \(NULL\) in a key column$")


def test_pvalue_out_of_range_names_the_column(perturbation):
    source, output, path = perturbation
    effect = "results/parse10m/parse10m_treatment_vs_control.csv"
    rewrite_csv(source / effect, lambda rows: rows[1].update(pvalue="1.5"))
    fails(source, output, path,
          rf"^{effect}: line 3, column 'pvalue': 1.5 is not a probability \(must be in \[0, 1\]\)$")


def test_negative_count_fails(perturbation):
    source, output, path = perturbation
    rewrite_csv(source / ACTIVITY, lambda rows: rows[5].update(n_cells="-4"))
    fails(source, output, path, rf"^{ACTIVITY}: line 7, column 'n_cells': -4 is negative")


def test_unknown_signature_type_lists_allowed_values(perturbation):
    source, output, path = perturbation
    rewrite_csv(source / ACTIVITY, lambda rows: rows[0].update(signature_type="LinCytoSig"))
    fails(source, output, path, rf"^{ACTIVITY}: line 2, column 'signature_type': 'LinCytoSig' is not a "
                                r"signature type \(allowed: CytoSig, SecAct\)$")


def test_json_value_of_wrong_type_names_record_and_column(atlas):
    source, output, published = atlas
    rel = "visualization/data/scatlas_celltypes.json"  # json_layout 'data'
    doc = json.loads((source / rel).read_text())
    doc["data"][4]["mean_activity"] = "high"
    (source / rel).write_text(json.dumps(doc))
    fails(source, output, published,
          rf'^{rel}: record \$\.data\[4\], column \'mean_activity\': cannot convert "high" to DOUBLE$',
          domain="atlas", tables=["scatlas_celltypes"])


def test_json_records_and_dict_of_lists_errors(atlas):
    source, output, published = atlas
    rel = "visualization/data/activity_boxplot.json"  # records
    original = (source / rel).read_text()
    rows = json.loads(original)
    rows[2]["n"] = {"nested": 1}
    (source / rel).write_text(json.dumps(rows))
    fails(source, output, published,
          rf'^{rel}: record \$\[2\], column \'n\': cannot convert {{"nested":1}} to BIGINT$', domain="atlas",
          tables=["activity"])
    (source / rel).write_text(original)
    rel = "visualization/data/cima_correlations.json"  # dict_of_lists, `protein` is the target
    doc = json.loads((source / rel).read_text())
    doc["biochemistry"][1]["protein"] = None
    (source / rel).write_text(json.dumps(doc))
    fails(source, output, published,
          rf"^{rel}: record \$\.biochemistry\[1\], column 'signature' \(source column 'protein'\): "
          r"missing value \(NULL\) in a key column$", domain="atlas", tables=["cima_correlations"])


@pytest.mark.parametrize("rel, content, pattern", [
    ("visualization/data/scatlas_celltypes.json", {"rows": []},
     r"expected an object whose 'data' key holds an array of records .*top-level keys: rows$"),
    ("visualization/data/scatlas_celltypes.json", {"data": {"a": 1}},
     r"\$\.data should be an array of records, found object$"),
    ("visualization/data/scatlas_celltypes.json", [{"organ": "x"}], r"expected one JSON object .* found array$"),
    ("visualization/data/cima_correlations.json", {"age": [1, 2]},
     r"\$\.age should be an array of records, found an array of ubigint$"),
    ("visualization/data/cima_correlations.json", {"age": []}, r"no records \(every array is empty\)$"),
    ("visualization/data/activity_boxplot.json", [], r"no records \(an empty array\)$"),
    ("visualization/data/activity_boxplot.json", ["a", "b"], r"\$ should be an array of records, found an array of varchar$"),
    ("visualization/data/activity_boxplot.json", {"data": []}, r"expected a JSON array of records"),
    ("visualization/data/activity_boxplot.json", "[{\"atlas\": ", r"expected a JSON array of records"),
])
def test_json_wrong_layout(atlas, rel, content, pattern):
    source, output, published = atlas
    (source / rel).write_text(content if isinstance(content, str) else json.dumps(content))
    table = next(t.name for t in DOMAINS["atlas"].tables if t.source == rel)
    fails(source, output, published, rf"^{rel}: " + pattern, domain="atlas", tables=[table])


def test_failure_in_the_glob_names_the_right_file(atlas):
    source, output, published = atlas
    rel = "results/cross_sample_validation/correlations/beta_correlations.csv"
    rewrite_csv(source / rel, lambda rows: rows[1].update(spearman_pval="2"))
    fails(source, output, published, rf"^{rel}: line 3, column 'spearman_pval': 2.0 is not a probability",
          domain="atlas", tables=["cross_sample_correlations"])


def test_failed_verification_discards_the_temp_file(perturbation, monkeypatch):
    """A build whose manifest miscounts a table fails the same verification restore and split run
    (builders/lifecycle/verify.py), names the problem, and publishes nothing."""
    source, output, path = perturbation
    real_write_manifest = engine.write_manifest

    def miscounting(con, spec, built_at, table_rows, source_rows):
        table_rows = [(row[0], row[1], row[2], row[3] + 1, *row[4:]) if row[0] == "tahoe_cell_line_metadata"
                      else row for row in table_rows]
        real_write_manifest(con, spec, built_at, table_rows, source_rows)
    monkeypatch.setattr(engine, "write_manifest", miscounting)
    fails(source, output, path, r"^perturbation: .*perturbation_data.duckdb: the new file failed verification, "
          r"nothing was published: row_counts: table tahoe_cell_line_metadata holds \d+ rows, the manifest says")


def test_rebuild_while_the_published_file_is_open_read_only(perturbation):
    """A service holds the published file open: the rebuild still publishes, the open connection
    keeps reading the old file, a new connection sees the new build."""
    source, output, path = perturbation
    serving = duckdb.connect(str(path), read_only=True)
    try:
        (old_id,) = serving.execute("SELECT build_id FROM _cytoatlas_manifest").fetchone()
        build_domain("perturbation", source, output, tables=["tahoe_cell_line_metadata"])
        assert serving.execute("SELECT build_id FROM _cytoatlas_manifest").fetchone() == (old_id,)
        assert serving.execute("SELECT count(*) FROM parse10m_activity").fetchone() == (ROWS,)
    finally:
        serving.close()
    fresh = duckdb.connect(str(path), read_only=True)
    try:
        assert fresh.execute("SELECT build_id FROM _cytoatlas_manifest").fetchone() != (old_id,)
    finally:
        fresh.close()


def test_stale_temp_files_of_dead_builds_are_removed(perturbation):
    source, output, path = perturbation
    stale = output / ".perturbation_data.duckdb.999999999.tmp"
    stale.write_bytes(b"half a build")
    build_domain("perturbation", source, output)
    assert leftovers(output) == []


# --- a toy domain: Parquet sources and derived-table failures ---------------------------------


def _toy(monkeypatch, derived_sql: str = "SELECT grp, max(p) AS p_max FROM base GROUP BY grp") -> DomainSpec:
    spec = DomainSpec("toy", "toy.duckdb", 3, tables=(
        TableSpec("base", "Base rows.", source="base.parquet", format="parquet",
                  columns=(key_text("grp"), key_text("item"), signature_type(), pvalue("p"), real("x")),
                  key=("grp", "item")),
        TableSpec("summary", "Per group.", derived_sql=derived_sql, depends_on=("base",),
                  columns=(key_text("grp"), pvalue("p_max")), key=("grp",)),
    ))
    monkeypatch.setitem(DOMAINS, "toy", spec)
    return spec


def test_parquet_source_and_derived_table(tmp_path, monkeypatch):
    _toy(monkeypatch)
    pq.write_table(pa.table({"item": ["b", "a", "c"], "grp": ["g2", "g1", "g1"],
                             "signature_type": ["secact", "CytoSig", "cytosig"],
                             "p": [0.5, 0.1, float("nan")], "x": [1, 2, 3]}), tmp_path / "base.parquet")
    path = build_domain("toy", tmp_path, tmp_path / "out")
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT * FROM base").fetchall() == [
            ("g1", "a", "CytoSig", 0.1, 2.0), ("g1", "c", "CytoSig", None, 3.0), ("g2", "b", "SecAct", 0.5, 1.0)]
        assert con.execute("SELECT * FROM summary").fetchall() == [("g1", 0.1), ("g2", 0.5)]
        assert con.execute("SELECT source FROM _cytoatlas_tables ORDER BY table_name").fetchall() == [
            ("base.parquet",), ("derived",)]
    finally:
        con.close()


def test_parquet_bad_values_are_located(tmp_path, monkeypatch):
    _toy(monkeypatch)
    pq.write_table(pa.table({"item": ["a", "b", "c"], "grp": ["g", "g", "g"], "signature_type": ["CytoSig"] * 3,
                             "p": ["0.1", "0.2", "oops"], "x": [1.0, 2.0, 3.0]}), tmp_path / "base.parquet")
    fails(tmp_path, tmp_path / "out", tmp_path / "out/toy.duckdb",
          r"^base.parquet: row 3, column 'p': cannot convert oops to DOUBLE$", domain="toy")
    pq.write_table(pa.table({"item": ["a", "b", "a"], "grp": ["g", "g", "g"], "signature_type": ["CytoSig"] * 3,
                             "p": [0.1, 0.2, 0.3], "x": [1.0, 2.0, 3.0]}), tmp_path / "base.parquet")
    fails(tmp_path, tmp_path / "out", tmp_path / "out/toy.duckdb",
          r"^base.parquet: duplicate key \(grp='g', item='a'\) at row 1 and row 3$", domain="toy")


def test_derived_table_failures_name_the_table(tmp_path, monkeypatch):
    _toy(monkeypatch, derived_sql="SELECT grp, max(p) * 10 AS p_max FROM base GROUP BY grp")
    pq.write_table(pa.table({"item": ["a", "b"], "grp": ["g", "h"], "signature_type": ["CytoSig"] * 2,
                             "p": [0.5, 0.01], "x": [1.0, 2.0]}), tmp_path / "base.parquet")
    fails(tmp_path, tmp_path / "out", tmp_path / "out/toy.duckdb",
          r"^derived table summary, row with grp='g', column 'p_max': 5.0 is not a probability", domain="toy")
    _toy(monkeypatch, derived_sql="SELECT 'same' AS grp, p AS p_max FROM base")
    fails(tmp_path, tmp_path / "out", tmp_path / "out/toy.duckdb",
          r"^derived table summary: duplicate key \(grp='same'\)$", domain="toy")
    _toy(monkeypatch, derived_sql="SELECT NULL::VARCHAR AS grp, max(p) AS p_max FROM base")
    fails(tmp_path, tmp_path / "out", tmp_path / "out/toy.duckdb",
          r"^derived table summary: column 'grp' is NULL in the row with grp=None$", domain="toy")
    _toy(monkeypatch, derived_sql="SELECT grp FROM base")
    fails(tmp_path, tmp_path / "out", tmp_path / "out/toy.duckdb",
          r"^derived table summary: Binder Error: .*p_max", domain="toy")


def test_partial_rebuild_refuses_a_published_file_of_another_schema_version(perturbation, monkeypatch):
    source, output, published = perturbation
    spec = DOMAINS["perturbation"]
    monkeypatch.setitem(DOMAINS, "perturbation", DomainSpec(spec.name, spec.file_name, 2, spec.tables))
    fails(source, output, published, r"schema version 1, the spec is 'perturbation' version 2",
          tables=["tahoe_activity"])


# --- build_all -----------------------------------------------------------------------------------


@pytest.mark.reliability  # two builds of all three domains: a long run
def test_build_all_builds_in_parallel_and_reports_every_failure(tmp_path):
    source = tmp_path / "src"
    for domain in DOMAINS:
        write_sources(source, domain)
    output = tmp_path / "out"
    lines: list[str] = []
    paths = build_all(source, output, log=lines.append)
    assert set(paths) == set(DOMAINS)
    for domain, path in paths.items():
        assert path == output / DOMAINS[domain].file_name and path.is_file()
        assert any(line.startswith(f"{domain}  published") for line in lines)
    before = {d: sha256(p) for d, p in paths.items()}
    # break two domains (the atlas at its first table: its build is the long one): both are
    # reported, the third still publishes
    (source / "results/tahoe/tahoe_dose_response.csv").unlink()
    activity = source / "visualization/data/activity_boxplot.json"
    activity.write_text(activity.read_text().replace('"n": 0', '"n": -1', 1))
    with pytest.raises(BuildError) as info:
        build_all(source, output)
    message = str(info.value)
    assert message.startswith("2 of 3 domain builds failed")
    assert "perturbation: results/tahoe/tahoe_dose_response.csv: missing source" in message
    assert "atlas: visualization/data/activity_boxplot.json: record $[0], column 'n': -1 is negative" in message
    assert "spatial" not in message
    assert sha256(paths["perturbation"]) == before["perturbation"]
    assert sha256(paths["atlas"]) == before["atlas"]
    assert sha256(paths["spatial"]) != before["spatial"]  # rebuilt: new build id
    assert leftovers(output) == []


def test_build_all_from_demo_data(built):
    """The demo generator's sources (smallest scale; built once per run by conftest's build_all)
    build, and the manifests count every row (an optional source may be absent: an empty table)."""
    for domain, path in built.items():
        con = duckdb.connect(str(path), read_only=True)
        try:
            listed = dict(con.execute("SELECT table_name, row_count FROM _cytoatlas_tables").fetchall())
            assert set(listed) == {t.name for t in DOMAINS[domain].tables}
            for table, rows in listed.items():
                counted = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                assert rows == counted and (rows > 0 or DOMAINS[domain].table(table).optional), table
            for table, rows in con.execute("SELECT table_name, sum(row_count) FROM _cytoatlas_sources "
                                           "GROUP BY ALL").fetchall():
                assert rows == listed[table]
        finally:
            con.close()
