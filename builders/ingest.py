"""Reading one table's source files with DuckDB's own readers, and pointing at the source row
behind a bad value.

A `TableSource` inspects every source file of a table (the CSV header, the JSON keys, the Parquet
schema), maps each spec column to the source column that feeds it (`Column.candidates`), and
writes the SQL that reads the files with the spec's types in one scan (CSV without sniffing: the
header gives the exact column list). Normalisation happens in that same projection: DOUBLE NaN
becomes NULL (DOMAIN.md decision 6) and signature types get their canonical spelling.

JSON whose records sit inside an object (json_layout "data" or "dict_of_lists") is first split,
in one parse, into one plain array-of-records file per array in the build's scratch directory:
DuckDB reads an array of records in parallel, but transforms one huge object on one thread,
several times slower. From there every JSON source is read the same way. A JSON shape no layout
describes is turned into records by the table's own `source_sql` (DuckDB's JSON functions); a
file DuckDB cannot read at all comes through the table's `reader` (Arrow batches, streamed).

Nothing here runs on the happy path except that one scan. Only when DuckDB rejects a value, or a
check on the built table fails, does a `TableSource` re-read its files with positions, to say
exactly where the problem is. Positions are written as
  CSV      `line N`           (physical line; the header is line 1)
  JSON     `record $[i]`, `record $.data[i]`, `record $.<category>[i]`   (0-based array index)
  Parquet  `row N`            (1-based)
  source_sql / reader  `record N`  (1-based, in the order the SQL or the reader yields records)
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cytoatlas.domains.spec import SIGNATURE_TYPE, Column, TableSpec
from cytoatlas.domains.sql import first_line, literal, quote

_NUMERIC = {"DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT",
            "UBIGINT", "UINTEGER", "DECIMAL"}


class SourceError(Exception):
    """A problem in a source file; the message starts with the file's path relative to --source."""


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # relative to --source, as reported in errors and the manifest

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass(frozen=True)
class Position:
    """Where a row came from: its file and a readable location in it."""

    file: SourceFile
    where: str  # "line 12", "record $.data[3]", "row 7"

    def __str__(self) -> str:
        return f"{self.file.rel}: {self.where}"


def resolve_sources(spec: TableSpec, source_dir: Path) -> list[SourceFile]:
    """The files a table reads: its source path, or every file its glob matches (sorted) less the
    spec's exclusions; none for an optional source that is absent."""
    pattern = spec.source or ""
    if any(ch in pattern for ch in "*?["):
        paths = sorted(p for p in source_dir.glob(pattern) if p.is_file()
                       and not any(fnmatch.fnmatchcase(p.name, x) for x in spec.source_exclude))
        if not paths and not spec.optional:
            left_out = f" (leaving out {', '.join(spec.source_exclude)})" if spec.source_exclude else ""
            raise SourceError(f"{pattern}: missing source: no file matches it{left_out} under {source_dir}")
        return [SourceFile(p, p.relative_to(source_dir).as_posix()) for p in paths]
    path = source_dir / pattern
    if not path.is_file():
        if spec.optional:
            return []
        raise SourceError(f"{pattern}: missing source (expected the file {path})")
    return [SourceFile(path, pattern)]


def normalised(column: Column, value: str, signature_types: tuple[str, ...]) -> str:
    """The SQL expression that stores `value` in `column`: NaN -> NULL, canonical signature types."""
    if column.check == SIGNATURE_TYPE:
        # Exact matches of the usual spellings first (cheap); lower(trim()) only for the rest.
        canonical = ", ".join(literal(s) for s in signature_types)
        variants = " ".join(f"WHEN {value} IN ({literal(s.lower())}, {literal(s.upper())}) THEN {literal(s)}"
                            for s in signature_types)
        folded = " ".join(f"WHEN {literal(s.lower())} THEN {literal(s)}" for s in signature_types)
        return (f"CASE WHEN {value} IN ({canonical}) THEN {value} {variants} "
                f"ELSE CASE lower(trim({value})) {folded} ELSE {value} END END")
    if column.type == "DOUBLE":
        return f"CASE WHEN isnan({value}) THEN NULL ELSE {value} END"
    return value


