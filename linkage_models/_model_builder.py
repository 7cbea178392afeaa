"""The person model built from the data's fields: what the staged records carry decides the comparisons,
the blocking rules and the training plan (docs/adr/0006-model-from-the-data.md).

1. `profile`: the share of each source's records that populate each linkable field.
2. A field is *usable* when at least min(2, number of sources) sources populate it (≥ MIN_COVERAGE of their
   records): a field only one of several agencies fills cannot link across them.
3. Comparisons come from Splink's comparison library (or custom levels where the household rule needs them,
   see _person_model.py); each identifier scheme gets one, term frequencies where names repeat.
4. Candidate blocking and training rules over usable fields are counted with Splink's blocking analysis;
   a rule that yields no pairs, or too many, is skipped with the reason logged and kept in the plan.

The plan (Splink settings + fields, coverage and skipped rules) is a reviewable JSON file. A data team can
edit it and pin it (`familylink train --settings FILE`), and every trained model keeps a copy of its own.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, SettingsCreator, block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules

from sources import ATTRIBUTE
from warehouse import column_names

log = logging.getLogger("familylink.model")

INPUT_TABLE = "person_linkage_input"  # main schema: Splink reads columns of unqualified tables

# Canonical identifier columns of staging.person_record and whether a value is unique nationally or only
# inside the agency that issued it. Identifiers of any other name come from staging.person_identifier.
FIXED_IDENTIFIERS = {"nhs_number": "national", "ni_number": "national", "upn": "national", "pnc_id": "national",
                     "crn": "national", "tenancy_ref": "local", "local_id": "local"}
# Identifiers whose values pass a check digit at ingest: a one-character difference is a different person.
_CHECKED = {"nhs_number", "ni_number", "upn", "pnc_id", "crn"}
# Linkable fields of the input other than identifiers.
FIELDS = ("first_name_std", "last_name_std", "date_of_birth", "sex", "postcode", "uprn", "address_std", "phone",
          "email")
MIN_COVERAGE = 0.05  # a source "populates" a field when at least this share of its records have it
# a parent is at least this many years older than their child: a bound, not an estimate (the youngest parents
# recorded in England and Wales were 12 or 13), so it never rules out a real parent
PARENT_YEARS = 12
MIN_RECORDS = 10  # fewer staged records than this is too little to train on
TRAINING_RECORDS = 300_000  # training reads a deterministic sample of at most this many records
MAX_RULE_COMPARISONS = 5e7  # a blocking rule past this at training size is skipped (it would not finish)


class ModelBuildError(RuntimeError):
    """Too little data, or no usable field: one line, ids and counts only."""

    stage = "link"


def id_column(scheme: str, scope: str | None = None) -> str:
    """The model input's column for an identifier (`id_<scheme>`) or a declared attribute (`attr_<name>`)."""
    return f"attr_{scheme}" if scope == ATTRIBUTE else f"id_{scheme}"


