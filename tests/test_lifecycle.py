"""Data lifecycle: verify, export/restore, split, diff, on files built by the real builders from the
demo sources (conftest's `built`, at the test scale). Commands run through the real `cytoatlas`
entry point where the command line is what is tested.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import grpc
import pytest

from cytoatlas.domains import DOMAINS as SPECS
from builders.engine import build_domain, stored_compression
from builders.lifecycle import LifecycleError
from builders.lifecycle.diff import diff_files
from builders.lifecycle.export import export_domain, size_summary
from builders.lifecycle.restore import restore
from builders.lifecycle.split import split
from builders.lifecycle.verify import verify_file
from cytoatlas.table.v1 import table_service_pb2 as pb
from cytoatlas.table.v1 import table_service_pb2_grpc as pb_grpc
from tests.conftest import BIN, DOMAINS, health_status

INTERNAL = ("_cytoatlas_manifest", "_cytoatlas_tables", "_cytoatlas_sources")


def cytoatlas(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "cytoatlas"), *map(str, args)], capture_output=True, text=True, timeout=120)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    """Temp files, WALs and spill directories an operation might have left behind."""
    return sorted(p.name for p in directory.rglob("*") if p.name.startswith(".") or p.name.endswith(".wal"))


def assert_same_database(a: Path, b: Path, tables: list[str] | None = None) -> None:
    """Same tables, columns (types, NOT NULL, comments), table comments, and every row in order."""
    with duckdb.connect(str(a), read_only=True) as x, duckdb.connect(str(b), read_only=True) as y:
        where = "" if tables is None else f"WHERE table_name IN ({', '.join(repr(t) for t in tables)})"
        for sql in (f"SELECT table_name, comment FROM duckdb_tables() {where} ORDER BY 1",
                    f"SELECT table_name, column_name, data_type, is_nullable, comment FROM duckdb_columns() "
                    f"{where} ORDER BY table_name, column_index"):
            assert x.execute(sql).fetchall() == y.execute(sql).fetchall(), sql
        for (name,) in x.execute(f"SELECT table_name FROM duckdb_tables() {where}").fetchall():
            rows_a = x.sql(f'SELECT * FROM "{name}"').to_arrow_table()
            rows_b = y.sql(f'SELECT * FROM "{name}"').to_arrow_table()
            assert rows_a.num_rows > 0 and rows_a.equals(rows_b), name


# --- export -> restore -> verify ---------------------------------------------------------------


@pytest.mark.parametrize("domain", DOMAINS)
def test_export_then_restore_gives_an_identical_database(built, source_dir, tmp_path, domain):
    manifest = export_domain(domain, built[domain], tmp_path / "backup")
    restored = restore(tmp_path / "backup", tmp_path / "restored" / SPECS[domain].file_name)
    report = verify_file(restored, domain)
    assert report.ok, report.text()
    assert_same_database(built[domain], restored)  # manifest tables included: same build id, rows
    with duckdb.connect(str(restored), read_only=True) as con:  # stored as built (the spec's storage)
        for (table, column), compression in SPECS[domain].declared_compression().items():
            assert stored_compression(con, table)[column] == {compression}, (table, column)
    assert leftovers(tmp_path) == []
    # The size figure: Parquet (zstd) against the CSV sources it was built from, measured here.
    csv_tables = [t for t in manifest["tables"] if t["source_format"] == "csv"]
    if csv_tables:
        for table in csv_tables:  # the source sizes come from the build manifest: check them
            with duckdb.connect(str(built[domain]), read_only=True) as con:
                paths = [p for (p,) in con.execute("SELECT path FROM _cytoatlas_sources WHERE table_name = ?",
                                                   [table["name"]]).fetchall()]
            assert table["source_bytes"] == sum((source_dir / p).stat().st_size for p in paths)
        parquet = sum(t["bytes"] for t in csv_tables)
        csv = sum(t["source_bytes"] for t in csv_tables)
        print(f"\n{domain}: " + "; ".join(size_summary(manifest)))
        assert parquet <= 0.6 * csv, f"Parquet {parquet:,} B vs CSV {csv:,} B"


def test_export_restore_verify_through_the_command_line(built, tmp_path):
    backup, restored = tmp_path / "backup", tmp_path / "perturbation_data.duckdb"
    out = cytoatlas("export", "perturbation", "--db", built["perturbation"], "--to", backup)
    assert out.returncode == 0, out.stderr
    assert "tahoe_drug_effect" in out.stderr and "% smaller" in out.stderr  # progress and the size figure
    files = {p.name for p in backup.iterdir()}
    assert {"manifest.json", "SHA256SUMS", "parse10m_activity.parquet"} <= files
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=backup, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == len(files) - 1
    out = cytoatlas("restore", "--from", backup, "--output", restored)
    assert out.returncode == 0, out.stderr
    out = cytoatlas("verify", restored, "--json")
    assert out.returncode == 0, out.stdout
    report = json.loads(out.stdout)
    assert report["ok"] and report["files"][0]["domain"] == "perturbation"
    assert set(report["files"][0]["checks"].values()) == {"pass"}
    assert_same_database(built["perturbation"], restored)


def test_export_and_restore_refuse_bad_input_with_clear_errors(built, tmp_path):
    not_duckdb = tmp_path / "notes.duckdb"
    not_duckdb.write_text("domain,rows\natlas,1\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    cases = [
        (lambda: export_domain("atlas", built["perturbation"], tmp_path / "a"),
         "built for the 'perturbation' domain, expected 'atlas'"),
        (lambda: export_domain("atlas", tmp_path / "nope.duckdb", tmp_path / "b"), "nope.duckdb: no such file"),
        (lambda: export_domain("atlas", not_duckdb, tmp_path / "c"), "not a DuckDB database file"),
        (lambda: export_domain("atlas", built["atlas"], tmp_path / "full"), "is not an empty directory"),
        (lambda: export_domain("genomics", built["atlas"], tmp_path / "d"), "unknown domain 'genomics'"),
        (lambda: restore(tmp_path / "nope", tmp_path / "r.duckdb"), "no such directory"),
        (lambda: restore(tmp_path / "full", tmp_path / "r.duckdb"), "not a cytoatlas export"),
    ]
    for operation, expected in cases:
        with pytest.raises(LifecycleError) as error:
            operation()
        assert expected in str(error.value)
    assert not any((tmp_path / n).exists() for n in "abcd") and not (tmp_path / "r.duckdb").exists()
    # On the command line: one line naming the problem, exit 1; a domain that is no choice, exit 2.
    out = cytoatlas("export", "atlas", "--db", not_duckdb, "--to", tmp_path / "e")
    assert out.returncode == 1 and out.stderr == f"cytoatlas export: {not_duckdb}: not a DuckDB database file\n"
    out = cytoatlas("export", "genomics", "--db", built["atlas"], "--to", tmp_path / "e")
    assert out.returncode == 2 and "invalid choice: 'genomics'" in out.stderr


def test_restore_refuses_a_damaged_export_and_keeps_the_published_file(built, tmp_path):
    export_domain("spatial", built["spatial"], tmp_path / "backup")
    target = tmp_path / "data" / "spatial_data.duckdb"
    restore(tmp_path / "backup", target)
    before = sha256(target)
    parquet = tmp_path / "backup" / "spatial_activity.parquet"
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    parquet.write_bytes(bytes(data))
    with pytest.raises(LifecycleError, match="spatial_activity.parquet: checksum does not match"):
        restore(tmp_path / "backup", target)
    assert sha256(target) == before and leftovers(tmp_path / "data") == []


@pytest.mark.parametrize("type_", ["TIMESTAMP WITH TIME ZONE", "STRUCT(a INTEGER, b VARCHAR)"])
def test_export_refuses_a_column_type_restore_cannot_declare(built, tmp_path, type_):
    # An unknown legacy table, as `split --unassigned-to` copies it, with a type restore refuses.
    db = tmp_path / "spatial_data.duckdb"
    shutil.copyfile(built["spatial"], db)
    with duckdb.connect(str(db)) as con:
        con.execute(f"CREATE TABLE legacy_events (id BIGINT, seen_at {type_})")
    with pytest.raises(LifecycleError) as error:
        export_domain("spatial", db, tmp_path / "backup")
    assert str(error.value) == (f"{db}: cannot export table legacy_events: column 'seen_at' has the type {type_}, "
                                f"which restore does not support; nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spatial_data.duckdb"]


def test_restore_refuses_an_export_without_checksums(built, tmp_path):
    export_domain("spatial", built["spatial"], tmp_path / "backup")
    (tmp_path / "backup" / "SHA256SUMS").unlink()
    with pytest.raises(LifecycleError, match="backup: not an export: SHA256SUMS missing"):
        restore(tmp_path / "backup", tmp_path / "data" / "spatial_data.duckdb")
    assert not (tmp_path / "data").exists()


def test_restore_names_a_key_missing_from_the_manifest(built, tmp_path):
    backup = tmp_path / "backup"
    export_domain("spatial", built["spatial"], backup)
    manifest = json.loads((backup / "manifest.json").read_text())
    del manifest["tables"][1]["sha256"]
    (backup / "manifest.json").write_text(json.dumps(manifest))
    sums = (backup / "SHA256SUMS").read_text().splitlines()  # as an exporter that wrote it so would
    (backup / "SHA256SUMS").write_text("".join(
        f"{sha256(backup / 'manifest.json')}  manifest.json\n" if line.endswith("  manifest.json") else line + "\n"
        for line in sums))
    with pytest.raises(LifecycleError) as error:
        restore(backup, tmp_path / "data" / "spatial_data.duckdb")
    assert str(error.value) == f"{backup / 'manifest.json'}: tables[1] has no 'sha256' key"
    assert not (tmp_path / "data").exists()


# --- full disks: a real small file system in a private mount namespace -------------------------


def _unshare_available() -> bool:
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


@pytest.mark.skipif(not _unshare_available(), reason="needs unshare -rm and tmpfs mounts (user namespaces)")
def test_a_full_disk_fails_cleanly_and_leaves_nothing_behind(built, legacy, tmp_path):
    """export, restore and split onto a tmpfs too small for them: each says 'disk full', exits 1,
    and leaves the file system as it found it (only the output directory split was asked to create)."""
    backup = tmp_path / "backup"
    export_domain("perturbation", built["perturbation"], backup)
    disk = tmp_path / "disk"
    disk.mkdir()
    exe = BIN / "cytoatlas"
    script = "\n".join([
        f"mount -t tmpfs -o size=300k tmpfs {disk} || exit 99",
        f"{exe} export perturbation --db {built['perturbation']} --to {disk}/backup; echo export=$?",
        f"mount -o remount,size=1m {disk}",
        f"{exe} restore --from {backup} --output {disk}/perturbation_data.duckdb; echo restore=$?",
        f"mount -o remount,size=6m {disk}",
        f"{exe} split {legacy} --output {disk}/split; echo split=$?",
        f"find {disk} -mindepth 1",
    ])
    out = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert "export=1" in out.stdout and "restore=1" in out.stdout and "split=1" in out.stdout, out
    assert out.stderr.count("disk full while writing") == 3, out.stderr
    # The exit codes, then the whole `find` listing: only the (empty) output directory split created.
    assert out.stdout.splitlines() == ["export=1", "restore=1", "split=1", f"{disk}/split"], out.stdout


# --- verify: every class of damage it claims to catch ------------------------------------------


def flip_a_data_byte(path: Path) -> None:
    """Damage one block of parse10m_activity's data in place (not the catalog)."""
    with duckdb.connect(str(path), read_only=True) as con:
        block, offset = con.execute(
            "SELECT block_id, block_offset FROM pragma_storage_info('parse10m_activity') "
            "WHERE column_name = 'activity' AND segment_type = 'DOUBLE' AND block_id >= 0 LIMIT 1").fetchone()
        (block_size,) = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()
    # DuckDB's file: 3 header blocks of 4 KiB, then blocks of block_size, each starting with an
    # 8-byte checksum.
    position = 3 * 4096 + block * block_size + 8 + offset + 64
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0xFF]))