@dataclass
class _Part:
    """One stream of records in a file: the whole file, or one array of a JSON object."""

    label: str | None  # the JSON key holding the array ("data" or the category); None: top level
    source: str  # FROM clause
    pos: str  # SQL giving the record's position (see _where)


class TableSource:
    """How to read one table's source files, and how to point into them."""

    def __init__(self, con: duckdb.DuckDBPyConnection, spec: TableSpec, files: list[SourceFile],
                 scratch: Path):
        self.con, self.spec, self.files, self.scratch = con, spec, files, scratch
        self.layout = spec.json_layout if spec.format == "json" and not spec.source_sql else None
        if spec.format not in ("csv", "json", "parquet", "reader"):
            raise SourceError(f"{spec.source}: unknown source format {spec.format!r} (csv, json, parquet, reader)")
        if self.layout not in (None, "records", "data", "dict_of_lists"):
            raise SourceError(f"{spec.source}: unknown json_layout {self.layout!r}")
        if spec.format == "reader" and not spec.reader:
            raise SourceError(f"{spec.source}: format 'reader' needs the table's `reader` (module:function)")
        # Sources read through a query of ours rather than a DuckDB reader of the file itself.
        self.queried = bool(spec.source_sql) or spec.format == "reader"
        self._readers: dict[str, object] = {}  # registered view name -> the reader's batches
        self._found: dict[int, list[str]] = {}  # file index -> source columns, in file order
        self._arrays: dict[int, list[tuple[str | None, Path]]] = {}  # JSON: (key, array-of-records file)
        self._delim: dict[int, str] = {}
        self.mapping: dict[int, dict[str, str | None]] = {}  # spec column -> source column
        for i, f in enumerate(files):
            self._found[i] = self._inspect(i, f)
            self.mapping[i] = self._map_columns(f, self._found[i])

    # --- inspection ---------------------------------------------------------------------------

    def _inspect(self, i: int, f: SourceFile) -> list[str]:
        if self.queried:
            return self._query_columns(i, f)
        if self.spec.format == "csv":
            return self._csv_header(i, f)
        if self.spec.format == "parquet":
            try:
                return self.con.sql(f"SELECT * FROM read_parquet({literal(str(f.path))}) LIMIT 0").columns
            except duckdb.Error as exc:
                raise SourceError(f"{f.rel}: not a readable Parquet file: {first_line(exc)}") from None
        return self._json_keys(i, f)

    def _query_columns(self, i: int, f: SourceFile) -> list[str]:
        """The columns the table's source_sql or reader yields for this file."""
        if self.spec.format == "reader":
            return list(self._read(f).schema.names)
        try:
            return self.con.sql(f"SELECT * FROM {self._query_source(i, f)} LIMIT 0").columns
        except duckdb.Error as exc:
            raise SourceError(f"{f.rel}: the table's source_sql cannot read it: {first_line(exc)}") from None

    def _read(self, f: SourceFile):
        """A new pyarrow.RecordBatchReader over the file from the table's reader function."""
        module, _, function = self.spec.reader.partition(":")
        read = getattr(importlib.import_module(module), function)
        try:
            return read(f.path)
        except SourceError:
            raise
        except Exception as exc:  # the reader's own complaint about the file
            raise SourceError(f"{f.rel}: {first_line(exc)}") from None

    def _query_source(self, i: int, f: SourceFile) -> str:
        """FROM clause of the records of file `i` when its table reads them through a query. A
        reader's batches can be read once: each statement gets a fresh reader, registered by name."""
        if self.spec.format == "reader":
            name = f"__reader_{self.spec.name}_{i}_{len(self._readers)}"
            self._readers[name] = self._read(f)
            self.con.register(name, self._readers[name])
            return name
        json = (f"read_json_objects({literal(str(f.path))}, format='auto', "
                f"maximum_object_size={_object_size(f)})")
        sql = self.spec.source_sql.replace("{json}", json).replace("{path}", literal(str(f.path)))
        return f"({sql})"

    def _csv_header(self, i: int, f: SourceFile) -> list[str]:
        opener = gzip.open if f.path.suffix == ".gz" else open
        try:
            with opener(f.path, "rt", encoding="utf-8-sig", newline="") as fh:
                first = fh.readline()
        except UnicodeDecodeError:
            raise SourceError(f"{f.rel}: line 1: the header is not UTF-8 text") from None
        except OSError as exc:
            raise SourceError(f"{f.rel}: cannot read: {exc}") from None
        if not first.strip():
            raise SourceError(f"{f.rel}: empty file: no CSV header line")
        delim = "\t" if "," not in first and "\t" in first else ","
        self._delim[i] = delim
        return next(csv.reader([first], delimiter=delim))

    def _json_keys(self, i: int, f: SourceFile) -> list[str]:
        arrays = [(None, f.path)] if self.layout == "records" else self._split_json(i, f)
        self._arrays[i] = arrays
        found: list[str] = []
        for label, path in arrays:
            try:
                columns = self.con.sql(f"SELECT * FROM read_json({literal(str(path))}, format='array') "
                                       f"LIMIT 0").columns
            except duckdb.Error as exc:
                raise SourceError(f"{f.rel}: expected a JSON array of records (json_layout 'records'): "
                                  f"{first_line(exc)}") from None
            if columns == ["json"]:  # what DuckDB reports for an empty array or non-object items
                first = self.con.execute(f"SELECT json_type(json) FROM read_json_objects({literal(str(path))}, "
                                         f"format='array') LIMIT 1").fetchone()
                if first is None:
                    raise SourceError(f"{f.rel}: no records (an empty array)")
                if first[0] != "OBJECT":
                    raise SourceError(f"{f.rel}: {_json_path(label)} should be an array of records, found an "
                                      f"array of {first[0].lower()}")
            found += [c for c in columns if c not in found]
        return found

    def _split_json(self, i: int, f: SourceFile) -> list[tuple[str | None, Path]]:
        """Write each array of records of a JSON object (the 'data' key, or every key of a
        dict_of_lists) to its own file in the scratch directory (a few fast parses of the source,
        no transform into DuckDB types)."""
        source = (f"read_json_objects({literal(str(f.path))}, format='unstructured', "
                  f"maximum_object_size={_object_size(f)})")
        try:
            tops = self.con.execute(f"SELECT json_type(json), json_keys(json) FROM {source}").fetchall()
        except duckdb.Error as exc:
            raise SourceError(f"{f.rel}: not readable JSON: {first_line(exc)}") from None
        if len(tops) != 1 or tops[0][0] != "OBJECT":
            raise SourceError(f"{f.rel}: expected one JSON object (json_layout {self.layout!r}), found "
                              f"{tops[0][0].lower() if len(tops) == 1 else f'{len(tops)} values'}")
        keys = tops[0][1]
        if self.layout == "data":
            wanted = self.spec.json_key
            if wanted not in keys:
                raise SourceError(f"{f.rel}: expected an object whose '{wanted}' key holds an array of records "
                                  f"(json_layout 'data'); top-level keys: {', '.join(keys) or 'none'}")
            keys = [wanted]
        elif not keys:
            raise SourceError(f"{f.rel}: an empty object: no categories (json_layout 'dict_of_lists')")
        paths = ["$." + _json_string(k) for k in keys]
        arrays, kinds, firsts = self.con.execute(
            f"SELECT json_extract(json, ?::VARCHAR[]), list_transform(?::VARCHAR[], lambda p: json_type(json, p)), "
            f"list_transform(?::VARCHAR[], lambda p: json_type(json, p || '[0]')) FROM {source}",
            [paths, paths, paths]).fetchone()
        split = []
        for n, (key, text, kind, first) in enumerate(zip(keys, arrays, kinds, firsts)):
            if kind != "ARRAY" or first not in ("OBJECT", None):
                found = kind.lower() if kind != "ARRAY" else f"an array of {first.lower()}"
                raise SourceError(f"{f.rel}: {_json_path(key)} should be an array of records, found {found}")
            if first is None:  # an empty array: no rows
                continue
            path = self.scratch / f"{self.spec.name}.{i}.{n}.json"
            path.write_text(text, encoding="utf-8")
            split.append((key, path))
        if not split:
            raise SourceError(f"{f.rel}: no records (every array is empty)")
        return split

    def _map_columns(self, f: SourceFile, found: list[str]) -> dict[str, str | None]:
        mapping: dict[str, str | None] = {}
        missing = []
        for col in self.spec.columns:
            if col.expression is not None or col.name == self.spec.source_file_column or (
                    self.layout == "dict_of_lists" and col.name == "category"):
                mapping[col.name] = None  # filled from the file name / the category key
                continue
            source_name = next((c for c in col.candidates if c in found), None)
            if source_name is None and not col.fallback and col.default is None:
                missing.append(col.name if col.candidates == (col.name,)
                               else f"{col.name} (looked for {' or '.join(col.candidates)})")
            mapping[col.name] = source_name
        if missing:
            raise SourceError(f"{f.rel}: missing column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)}; columns found: {', '.join(found) or 'none'}")
        return mapping

    # --- SQL ----------------------------------------------------------------------------------

    def select_sql(self, *, numbered: bool = False, raw: bool = False) -> str:
        """All files, spec columns in spec order. `numbered` adds __file, __seq, __part, __pos;
        `raw` reads JSON values as JSON and Parquet values uncast (for finding a bad value)."""
        queries = [self._file_sql(i, f, numbered, raw) for i, f in enumerate(self.files)]
        union = queries[0] if len(queries) == 1 else " UNION ALL ".join(f"SELECT * FROM ({q})" for q in queries)
        computed = [c for c in self.spec.columns if c.expression is not None]
        if not computed or raw:
            return union
        # Computed columns come last: over the whole table, once every read column is loaded.
        replace = ", ".join(f"CAST(({c.expression}) AS {c.type}) AS {quote(c.name)}" for c in computed)
        return f"SELECT * REPLACE ({replace}) FROM ({union}) AS __read"

    def _file_sql(self, i: int, f: SourceFile, numbered: bool, raw: bool) -> str:
        selects = []
        for seq, part in enumerate(self._parts(i, f, raw)):
            cols = []
            if numbered:
                label = "NULL" if part.label is None else literal(part.label)
                cols += [f"{i} AS __file", f"{seq} AS __seq", f"{label}::VARCHAR AS __part",
                         f"{part.pos} AS __pos"]
            for col in self.spec.columns:
                cols.append(f"{self._value(i, f, col, part, raw)} AS {quote(col.name)}")
            selects.append(f"SELECT {', '.join(cols)} FROM {part.source}")
        return " UNION ALL ".join(selects)

    def _parts(self, i: int, f: SourceFile, raw: bool) -> list[_Part]:
        mapping = self.mapping[i]
        if self.queried:
            return [_Part(None, self._query_source(i, f), "row_number() OVER ()")]
        if self.spec.format == "csv":
            wanted = {src: self.spec.column(name).type for name, src in mapping.items() if src}
            columns, seen = [], set()
            for n, name in enumerate(self._found[i]):
                if name in wanted and name not in seen:
                    seen.add(name)
                    columns.append(f"{literal(name)}: {literal(wanted[name])}")
                else:  # ignored: read as text, never converted
                    columns.append(f"{literal(f'__extra_{n}')}: 'VARCHAR'")
            reader = (f"read_csv({literal(str(f.path))}, auto_detect=false, header=true, "
                      f"delim={literal(self._delim[i])}, quote='\"', escape='\"', "
                      f"columns={{{', '.join(columns)}}})")
            return [_Part(None, reader, "row_number() OVER ()")]
        if self.spec.format == "parquet":
            return [_Part(None, f"read_parquet({literal(str(f.path))}, file_row_number=true)",
                          "file_row_number")]
        types = ", ".join(f"{literal(name)}: {literal(t)}" for name, t in self._struct_fields(i, raw))
        return [_Part(label, f"read_json({literal(str(path))}, format='array', columns={{{types}}})",
                      "row_number() OVER () - 1") for label, path in self._arrays[i]]

    def _struct_fields(self, i: int, raw: bool) -> list[tuple[str, str]]:
        fields: dict[str, str] = {}
        for name, src in self.mapping[i].items():
            if src and src not in fields:
                fields[src] = "JSON" if raw else self.spec.column(name).type
        return list(fields.items())

    def _value(self, i: int, f: SourceFile, col: Column, part: _Part, raw: bool) -> str:
        value = self._own_value(i, f, col, part, raw)
        if col.fallback and not raw:
            fallback = self._own_value(i, f, self.spec.column(col.fallback), part, raw)
            value = fallback if value is None else f"COALESCE({value}, {fallback})"
        if col.default is not None and not raw:
            default = (literal(col.default) if isinstance(col.default, str) else repr(col.default))
            default = f"CAST({default} AS {col.type})"
            value = default if value is None else f"COALESCE({value}, {default})"
        return "NULL" if value is None else value

    def _own_value(self, i: int, f: SourceFile, col: Column, part: _Part, raw: bool) -> str | None:
        """The column's value from the source; None when the source has no such column."""
        src = self.mapping[i][col.name]
        if col.expression is not None:
            return f"CAST(NULL AS {col.type})"  # computed over the whole table in select_sql
        if src is None and (col.fallback or col.default is not None):
            return None
        if src is None:
            constant = part.label if col.name != self.spec.source_file_column else f.path.name
            return literal(constant or "")
        ref = quote(src)
        if raw:
            return ref
        if self.spec.format == "parquet" or self.queried:
            ref = f"CAST({ref} AS {col.type})"
        return normalised(col, ref, self.spec.signature_types)

    # --- pointing at rows ---------------------------------------------------------------------

    def source_name(self, column: str, file_index: int = 0) -> str | None:
        return self.mapping[file_index].get(column)

    def column_label(self, column: str, file_index: int = 0) -> str:
        """`'pvalue'`, or `'signature' (source column 'protein')` when the source calls it otherwise."""
        src = self.source_name(column, file_index)
        return f"'{column}'" + (f" (source column '{src}')" if src and src != column else "")

    def _where(self, file_index: int, part: str | None, pos: int) -> Position:
        f = self.files[file_index]
        if self.spec.format == "csv":
            return Position(f, f"line {pos + 1}")
        if self.spec.format == "parquet":
            return Position(f, f"row {pos + 1}")
        if self.queried:
            return Position(f, f"record {pos}")
        return Position(f, f"record {_json_path(part)}[{pos}]")

    def locate(self, predicate: str, params: list | None = None, columns: tuple[str, ...] = (),
               limit: int = 1) -> list[tuple[Position, tuple]]:
        """The first source rows (in file order) whose loaded values satisfy `predicate`, with
        the values of `columns`. Re-reads the sources: only for the error path."""
        cols = "".join(f", {quote(c)}" for c in columns)
        sql = (f"SELECT __file, __part, __pos{cols} FROM ({self.select_sql(numbered=True)}) "
               f"WHERE {predicate} ORDER BY __file, __seq, __pos LIMIT {int(limit)}")
        rows = self.con.execute(sql, params or []).fetchall()
        return [(self._where(r[0], r[1], r[2]), tuple(r[3:])) for r in rows]

    def row_counts(self) -> list[int]:
        """Rows per source file (an extra read; used only when the table cannot tell)."""
        return [self.con.execute(f"SELECT count(*) FROM ({self._file_sql(i, f, False, False)})").fetchone()[0]
                for i, f in enumerate(self.files)]

    # --- explaining a failed read -------------------------------------------------------------

    def explain(self, exc: duckdb.Error) -> SourceError:
        """Turn DuckDB's error from reading these sources into one clear line."""
        text = str(exc)
        if "NOT NULL constraint failed" in text:
            found = self._explain_null(text)
            if found:
                return found
        if "CSV Error on Line" in text:
            return self._explain_csv(text)
        if self.spec.format in ("json", "parquet", "reader"):
            found = self._explain_type()
            if found:
                return found
        return SourceError(f"{self._file_in(text).rel}: {first_line(exc)}")

    def _file_in(self, text: str) -> SourceFile:
        """The file a DuckDB error message names (`file = ...` or `in file "..."`), else the first."""
        for f in self.files:
            if f"file = {f.path}\n" in text or f'file "{f.path}"' in text:
                return f
        return self.files[0]

    def _explain_csv(self, text: str) -> SourceError:
        f = self._file_in(text)
        index = self.files.index(f)
        line = re.search(r"CSV Error on Line: (\d+)", text).group(1)
        lines = text.splitlines()
        for raw_line in lines:
            m = re.match(r"Error when converting column \"(.*)\"\. Could not convert string \"(.*)\" "
                         r"to '([^']*)'$", raw_line)
            if m:
                source_col, value, type_ = m.groups()
                spec_col = next((c for c, s in self.mapping[index].items() if s == source_col), source_col)
                return SourceError(f"{f.rel}: line {line}, column {self.column_label(spec_col, index)}: "
                                   f"cannot convert '{value}' to {type_}")
        m = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
        if m:
            return SourceError(f"{f.rel}: line {line}: expected {m.group(1)} fields, found {m.group(2)}")
        # The reason is the first line after "Original Line: ...".
        reason = next((l for l in lines[2:] if l.strip()), lines[0]) if len(lines) > 2 else lines[0]
        return SourceError(f"{f.rel}: line {line}: {reason.strip().rstrip('.')}")

    def _explain_null(self, text: str) -> SourceError | None:
        m = re.search(r"NOT NULL constraint failed: [^.\s]+\.(\S+)", text)
        names = [m.group(1).strip('"')] if m else []
        candidates = [c for c in self.spec.columns if c.name in names] or [
            c for c in self.spec.columns if not c.nullable or c.name in self.spec.key]
        for col in candidates:
            hits = self.locate(f"{quote(col.name)} IS NULL")
            if hits:
                pos = hits[0][0]
                kind = "key column" if col.name in self.spec.key else "non-nullable column"
                return SourceError(f"{pos}, column {self.column_label(col.name, self.files.index(pos.file))}: "
                                   f"missing value (NULL) in a {kind}")
        return None

    def _explain_type(self) -> SourceError | None:
        """Find the first value that does not convert to its column's type (JSON, Parquet)."""
        checks = []
        for col in self.spec.columns:
            if self.mapping[0].get(col.name) is None:  # filled from the file name / category
                continue
            checks.append((col, _bad_value(quote(col.name), col.type, self.spec.format == "json" and not self.queried)))
        if not checks:
            return None
        which = "CASE " + " ".join(f"WHEN {bad} THEN {literal(col.name)}" for col, bad in checks) + " END"
        value = "CASE " + " ".join(f"WHEN {bad} THEN CAST({quote(col.name)} AS VARCHAR)"
                                   for col, bad in checks) + " END"
        sql = (f"SELECT __file, __part, __pos, {which}, {value} FROM ({self.select_sql(numbered=True, raw=True)}) "
               f"WHERE {' OR '.join(bad for _, bad in checks)} ORDER BY __file, __seq, __pos LIMIT 1")
        try:
            row = self.con.execute(sql).fetchone()
        except duckdb.Error:
            return None
        if row is None:
            return None
        pos = self._where(row[0], row[1], row[2])
        col = self.spec.column(row[3])
        return SourceError(f"{pos}, column {self.column_label(col.name, row[0])}: "
                           f"cannot convert {row[4]} to {col.type}")


