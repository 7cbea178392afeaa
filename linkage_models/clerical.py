"""Clerical decisions on pairs of source records: stored, and honoured by the next run's clustering.

A decision is `match` (must-link), `non_match` (cannot-link) or `unsure`. The latest decision on a pair
that was not undone is the one in force; an undone decision stays in the table (with when it was undone) as the
record of what happened. Only source names and record ids are stored, never the values the reviewer saw; the
reviewer's free-text note is kept with the decision and never logged or published.
"""

from __future__ import annotations

import uuid

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
    note: str | None = None,
    referral_id: str | None = None,
) -> str:
    """Store one decision on the pair (source, record_id) × (source, record_id) and return its id.
    `referral_id` names the programme triage referral (programmes.clerical_referral) the decision answers."""
    if decision not in DECISIONS:
        raise ClericalError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if left == right:
        raise ClericalError(f"a record cannot be paired with itself ({left[0]}:{left[1]})")
    (sl, rl), (sr, rr) = _ordered(left, right)
    decision_id = uuid.uuid4().hex
    con.execute(
        f"insert into {TABLE} (source_l, record_id_l, source_r, record_id_r, decision, stratum, "
        "match_probability, model_version, reviewer, note, decision_id, referral_id) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sl, rl, sr, rr, decision, stratum, match_probability, model_version, reviewer,
         (note or "").strip() or None, decision_id, referral_id],
    )
    return decision_id


def undo_decision(con: duckdb.DuckDBPyConnection, decision_id: str) -> None:
    """Withdraw a decision: the pair's earlier decision (if any) is in force again. The row stays, marked undone."""
    undone = con.execute(f"update {TABLE} set undone_at = current_timestamp where decision_id = ? "
                         "and undone_at is null returning decision_id", [decision_id]).fetchall()
    if not undone:
        raise ClericalError(f"no decision {decision_id} in force to undo")


def decisions_in_force(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The latest decision not undone on each pair: source_l, record_id_l, source_r, record_id_r, decision,
    stratum, match_probability, reviewer, decided_at (and note, decision_id, referral_id)."""
    return con.sql(
        f"""
        select * exclude (rn, undone_at) from (
            select *, row_number() over (
                partition by source_l, record_id_l, source_r, record_id_r order by decided_at desc, rowid desc
            ) as rn
            from {TABLE} where undone_at is null
        )
        where rn = 1
        """
    ).pl()