def truncate(path: Path) -> None:
    """Cut the file short, as an interrupted copy would: to an eighth, short of the catalog's blocks
    (at a quarter DuckDB still opens the demo file, its catalog written early, and the integrity
    check is the one that fails)."""
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 8)


KEY_COUNT = "UPDATE _cytoatlas_tables SET row_count = row_count + 1 WHERE table_name = 'tahoe_drug_effect'"
DAMAGE = {  # name: (statements, check, message, caught by the fast checks the services run)
    "no manifest": (["DROP TABLE _cytoatlas_manifest"], "manifest", "no _cytoatlas_manifest table", True),
    "two manifest rows": (["INSERT INTO _cytoatlas_manifest SELECT * FROM _cytoatlas_manifest"],
                          "manifest", "_cytoatlas_manifest has 2 rows, expected 1", True),
    "unknown schema version": (["UPDATE _cytoatlas_manifest SET schema_version = 99"], "schema",
                               "schema version 99 is not known", True),
    "unknown domain": (["UPDATE _cytoatlas_manifest SET domain = 'genomics'"], "schema",
                       "unknown domain 'genomics'", True),
    "missing table": (["DROP TABLE tahoe_drug_effect"], "tables", "table tahoe_drug_effect is missing", True),
    "missing column": (["ALTER TABLE tahoe_drug_effect DROP COLUMN statistic"], "tables",
                       "table tahoe_drug_effect: missing column statistic", True),
    "retyped column": (["ALTER TABLE tahoe_drug_effect ALTER COLUMN n_treated TYPE DOUBLE"], "tables",
                       "n_treated is DOUBLE, declared BIGINT", True),
    "manifest row count": ([KEY_COUNT], "row_counts", "tahoe_drug_effect holds 4,150 rows, the manifest says 4,151",
                           True),
    # DuckDB's stored row count ignores deleted rows, so only the full count sees these.
    "rows deleted": (["DELETE FROM tahoe_drug_effect WHERE rowid < 10"], "row_counts",
                     "tahoe_drug_effect holds 4,140 rows, the manifest says 4,150", False),
    "duplicate key": (["INSERT INTO tahoe_drug_effect SELECT * FROM tahoe_drug_effect LIMIT 1", KEY_COUNT], "keys",
                      "tahoe_drug_effect: 1 duplicate key value, e.g. (signature_type=", False),
    "null key": (["ALTER TABLE tahoe_drug_effect ALTER COLUMN drug DROP NOT NULL",
                  "UPDATE tahoe_drug_effect SET drug = NULL WHERE rowid = 0"], "keys",
                 "tahoe_drug_effect: 1 row where key column 'drug' is NULL", False),
    "q-value above 1": (["UPDATE tahoe_drug_effect SET qvalue = 1.5 WHERE rowid < 3"], "values",
                        "tahoe_drug_effect: 3 rows where column 'qvalue' is not a probability", False),
    "negative count": (["UPDATE tahoe_drug_effect SET n_control = -1 WHERE rowid = 7"], "values",
                       "column 'n_control' is negative", False),
    "NaN where NULL belongs": (["UPDATE tahoe_drug_effect SET pvalue = 'NaN' WHERE rowid < 2"], "values",
                               "2 rows where column 'pvalue' holds NaN", False),
    "unknown signature type": (["UPDATE tahoe_drug_effect SET signature_type = 'cytosig' WHERE rowid = 0"],
                               "values", "column 'signature_type' is not a signature type", False),
    "truncated file": (truncate, "open", "cannot open as a DuckDB database: IO Error: Could not read enough bytes",
                       True),
    "undeclared column": (["ALTER TABLE tahoe_cell_line_metadata ADD COLUMN x INTEGER"], "tables",
                                  "undeclared column x", True),
    "damaged data block": (flip_a_data_byte, "integrity",
                           "table parse10m_activity: Corrupt database file: computed checksum", False),
}


