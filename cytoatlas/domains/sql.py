"""SQL text for names and values the declarations produce (identifiers and string literals)."""


def quote(identifier: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (DuckDB's messages continue with context lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Walking nested JSON in a table's source_sql. DuckDB's json_each re-reads its whole input for every
# element it yields (quadratic on a file of tens of MB), so an object is walked with json_keys
# zipped with json_extract(..., '$.*') (the same document order) and an array with
# json_extract(..., '$[*]'): one parse per level. A missing key or path yields no rows.

def json_entries(key: str, value: str, obj: str) -> str:
    """SELECT items: one row per key of the JSON object `obj` (SQL), as columns `key` and `value`."""
    return f"unnest(json_keys({obj})) AS {key}, unnest(json_extract({obj}, '$.*')) AS {value}"


def json_items(value: str, obj: str, path: str = "$") -> str:
    """SELECT item: one row per element of the JSON array at `path` in `obj`, as column `value`."""
    return f"unnest(json_extract({obj}, '{path}[*]')) AS {value}"
