"""Clerical review of scored pairs: a stratified sample, shown with only what the decision needs.

Strata, in the order they are offered: `programme_referral` pairs (a programme triage panel sent a household's
evidence to clerical review because it rests on a doubtful link: programmes.clerical_referral; each referred
record is shown with its strongest link to the person it was joined to, and the label is stored against the
referral), `borderline` pairs (match weight within a few points of the threshold, where the model is least
sure and a wrong decision is likeliest) and `random` pairs from everything scored (so the labels also
estimate precision and recall across the board). Pairs already decided are not drawn again.

The reviewer sees forename and surname as recorded (in their own script: "Дмитрий", "Łukasz") beside
the matching forms the model compared ("dmitriy", "lukasz"), date of birth, sex and the postcode district
(outward code) — not the full address, phone or any identifier value; identifiers are shown as same / different / missing.
Each pair also shows why the model scored it so: Splink's match-weight waterfall (the prior, then each
comparison's level and weight, then the final score against the threshold), as text, with comparison labels and
weights only. Each record's source, record id and role (the person the record is about, or a parent/carer named on
another person's record) are shown, so a contact on a pupil's record is not mistaken for the pupil.

Decisions are stored by record id only (linkage_models/clerical.py), each with an optional free-text note; the
last decision can be undone (it stays in the table, marked undone). Every decision, every undo and every review
session is logged in audit.access_log (ids and counts; never the note).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import duckdb

from linkage_models.clerical import record_decision, undo_decision
from warehouse import table_exists

ANSWERS = {"m": "match", "n": "non_match", "u": "unsure"}
UNDO, SKIP, QUIT = "b", "s", "q"
REFERRAL = "programme_referral"
ROLES = {"subject": "the person the record is about", "parent_carer": "a parent/carer named on another's record"}
IDENTIFIERS = ("nhs_number", "upn", "pnc_id", "ni_number")
# the name as recorded beside its matching form: a transliteration can join or part two names, and the
# reviewer must be able to see that it did
SHOWN = ("first_name", "first_name_std", "last_name", "last_name_std", "date_of_birth", "sex", "postcode_district")
LABELS = {"first_name": "forename as recorded", "first_name_std": "forename, matching form",
          "last_name": "surname as recorded", "last_name_std": "surname, matching form",
          "date_of_birth": "date of birth", "sex": "sex", "postcode_district": "postcode district"}


@dataclass(frozen=True)
class Referral:
    """A programme triage panel's referral of one evidence record (programmes.clerical_referral)."""

    decision_id: str  # the triage decision that referred it; the clerical label is stored against it
    programme: str
    household_id: int


@dataclass
class Pair:
    left: tuple[str, str]
    right: tuple[str, str]
    match_probability: float
    match_weight: float
    stratum: str
    referral: Referral | None = None


@dataclass
class PairView:
    """What the reviewer sees for one pair."""

    pair: Pair
    rows: list[tuple[str, str, str]]  # (field, left value, right value)
    identifiers: list[tuple[str, str]]  # (identifier, same | different | missing)
    roles: tuple[str, str] = ("", "")  # each record's record_role ("subject", "parent_carer", ...)
    waterfall: list = field(default_factory=list)  # linkage_models.WaterfallStep, prior to final score


def role_words(role: str) -> str:
    return ROLES.get(role, f"{role.replace('_', ' ')} named on another's record" if role else "unknown")


def _weight(probability: float) -> float:
    return math.log2(probability / (1 - probability))


def referred_pairs(con: duckdb.DuckDBPyConnection) -> list[Pair]:
    """The pairs that answer open programme triage referrals: for each referred record not yet labelled against
    its referral, the record's strongest scored link to another record of the person it is part of (the link that
    put its evidence in the household). One pair per referral and record; a pair shared by two referrals is
    offered once (for the first)."""
    if not (table_exists(con, "programmes.clerical_referral") and table_exists(con, "graph.record_link")):
        return []
    rows = con.execute(
        """
        with open_referral as (
            select r.decision_id, r.programme, r.household_id, r.source || ':' || r.record_id as unique_id,
                   min(r.referred_at) as referred_at
            from programmes.clerical_referral as r
            where not exists (
                select 1 from linkage.clerical_decision as d
                where d.referral_id = r.decision_id and d.undone_at is null
                  and ((d.source_l, d.record_id_l) = (r.source, r.record_id)
                       or (d.source_r, d.record_id_r) = (r.source, r.record_id)))
            group by all
        ),
        member as (select source || ':' || record_id as unique_id, person_id from graph.record_link),
        candidate as (
            select f.*, p.unique_id_l, p.unique_id_r, p.match_probability, p.match_weight,
                   row_number() over (partition by f.decision_id, f.unique_id
                                      order by p.match_probability desc, p.unique_id_l, p.unique_id_r) as rn
            from open_referral as f
            join member as me on me.unique_id = f.unique_id
            join linkage.person_pairs as p on f.unique_id in (p.unique_id_l, p.unique_id_r)
            join member as other
                on other.unique_id = case when p.unique_id_l = f.unique_id then p.unique_id_r else p.unique_id_l end
               and other.person_id = me.person_id
        )
        select decision_id, programme, household_id, unique_id_l, unique_id_r, match_probability, match_weight
        from candidate where rn = 1
        order by referred_at, programme, household_id, unique_id
        """
    ).fetchall()
    pairs, seen = [], set()
    for decision_id, programme, household_id, left, right, probability, weight in rows:
        if (left, right) in seen:
            continue
        seen.add((left, right))
        pairs.append(Pair(tuple(left.split(":", 1)), tuple(right.split(":", 1)), probability, weight, REFERRAL,
                          Referral(decision_id, programme, household_id)))
    return pairs