@pytest.fixture(scope="module")
def intact(built) -> Path:
    return built["perturbation"]


@pytest.mark.parametrize("name", DAMAGE)
def test_verify_catches_each_class_of_damage(intact, tmp_path, name):
    damage, check, message, fast = DAMAGE[name]
    bad = tmp_path / "perturbation_data.duckdb"
    shutil.copyfile(intact, bad)
    if callable(damage):
        damage(bad)
    else:
        with duckdb.connect(str(bad)) as con:
            for statement in damage:
                con.execute(statement)
    report = verify_file(bad)
    assert not report.ok
    assert any(c == check and message in m for c, m in report.problems), report.text()
    quick = verify_file(bad, full=False)
    assert (not quick.ok) == fast, quick.text()  # the fast subset: metadata only, never a scan


def test_verify_catches_null_in_a_not_null_column(built, tmp_path):
    bad = tmp_path / "spatial_data.duckdb"
    shutil.copyfile(built["spatial"], bad)
    with duckdb.connect(str(bad)) as con:
        con.execute("ALTER TABLE spatial_coordinates ALTER COLUMN x DROP NOT NULL")
        con.execute("UPDATE spatial_coordinates SET x = NULL WHERE rowid = 0")
    report = verify_file(bad)
    assert report.problems == [("values", "table spatial_coordinates: 1 row where column 'x' is NULL "
                                          "(declared NOT NULL)")], report.text()