def staged_identifiers(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every identifier scheme the staged records may carry, and every declared attribute: scheme → scope
    (national, local or attribute)."""
    schemes = dict(FIXED_IDENTIFIERS)
    schemes.update(dict(con.execute(
        "select scheme, min(scope) from staging.person_identifier group by scheme order by scheme").fetchall()))
    return schemes


# Address words as a small bit set per record (ADDRESS_SIGNATURE_WORDS × 63 bits, one bit per hashed word), so a
# pair's word overlap can be estimated with integer AND/OR and bit counts before the exact list comparison:
# at a million records the exact comparison alone took most of prediction's time (docs/adr/0006).
ADDRESS_SIGNATURE_WORDS = 4


def address_signature_sql(tokens: str) -> str:
    """`address_sig0 … address_sigN` columns from a list-of-words expression (DuckDB only: `hash`)."""
    bit = "(hash(w) % 1000003)"
    return ", ".join(
        f"coalesce(list_aggregate(list_transform(list_filter({tokens}, lambda w: ({bit} // 63) % "
        f"{ADDRESS_SIGNATURE_WORDS} = {k}), lambda w: (1::bigint << ({bit} % 63)::integer)), 'bit_or'), 0)"
        f"::bigint as address_sig{k}" for k in range(ADDRESS_SIGNATURE_WORDS))


def input_select(records: str, identifiers: dict[str, str], *, declared: str = "staging.person_identifier",
                 keep: tuple[str, ...] = (), relationships: str | None = None) -> str:
    """The Splink input as one `select … from {records}`: one row per record, matching forms of every field,
    one column per identifier. The nightly link and the practitioner service's real-time linking both build
    their input with it, so a referral is scored on exactly the columns the model was trained on.

    `records` has staging.person_record's columns; `declared` is a relation (source, record_id, scheme, value)
    of identifiers outside the fixed columns; `keep` names extra columns of `records` to carry through.
    A local identifier's value is prefixed with its source, so it only ever agrees within that agency.
    A placeholder date of birth (1900-01-01 and the like, flagged at ingest) is not evidence: strangers share
    it, so it is null here and neither blocks nor scores a pair.
    `relationships` (source, record_id, related_record_id, relationship) bounds an undated record a source
    states to be the parent of a dated one: it was born at least PARENT_YEARS before its child
    (`born_before`), so it cannot be the same person as a record born after that.
    """
    from sources import PLACEHOLDER_DATES

    def value(expr: str, scope: str, source: str) -> str:
        return f"{source} || '/' || {expr}" if scope == "local" else expr

    fixed = [f"{value('p.' + s, scope, 'p.source')} as {id_column(s)}"
             for s, scope in identifiers.items() if s in FIXED_IDENTIFIERS]
    declared_schemes = {s: scope for s, scope in identifiers.items() if s not in FIXED_IDENTIFIERS}
    pivot = ", ".join(
        f"max(case when scheme = '{s}' then {value('value', scope, 'source')} end) as {id_column(s, scope)}"
        for s, scope in declared_schemes.items())
    ids_cte = (f"ids as (select source, record_id, {pivot} from {declared} group by all)"
               if declared_schemes else "ids as (select null::varchar as source, null::varchar as record_id)")
    declared_cols = [f"ids.{id_column(s, scope)}" for s, scope in declared_schemes.items()]
    placeholders = ", ".join(f"date '{d.isoformat()}'" for d in PLACEHOLDER_DATES)

    def dated(column: str) -> str:  # a date of birth, or null for a placeholder
        return f"(case when {column} in ({placeholders}) then null else {column} end)"

    dob, child_dob = dated("p.date_of_birth"), dated("c.date_of_birth")
    # ingest stores every parent relationship as "record_id parent_of related_record_id" (child_of turned round)
    bounds_cte = (f"""bounds as (
    select r.source, r.record_id, min({child_dob}) - interval {PARENT_YEARS} year as born_before
    from {relationships} as r join {records} as c on c.source = r.source and c.record_id = r.related_record_id
    where r.relationship = 'parent_of'
    group by all)""" if relationships else
                  "bounds as (select null::varchar as source, null::varchar as record_id, null::date as born_before)")
    return f"""
with {ids_cte}, {bounds_cte}
select
    p.source || ':' || p.record_id as unique_id,{''.join(f" p.{c}," for c in keep)}
    p.source,
    p.record_id,
    split_part(p.first_name_std, ' ', 1) as first_name_std,
    coalesce(p.first_name_formal, split_part(p.first_name_std, ' ', 1)) as first_name_formal,
    replace(p.last_name_std, ' ', '') as last_name_std,
    -- a placeholder (1900-01-01 and the like, flagged date_of_birth_placeholder at ingest) would make strangers
    -- agree: no date, for matching. By the dates themselves, so a snapshot's records (no flags) read the same
    {dob} as date_of_birth,
    -- parts of the date for blocking: a forename and surname alone make blocks that grow with the square of a
    -- city's size ("MOHAMMED KHAN"), the name with either part of the date does not (ADR 6)
    year({dob}) as birth_year,
    strftime({dob}, '%m%d') as birth_monthday,
    -- an undated parent of a dated child was born before this: not the same person as anyone born after it
    case when {dob} is null then cast(bounds.born_before as date) end as born_before,
    p.sex,
    p.postcode,
    p.uprn,
    p.address_std,
    p.address_tokens,
    nullif(array_to_string(regexp_extract_all(p.address_std, '[0-9]+'), ' '), '') as address_numbers,
    {address_signature_sql('p.address_tokens')},
    p.phone,
    p.nhs_number,  -- the over-merge guard splits clusters holding two NHS numbers (_clusters.py)
    p.email{''.join(', ' + c for c in fixed + declared_cols)}
from {records} as p
left join ids on ids.source = p.source and ids.record_id = p.record_id
left join bounds on bounds.source = p.source and bounds.record_id = p.record_id
"""


def input_sql(identifiers: dict[str, str]) -> str:
    """The nightly link's Splink input table, from every staged record."""
    return (f"create or replace table {INPUT_TABLE} as "
            f"{input_select('staging.person_record', identifiers, relationships='staging.stated_relationship')}")


def build_input(con: duckdb.DuckDBPyConnection, identifiers: dict[str, str] | None = None) -> int:
    con.execute(input_sql(identifiers if identifiers is not None else staged_identifiers(con)))
    return con.execute(f"select count(*) from {INPUT_TABLE}").fetchall()[0][0]


def profile(con: duckdb.DuckDBPyConnection, identifiers: dict[str, str]) -> dict[str, dict[str, float]]:
    """field → {source: share of that source's records that populate it}."""
    columns = [*FIELDS, *(id_column(s, scope) for s, scope in identifiers.items())]
    select = ", ".join(f"avg(({c} is not null)::int) as {c}" for c in columns)
    rows = con.execute(f"select source, {select} from {INPUT_TABLE} group by source order by source").fetchall()
    return {c: {row[0]: float(row[i + 1]) for row in rows} for i, c in enumerate(columns)}


def usable_fields(coverage: dict[str, dict[str, float]], identifiers: dict[str, str]) -> list[str]:
    """Fields populated by at least min(2, sources) sources. A local identifier only ever agrees inside one
    agency, so it is usable only when one source is staged (deduplication)."""
    sources = {s for shares in coverage.values() for s in shares}
    needed = min(2, len(sources))
    usable = []
    for name, shares in coverage.items():
        populated = sum(share >= MIN_COVERAGE for share in shares.values())
        scheme = name.removeprefix("id_") if name.startswith("id_") else None
        if scheme is not None and identifiers.get(scheme) == "local" and len(sources) > 1:
            continue
        if populated >= needed:
            usable.append(name)
    return usable


@dataclass
class ModelPlan:
    """What the builder decided, and why: written as the reviewable settings file."""

    identifiers: dict[str, str]  # every scheme the input carries: scheme → scope
    coverage: dict[str, dict[str, float]]
    usable: list[str]
    splink_settings: dict
    households_share: float | None
    training_rules: list[dict]  # {"rule": sql, "comparisons": n}
    deterministic_rules: list[str]
    skipped: list[dict] = field(default_factory=list)  # {"rule": sql, "reason": text}
    contact_shares: dict[str, float | None] = field(default_factory=dict)  # phone/email → share of different people
    # prediction rules (as in splink_settings) a trained model keeps only where it expects enough of their pairs
    # to match (WORTH_CHECKED); a data team that wants one kept whatever its yield deletes it here
    checked_rules: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "familylink": {
                "about": "Generated by linkage_models/_model_builder.py from the staged records. Edit, then pin with "
                         "`familylink train --settings THIS_FILE`.",
                "identifiers": self.identifiers, "usable_fields": self.usable, "coverage": self.coverage,
                "households_share": self.households_share, "contact_shares": self.contact_shares,
                "training_rules": self.training_rules, "deterministic_rules": self.deterministic_rules,
                "checked_rules": self.checked_rules, "skipped_rules": self.skipped,
            },
            "splink_settings": self.splink_settings,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ModelPlan":
        meta = data["familylink"]
        return cls(identifiers=meta["identifiers"], coverage=meta.get("coverage", {}), usable=meta["usable_fields"],
                   splink_settings=data["splink_settings"], households_share=meta.get("households_share"),
                   training_rules=meta["training_rules"], contact_shares=meta.get("contact_shares", {}),
                   deterministic_rules=meta["deterministic_rules"], skipped=meta.get("skipped_rules", []),
                   checked_rules=meta.get("checked_rules", []))

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_json(), indent=2, default=str), encoding="utf-8")
        return path


