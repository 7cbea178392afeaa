"""Cohort precision and recall against the synthetic city's ground truth (evaluation only; the pipeline never
reads truth).

The expected cohort is computed here independently of the SQL in programmes/sql/: the same programme files are
interpreted by polars over the staged events, but who is who and who lives with whom come from the generator's
truth (truth/records.parquet: record → true person and household; truth/persons.parquet: true dates of birth)
instead of from linkage. A product household is matched to the true household most of its members' records
belong to. Every miss and false hit is classed by its cause: the household was not rebuilt exactly by linkage
(a linkage or household error), an age that differs because the recorded date of birth differs, or unexplained.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from programmes._rules import Programme, load_programmes


@dataclass
class ProgrammeQuality:
    programme: str
    expected: int
    found: int
    true_positives: int
    precision: float
    recall: float
    errors_by_cause: dict[str, int] = field(default_factory=dict)  # "missed: linkage or household" -> n


def _age(dob: pl.Expr, as_of: dt.date) -> pl.Expr:
    years = pl.lit(as_of.year) - dob.dt.year()
    before_birthday = (pl.lit(as_of.month * 100 + as_of.day)) < (dob.dt.month().cast(pl.Int32) * 100 + dob.dt.day())
    return (years - before_birthday.cast(pl.Int32)).cast(pl.Int64)


def true_events(con: duckdb.DuckDBPyConnection, truth_dir: Path, as_of: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Staged events with their true person, true household and true age; and the true members known to any
    agency (person, household, age)."""
    records = pl.read_parquet(truth_dir / "records.parquet").select("source", "record_id", "person_id", "household_id")
    persons = pl.read_parquet(truth_dir / "persons.parquet").select("person_id", "date_of_birth")
    staged = con.sql("select source, record_id, extract_date from staging.person_record").pl()
    events = con.sql("select source, record_id, event_type, event_date, value, detail from staging.event").pl()
    known = staged.join(records, on=["source", "record_id"], how="inner").join(persons, on="person_id", how="left")
    members = known.group_by("person_id").agg(pl.col("household_id").first(), pl.col("date_of_birth").first()) \
        .with_columns(_age(pl.col("date_of_birth"), as_of).alias("age"))
    events = events.join(known.select("source", "record_id", "person_id", "household_id", "extract_date"),
                         on=["source", "record_id"], how="inner") \
        .join(members.select("person_id", "age"), on="person_id", how="left") \
        .with_columns(pl.coalesce("event_date", "extract_date").alias("event_date"))
    return events, members


def expected_cohort(events: pl.DataFrame, members: pl.DataFrame, programme: Programme, as_of: dt.date) -> set[int]:
    """True households meeting a programme's rule, by polars over truth (no SQL)."""
    met: dict[int, set[str]] = {}
    for criterion, spec in programme.criteria.items():
        for condition in spec.any_of:
            months = programme.look_back(condition)
            start = (pl.lit(as_of).dt.offset_by(f"-{months}mo"))
            frame = events.filter(pl.col("event_type").is_in(condition.events)
                                  & (pl.col("event_date") > start) & (pl.col("event_date") <= pl.lit(as_of)))
            if condition.person.min_age is not None:
                frame = frame.filter(pl.col("age") >= condition.person.min_age)
            if condition.person.max_age is not None:
                frame = frame.filter(pl.col("age") <= condition.person.max_age)
            if condition.value_at_least is not None:
                frame = frame.filter(pl.col("value") >= condition.value_at_least)
            if condition.value_at_most is not None:
                frame = frame.filter(pl.col("value") <= condition.value_at_most)
            if condition.detail_matches is not None:
                frame = frame.filter(pl.col("detail").fill_null("").str.contains(condition.detail_matches))
            per_person = frame.group_by("person_id", "household_id").agg(
                pl.len().alias("n"), pl.col("value").sum().alias("total"))
            per_person = per_person.filter(pl.col("n") >= condition.count_at_least)
            if condition.total_value_at_least is not None:
                per_person = per_person.filter(pl.col("total").fill_null(0) >= condition.total_value_at_least)
            for household in per_person["household_id"].unique().to_list():
                met.setdefault(household, set()).add(criterion)
    max_age = programme.household_requires.dependent_child_max_age
    with_child = set(members.filter(pl.col("age") <= max_age)["household_id"].to_list()) if max_age is not None else None
    qualifying = set()
    for household, criteria in met.items():
        if with_child is not None and household not in with_child:
            continue
        for alternative in programme.household_rule.any_of:
            if len(criteria & set(alternative.of)) >= alternative.at_least and (
                    not alternative.plus_one_of or criteria & set(alternative.plus_one_of)):
                qualifying.add(household)
                break
    return qualifying