def test_verify_passes_intact_files_and_reports_each_file(built):
    out = cytoatlas("verify", *built.values())
    assert out.returncode == 0, out.stdout
    assert [line.split()[0] for line in out.stdout.splitlines()] == ["OK"] * 3
    assert "parse10m_activity" in out.stderr  # progress, one line per table


def test_verify_command_line_domains_bad_paths_and_json(built, tmp_path):
    data = built["atlas"].parent
    out = cytoatlas("verify", "atlas", "spatial", "--data-dir", data, "--fast")
    assert out.returncode == 0 and out.stdout.count("OK") == 2, out.stdout
    not_duckdb = tmp_path / "results.csv"
    not_duckdb.write_text("a,b\n1,2\n")
    out = cytoatlas("verify", built["perturbation"], tmp_path / "missing.duckdb", not_duckdb, "atlas",
                    "--data-dir", tmp_path, "--json")
    assert out.returncode == 1
    files = json.loads(out.stdout)["files"]
    assert [f["ok"] for f in files] == [True, False, False, False]
    assert "missing.duckdb: no such file" in files[1]["problems"][0]["message"]
    assert "not a DuckDB database file" in files[2]["problems"][0]["message"]
    assert files[3]["path"] == str(tmp_path / "atlas_data.duckdb")  # a domain name: its file in --data-dir
    # A file of one domain verified as another.
    shutil.copyfile(built["spatial"], tmp_path / "perturbation_data.duckdb")
    out = cytoatlas("verify", "perturbation", "--data-dir", tmp_path)
    assert out.returncode == 1 and "built for the 'spatial' domain, expected 'perturbation'" in out.stdout


