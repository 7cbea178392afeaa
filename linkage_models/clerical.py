"""Clerical decisions on pairs of source records: stored, and honoured by the next run's clustering.

A decision is `match` (must-link), `non_match` (cannot-link) or `unsure`. The latest decision on a pair
is the one in force. Only source names and record ids are stored, never the values the reviewer saw.
"""

from __future__ import annotations

import duckdb
import polars as pl

DECISIONS = ("match", "non_match", "unsure")
TABLE = "linkage.clerical_decision"


class ClericalError(ValueError):
    pass


def _ordered(left: tuple[str, str], right: tuple[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
    return (left, right) if left <= right else (right, left)


def record_decision(
    con: duckdb.DuckDBPyConnection,
    left: tuple[str, str],
    right: tuple[str, str],
    decision: str,
    *,
    reviewer: str,
    stratum: str | None = "manual",
    match_probability: float | None = None,
    model_version: str | None = None,
) -> None:
    """Store one decision on the pair (source, record_id) × (source, record_id)."""
    if decision not in DECISIONS:
        raise ClericalError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if left == right:
        raise ClericalError(f"a record cannot be paired with itself ({left[0]}:{left[1]})")
    (sl, rl), (sr, rr) = _ordered(left, right)
    con.execute(
        f"insert into {TABLE} (source_l, record_id_l, source_r, record_id_r, decision, stratum, "
        "match_probability, model_version, reviewer) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sl, rl, sr, rr, decision, stratum, match_probability, model_version, reviewer],
    )


def decisions_in_force(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The latest decision on each pair: source_l, record_id_l, source_r, record_id_r, decision, stratum,
    match_probability, reviewer, decided_at."""
    return con.sql(
        f"""
        select * exclude (rn) from (
            select *, row_number() over (
                partition by source_l, record_id_l, source_r, record_id_r order by decided_at desc, rowid desc
            ) as rn
            from {TABLE}
        )
        where rn = 1
        """
    ).pl()