def sample_pairs(con: duckdb.DuckDBPyConnection, threshold: float, *, borderline: int = 20, random: int = 10,
                 band: float = 4.0, seed: float = 0.42, referrals: bool = True) -> list[Pair]:
    """Draw the review sample: first every pair that answers an open programme triage referral (`referrals`),
    then `borderline` pairs within `band` match-weight points of the threshold, then `random` pairs from the rest
    of the scored pairs. Deterministic for a given seed."""
    referred = referred_pairs(con) if referrals else []
    centre = _weight(threshold)
    con.execute("create or replace temp table _review_referred (unique_id_l varchar, unique_id_r varchar)")
    if referred:
        con.executemany("insert into _review_referred values (?, ?)",
                        [[":".join(p.left), ":".join(p.right)] for p in referred])
    rows = con.execute(
        """
        with undecided as (
            select p.*, split_part(unique_id_l, ':', 1) as source_l,
                   substr(unique_id_l, strpos(unique_id_l, ':') + 1) as record_id_l,
                   split_part(unique_id_r, ':', 1) as source_r,
                   substr(unique_id_r, strpos(unique_id_r, ':') + 1) as record_id_r
            from linkage.person_pairs as p
            anti join _review_referred as f using (unique_id_l, unique_id_r)
        ),
        fresh as (
            select u.* from undecided as u
            anti join (select * from linkage.clerical_decision where undone_at is null) as d
                on ((d.source_l, d.record_id_l, d.source_r, d.record_id_r)
                    = (u.source_l, u.record_id_l, u.source_r, u.record_id_r))
                or ((d.source_l, d.record_id_l, d.source_r, d.record_id_r)
                    = (u.source_r, u.record_id_r, u.source_l, u.record_id_l))
        ),
        near as (
            select *, 'borderline' as stratum from fresh
            where abs(match_weight - ?) <= ? order by hash(unique_id_l, unique_id_r, ?), unique_id_l, unique_id_r limit ?
        ),
        others as (
            select *, 'random' as stratum from fresh
            where (unique_id_l, unique_id_r) not in (select (unique_id_l, unique_id_r) from near)
            order by hash(unique_id_l, unique_id_r, ?), unique_id_l, unique_id_r limit ?
        )
        select source_l, record_id_l, source_r, record_id_r, match_probability, match_weight, stratum
        from (select * from near union all select * from others)
        order by stratum, match_weight
        """,
        # a pseudo-random order from the pair's ids and the seed: random() under setseed is not repeatable when
        # DuckDB scans with several threads, and the reviewer CLI and its tests rely on the same sample
        [centre, band, float(seed), borderline, float(seed), random],
    ).fetchall()
    con.execute("drop table if exists _review_referred")
    return referred + [Pair((r[0], r[1]), (r[2], r[3]), r[4], r[5], r[6]) for r in rows]


def view(con: duckdb.DuckDBPyConnection, pair: Pair, waterfall: list | None = None) -> PairView:
    records = {}
    for source, record_id in (pair.left, pair.right):
        row = con.execute(
            f"""
            select first_name, first_name_std, last_name, last_name_std, cast(date_of_birth as varchar), sex,
                   split_part(postcode, ' ', 1) as postcode_district, {', '.join(IDENTIFIERS)}, record_role
            from staging.person_record where source = ? and record_id = ?
            """,
            [source, record_id],
        ).fetchall()
        records[(source, record_id)] = row[0] if row else (None,) * (len(SHOWN) + len(IDENTIFIERS) + 1)
    left, right = records[pair.left], records[pair.right]
    rows = [(name, left[i] or "—", right[i] or "—") for i, name in enumerate(SHOWN)]
    identifiers = []
    for offset, name in enumerate(IDENTIFIERS, start=len(SHOWN)):
        a, b = left[offset], right[offset]
        if a is None and b is None:
            continue
        identifiers.append((name, "missing" if a is None or b is None else ("same" if a == b else "different")))
    return PairView(pair, rows, identifiers, (left[-1] or "", right[-1] or ""), list(waterfall or []))


