"""The Splink person model: settings built from the comparison library, trained unsupervised, saved with provenance.

Which comparisons, blocking and training rules a model has is decided from the data by
_model_builder.py; the comparisons with custom levels live here.

Household-aware by construction: surname and address are ONE comparison (their joint agreement gets one
m/u pair instead of being counted twice), and forename and date-of-birth disagreement levels are separate,
so a sibling or a parent who shares surname and address is still outweighed by a different forename or
date of birth. See docs/adr/0002-person-linkage-model.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import splink
import splink.comparison_library as cl
from splink import Linker, block_on
from splink.internals.exceptions import SplinkException  # EMTrainingException and the rest (no public path)

from linkage_models._engine import SPLINK_LOG_LEVEL, DuckDBEngine
from linkage_models._model_builder import (ADDRESS_SIGNATURE_WORDS, INPUT_TABLE, TRAINING_RECORDS, ModelBuildError,
                                          ModelPlan, build_input, build_plan, load_plan, require_records)

def _word_share(numerator: int, denominator: int) -> str:
    """At least numerator/denominator of the two addresses' distinct words in common (token Jaccard).

    The bit sets of the words (address_sig*, _model_builder.address_signature_sql) decide first, with integer
    operations; the exact list comparison runs only for the pairs the bit sets let through. Two words on one bit
    mostly let an extra pair through to the exact test; only two SHARED words on one bit can hold a pair back
    (13 of 1.1 million pairs in a 1M-record city's date-of-birth block: docs/adr/0006)."""
    # bit_count is a TINYINT in DuckDB: widened before any arithmetic, or a long address overflows it
    shared = " + ".join(f"cast(bit_count(address_sig{k}_l & address_sig{k}_r) as integer)"
                        for k in range(ADDRESS_SIGNATURE_WORDS))
    either = " + ".join(f"cast(bit_count(address_sig{k}_l | address_sig{k}_r) as integer)"
                        for k in range(ADDRESS_SIGNATURE_WORDS))
    return (f"{denominator} * ({shared}) >= {numerator} * ({either}) and "
            f"{denominator} * len(list_intersect(address_tokens_l, address_tokens_r)) >= "
            f"{numerator} * len(list_distinct(list_concat(address_tokens_l, address_tokens_r)))")


# The address levels of the joint surname-and-address comparison: evidence two records share a home.
_SAME_ADDRESS = {
    "uprn": "uprn_l = uprn_r",
    "postcode": "postcode_l = postcode_r",
    # same house numbers and most words in common (a typo or a missing line, not a neighbour)
    "address_std": "(address_numbers_l = address_numbers_r and len(address_tokens_l) >= 2 and "
                   f"len(address_tokens_r) >= 2 and {_word_share(6, 10)})",
}


def _level(sql: str, label: str, **extra) -> dict:
    return {"sql_condition": sql, "label_for_charts": label, **extra}


# forename and surname entered the other way round (often with a typo as well): the forename, the surname and
# the surname-and-address comparisons all credit it
_SWAPPED = ("jaro_winkler_similarity(first_name_std_l, last_name_std_r) >= 0.9 and "
            "jaro_winkler_similarity(last_name_std_l, first_name_std_r) >= 0.9")

_FORENAME_LEVELS = [
    ("exact", "first_name_std_l = first_name_std_r"),
    ("same formal name (nickname)", "first_name_formal_l = first_name_formal_r"),
    ("first/last swapped", _SWAPPED),
    # a forename recorded as its initial ("K Smith"), the other in full: compatible, not two names
    ("initial of the other", "(length(first_name_std_l) = 1 or length(first_name_std_r) = 1) and "
                             "substr(first_name_std_l, 1, 1) = substr(first_name_std_r, 1, 1)"),
    ("Jaro-Winkler >= 0.92", "jaro_winkler_similarity(first_name_std_l, first_name_std_r) >= 0.92"),
    ("Jaro-Winkler >= 0.8", "jaro_winkler_similarity(first_name_std_l, first_name_std_r) >= 0.8"),
    ("same initial", "substr(first_name_std_l, 1, 1) = substr(first_name_std_r, 1, 1)"),
]


def forename_comparison(contacts: list[str] = ()) -> cl.CustomComparison:
    """Forenames in degrees; with `contacts`, each degree split by whether a household's contact agrees.

    `contacts` are phone or email columns the data shows to be shared by different people
    (_model_builder.shared_share): a child's record carries a parent's number. Such a number is strong
    evidence only between records with the same forename; between records whose forenames differ it says
    "same household", which the surname-and-address comparison already weighs, so the "different" level
    ignores it. Modelled jointly, the forename's and the contact's evidence are counted once.
    """
    levels = [_level("first_name_std_l is null or first_name_std_r is null", "null", is_null_level=True)]
    same = " or ".join(f"{c}_l = {c}_r" for c in contacts)
    differ = " and ".join(f"{c}_l <> {c}_r" for c in contacts)
    names = " or ".join(f"same {c}" for c in contacts)
    for label, condition in _FORENAME_LEVELS:
        tf = {"tf_adjustment_column": "first_name_std"} if label == "exact" else {}
        # only the same name (its formal form, or its initial alone) with the household's number is one
        # person: siblings and parents often share an initial or a similar name, and then the number says
        # nothing more
        if contacts and label in ("exact", "same formal name (nickname)", "initial of the other"):
            levels.append(_level(f"({condition}) and ({same})", f"{label}, {names}", **tf))
            levels.append(_level(f"({condition}) and {differ}", f"{label}, other {names.removeprefix('same ')}",
                                 **tf))
        levels.append(_level(condition, label, **tf))
    levels.append({"sql_condition": "ELSE", "label_for_charts": "different"})
    return cl.CustomComparison(output_column_name="forename", comparison_levels=levels)


_SIMILAR_ADDRESS = {
    "postcode": "(damerau_levenshtein(postcode_l, postcode_r) <= 1 and "
                "split_part(address_numbers_l, ' ', 1) = split_part(address_numbers_r, ' ', 1))",
    "address_std": f"(len(address_tokens_l) >= 2 and len(address_tokens_r) >= 2 and {_word_share(1, 2)})",
}


def surname_address_comparison(address_fields: list[str] = ("uprn", "postcode"),
                               households: bool = False) -> cl.CustomComparison:
    """Surname and address together, so a shared household is one piece of evidence, not two.

    Address evidence comes in degrees, strongest first, from whatever address fields the sources share:
    "identical address" (word for word, same postcode), "same home" (one UPRN, or the same address text at one postcode), "same address" (the postcode — UK or
    not — or the address text: same house numbers and most words in common), "similar address" (typos:
    a postcode one edit away with the same house number, or half the address words in common). Each
    surname degree (same, similar, swapped with the forename, other) meets each address degree in its
    own level, so EM learns how much a neighbour or a typo is worth on the data at hand.
    """
    fields = set(address_fields)
    words = _SAME_ADDRESS["address_std"]
    # the same home: one UPRN, or the same address text (house numbers and most words) at one postcode
    home = [_SAME_ADDRESS["uprn"]] if "uprn" in fields else []
    if "address_std" in fields:
        home.append(f"(postcode_l = postcode_r and {words})" if "postcode" in fields else words)
    # the same postcode (a street or part of one), or the same address text where the postcodes differ
    area = [_SAME_ADDRESS[f] for f in ("postcode", "address_std") if f in fields]
    similar_parts = [_SIMILAR_ADDRESS[f] for f in address_fields if f in _SIMILAR_ADDRESS]
    # word for word the same address (and postcode): the strongest address evidence there is
    identical = (["address_std_l = address_std_r" + (" and postcode_l = postcode_r" if "postcode" in fields else "")]
                 if "address_std" in fields else [])
    degrees = [(label, "(" + " or ".join(parts) + ")") for label, parts in (
        ("identical address", identical), ("same home", home), ("same address", area),
        ("similar address", similar_parts)) if parts]
    surname = {
        "same surname": "last_name_std_l = last_name_std_r",
        "similar surname": "jaro_winkler_similarity(last_name_std_l, last_name_std_r) >= 0.9",
        # the surname is in the other record's forename field: the swap the forename comparison also sees
        "first/last swapped": _SWAPPED,
        "other surname": None,
    }
    levels = [_level("last_name_std_l is null or last_name_std_r is null", "null", is_null_level=True)]
    for label, condition in surname.items():
        for address_label, address in (*degrees, ("other address", None)):
            parts = [c for c in (condition, address) if c]
            if not parts:
                continue  # other surname, other address: the ELSE level
            # a rare surname is stronger evidence than a common one between strangers; between members of one
            # household it is shared whatever its frequency, so where an address is a household's the
            # frequency only weighs the surname at another address
            tf = ({"tf_adjustment_column": "last_name_std"}
                  if label == "same surname" and not (households and address) else {})
            levels.append(_level(" and ".join(parts), f"{label}, {address_label}", **tf))
    levels.append({"sql_condition": "ELSE", "label_for_charts": "different"})
    return cl.CustomComparison(output_column_name="surname_and_address", comparison_levels=levels)


def surname_comparison() -> cl.CustomComparison:
    """The surname where no address is shared: Splink's name levels (exact with term frequencies, then
    Jaro-Winkler 0.9, 0.8, 0.7), and forename and surname entered the other way round, which the forename
    comparison also sees (as the surname-and-address comparison does)."""
    jw = "jaro_winkler_similarity(last_name_std_l, last_name_std_r)"
    return cl.CustomComparison(
        output_column_name="last_name_std",
        comparison_levels=[
            _level("last_name_std_l is null or last_name_std_r is null", "null", is_null_level=True),
            _level("last_name_std_l = last_name_std_r", "exact", tf_adjustment_column="last_name_std"),
            _level(f"{jw} >= 0.9", "Jaro-Winkler >= 0.9"),
            _level(_SWAPPED, "first/last swapped"),
            _level(f"{jw} >= 0.8", "Jaro-Winkler >= 0.8"),
            _level(f"{jw} >= 0.7", "Jaro-Winkler >= 0.7"),
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    )


def date_of_birth_comparison(parent_bound: bool = False) -> cl.CustomComparison:
    """Date of birth in degrees of agreement. With `parent_bound`, an undated record stated to be the parent of a
    dated one (its `born_before`, _model_builder.input_select) disagrees with a record born after that bound: a
    parent and their child often share a name, an address and a phone, and the parent's date is the one left
    blank (a pupil's or a child in need's parent)."""
    bound = ([_level("(date_of_birth_l is null and date_of_birth_r > born_before_l) or "
                     "(date_of_birth_r is null and date_of_birth_l > born_before_r)",
                     "undated parent, the other born too late to be them")]
             if parent_bound else [])
    return cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_levels=[
            *bound,
            _level("date_of_birth_l is null or date_of_birth_r is null", "null", is_null_level=True),
            _level("date_of_birth_l = date_of_birth_r", "exact"),
            _level("day(date_of_birth_l) = month(date_of_birth_r) and month(date_of_birth_l) = day(date_of_birth_r) "
                   "and year(date_of_birth_l) = year(date_of_birth_r)", "day and month transposed"),
            _level("month(date_of_birth_l) = month(date_of_birth_r) and day(date_of_birth_l) = day(date_of_birth_r) "
                   "and abs(year(date_of_birth_l) - year(date_of_birth_r)) = 1", "year off by one"),
            # a mistyped digit of the year (1985 / 1958 / 1995), or a year guessed: the day and month still agree,
            # which strangers do one time in 365
            _level("month(date_of_birth_l) = month(date_of_birth_r) and day(date_of_birth_l) = day(date_of_birth_r)",
                   "same day and month, another year"),
            _level("year(date_of_birth_l) = year(date_of_birth_r) and month(date_of_birth_l) = month(date_of_birth_r)",
                   "same month and year"),
            _level("abs(date_diff('day', date_of_birth_l, date_of_birth_r)) <= 366", "within a year"),
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    )


def postcode_comparison() -> cl.CustomComparison:
    """The postcode as evidence of its own (where records at one postcode are mostly one person): exact, one
    character off, then the sector and the district of a UK-shaped postcode ("outward inward"); a postcode of
    another shape (kept, flagged) only ever meets the first two levels."""
    inward_l, inward_r = "split_part(postcode_l, ' ', 2)", "split_part(postcode_r, ' ', 2)"
    district = (f"split_part(postcode_l, ' ', 1) = split_part(postcode_r, ' ', 1) "
                f"and length({inward_l}) = 3 and length({inward_r}) = 3")
    return cl.CustomComparison(
        output_column_name="postcode",
        comparison_levels=[
            _level("postcode_l is null or postcode_r is null", "null", is_null_level=True),
            _level("postcode_l = postcode_r", "exact"),
            _level("damerau_levenshtein(postcode_l, postcode_r) <= 1", "one character off"),
            _level(f"{district} and substr({inward_l}, 1, 1) = substr({inward_r}, 1, 1)", "same sector"),
            _level(district, "same district"),
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    )


def fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(
        f"select count(*), md5(string_agg(unique_id, ',' order by unique_id)) from {INPUT_TABLE}"
    ).fetchall()[0]
    return f"{row[0]}:{row[1]}"


def make_linker(con: duckdb.DuckDBPyConnection, settings, engine=None) -> Linker:
    """A Linker over the Splink input on the engine (DuckDB in the warehouse by default, or Spark)."""
    return (engine or DuckDBEngine()).linker(con, INPUT_TABLE, settings)


@dataclass
class TrainedModel:
    version: str
    path: Path
    metadata: dict


TRAINING_SAMPLE = "person_linkage_training_sample"  # main schema, like the input table


def _training_table(con: duckdb.DuckDBPyConnection, max_records: int) -> tuple[str, int]:
    """The records training reads: all of them, or a deterministic sample of at most `max_records`.

    Sampling records leaves every training estimate unbiased: λ (matching pairs / all pairs) and u
    (agreement among random pairs) scale the same way on both sides of the ratio, and m comes from
    EM within blocks whose match share does not change. It keeps EM's blocked pairs — which grow with
    the square of the records per block — bounded at any city size.
    """
    total = con.execute(f"select count(*) from {INPUT_TABLE}").fetchall()[0][0]
    if total <= max_records:
        return INPUT_TABLE, total
    per_mille = max(1, int(1000 * max_records / total))
    con.execute(f"create or replace table {TRAINING_SAMPLE} as select * from {INPUT_TABLE} "
                f"where hash(unique_id) % 1000 < {per_mille}")
    return TRAINING_SAMPLE, con.execute(f"select count(*) from {TRAINING_SAMPLE}").fetchall()[0][0]


# Splink's customary guess of the deterministic rules' recall, for the first λ only (prior_from_scores)
RULES_RECALL_GUESS = 0.8

# A level's m below this is a training artefact, not a measurement: EM on one blocked sample saw no matching
# pair disagree (an email, a PNC id) and would make any disagreement veto a link at -100 bits or more.
M_FLOOR = 0.005


def regularise(model: dict, pairs_sampled: float) -> dict:
    """Bound what finite training data cannot establish, in a saved Splink model (edited in place).

    - u of a level no random pair reached: the upper bound of a zero count in `pairs_sampled` trials
      (rule of three) — conservative, where Splink would fall back on a fixed default weight;
    - m of a level EM never saw: equal to its u, so the level is neutral (a floor under both would make an
      unseen level strong evidence for a link);
    - m of a level below M_FLOOR: M_FLOOR; the comparison's m renormalised to sum to 1.
    """
    u_unseen = 3.0 / max(pairs_sampled, 1.0)
    for comparison in model["comparisons"]:
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        for level in levels:
            if not isinstance(level.get("u_probability"), float):
                level["u_probability"] = u_unseen
            if not isinstance(level.get("m_probability"), float):
                level["m_probability"] = level["u_probability"]
            elif level["m_probability"] < M_FLOOR:
                level["m_probability"] = M_FLOOR
        total = sum(level["m_probability"] for level in levels)
        for level in levels:
            level["m_probability"] = level["m_probability"] / total
    return model


def score_histogram(linker: Linker) -> list[tuple[int, float, int]]:
    """The trained model's scores of every candidate pair, summarised: (blocking rule index — the rule that
    brought the pair first, Splink's match_key —, match weight to 0.01 bits, pairs)."""
    pairs = linker.inference.predict()
    try:
        rows = pairs.query_sql("select cast(match_key as integer) as rule, round(match_weight, 2) as weight, "
                               "count(*) as pairs from {this} where match_weight is not null group by 1, 2"
                               ).as_record_list()
    finally:
        pairs.drop_table_from_database_and_remove_from_cache()
    return [(int(row["rule"]), float(row["weight"]), int(row["pairs"])) for row in rows]


def _match_probabilities(histogram: list[tuple[int, float, int]], scored_with: float, prior: float):
    """(rule, pairs, P(match)) for each bin of the histogram (scored with λ = `scored_with`), at λ = `prior`."""
    shift = math.log2(prior / (1 - prior)) - math.log2(scored_with / (1 - scored_with))
    return [(rule, n, 1.0 / (1.0 + 2.0 ** -min(max(weight + shift, -1000.0), 1000.0)))
            for rule, weight, n in histogram]


def prior_from_scores(histogram: list[tuple[int, float, int]], records: int, prior: float,
                      floor: float) -> tuple[float, int]:
    """λ, the probability that two random records match, re-estimated from the trained model's own scores
    (`histogram`, from score_histogram with the model at λ = `prior`).

    With m and u trained, λ has a maximum-likelihood value over the candidate pairs (EM's update for λ alone):
    λ = Σ P(match | pair, λ) / all pairs, iterated to its fixed point; pairs no blocking rule reaches count as
    non-matches. Splink's estimate from the deterministic rules needs their recall, which cannot be known
    before training and was guessed (0.8): on the realistic city the rules find ≈ 35 % of true pairs and on
    historical_50k ≈ 17 %, so λ came out 1.2 and 2.3 bits too small and every pair's probability with it.
    The scores are summarised as a histogram of match weights (0.01 bits), so the iteration costs nothing.
    `floor`: λ never falls below the rules' pairs counted as certain matches (their recall taken as 1).
    Returns (λ, candidate pairs scored).
    """
    all_pairs = records * (records - 1) / 2
    scored = sum(n for _, _, n in histogram)
    if not histogram or all_pairs <= 0:
        return prior, scored
    estimate = prior
    for _ in range(200):
        updated = sum(n * p for _, n, p in _match_probabilities(histogram, prior, estimate)) / all_pairs
        updated = min(max(updated, floor, 1.0 / all_pairs), 0.5)
        if abs(math.log2(updated) - math.log2(estimate)) < 1e-4:
            return updated, scored
        estimate = updated
    return estimate, scored


def barren_rules(histogram: list[tuple[int, float, int]], scored_with: float, prior: float,
                 checked: set[int]) -> dict[int, tuple[int, float]]:
    """Of the rules worth checking (indices `checked`), those whose pairs — the ones no earlier rule brought —
    the trained model expects to match less than MIN_RULE_YIELD of the time: index → (pairs, expected matches)."""
    from linkage_models._model_builder import MIN_RULE_YIELD

    totals: dict[int, list[float]] = {}
    for rule, n, p in _match_probabilities(histogram, scored_with, prior):
        if rule in checked:
            total = totals.setdefault(rule, [0, 0.0])
            total[0] += n
            total[1] += n * p
    return {rule: (int(n), expected) for rule, (n, expected) in totals.items() if expected < MIN_RULE_YIELD * n}


def train_person_model(con: duckdb.DuckDBPyConnection, models_dir: Path, *, max_pairs: float = 1e7,
                       max_records: int = TRAINING_RECORDS, seed: int = 1, settings_path: Path | None = None,
                       engine=None) -> TrainedModel:
    """Unsupervised training on the staged records; saves a new version (never promoted here).

    The model is built from the fields the staged records carry (linkage_models/_model_builder.py), or from
    a pinned settings file (`settings_path`, a settings.json a data team reviewed and edited). The settings
    used are written beside the trained model. Raises ModelBuildError (one line) when there is too little
    data; a training block that yields no pairs or cannot be estimated is skipped and logged, not fatal.
    `engine` (linkage_models/_engine.py) runs the Splink work; the plan is built and saved in DuckDB SQL.
    """
    engine = engine or DuckDBEngine()
    pinned = load_plan(settings_path) if settings_path is not None else None
    records = build_input(con, pinned.identifiers if pinned else None)
    require_records(records)
    table, trained_on = _training_table(con, max_records)
    plan = pinned or build_plan(con, table=table)
    linker = engine.linker(con, table, plan.splink_settings)
    records_sdf = engine.records
    log = logging.getLogger("familylink.model")
    skipped = list(plan.skipped)
    rules_estimated = False
    if plan.deterministic_rules:
        try:
            # a first λ for EM's start (re-estimated from the trained model's scores below): the rules' pairs
            # over all pairs, with Splink's usual guess of the rules' recall
            linker.training.estimate_probability_two_random_records_match(plan.deterministic_rules,
                                                                          recall=RULES_RECALL_GUESS)
            rules_estimated = True
        except (SplinkException, ZeroDivisionError, ValueError) as exc:
            log.info("prior not estimated (%s): Splink's default kept", exc.__class__.__name__)
            skipped.append({"rule": "deterministic rules", "reason": f"prior not estimated ({exc.__class__.__name__})"})
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed, **engine.u_sampling)
    trained = 0
    for rule in plan.training_rules:
        # an EM session that fails midway leaves the linker's comparisons half-edited: restart from the
        # model as it was before the block
        before = linker.misc.save_model_to_json()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule["columns"]))
            trained += 1
        except (SplinkException, ZeroDivisionError, ValueError) as exc:
            # ValueError: Splink refuses an m value that underflowed (EM diverged in this block)
            log.warning("training block skipped: %s (%s)", rule["rule"], exc.__class__.__name__)
            skipped.append({"rule": rule["rule"], "reason": f"EM could not be estimated ({exc.__class__.__name__})"})
            linker = Linker(records_sdf, before, log_level=SPLINK_LOG_LEVEL)
    if trained == 0:
        raise ModelBuildError(f"too little data to train a person model: none of {len(plan.training_rules)} "
                              f"training blocks could be estimated on {trained_on} records")
    trained_at = dt.datetime.now(dt.timezone.utc)
    version = trained_at.strftime("%Y%m%dT%H%M%SZ")
    out = Path(models_dir) / "person" / version
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.duckdb.json"
    # the approved model is always in DuckDB SQL (the practitioner service links referrals with it)
    model = regularise(engine.model_json(linker, plan.splink_settings),
                       min(max_pairs, trained_on * (trained_on - 1) / 2))
    linker = engine.relink(records_sdf, model)
    from_rules = model["probability_two_random_records_match"]
    floor = from_rules * RULES_RECALL_GUESS if rules_estimated else 0.0
    histogram = score_histogram(linker)
    prior, scored = prior_from_scores(histogram, trained_on, from_rules, floor)
    # the wider blocks stay only where this model expects their pairs to be worth scoring (_model_builder)
    rules = plan.splink_settings["blocking_rules_to_generate_predictions"]
    checked = {i for i, rule in enumerate(rules) if rule["blocking_rule"] in set(plan.checked_rules)}
    barren = barren_rules(histogram, from_rules, prior, checked)
    if barren and len(barren) == len(rules):  # a model with no blocking rule would link nothing, silently
        log.warning("every blocking rule looks barren to the trained model; all are kept: review its weights")
        barren = {}
    for i, (pairs, expected) in sorted(barren.items()):
        reason = f"the trained model expects {expected:.0f} of its {pairs} pairs to match (under 1 in 100)"
        log.info("blocking rule dropped: %s: %s", rules[i]["blocking_rule"], reason)
        skipped.append({"rule": rules[i]["blocking_rule"], "reason": reason})
    if barren:
        kept = [rule for i, rule in enumerate(rules) if i not in barren]
        plan.splink_settings["blocking_rules_to_generate_predictions"] = kept
        plan.checked_rules = [sql for sql in plan.checked_rules if sql in {rule["blocking_rule"] for rule in kept}]
        model["blocking_rules_to_generate_predictions"] = [
            rule for i, rule in enumerate(model["blocking_rules_to_generate_predictions"]) if i not in barren]
        prior, scored = prior_from_scores([h for h in histogram if h[0] not in barren], trained_on, from_rules, floor)
    plan.skipped = skipped
    plan.write(out / "settings.json")
    log.info("prior: %.3g from the rules, %.3g from %d scored pairs", from_rules, prior, scored)
    model["probability_two_random_records_match"] = prior
    model_path.write_text(json.dumps(model, indent=2), encoding="utf-8")
    linker = engine.relink(records_sdf, model)
    metadata = {
        "version": version, "trained_at": trained_at.isoformat(), "splink_version": splink.__version__,
        "engine": engine.name, "training_data_fingerprint": fingerprint(con), "records": records,
        "records_trained_on": trained_on, "max_pairs": max_pairs, "identifiers": plan.identifiers,
        "settings_file": "settings.json", "settings_pinned_from": str(settings_path) if settings_path else None,
        "training_blocks_skipped": skipped,
        "prior": {"probability_two_random_records_match": prior, "from_deterministic_rules": from_rules,
                  "pairs_scored": scored},
        "settings_sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    for name, chart in (("match_weights", linker.visualisations.match_weights_chart()),
                        ("m_u_parameters", linker.visualisations.m_u_parameters_chart())):
        chart.save(str(out / f"{name}.html"), inline=True)
    linker.table_management.delete_tables_created_by_splink_from_db()
    con.execute(f"drop table if exists {TRAINING_SAMPLE}")
    return TrainedModel(version, model_path, metadata)