def shared_share(con: duckdb.DuckDBPyConnection, columns: list[str], table: str = INPUT_TABLE) -> float | None:
    """Of pairs of records that agree on `columns` (both dates of birth known), the share that are different
    people who share the value: born more than a year apart AND with unlike forenames. High for an address or
    a phone where the sources describe households (a council's agencies: a child's record carries a parent's
    phone); low where a value points to one person (many benchmark files). The forename keeps a file whose
    dates of birth are badly keyed (one person's records years apart) from reading as households: a parent and
    a child differ in both, one person's records rarely do. None when there are no such pairs. Values held by
    more than 20 records (care homes, hostels, a switchboard) are left out, which also bounds the self-join."""
    present = " and ".join(f"{c} is not null" for c in columns)
    key = ", ".join(columns)
    same = " and ".join(f"l.{c} = r.{c}" for c in columns)
    row = con.execute(f"""
        with keyed as (
            select unique_id, {key}, date_of_birth, first_name_std, count(*) over (partition by {key}) as sharing
            from {table}
            where {present} and date_of_birth is not null
        ),
        small as (select * from keyed where sharing between 2 and 20)
        select count(*), avg((abs(date_diff('day', l.date_of_birth, r.date_of_birth)) > 366 and
                              -- a missing forename leaves the dates to decide
                              coalesce(jaro_winkler_similarity(l.first_name_std, r.first_name_std) < 0.8, true))::int)
        from small as l join small as r on {same} and l.unique_id < r.unique_id
    """).fetchall()[0]
    return float(row[1]) if row[0] else None