def test_the_service_refuses_a_file_that_fails_verification(intact, tmp_path, start_service):
    bad = tmp_path / "perturbation_data.duckdb"
    shutil.copyfile(intact, bad)
    with duckdb.connect(str(bad)) as con:
        con.execute("DROP TABLE tahoe_drug_effect")
    # The process stays up, NOT_SERVING, and says why on every call (issue 5: faults).
    service = start_service("perturbation", bad)
    assert health_status(service.address) == "NOT_SERVING"
    with grpc.insecure_channel(service.address) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.TableServiceStub(channel).ListTables(pb.ListTablesRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert f"{bad}: failed verification: tables: table tahoe_drug_effect is missing" in info.value.details()


# --- split a legacy monolith ---------------------------------------------------------------------


def make_legacy(built: dict[str, Path], path: Path, skip: tuple[str, ...] = ()) -> None:
    """A monolith as the real project had: every domain's tables in one file, no manifest, rows in
    no particular order, one column under its source name (protein), one column no spec declares,
    and one table no domain declares."""
    with duckdb.connect(str(path)) as con:
        for domain, db in built.items():
            con.execute(f"ATTACH '{db}' AS {domain} (READ_ONLY)")
            for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND "
                                       "NOT starts_with(table_name, '_cytoatlas_')", [domain]).fetchall():
                if name not in skip:
                    con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM {domain}."{name}" ORDER BY hash(rowid)')
            con.execute(f"DETACH {domain}")
        if "perturbation" in built:
            con.execute("ALTER TABLE tahoe_drug_effect RENAME COLUMN signature TO protein")
            con.execute("ALTER TABLE tahoe_drug_effect ADD COLUMN legacy_flag BOOLEAN DEFAULT true")
        con.execute("CREATE TABLE legacy_notes AS SELECT range AS id, 'note ' || range AS note FROM range(7)")
        con.execute("COMMENT ON TABLE legacy_notes IS 'Free-text notes kept by the old scripts.'")


