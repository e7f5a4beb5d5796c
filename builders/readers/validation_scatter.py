"""The validation scatter SQLite (scripts/14 `write_sqlite_db`): `scatter_targets` (one row per
(source, atlas, level, sigtype, target) with its correlation, its group list as JSON text and the
LinCytoSig matched figures as JSON text) and `scatter_points` (one zlib-compressed JSON array of
points per target: [[x, y], ...] or [[x, y, g], ...], g indexing the group list).

Read with the standard library's sqlite3 in batches; each blob is decompressed and its numbers
parsed by numpy in one call (no per-point Python), so memory stays at one batch of targets.
"""

from __future__ import annotations

import json
import math
import sqlite3
import warnings
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

BATCH_TARGETS = 512  # target rows per batch of scatter_targets / per fetch of blobs
_SCOPE = ("sigtype", "source", "atlas", "level")
_EXTRA = {"matched_rho": pa.float64(), "matched_pval": pa.float64(), "matched_n": pa.int64(),
          "lincytosig_celltype": pa.string(), "matched_atlas_celltypes": pa.string()}

TARGETS_SCHEMA = pa.schema([("signature_type", pa.string()), ("source", pa.string()), ("atlas", pa.string()),
                            ("level", pa.string()), ("target", pa.string()), ("target_id", pa.int64()),
                            ("gene", pa.string()), ("rho", pa.float64()), ("pval", pa.float64()),
                            ("n", pa.int64()), ("rho_ci_lo", pa.float64()), ("rho_ci_hi", pa.float64()),
                            ("n_groups", pa.int32()), *_EXTRA.items()])
GROUPS_SCHEMA = pa.schema([("signature_type", pa.string()), ("source", pa.string()), ("atlas", pa.string()),
                           ("level", pa.string()), ("group_index", pa.int32()), ("group_name", pa.string())])
POINTS_SCHEMA = pa.schema([("signature_type", pa.string()), ("source", pa.string()), ("atlas", pa.string()),
                           ("level", pa.string()), ("target", pa.string()), ("target_id", pa.int64()),
                           ("point_index", pa.int32()), ("expression_z", pa.float64()), ("activity", pa.float64()),
                           ("group_index", pa.int32()), ("group_name", pa.string())])
_BRACKETS = str.maketrans("[]", "  ")


def _connect(path: Path) -> sqlite3.Connection:
    # DuckDB pulls the batches from its own threads, one at a time.
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        con.close()
        raise ValueError(f"not a readable SQLite database: {exc}") from None
    missing = {"scatter_targets", "scatter_points"} - tables
    if missing:
        con.close()
        raise ValueError(f"no table {' or '.join(sorted(missing))} in this SQLite database "
                         f"(tables: {', '.join(sorted(tables)) or 'none'})")
    return con


def _rows(path: Path, sql: str) -> Iterator[list[tuple]]:
    con = _connect(path)
    try:
        cursor = con.execute(sql)
        while rows := cursor.fetchmany(BATCH_TARGETS):
            yield rows
    finally:
        con.close()


def _groups(text: str | None, where: str) -> list[str] | None:
    if text is None:
        return None
    groups = json.loads(text)
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError(f"{where}: groups_json is not a list of labels")
    return groups


def _where(row) -> str:
    sigtype, source, atlas, level, target = row[:5]
    return f"scatter_targets target {target!r} ({source}/{atlas}/{level or '-'}/{sigtype})"