def households_share(con: duckdb.DuckDBPyConnection, usable: list[str], table: str = INPUT_TABLE) -> float | None:
    """Of pairs of records at the same address text and postcode (the postcode alone where no address text is
    shared), the share of different people; None without postcodes."""
    if "postcode" not in usable:
        return None
    return shared_share(con, ["address_std", "postcode"] if "address_std" in usable else ["postcode"], table)


HOUSEHOLD_SHARE = 0.5  # above this, address agreement is household evidence, counted once with the surname
# Above this share of different people among the records agreeing on a phone or an email, the value is a
# household's (a parent's number on a child's record), not a person's: it is compared jointly with the
# forename (evidence where the forenames agree, none where they differ) instead of on its own.
CONTACT_SHARED = 0.2
CONTACTS = ("phone", "email")


def _comparisons(usable: set[str], identifiers: dict[str, str], households: float | None = None,
                 shared_contacts: tuple[str, ...] = (), parent_bound: bool = False) -> list:
    from linkage_models._person_model import (date_of_birth_comparison, forename_comparison, postcode_comparison,
                                              surname_address_comparison, surname_comparison)

    comparisons = []
    # a contact shared by different people speaks only where the forenames agree (forename_comparison)
    folded = tuple(c for c in shared_contacts if c in usable) if "first_name_std" in usable else ()
    if "first_name_std" in usable:
        comparisons.append(forename_comparison(list(folded)))
    address = [f for f in ("uprn", "postcode", "address_std") if f in usable]
    if "last_name_std" in usable and address:
        comparisons.append(surname_address_comparison(
            address, households=households is not None and households >= HOUSEHOLD_SHARE))
    elif "last_name_std" in usable:
        comparisons.append(surname_comparison())
    if "date_of_birth" in usable:
        comparisons.append(date_of_birth_comparison(parent_bound))
    if "postcode" in usable and households is not None and households < HOUSEHOLD_SHARE:
        # records at one address are mostly one person here, not a household: the postcode is evidence of
        # its own, beside the surname-and-address comparison (measured on FEBRL, ADR 6)
        comparisons.append(postcode_comparison())
    if "sex" in usable:
        comparisons.append(cl.ExactMatch("sex"))
    for scheme, scope in identifiers.items():
        column = id_column(scheme, scope)
        if column in usable and scope == ATTRIBUTE:
            # shared by many people: a rare value (a small village, an unusual occupation) is strong evidence,
            # a common one weak; a value keyed with a typo ("Birmingam") is weaker evidence, not none
            comparisons.append(cl.JaroWinklerAtThresholds(column, [0.9]).configure(term_frequency_adjustments=True))
        elif column in usable:
            # an identifier without a check digit can carry a typo or two digits transposed: one edit away is
            # weaker evidence, not none
            comparisons.append(cl.ExactMatch(column) if scheme in _CHECKED
                               else cl.DamerauLevenshteinAtThresholds(column, [1]))
    if "phone" in usable and "phone" not in folded:
        comparisons.append(cl.ExactMatch("phone"))
    if "email" in usable and "email" not in folded:
        comparisons.append(cl.EmailComparison("email"))
    return comparisons


