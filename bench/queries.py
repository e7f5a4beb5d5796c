"""The bench's queries, shared by every way of serving them so they all run the same SQL.

A query is (where, limit): `where` a list of (column, "=", value) on parse10m_activity, limit 0 =
no limit. The service gets it as Query filters; the in-process floor and the Flight and JSON peers
run `sql_for(where, limit)` on their own read-only connection to the same file.
"""

from __future__ import annotations

TABLE = "parse10m_activity"


def sql_for(where, limit: int) -> dict:
    """The statement and its bound parameters, as keyword arguments of DuckDB's `con.sql`."""
    columns = []
    for column, op, _ in where:
        if op != "=" or not column.isidentifier():  # the peers take `where` off the wire
            raise ValueError(f"bench queries are column = value, not {column!r} {op!r}")
        columns.append(f'"{column}" = ?')
    sql = f"SELECT * FROM {TABLE}" + (" WHERE " + " AND ".join(columns) if columns else "")
    return {"query": sql + (f" LIMIT {int(limit)}" if limit else ""), "params": [v for _, _, v in where]}


def cases(con):
    """name -> function(rng) -> (where, limit), with values drawn from the file itself."""
    def distinct(column, where=""):
        return [r[0] for r in con.sql(f"SELECT DISTINCT {column} FROM {TABLE} {where} ORDER BY 1").fetchall()]

    cytokines = distinct("cytokine", "WHERE cytokine <> 'PBS'")
    cell_types = distinct("cell_type")
    signatures = distinct("signature", "WHERE signature_type = 'CytoSig'")

    def point(rng):
        return [("signature_type", "=", "CytoSig"), ("cytokine", "=", rng.choice(cytokines)),
                ("cell_type", "=", rng.choice(cell_types)), ("signature", "=", rng.choice(signatures))], 0

    return {
        "point (~12 rows)": point,
        "~10,000 rows": lambda rng: ([("signature_type", "=", "SecAct"), ("cytokine", "=", rng.choice(cytokines))],
                                     10_000),
        "~1,000,000 rows": lambda rng: ([("signature_type", "=", "SecAct")], 1_000_000),
    }