def model_identifiers(model_path: Path) -> dict[str, str] | None:
    """The identifier schemes a trained model reads (its metadata), so prediction builds the same input."""
    meta = Path(model_path).parent / "metadata.json"
    if meta.exists():
        return json.loads(meta.read_text(encoding="utf-8")).get("identifiers")
    return None


@dataclass
class LinkResult:
    clusters: "pl.DataFrame"  # source, record_id, cluster_id, match_probability
    scored_pairs: int
    flags: "pl.DataFrame"  # source, record_id, cluster_key, reason, action (over-merge guard)


def _split_unique_id(frame: "pl.DataFrame") -> "pl.DataFrame":
    import polars as pl

    return frame.with_columns(
        pl.col("unique_id").str.splitn(":", 2).struct.rename_fields(["source", "record_id"]).alias("_k")
    ).unnest("_k")


def predict_and_cluster(con: duckdb.DuckDBPyConnection, model_path: Path, threshold: float,
                        review_threshold: float = 0.5, engine=None) -> LinkResult:
    """Score candidate pairs with an approved model and cluster at the threshold, honouring clerical
    decisions and the over-merge guard (linkage_models/_clusters.py).

    Pairs at or above `review_threshold` are kept in linkage.person_pairs for reports and clerical review.
    """
    import polars as pl

    from linkage_models._clusters import cluster_persons

    import time

    started = time.perf_counter()
    build_input(con, model_identifiers(model_path))
    engine = engine or DuckDBEngine()
    with engine.scratch(con):
        linker = make_linker(con, str(model_path), engine)
        pairs = linker.inference.predict(threshold_match_probability=min(review_threshold, threshold))
    engine.save_pairs(con, pairs, "linkage.person_pairs", "unique_id_l, unique_id_r, match_weight, match_probability")
    with engine.scratch(con):
        linker.table_management.delete_tables_created_by_splink_from_db()
    logging.getLogger("familylink.link").info("link step predict took %.1f s", time.perf_counter() - started)
    started = time.perf_counter()
    clustering = cluster_persons(con, INPUT_TABLE, threshold, engine)
    con.register("_clusters", clustering.clusters)
    # each record's strongest accepted link (null for a record linked to nothing)
    frame = con.sql(
        f"""
        with ends as (
            select unique_id_l as unique_id, match_probability from linkage.person_pairs
            where match_probability >= {float(threshold)}
            union all
            select unique_id_r, match_probability from linkage.person_pairs
            where match_probability >= {float(threshold)}
        ),
        strongest as (select unique_id, max(match_probability) as match_probability from ends group by unique_id)
        select c.unique_id, c.cluster_id, s.match_probability
        from _clusters as c left join strongest as s using (unique_id)
        """
    ).pl()
    con.unregister("_clusters")
    scored = con.execute("select count(*) from linkage.person_pairs").fetchall()[0][0]
    clusters = _split_unique_id(frame).select("source", "record_id", pl.col("cluster_id").cast(pl.String),
                                              "match_probability")
    flags = _split_unique_id(clustering.flags).select("source", "record_id", "cluster_key", "reason", "action")
    logging.getLogger("familylink.link").info("link step cluster took %.1f s", time.perf_counter() - started)
    return LinkResult(clusters, scored, flags)