def _candidate_rules(usable: set[str], identifiers: dict[str, str]) -> list[list[str]]:
    """Blocking rules to try, cheapest evidence first; each is kept only if every column is usable."""
    first = "first_name_formal"
    # the full name with the year or with the day and month of birth (a typo rarely hits both); the name
    # alone only where dates of birth are not shared, since its blocks grow with the square of the city
    # (or as a rule worth checking, below). Records without a date (a carer on a child's record, a register
    # that keeps none) are out of the dated name blocks: the name alone brings them to their other records
    # (the pairs grow with the undated records)
    names = ([[first, "last_name_std", "birth_year"], [first, "last_name_std", "birth_monthday"],
              [first, "last_name_std", UNDATED]]
             if "date_of_birth" in usable else [[first, "last_name_std"]])
    candidates = [[id_column(s)] for s, scope in identifiers.items() if scope != ATTRIBUTE] + [
        ["date_of_birth"],
        *names,
        ["last_name_std", "postcode"],
        [first, "postcode"],
        ["phone"],
        ["email"],
        ["uprn"],
        ["last_name_std", "address_std"],
        *(WORTH_CHECKED if "date_of_birth" in usable else []),
    ]
    return [rule for rule in candidates if _usable(rule, usable)]


# input columns derived from a profiled field: a rule on them is usable when the field is
_DERIVED_FROM = {"first_name_formal": "first_name_std", "birth_year": "date_of_birth", "birth_monthday": "date_of_birth",
                 "undated": "date_of_birth"}
# in a rule, not a column: the pair's records are not both dated
UNDATED = "undated"
_UNDATED_SQL = "(l.date_of_birth is null or r.date_of_birth is null)"

# Wider blocks for records whose names and dates are both keyed badly: a title or a second name used as the
# forename, a date keyed years apart. Where the data is clean they add pairs and hardly a match (a city: one
# true pair in 27,000 for the full name alone), where it is not they find what no other block does
# (historical_50k: one in three for the surname and year). They come last, so each one's pairs are the ones it
# alone adds, and a trained model keeps one only where it expects at least MIN_RULE_YIELD of those pairs to
# match (_person_model.barren_rules). The surname alone where one record is undated was session 8's
# (ADR 6); the full name alone was a plain rule until session 5.
WORTH_CHECKED = [["last_name_std", UNDATED], ["first_name_formal", "last_name_std"], ["last_name_std", "birth_year"],
                 ["last_name_std", "birth_monthday"]]
MIN_RULE_YIELD = 0.01


def _usable(rule: list[str], usable: set[str] | list[str]) -> bool:
    return all(_DERIVED_FROM.get(c, c) in usable for c in rule)


def _rule_sql(columns: list[str]) -> str:
    return " and ".join(_UNDATED_SQL if c == UNDATED else f"l.{c} = r.{c}" for c in columns)


def blocking_rule(columns: list[str]):
    """Splink's blocking rule for a rule of the plan: equal columns (block_on), or SQL where the rule has a
    condition that is not an equality."""
    return _rule_sql(columns) if UNDATED in columns else block_on(*columns)


def comparison_columns(comparisons: list) -> dict[str, set[str]]:
    """comparison name → the input columns its levels read (`first_name_std` from `first_name_std_l`)."""
    settings = SettingsCreator(link_type="dedupe_only", comparisons=comparisons).create_settings_dict("duckdb")
    return {c["output_column_name"]: {m for level in c["comparison_levels"]
                                      for m in re.findall(r"\b(\w+)_l\b", level["sql_condition"])}
            for c in settings["comparisons"]}


def _free(rule: list[str], columns: dict[str, set[str]]) -> set[str]:
    """The comparisons EM can train in a block on `rule`: those reading none of its columns (Splink holds the
    others fixed there, by column name: em_training_session)."""
    return {name for name, cols in columns.items() if not cols & set(rule)}


# single-field blocks that free a comparison no planned block frees (no date of birth to block on: a name block
# then holds both name comparisons fixed, a postcode block the surname-and-address one)
_FALLBACK_TRAINING = (["first_name_formal"], ["last_name_std"], ["postcode"], ["email"], ["phone"])


