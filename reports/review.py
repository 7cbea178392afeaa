"""Clerical review of scored pairs: a stratified sample, shown with only what the decision needs.

Strata: `borderline` pairs (match weight within a few points of the threshold, where the model is least
sure and a wrong decision is likeliest) and `random` pairs from everything scored (so the labels also
estimate precision and recall across the board). Pairs already decided are not drawn again.

The reviewer sees forename and surname as recorded (in their own script: "Дмитрий", "Łukasz") beside
the matching forms the model compared ("dmitriy", "lukasz"), date of birth, sex and the postcode district
(outward code) — not the full address, phone or any identifier value; identifiers are shown as same / different / missing.
Decisions are stored by record id only (linkage_models/clerical.py) and every review session is logged
in audit.access_log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import duckdb

from linkage_models.clerical import record_decision

ANSWERS = {"m": "match", "n": "non_match", "u": "unsure"}
IDENTIFIERS = ("nhs_number", "upn", "pnc_id", "ni_number")
# the name as recorded beside its matching form: a transliteration can join or part two names, and the
# reviewer must be able to see that it did
SHOWN = ("first_name", "first_name_std", "last_name", "last_name_std", "date_of_birth", "sex", "postcode_district")
LABELS = {"first_name": "forename as recorded", "first_name_std": "forename, matching form",
          "last_name": "surname as recorded", "last_name_std": "surname, matching form",
          "date_of_birth": "date of birth", "sex": "sex", "postcode_district": "postcode district"}


@dataclass
class Pair:
    left: tuple[str, str]
    right: tuple[str, str]
    match_probability: float
    match_weight: float
    stratum: str


@dataclass
class PairView:
    """What the reviewer sees for one pair."""

    pair: Pair
    rows: list[tuple[str, str, str]]  # (field, left value, right value)
    identifiers: list[tuple[str, str]]  # (identifier, same | different | missing)


def _weight(probability: float) -> float:
    return math.log2(probability / (1 - probability))


def sample_pairs(con: duckdb.DuckDBPyConnection, threshold: float, *, borderline: int = 20, random: int = 10,
                 band: float = 4.0, seed: float = 0.42) -> list[Pair]:
    """Draw the review sample: `borderline` pairs within `band` match-weight points of the threshold, then
    `random` pairs from the rest of the scored pairs. Deterministic for a given seed."""
    centre = _weight(threshold)
    con.execute(f"select setseed({float(seed)})")
    rows = con.execute(
        """
        with undecided as (
            select p.*, split_part(unique_id_l, ':', 1) as source_l,
                   substr(unique_id_l, strpos(unique_id_l, ':') + 1) as record_id_l,
                   split_part(unique_id_r, ':', 1) as source_r,
                   substr(unique_id_r, strpos(unique_id_r, ':') + 1) as record_id_r
            from linkage.person_pairs as p
        ),
        fresh as (
            select u.* from undecided as u
            anti join linkage.clerical_decision as d
                on ((d.source_l, d.record_id_l, d.source_r, d.record_id_r)
                    = (u.source_l, u.record_id_l, u.source_r, u.record_id_r))
                or ((d.source_l, d.record_id_l, d.source_r, d.record_id_r)
                    = (u.source_r, u.record_id_r, u.source_l, u.record_id_l))
        ),
        near as (
            select *, 'borderline' as stratum from fresh
            where abs(match_weight - ?) <= ? order by random() limit ?
        ),
        others as (
            select *, 'random' as stratum from fresh
            where (unique_id_l, unique_id_r) not in (select (unique_id_l, unique_id_r) from near)
            order by random() limit ?
        )
        select source_l, record_id_l, source_r, record_id_r, match_probability, match_weight, stratum
        from (select * from near union all select * from others)
        order by stratum, match_weight
        """,
        [centre, band, borderline, random],
    ).fetchall()
    return [Pair((r[0], r[1]), (r[2], r[3]), r[4], r[5], r[6]) for r in rows]


def view(con: duckdb.DuckDBPyConnection, pair: Pair) -> PairView:
    records = {}
    for source, record_id in (pair.left, pair.right):
        row = con.execute(
            f"""
            select first_name, first_name_std, last_name, last_name_std, cast(date_of_birth as varchar), sex,
                   split_part(postcode, ' ', 1) as postcode_district, {', '.join(IDENTIFIERS)}
            from staging.person_record where source = ? and record_id = ?
            """,
            [source, record_id],
        ).fetchall()
        records[(source, record_id)] = row[0] if row else (None,) * (len(SHOWN) + len(IDENTIFIERS))
    left, right = records[pair.left], records[pair.right]
    rows = [(name, left[i] or "—", right[i] or "—") for i, name in enumerate(SHOWN)]
    identifiers = []
    for offset, name in enumerate(IDENTIFIERS, start=len(SHOWN)):
        a, b = left[offset], right[offset]
        if a is None and b is None:
            continue
        identifiers.append((name, "missing" if a is None or b is None else ("same" if a == b else "different")))
    return PairView(pair, rows, identifiers)


def review(con: duckdb.DuckDBPyConnection, pairs: list[Pair], ask: Callable[[PairView, int, int], str], *,
           reviewer: str, model_version: str | None) -> dict[str, int]:
    """Show each pair through `ask` (returns m, n, u, s to skip, or q to stop) and store the decisions."""
    import warehouse

    counts = {"match": 0, "non_match": 0, "unsure": 0, "skipped": 0}
    for position, pair in enumerate(pairs, start=1):
        answer = ask(view(con, pair), position, len(pairs)).strip().lower()[:1]
        if answer == "q":
            break
        if answer not in ANSWERS:
            counts["skipped"] += 1
            continue
        record_decision(con, pair.left, pair.right, ANSWERS[answer], reviewer=reviewer, stratum=pair.stratum,
                        match_probability=pair.match_probability, model_version=model_version)
        counts[ANSWERS[answer]] += 1
    warehouse.log_access(con, reviewer, "clerical_review", "linkage.person_pairs", "clerical review of links",
                         {"pairs_shown": sum(counts.values()), **counts})
    return counts