def household_map(con: duckdb.DuckDBPyConnection, truth_dir: Path, snapshot: str | None = None) -> pl.DataFrame:
    """Each product household → the true household most of its members' records belong to, and whether the
    true household was rebuilt exactly (its records all in this product household, and nothing else in it)."""
    prefix = f"{snapshot}." if snapshot else "golden."
    # a record whose person has no household (no current address) is -1: its true household is then not whole
    links = con.sql(f"select l.source, l.record_id, coalesce(p.household_id, -1) as product_household "
                    f"from {prefix}person_source_link l join {prefix}person p using (person_id)").pl()
    records = pl.read_parquet(truth_dir / "records.parquet").select("source", "record_id",
                                                                    pl.col("household_id").alias("true_household"))
    joined = links.join(records, on=["source", "record_id"], how="inner")
    majority = joined.filter(pl.col("product_household") >= 0).group_by("product_household", "true_household").agg(pl.len().alias("n")) \
        .sort(["product_household", "n", "true_household"], descending=[False, True, False]) \
        .group_by("product_household", maintain_order=True).first()
    pure_product = joined.group_by("product_household").agg(pl.col("true_household").n_unique().alias("k")) \
        .filter(pl.col("k") == 1)["product_household"]
    whole_true = joined.group_by("true_household").agg(pl.col("product_household").n_unique().alias("k")) \
        .filter(pl.col("k") == 1)["true_household"]
    return majority.with_columns(
        (pl.col("product_household").is_in(pure_product.implode()) & pl.col("true_household").is_in(whole_true.implode()))
        .alias("rebuilt_exactly")).select("product_household", "true_household", "rebuilt_exactly")


def _ages_differ(con, truth_dir: Path, events: pl.DataFrame, households: set[int], prefix: str) -> set[int]:
    """True households where a member's age in the snapshot differs from the true age."""
    if not households:
        return set()
    product_age = con.sql(f"select l.source, l.record_id, p.age as product_age from {prefix}person_source_link l "
                          f"join {prefix}person p using (person_id)").pl()
    frame = events.filter(pl.col("household_id").is_in(list(households))).join(
        product_age, on=["source", "record_id"], how="inner")
    return set(frame.filter(pl.col("age") != pl.col("product_age"))["household_id"].to_list())


def evaluate_cohorts(con: duckdb.DuckDBPyConnection, truth_dir: Path, *, snapshot: str | None = None,
                     rules_dir: Path | None = None) -> list[ProgrammeQuality]:
    """Precision and recall of every programme's cohort (households qualifying, triage aside) against truth."""
    truth_dir = Path(truth_dir)
    snapshot = snapshot or con.execute(
        "select snapshot_id from audit.snapshot where status = 'published'").fetchall()[0][0]
    as_of = con.execute("select max(as_of) from programmes.evaluation where snapshot_id = ?", [snapshot]).fetchall()[0][0]
    if as_of is None:
        raise ValueError(f"{snapshot}: no programme evaluation yet (run `familylink cohort evaluate`)")
    events, members = true_events(con, truth_dir, as_of)
    mapping = household_map(con, truth_dir, snapshot)
    prefix = f"{snapshot}."
    results = []
    for name, programme in load_programmes(rules_dir).items():
        expected = expected_cohort(events, members, programme, as_of)
        found = con.sql("select household_id from programmes.cohort where snapshot_id = $1 and programme = $2",
                        params=[snapshot, name]).pl().rename({"household_id": "product_household"})
        found = found.join(mapping, on="product_household", how="left")
        hit = set(found["true_household"].drop_nulls().to_list())
        true_positive_rows = found.filter(pl.col("true_household").is_in(list(expected)))
        false_rows = found.filter(~pl.col("true_household").is_in(list(expected)) | pl.col("true_household").is_null())
        missed = expected - hit
        exact = set(mapping.filter(pl.col("rebuilt_exactly"))["true_household"].to_list())
        causes: dict[str, int] = {}
        aged = _ages_differ(con, truth_dir, events, (missed | set(false_rows["true_household"].drop_nulls().to_list())) & exact,
                            prefix)
        for kind, households in (("missed", missed), ("false", set(false_rows["true_household"].drop_nulls().to_list()))):
            for household in households:
                cause = ("linkage or household error" if household not in exact
                         else "recorded date of birth gives another age" if household in aged else "unexplained")
                causes[f"{kind}: {cause}"] = causes.get(f"{kind}: {cause}", 0) + 1
        unmatched = false_rows.filter(pl.col("true_household").is_null()).height
        if unmatched:
            causes["false: linkage or household error"] = causes.get("false: linkage or household error", 0) + unmatched
        tp = true_positive_rows.height
        results.append(ProgrammeQuality(
            name, len(expected), found.height, tp,
            precision=tp / found.height if found.height else 1.0,
            recall=len(hit & expected) / len(expected) if expected else 1.0,
            errors_by_cause=dict(sorted(causes.items()))))
    return results
