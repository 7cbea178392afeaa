"""Triage: a decision per programme and household, append-only and audited, honoured at every later evaluation.

- `accepted` — the panel agrees the household is in the cohort;
- `removed` — a false positive, with a reason code (moved away, wrong link, …); the household stays out of the
  cohort (in_cohort = false, listed as "removed at triage") at every refresh until the decision is reopened;
- `clerical_review` — the evidence rests on a doubtful link: the household's evidence records linked with a
  probability below the threshold are listed in programmes.clerical_referral for the data team's review;
- `reopened` — withdraws the decision in force.
The free-text note is for the panel only: it is never published, exported or logged.
"""

from __future__ import annotations

import uuid

import duckdb

import warehouse
from programmes._evaluate import ensure_tables

DECISIONS = ("accepted", "removed", "clerical_review", "reopened")
REASONS = ("moved_away", "wrong_link", "already_supported", "not_eligible", "deceased", "other")


class TriageError(ValueError):
    message_is_safe = True  # names programmes, decisions and ids only


def record_triage(con: duckdb.DuckDBPyConnection, programme: str, household_id: int, decision: str, *, actor: str,
                  reason: str | None = None, note: str | None = None, purpose: str = "programme triage") -> str:
    """Store one decision (and its audit row) and return its id. The household must be in the published cohort
    or an earlier one of this programme."""
    ensure_tables(con)
    if decision not in DECISIONS:
        raise TriageError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if decision == "removed" and reason not in REASONS:
        raise TriageError(f"a removal needs a reason: one of {', '.join(REASONS)}")
    if decision != "removed" and reason is not None and reason not in REASONS:
        raise TriageError(f"reason must be one of {', '.join(REASONS)}")
    known = con.execute("select max(snapshot_id) from programmes.cohort where programme = ? and household_id = ?",
                        [programme, household_id]).fetchall()[0][0]
    if known is None:
        raise TriageError(f"household {household_id} has never been in the {programme} cohort")
    decision_id = uuid.uuid4().hex
    with warehouse.transaction(con):
        con.execute("insert into programmes.triage_decision (decision_id, programme, household_id, decision, "
                    "reason_code, note, actor, snapshot_id) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [decision_id, programme, household_id, decision, reason, note, actor, known])
        referred = 0
        if decision == "clerical_review":
            threshold_rows = con.execute(
                "insert into programmes.clerical_referral (decision_id, programme, household_id, person_id, source, "
                "record_id, match_probability) select distinct ?, programme, household_id, person_id, source, record_id, "
                "match_probability from programmes.cohort_evidence where snapshot_id = ? and programme = ? "
                "and household_id = ? and doubtful_link", [decision_id, known, programme, household_id]).fetchall()
            referred = threshold_rows[0][0] if threshold_rows else 0
        warehouse.log_access(con, actor, f"triage_{decision}", f"household:{household_id}", purpose,
                             {"programme": programme, "reason": reason, "decision_id": decision_id,
                              "records_referred": referred})
    return decision_id


def decisions_in_force(con: duckdb.DuckDBPyConnection, programme: str | None = None):
    """The latest decision per programme and household (reopened ones dropped), as a polars frame."""
    ensure_tables(con)
    where = "where programme = $1" if programme else ""
    return con.sql(
        f"""
        select * from (
            select programme, household_id, decision, reason_code, actor, decided_at, decision_id
            from programmes.triage_decision {where}
            qualify row_number() over (partition by programme, household_id order by decided_at desc, decision_id desc) = 1
        ) where decision <> 'reopened'
        """, params=[programme] if programme else None).pl()
