"""What a rebuild changes: compare two database files (typically the published file and a new
build) so an operator can review the change before it goes live.

Reported: the manifests side by side, tables added and removed, per table the columns added,
removed or retyped and the row count change, and every source file whose checksum, size or row
count differs (or that one build read and the other did not). Build id and build time always
differ between builds and are shown, not counted as changes. Files without a manifest (a legacy
monolith) compare by tables, columns and rows only.
"""

from __future__ import annotations

from pathlib import Path

from builders.lifecycle.files import open_read_only
from cytoatlas.domains.manifest import INTERNAL_PREFIX, MANIFEST, columns_by_table
from cytoatlas.domains.sql import quote


def snapshot(path: Path) -> dict:
    """The comparable facts of one file: manifest, tables with columns and row counts, sources."""
    path = Path(path)
    con = open_read_only(path)
    try:
        columns = columns_by_table(con)
        has_manifest = all(name in columns for name in MANIFEST)
        manifest, sources = None, {}
        if has_manifest:
            row = con.execute("SELECT domain, schema_version, build_id, built_at, builder_version "
                              "FROM _cytoatlas_manifest").fetchall()
            if row:
                manifest = dict(zip(("domain", "schema_version", "build_id", "built_at", "builder_version"), row[0]))
            for table, source_path, sha256, size, rows in con.execute(
                    "SELECT table_name, path, sha256, size_bytes, row_count FROM _cytoatlas_sources").fetchall():
                sources[f"{table}: {source_path}"] = {"sha256": sha256, "size_bytes": size, "rows": rows}
        tables = {name: {"columns": cols,
                         "rows": con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]}
                  for name, cols in columns.items() if not name.startswith(INTERNAL_PREFIX)}
    finally:
        con.close()
    return {"path": str(path), "manifest": manifest, "tables": tables, "sources": sources}


def diff_files(old: Path, new: Path) -> dict:
    """The changes from `old` to `new`; `changed` is False when tables, columns, rows and sources
    are all the same."""
    a, b = snapshot(old), snapshot(new)
    added = sorted(set(b["tables"]) - set(a["tables"]))
    removed = sorted(set(a["tables"]) - set(b["tables"]))
    tables = {}
    for name in sorted(set(a["tables"]) & set(b["tables"])):
        change = _table_change(a["tables"][name], b["tables"][name])
        if change:
            tables[name] = change
    sources = {}
    for key in sorted(set(a["sources"]) | set(b["sources"])):
        before, after = a["sources"].get(key), b["sources"].get(key)
        if before != after:
            sources[key] = {"old": before, "new": after}
    manifest_changes = {}
    if a["manifest"] and b["manifest"]:
        for field in ("domain", "schema_version", "builder_version"):
            if a["manifest"][field] != b["manifest"][field]:
                manifest_changes[field] = {"old": a["manifest"][field], "new": b["manifest"][field]}
    return {"old": {k: a[k] for k in ("path", "manifest")}, "new": {k: b[k] for k in ("path", "manifest")},
            "changed": bool(added or removed or tables or sources or manifest_changes),
            "manifest_changes": manifest_changes,
            "tables_added": {name: b["tables"][name] for name in added},
            "tables_removed": {name: a["tables"][name] for name in removed},
            "tables_changed": tables, "sources_changed": sources}


def _table_change(before: dict, after: dict) -> dict:
    old_cols, new_cols = dict(map(tuple, before["columns"])), dict(map(tuple, after["columns"]))
    change = {}
    if added := [c for c in new_cols if c not in old_cols]:
        change["columns_added"] = {c: new_cols[c] for c in added}
    if removed := [c for c in old_cols if c not in new_cols]:
        change["columns_removed"] = {c: old_cols[c] for c in removed}
    if retyped := {c: {"old": t, "new": new_cols[c]} for c, t in old_cols.items()
                   if c in new_cols and new_cols[c] != t}:
        change["columns_retyped"] = retyped
    if before["rows"] != after["rows"]:
        change["rows"] = {"old": before["rows"], "new": after["rows"]}
    return change


def render(diff: dict) -> str:
    """The diff as text for a person."""
    lines = []
    for side in ("old", "new"):
        m = diff[side]["manifest"]
        what = (f"{m['domain']} schema {m['schema_version']}  build {m['build_id'][:12]}  built {m['built_at']}  "
                f"builder {m['builder_version']}" if m else "(no CytoAtlas manifest)")
        lines.append(f"{side}: {diff[side]['path']}  {what}")
    for field, change in diff["manifest_changes"].items():
        lines.append(f"  {field}: {change['old']} -> {change['new']}")
    for name, table in diff["tables_added"].items():
        lines.append(f"+ table {name}  ({len(table['columns'])} columns, {table['rows']:,} rows)")
    for name, table in diff["tables_removed"].items():
        lines.append(f"- table {name}  ({len(table['columns'])} columns, {table['rows']:,} rows)")
    for name, change in diff["tables_changed"].items():
        lines.append(f"~ table {name}")
        for column, type_ in change.get("columns_added", {}).items():
            lines.append(f"    + column {column} {type_}")
        for column, type_ in change.get("columns_removed", {}).items():
            lines.append(f"    - column {column} {type_}")
        for column, types in change.get("columns_retyped", {}).items():
            lines.append(f"    ~ column {column} {types['old']} -> {types['new']}")
        if "rows" in change:
            old, new = change["rows"]["old"], change["rows"]["new"]
            lines.append(f"    rows {old:,} -> {new:,} ({new - old:+,})")
    for key, change in diff["sources_changed"].items():
        old, new = change["old"], change["new"]
        if old is None:
            lines.append(f"+ source {key}  sha256 {new['sha256'][:12]}  {new['rows']:,} rows")
        elif new is None:
            lines.append(f"- source {key}  sha256 {old['sha256'][:12]}  {old['rows']:,} rows")
        else:
            lines.append(f"~ source {key}  sha256 {old['sha256'][:12]} -> {new['sha256'][:12]}  "
                         f"size {old['size_bytes']:,} -> {new['size_bytes']:,}  rows {old['rows']:,} -> {new['rows']:,}")
    if not diff["changed"]:
        lines.append("no changes to tables, columns, row counts or sources")
    return "\n".join(lines)