def _cover_every_comparison(training: list[dict], columns: dict[str, set[str]], usable: list[str],
                            training_pairs, skipped: list[dict]) -> list[dict]:
    """The training blocks, less those that leave EM nothing to train, plus single-field blocks until every
    comparison is free in at least one (where such a block fits the training budget)."""
    kept = []
    for rule in training:
        if _free(rule["columns"], columns):
            kept.append(rule)
        else:
            log.info("training block skipped: %s holds every comparison fixed", rule["rule"])
            skipped.append({"rule": rule["rule"], "reason": "holds every comparison fixed: nothing to train"})
    untrained = set(columns) - {name for rule in kept for name in _free(rule["columns"], columns)}
    for rule in _FALLBACK_TRAINING:
        if not untrained:
            break
        if not _usable(rule, usable) or not _free(rule, columns) & untrained or any(
                r["columns"] == rule for r in kept):
            continue
        pairs = training_pairs(rule)
        if 0 < pairs <= MAX_RULE_COMPARISONS:
            kept.append({"rule": _rule_sql(rule), "columns": rule, "comparisons": pairs})
            untrained -= _free(rule, columns)
    if untrained:
        log.warning("no training block leaves %s free: its weights stay at Splink's defaults", ", ".join(sorted(untrained)))
    return kept


def require_records(records: int) -> None:
    """The one-line error when too few records are staged to train on."""
    if records < MIN_RECORDS:
        raise ModelBuildError(f"too little data to train a person model: {records} staged records "
                              f"(at least {MIN_RECORDS} needed)" + ("" if records else "; ingest the sources first"))


