"""Source shapes beyond the plain layouts: records under any key (json_key), a table's own
source_sql over nested JSON, constant defaults, and Python readers streamed as Arrow batches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from builders.ingest import SourceError, SourceFile, TableSource
from cytoatlas.domains.spec import TableSpec, count, key_text, real, text


def load(spec: TableSpec, path: Path, tmp_path: Path) -> list[tuple]:
    con = duckdb.connect()
    source = TableSource(con, spec, [SourceFile(path, path.name)], tmp_path)
    try:
        return con.execute(f"SELECT * FROM ({source.select_sql()}) ORDER BY ALL").fetchall()
    except duckdb.Error as exc:
        raise source.explain(exc) from None


SUMMARY_SQL = """
    SELECT a.key AS atlas, s.key AS stat,
           CASE WHEN json_type(s.value) = 'ARRAY' THEN NULL ELSE s.value END AS value
    FROM {json} AS f, json_each(f.json) AS a, json_each(a.value) AS s
"""
SUMMARY = TableSpec("summary", "scalars under two levels of keys", source="s.json", format="json",
                    columns=(key_text("atlas"), key_text("stat"), real("value")), key=("atlas", "stat"),
                    source_sql=SUMMARY_SQL)


def test_source_sql_turns_nested_keys_into_records(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"cima": {"n_samples": 421, "organs": ["a"]}, "scatlas": {"n_organs": 35}}))
    assert load(SUMMARY, path, tmp_path) == [("cima", "n_samples", 421.0), ("cima", "organs", None),
                                             ("scatlas", "n_organs", 35.0)]


def test_a_bad_value_from_source_sql_is_named_by_record_and_column(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"cima": {"n_samples": "many"}}))
    with pytest.raises(SourceError, match=r"^s.json: record 1, column 'value': cannot convert .*many.* to DOUBLE"):
        load(SUMMARY, path, tmp_path)


def test_records_under_a_named_key_and_a_constant_default(tmp_path):
    spec = TableSpec("eqtl", "records under $.eqtls", source="e.json", format="json", json_layout="data",
                     json_key="eqtls", columns=(key_text("gene"), key_text("cell_type", default="All"),
                                                real("beta")), key=("gene", "cell_type"))
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"eqtls": [{"gene": "IFNG", "beta": 0.5}, {"gene": "IL6", "cell_type": "B",
                                                                          "beta": NAN}], "meta": 1}))
    assert load(spec, path, tmp_path) == [("IFNG", "All", 0.5), ("IL6", "B", None)]
    path.write_text(json.dumps({"data": []}))
    with pytest.raises(SourceError, match="expected an object whose 'eqtls' key holds an array of records"):
        load(spec, path, tmp_path)


NAN = float("nan")


def points(path: Path) -> pa.RecordBatchReader:
    """A reader function as a spec names it: the rows of a tiny text file, as Arrow batches."""
    rows = [line.split() for line in path.read_text().splitlines()]
    if any(len(r) != 3 for r in rows):
        raise ValueError("every line needs target, x and y")
    table = pa.table({"target": [r[0] for r in rows], "x": [r[1] for r in rows], "y": [r[2] for r in rows]})
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2))


READER = TableSpec("points", "a Python reader", source="p.txt", format="reader", reader=f"{__name__}:points",
                   columns=(key_text("target"), key_text("x"), real("y"), text("note", default="none"),
                            count("n", default=1)), key=("target", "x"))


def test_a_reader_is_streamed_and_read_again_to_name_a_bad_value(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("IFNG 1 0.5\nIFNG 2 0.7\nIL6 1 -0.1\n")
    assert load(READER, path, tmp_path) == [("IFNG", "1", 0.5, "none", 1), ("IFNG", "2", 0.7, "none", 1),
                                            ("IL6", "1", -0.1, "none", 1)]
    path.write_text("IFNG 1 0.5\nIFNG 2 high\n")
    with pytest.raises(SourceError, match=re.escape("p.txt: record 2, column 'y': cannot convert high to DOUBLE")):
        load(READER, path, tmp_path)
    path.write_text("IFNG 1\n")
    with pytest.raises(SourceError, match="^p.txt: every line needs target, x and y$"):
        load(READER, path, tmp_path)


def test_computed_columns_see_the_loaded_columns_and_the_whole_table(tmp_path):
    spec = TableSpec("top", "computed columns", source="t.json", format="json",
                     columns=(key_text("organ"), key_text("signature"), real("score"),
                              real("abs_score", expression="abs(score)"),
                              count("rank", expression="rank() OVER (PARTITION BY organ ORDER BY score DESC)")),
                     key=("organ", "signature"))
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"organ": "Lung", "signature": s, "score": v}
                                for s, v in (("IL6", -2.0), ("IFNG", 1.0), ("TNFA", 3.0))]
                               + [{"organ": "Liver", "signature": "IL6", "score": 0.5}]))
    assert load(spec, path, tmp_path) == [("Liver", "IL6", 0.5, 0.5, 1), ("Lung", "IFNG", 1.0, 1.0, 2),
                                          ("Lung", "IL6", -2.0, 2.0, 3), ("Lung", "TNFA", 3.0, 3.0, 1)]


def test_a_glob_leaves_out_excluded_names_and_an_optional_source_may_be_absent(tmp_path, monkeypatch):
    from builders.engine import build_domain
    from builders.ingest import resolve_sources
    from cytoatlas.domains import DOMAINS
    from cytoatlas.domains.spec import DomainSpec

    folder = tmp_path / "src" / "corr"
    folder.mkdir(parents=True)
    (folder / "cima_correlations.csv").write_text("target,rho\nIFNG,0.5\n")
    (folder / "all_correlations.csv").write_text("target,rho\nIFNG,0.5\n")  # the concatenation: a duplicate
    globbed = TableSpec("corr", "per-atlas files", source="corr/*_correlations.csv",
                        source_exclude=("all_correlations.csv",), columns=(key_text("target"), real("rho")),
                        key=("target",))
    optional = TableSpec("resampled", "no writer yet", source="resampled/*.json", format="json", optional=True,
                         columns=(key_text("target"), real("rho")), key=("target",))
    assert [f.rel for f in resolve_sources(globbed, tmp_path / "src")] == ["corr/cima_correlations.csv"]
    assert resolve_sources(optional, tmp_path / "src") == []
    monkeypatch.setitem(DOMAINS, "toy", DomainSpec("toy", "toy.duckdb", 1, (globbed, optional)))
    path = build_domain("toy", tmp_path / "src", tmp_path / "out")
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT * FROM corr").fetchall() == [("IFNG", 0.5)]
        assert con.execute("SELECT count(*) FROM resampled").fetchall() == [(0,)]
        assert con.execute("SELECT table_name, row_count FROM _cytoatlas_tables ORDER BY 1").fetchall() == [
            ("corr", 1), ("resampled", 0)]
    finally:
        con.close()
    (folder / "cima_correlations.csv").unlink()
    with pytest.raises(SourceError, match=re.escape("corr/*_correlations.csv: missing source: no file matches it "
                                                    "(leaving out all_correlations.csv)")):
        resolve_sources(globbed, tmp_path / "src")