def _bad_value(ref: str, type_: str, json: bool) -> str:
    """SQL: the raw value is present but is not a value of `type_`."""
    if not json:
        return f"({ref} IS NOT NULL AND TRY_CAST({ref} AS {type_}) IS NULL)"
    text = f"json_extract_string({ref}, '$')"
    kind = f"json_type({ref})"
    if type_ in _NUMERIC:
        return (f"({ref} IS NOT NULL AND {kind} <> 'NULL' AND ({kind} NOT IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
                f"OR TRY_CAST({text} AS {type_}) IS NULL))")
    if type_ == "BOOLEAN":
        return f"({ref} IS NOT NULL AND {kind} NOT IN ('NULL', 'BOOLEAN'))"
    return f"({ref} IS NOT NULL AND {kind} <> 'NULL' AND TRY_CAST({text} AS {type_}) IS NULL)"


def _json_path(key: str | None) -> str:
    """`$` for the top level, `$.data`, `$.age`, `$["odd key"]`."""
    if key is None:
        return "$"
    return f"$.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"$[{_json_string(key)}]"


def _object_size(f: SourceFile) -> int:
    """read_json's maximum_object_size for a file read as one object."""
    return min(max(f.size + 1, 16 * 1024 * 1024), 2**32 - 1)


def _json_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