def build_plan(con: duckdb.DuckDBPyConnection, *, table: str = INPUT_TABLE,
               identifiers: dict[str, str] | None = None) -> ModelPlan:
    """Profile the staged records (INPUT_TABLE must be built) and decide comparisons and rules."""
    identifiers = identifiers if identifiers is not None else staged_identifiers(con)
    records = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    require_records(records)
    coverage = profile(con, identifiers)
    usable = usable_fields(coverage, identifiers)
    names = {"first_name_std", "last_name_std"} & set(usable)
    if not names:
        raise ModelBuildError("no name field is populated by enough sources to link on (first_name or last_name)")
    if set(usable) <= {"first_name_std", "last_name_std"}:
        # names alone cannot meet the minimum data for linking: say which fields each source has instead
        others = {source: sorted(field for field, shares in coverage.items() if field not in names
                                 and shares.get(source, 0) >= MIN_COVERAGE) for source in sorted(
                      {s for shares in coverage.values() for s in shares})}
        held = "; ".join(f"{source}: {', '.join(fields) or 'names only'}" for source, fields in others.items())
        raise ModelBuildError(f"the sources share no field besides names to link on ({held}); map a field they "
                              f"share (date of birth, postcode, address, an identifier, phone or email) in their "
                              f"contracts")
    households = households_share(con, usable, table)
    log.info("pairs at one address that are different people (born apart, named unlike): %s",
             "n/a" if households is None else f"{households:.1%}")
    contact_shares = {c: shared_share(con, [c], table) for c in CONTACTS if c in usable}
    shared_contacts = tuple(c for c, share in contact_shares.items() if share is not None and share >= CONTACT_SHARED)
    log.info("pairs sharing a contact that are different people: %s", ", ".join(
        f"{c} {'n/a' if v is None else f'{v:.1%}'}" for c, v in contact_shares.items()) or "no contact fields")
    # undated parents the sources state (a pupil's parent, a child in need's carer), bounded by their child's date
    bounded = "born_before" in column_names(con, table) and con.execute(
        f"select count(born_before) from {table}").fetchall()[0][0] > 0
    comparisons = _comparisons(set(usable), identifiers, households, shared_contacts, parent_bound=bounded)
    if len(comparisons) < 2:
        raise ModelBuildError(f"too little data to train a person model: only {len(comparisons)} comparable "
                              f"field(s) ({', '.join(usable)})")

    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(table)
    counted, skipped = [], []
    sample = 1.0 if records <= 200_000 else 0.05

    def count(rule: list[str]) -> float:
        # a sampled count (above 200k records) only decides whether a rule fits the pair budget, where a rough
        # estimate serves: Splink's warning that a small sample is unstable would only crowd the run's output
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The sampled blocking analysis estimate", category=UserWarning)
            record = count_comparisons_from_blocking_rules(sdf, blocking_rules=[blocking_rule(rule)],
                                                           link_type="dedupe_only", record_sample_proportion=sample)[0]
        return float(getattr(record, "marginal_comparison_count", None) or record["marginal_comparison_count"])

    try:
        for rule in _candidate_rules(set(usable), identifiers):
            sql = _rule_sql(rule)
            pairs = count(rule)
            if pairs == 0:
                log.info("blocking rule skipped: %s yields no pairs", sql)
                skipped.append({"rule": sql, "reason": "yields no pairs"})
            elif pairs > MAX_RULE_COMPARISONS * max(1, records / 300_000):
                log.info("blocking rule skipped: %s yields %.3g pairs (too many to score)", sql, pairs)
                skipped.append({"rule": sql, "reason": f"yields {pairs:.3g} pairs, more than can be scored"})
            else:
                counted.append((rule, pairs))
        if not counted:
            raise ModelBuildError("no blocking rule yields any pair of records: nothing to link or train on")

        # EM needs each comparison free in some block: names, date of birth and postcode blocks between them
        # leave every comparison free at least once; identifier blocks train the rest
        training_order = [["date_of_birth"], ["first_name_formal", "last_name_std"], ["postcode"], ["last_name_std",
                          "postcode"], ["first_name_formal", "postcode"],
                          *([id_column(s)] for s, scope in identifiers.items() if scope != ATTRIBUTE), ["phone"]]
        found = {tuple(rule): pairs for rule, pairs in counted}
        # a training block need not be a prediction block: EM trains the date of birth in the name block, where
        # the date is free (training samples at most TRAINING_RECORDS records, so the block stays small there)
        def training_pairs(rule: list[str]) -> float:
            return count(rule) * min(1.0, TRAINING_RECORDS / records) ** 2

        for rule in training_order:
            if tuple(rule) not in found and _usable(rule, usable):
                pairs = training_pairs(rule)
                if 0 < pairs <= MAX_RULE_COMPARISONS:
                    found[tuple(rule)] = pairs
        training = [{"rule": _rule_sql(r), "columns": r, "comparisons": found[tuple(r)]}
                    for r in training_order if tuple(r) in found]
        # the first four blocks train every comparison at least once when EM converges in each; identifier and
        # phone blocks come after them, so a comparison still trains when EM diverges in one of the first
        training = training[:4] + [t for t in training[4:] if t["columns"][0] in ("phone",) or
                                    t["columns"][0].startswith("id_")][:3]
        training = _cover_every_comparison(training, comparison_columns(comparisons), usable, training_pairs,
                                           skipped)
    finally:
        # the blocking analysis's working tables are not left in the warehouse
        db_api.delete_tables_created_by_splink_from_db()
    prediction = [blocking_rule(rule) for rule, _ in counted]
    deterministic = [_rule_sql(r) for r, _ in counted if r[0].startswith("id_")]
    if {"first_name_std", "last_name_std", "date_of_birth"} <= set(usable):
        deterministic.append(_rule_sql(["first_name_formal", "last_name_std", "date_of_birth"]))
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=prediction,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=["source", "record_id"],
        # sparse fields drive EM's m for "disagree" towards 0; past ~10 iterations Splink refuses the underflow
        max_iterations=10,
    ).create_settings_dict("duckdb")
    rendered = [rule["blocking_rule"] for rule in settings["blocking_rules_to_generate_predictions"]]
    checked = [sql for sql, (rule, _) in zip(rendered, counted) if rule in WORTH_CHECKED]
    plan = ModelPlan(identifiers=identifiers, coverage=coverage, usable=usable, splink_settings=settings,
                     households_share=households, contact_shares=contact_shares, checked_rules=checked,
                     training_rules=training, deterministic_rules=deterministic, skipped=skipped)
    log.info("person model plan: %d comparisons, %d blocking rules, %d training rules, %d rules skipped",
             len(comparisons), len(prediction), len(training), len(skipped))
    return plan


def load_plan(path: Path) -> ModelPlan:
    try:
        return ModelPlan.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelBuildError(f"{path}: not a familylink model settings file ({exc.__class__.__name__}: {exc})") from None