def _label(value):
    """The writer's str() of a missing CSV value is 'nan'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value in ("nan", ""):
        return None
    return value


def scatter_targets(path: Path) -> pa.RecordBatchReader:
    sql = ("SELECT sigtype, source, atlas, level, target, id, gene, rho, pval, n, rho_ci_lo, rho_ci_hi, "
           "groups_json, extra_json FROM scatter_targets ORDER BY id")

    def batches():
        for rows in _rows(path, sql):
            columns = [list(c) for c in zip(*(row[:12] for row in rows))]
            n_groups, extras = [], {k: [] for k in _EXTRA}
            for row in rows:
                groups = _groups(row[12], _where(row))
                n_groups.append(None if groups is None else len(groups))
                extra = json.loads(row[13]) if row[13] else {}
                for key, values in extras.items():
                    value = extra.get(key)
                    values.append(_label(value) if _EXTRA[key] == pa.string() else value)
            arrays = [*columns, n_groups, *extras.values()]
            yield pa.record_batch([pa.array(a, f.type) for a, f in zip(arrays, TARGETS_SCHEMA)],
                                  schema=TARGETS_SCHEMA)

    return pa.RecordBatchReader.from_batches(TARGETS_SCHEMA, batches())


def scatter_groups(path: Path) -> pa.RecordBatchReader:
    """One row per label of each scatter file's group list. The writer computes the list once per
    (atlas, level, sigtype), so every target of a file carries the same one: checked."""
    sql = ("SELECT sigtype, source, atlas, level, target, groups_json FROM scatter_targets "
           "WHERE groups_json IS NOT NULL ORDER BY sigtype, source, atlas, level, id")

    def batches():
        seen: dict[tuple, list[str]] = {}
        for rows in _rows(path, sql):
            out = {f.name: [] for f in GROUPS_SCHEMA}
            for row in rows:
                scope, groups = row[:4], _groups(row[5], _where(row))
                first = seen.get(scope)
                if first is None:
                    seen[scope] = groups
                    for i, name in enumerate(groups):
                        for column, value in zip(GROUPS_SCHEMA.names, (*scope, i, name)):
                            out[column].append(value)
                elif first != groups:
                    raise ValueError(f"{_where(row)}: its group list differs from the other targets' of the "
                                     f"same file ({len(groups)} vs {len(first)} labels)")
            yield pa.record_batch([pa.array(out[f.name], f.type) for f in GROUPS_SCHEMA], schema=GROUPS_SCHEMA)

    return pa.RecordBatchReader.from_batches(GROUPS_SCHEMA, batches())


def parse_points(blob: bytes, where: str) -> np.ndarray:
    """A points blob -> float64 array [n, width] (width 2 or 3), parsed by numpy in one call."""
    text = zlib.decompress(blob).decode()
    n = text.count("[") - 1
    if n <= 0:
        return np.empty((0, 2))
    width = text[text.index("[", 1) + 1:text.index("]")].count(",") + 1
    with warnings.catch_warnings():  # numpy warns when the text does not parse to its end: checked below
        warnings.simplefilter("ignore")
        values = np.fromstring(text.translate(_BRACKETS).replace("null", "nan"), dtype=np.float64, sep=",")
    if width not in (2, 3) or values.size != n * width:
        raise ValueError(f"{where}: points are not a list of [x, y] or [x, y, group] "
                         f"({values.size} numbers in {n} points)")
    return values.reshape(n, width)


def scatter_points(path: Path) -> pa.RecordBatchReader:
    """One record batch per fetch of targets: their points parsed blob by blob, then every column
    built at once (the targets' labels taken by index, no per-point Python)."""
    sql = ("SELECT t.sigtype, t.source, t.atlas, t.level, t.target, t.id, t.n, t.groups_json, p.points_blob "
           "FROM scatter_targets AS t JOIN scatter_points AS p ON p.target_id = t.id ORDER BY t.id")

    def batches():
        for rows in _rows(path, sql):
            xs, ys, gs, counts, labels, offsets = [], [], [], [], [], []
            for row in rows:
                where = _where(row)
                points = parse_points(row[8], where)
                n = points.shape[0]
                if row[6] is not None and row[6] != n:
                    raise ValueError(f"{where}: n = {row[6]} but its blob holds {n} points")
                groups = _groups(row[7], where) or []
                g = points[:, 2].astype(np.int64) if points.shape[1] == 3 else np.full(n, -2, dtype=np.int64)
                # a label's position in this batch's label list, -1 for none (-1 in the file, no groups)
                known = (g >= 0) & (g < len(groups))
                gs.append(np.where(known, g + len(labels), -1))
                offsets.append(g)
                labels += groups
                xs.append(points[:, 0])
                ys.append(points[:, 1])
                counts.append(n)
            target = np.repeat(np.arange(len(rows)), counts)
            raw_g = np.concatenate(offsets) if offsets else np.empty(0, np.int64)
            label_index = np.concatenate(gs) if gs else np.empty(0, np.int64)
            names = pa.array(labels or [""], pa.string()).take(
                pa.array(np.maximum(label_index, 0), mask=label_index < 0))
            scope = [pa.array([row[i] for row in rows], f.type).take(target)
                     for i, f in zip(range(6), POINTS_SCHEMA)]
            point_index = np.concatenate([np.arange(n, dtype=np.int32) for n in counts]) if counts else []
            yield pa.record_batch(
                [*scope, pa.array(point_index, pa.int32()),
                 pa.array(np.concatenate(xs) if xs else [], pa.float64()),
                 pa.array(np.concatenate(ys) if ys else [], pa.float64()),
                 pa.array(raw_g.astype(np.int32), pa.int32(), mask=raw_g == -2), names], schema=POINTS_SCHEMA)

    return pa.RecordBatchReader.from_batches(POINTS_SCHEMA, batches())