def waterfall_lines(steps: list, threshold: float, width: int = 24) -> list[str]:
    """Splink's match-weight waterfall as text: one line per bar (the prior, each comparison's level, the final
    score), its weight as a bar of + or − marks, and the running total; the last line compares the final weight
    with the threshold's. Weights are log2 Bayes factors: +1 doubles the odds that the pair is one person."""
    if not steps:
        return ["(no waterfall: the records are no longer staged or no model is approved)"]
    scale = max(abs(s.match_weight) for s in steps) or 1.0
    label_width = max(len(_bar_label(s)) for s in steps)
    lines = []
    for step in steps:
        marks = round(abs(step.match_weight) / scale * width)
        bar = ("+" if step.match_weight >= 0 else "−") * marks
        lines.append(f"{_bar_label(step):<{label_width}}  {step.match_weight:+7.2f}  {bar:<{width}}  "
                     f"= {step.cumulative:+7.2f}")
    final, needed = steps[-1].cumulative, _weight(threshold)
    verdict = "above" if final >= needed else "below"
    probability = 1 / (1 + 2 ** -final)
    lines.append(f"Final weight {final:+.2f} (probability {probability:.4f}) is {verdict} the threshold's "
                 f"{needed:+.2f} (probability {threshold}).")
    return lines


def _bar_label(step) -> str:
    if step.comparison == "Prior":
        return "start: any two records (prior)"
    if step.comparison == "Final score":
        return "final match weight"
    name = step.comparison.removeprefix("tf_").replace("_", " ")
    return f"{name}: {'how common the value is' if step.term_frequency_adjustment else step.level}"


def _parse(answer: str) -> tuple[str, str | None]:
    """"m" → ("m", None); "n: different dates of birth" → ("n", "different dates of birth")."""
    text = (answer or "").strip()
    letter, note = text[:1].lower(), text[1:].lstrip(" :-\t").strip()
    return letter, note or None


def review(con: duckdb.DuckDBPyConnection, pairs: list[Pair], ask: Callable[[PairView, int, int], str], *,
           reviewer: str, model_version: str | None, model_path=None, threshold: float = 0.99) -> dict[str, int]:
    """Show each pair through `ask` and store the decisions.

    `ask` returns m (match), n (not a match) or u (unsure), optionally followed by a note ("n: twins"); s to skip;
    b to undo the last decision of this session and see that pair again; q to stop. With `model_path` each pair
    carries its waterfall (scored once for the whole sample)."""
    import warehouse
    from linkage_models import explain_pairs

    waterfalls = (explain_pairs(con, model_path, [(":".join(p.left), ":".join(p.right)) for p in pairs])
                  if model_path is not None else [[] for _ in pairs])
    counts = {"match": 0, "non_match": 0, "unsure": 0, "skipped": 0, "undone": 0}
    done: list[tuple[int, str, str]] = []  # (position in the sample, decision id, decision): what undo reverses
    position = 0
    while position < len(pairs):
        pair = pairs[position]
        letter, note = _parse(ask(view(con, pair, waterfalls[position]), position + 1, len(pairs)))
        if letter == QUIT:
            break
        if letter == UNDO:
            if done:
                position, decision_id, decision = done.pop()
                undo_decision(con, decision_id)
                counts[decision] -= 1
                counts["undone"] += 1
                warehouse.log_access(con, reviewer, "clerical_undo", _pair_name(pairs[position]),
                                     "clerical review of links", {"decision_id": decision_id})
            continue
        if letter not in ANSWERS:
            counts["skipped"] += 1
            position += 1
            continue
        referral = pair.referral.decision_id if pair.referral else None
        decision_id = record_decision(con, pair.left, pair.right, ANSWERS[letter], reviewer=reviewer,
                                      stratum=pair.stratum, match_probability=pair.match_probability,
                                      model_version=model_version, note=note, referral_id=referral)
        warehouse.log_access(con, reviewer, "clerical_decision", _pair_name(pair), "clerical review of links",
                             {"decision_id": decision_id, "decision": ANSWERS[letter], "stratum": pair.stratum,
                              "referral_id": referral, "with_note": note is not None})
        done.append((position, decision_id, ANSWERS[letter]))
        counts[ANSWERS[letter]] += 1
        position += 1
    referrals = sum(1 for index, *_ in done if pairs[index].referral is not None)
    warehouse.log_access(con, reviewer, "clerical_review", "linkage.person_pairs", "clerical review of links",
                         {"pairs_shown": counts["match"] + counts["non_match"] + counts["unsure"] + counts["skipped"],
                          **counts, "referrals_answered": referrals})
    return counts


def _pair_name(pair: Pair) -> str:
    """The pair by source and record id only, for the audit log."""
    return f"pair:{':'.join(pair.left)}|{':'.join(pair.right)}"
