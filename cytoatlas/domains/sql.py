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