@pytest.fixture(scope="module")
def legacy(built, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("legacy") / "atlas_data.duckdb"  # the real monolith's name
    make_legacy(built, path)
    return path


@pytest.mark.reliability  # a split of the whole legacy file into three builds: a long run (split is covered below too)
def test_split_writes_the_three_domain_files_and_never_changes_the_legacy_file(built, legacy, tmp_path):
    before = sha256(legacy)
    out = cytoatlas("split", legacy, "--output", tmp_path / "split")
    assert out.returncode == 0, out.stderr
    assert sha256(legacy) == before
    assert "unassigned table legacy_notes (7 rows): left out" in out.stderr
    assert "tahoe_drug_effect: legacy columns not in the spec, left out: legacy_flag" in out.stderr
    for domain in DOMAINS:
        new = tmp_path / "split" / SPECS[domain].file_name
        report = verify_file(new, domain)
        assert report.ok and not report.extra_tables, report.text()
        # Every table equal row for row to the builders' own file: same types, NOT NULL, comments
        # and key order (the legacy rows were shuffled).
        assert_same_database(built[domain], new, [t.name for t in SPECS[domain].tables])
        with duckdb.connect(str(new), read_only=True) as con:
            sources = set(con.execute("SELECT path, sha256, size_bytes FROM _cytoatlas_sources").fetchall())
            listed = set(con.execute("SELECT source FROM _cytoatlas_tables").fetchall())
        assert sources == {(str(legacy.resolve()), before, legacy.stat().st_size)}
        assert listed == {(str(legacy.resolve()),)}
    assert leftovers(tmp_path) == []


def test_split_can_put_unassigned_tables_into_a_domain(built, tmp_path):
    spatial_only = tmp_path / "spatial_only.duckdb"  # also: domains without tables are skipped
    make_legacy({"spatial": built["spatial"]}, spatial_only)
    log = []
    published = split(spatial_only, tmp_path, unassigned_to="spatial", log=log.append)
    assert list(published) == ["spatial"]
    assert "split  atlas: the legacy file holds none of its tables; atlas_data.duckdb not written" in log
    report = verify_file(published["spatial"], "spatial")
    assert report.ok and report.extra_tables == ["legacy_notes"], report.text()
    with duckdb.connect(str(published["spatial"]), read_only=True) as con:
        assert con.execute("SELECT count(*), max(note) FROM legacy_notes").fetchall() == [(7, "note 6")]
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'legacy_notes'").fetchall() == [
            ("Free-text notes kept by the old scripts.",)]
        assert con.execute("SELECT row_count FROM _cytoatlas_tables WHERE table_name = 'legacy_notes'").fetchall() == [
            (7,)]


@pytest.mark.reliability  # several splits of the whole legacy file: a long run
def test_split_refuses_an_incomplete_or_bad_legacy_file_and_writes_nothing(built, legacy, tmp_path):
    partial = tmp_path / "partial.duckdb"
    make_legacy(built, partial, skip=("tahoe_activity", "spatial_coordinates"))
    with pytest.raises(LifecycleError) as error:
        split(partial, tmp_path / "out")
    assert "lacks the perturbation table tahoe_activity" in str(error.value)
    assert "lacks the spatial table spatial_coordinates" in str(error.value)
    assert not (tmp_path / "out").exists()

    bad = tmp_path / "bad.duckdb"
    shutil.copyfile(legacy, bad)
    with duckdb.connect(str(bad)) as con:
        con.execute("ALTER TABLE tahoe_drug_effect ALTER COLUMN n_treated TYPE VARCHAR")
        con.execute("UPDATE tahoe_drug_effect SET n_treated = 'two' WHERE rowid = 3")
    with pytest.raises(LifecycleError, match="table tahoe_drug_effect: column 'n_treated': cannot convert 'two' to BIGINT"):
        split(bad, tmp_path / "out2")
    assert list((tmp_path / "out2").iterdir()) == []  # the atlas file was written too, but not published

    before = sha256(legacy)  # named atlas_data.duckdb, as the real monolith was
    with pytest.raises(LifecycleError, match="would publish .* over the legacy file itself"):
        split(legacy, legacy.parent)
    assert sha256(legacy) == before and leftovers(legacy.parent) == []

    for args, expected in [(["split", tmp_path / "nope.duckdb", "--output", tmp_path / "o"], "no such file"),
                           (["split", built["atlas"].parent, "--output", tmp_path / "o"], "not a file"),
                           (["split", legacy, "--output", tmp_path / "o", "--unassigned-to", "x"], "invalid choice")]:
        out = cytoatlas(*args)
        assert out.returncode in (1, 2) and expected in out.stderr, out.stderr


# --- diff ------------------------------------------------------------------------------------


def test_diff_of_a_rebuild_shows_row_and_source_changes(built, source_dir, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(source_dir / "results" / "tahoe", source / "results" / "tahoe")
    shutil.copytree(source_dir / "results" / "parse10m", source / "results" / "parse10m")
    shutil.copytree(source_dir / "cytoatlas-api", source / "cytoatlas-api")  # the signature-name aliases
    csv = source / "results" / "tahoe" / "tahoe_drug_vs_control.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:-10]))
    rebuilt = build_domain("perturbation", source, tmp_path / "data")

    out = cytoatlas("diff", built["perturbation"], rebuilt)
    assert out.returncode == 1, out.stderr
    assert "~ table tahoe_drug_effect\n    rows 4,150 -> 4,140 (-10)" in out.stdout
    assert "~ source tahoe_drug_effect: results/tahoe/tahoe_drug_vs_control.csv  sha256" in out.stdout
    diff = json.loads(cytoatlas("diff", built["perturbation"], rebuilt, "--json").stdout)
    assert set(diff["sources_changed"]) == {"tahoe_drug_effect: results/tahoe/tahoe_drug_vs_control.csv"}
    assert diff["old"]["manifest"]["build_id"] != diff["new"]["manifest"]["build_id"]

    same = cytoatlas("diff", built["perturbation"], built["perturbation"])
    assert same.returncode == 0 and "no changes to tables, columns, row counts or sources" in same.stdout


def test_diff_shows_tables_and_columns_added_removed_and_retyped(built, tmp_path):
    new = tmp_path / "new.duckdb"
    shutil.copyfile(built["spatial"], new)
    with duckdb.connect(str(new)) as con:
        con.execute("DROP TABLE spatial_gene_coverage")
        con.execute("CREATE TABLE spatial_extra AS SELECT 1 AS x")
        con.execute("ALTER TABLE spatial_activity ADD COLUMN batch VARCHAR")
        con.execute("ALTER TABLE spatial_activity DROP COLUMN n_cells")
        con.execute("ALTER TABLE spatial_neighborhood ALTER COLUMN n_cells TYPE DOUBLE")
    diff = diff_files(built["spatial"], new)
    assert diff["changed"]
    assert list(diff["tables_added"]) == ["spatial_extra"] and list(diff["tables_removed"]) == ["spatial_gene_coverage"]
    assert diff["tables_changed"]["spatial_activity"] == {"columns_added": {"batch": "VARCHAR"},
                                                          "columns_removed": {"n_cells": "BIGINT"}}
    assert diff["tables_changed"]["spatial_neighborhood"] == {
        "columns_retyped": {"n_cells": {"old": "BIGINT", "new": "DOUBLE"}}}
    out = cytoatlas("diff", built["spatial"], tmp_path / "nope.duckdb")
    assert out.returncode == 2 and "nope.duckdb: no such file" in out.stderr
