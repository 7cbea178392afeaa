"""Cohort precision and recall against the synthetic city's ground truth (evaluation only; the pipeline never
reads truth).

The expected cohort is computed here independently of the SQL in programmes/sql/: the same programme files are
interpreted by polars over the staged events, but who is who and who lives with whom come from the generator's
truth (truth/records.parquet: record → true person and household; truth/persons.parquet: true dates of birth)
instead of from linkage. A product household is matched to the true household most of its members' records
belong to.

Every missed and false household is classed by its cause, first that applies:
- a false or missed person link among its evidence records (a record in a person cluster holding another true
  person's records, or a true person whose records are split across clusters);
- its household was not rebuilt exactly (members at other addresses or without one, two households merged);
- a recorded date of birth that gives another age than the true one;
- otherwise **not explained** by linkage: a defect.
As a second, independent check the same interpreter is run over the product's own linkage (each record's person,
household and age as published): it must reproduce the SQL cohort exactly, so every difference from the true
cohort comes from the linkage input; any household where it does not is counted as not explained.
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
    errors_by_cause: dict[str, int] = field(default_factory=dict)  # "missed: household not rebuilt exactly" -> n
    explained: int = 0  # missed + false households a linkage error explains
    not_explained: int = 0  # the rest: defects (includes sql_differs)
    sql_differs: int = 0  # households where the SQL and this interpreter disagree on the product's own linkage

    @property
    def summary(self) -> str:
        missed = sum(v for k, v in self.errors_by_cause.items() if k.startswith("missed"))
        false = sum(v for k, v in self.errors_by_cause.items() if k.startswith("false"))
        return (f"{missed} missed, {false} false: {self.explained} explained by linkage errors, "
                f"{self.not_explained} not explained")


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


def expected_cohort(events: pl.DataFrame, members: pl.DataFrame, programme: Programme, as_of: dt.date,
                    evidence: dict[int, set[tuple[str, str]]] | None = None) -> set[int]:
    """Households meeting a programme's rule, by polars (no SQL): over truth, or over the product's linkage when
    given its events and members. With `evidence`, fills household -> the (source, record_id) of events meeting a
    criterion."""
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
            if evidence is not None:
                records = frame.join(per_person.select("person_id"), on="person_id", how="semi") \
                    .select("household_id", "source", "record_id").unique()
                for household, source, record_id in records.iter_rows():
                    evidence.setdefault(household, set()).add((source, record_id))
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


def product_events(con: duckdb.DuckDBPyConnection, snapshot: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The staged events and members as the snapshot links them (its person, household and age per record), in
    the shape `true_events` gives, for the interpreter to run on the product's own linkage."""
    persons = con.sql(f"select person_id, household_id, age from {snapshot}.person where household_id is not null").pl()
    links = con.sql(f"select source, record_id, person_id from {snapshot}.person_source_link").pl()
    staged = con.sql("select source, record_id, extract_date from staging.person_record").pl()
    events = con.sql("select source, record_id, event_type, event_date, value, detail from staging.event").pl()
    events = events.join(links, on=["source", "record_id"], how="inner").join(persons, on="person_id", how="inner") \
        .join(staged, on=["source", "record_id"], how="left") \
        .with_columns(pl.coalesce("event_date", "extract_date").alias("event_date"))
    return events, persons


def records_with_link_errors(con: duckdb.DuckDBPyConnection, truth_dir: Path, snapshot: str) -> set[tuple[str, str]]:
    """Source records in a person cluster that holds another true person's records (a false link), or whose true
    person's records are split across clusters (a missed link)."""
    links = con.sql(f"select source, record_id, person_id as product_person from {snapshot}.person_source_link").pl()
    truth = pl.read_parquet(Path(truth_dir) / "records.parquet").select("source", "record_id",
                                                                        pl.col("person_id").alias("true_person"))
    joined = links.join(truth, on=["source", "record_id"], how="inner")
    impure = joined.group_by("product_person").agg(pl.col("true_person").n_unique().alias("k")).filter(pl.col("k") > 1)
    split = joined.group_by("true_person").agg(pl.col("product_person").n_unique().alias("k")).filter(pl.col("k") > 1)
    wrong = joined.filter(pl.col("product_person").is_in(impure["product_person"].implode())
                          | pl.col("true_person").is_in(split["true_person"].implode()))
    return set(wrong.select("source", "record_id").iter_rows())


SQL_DISAGREES = "not explained (the SQL and the rules disagree on the product's own linkage)"


def evaluate_cohorts(con: duckdb.DuckDBPyConnection, truth_dir: Path, *, snapshot: str | None = None,
                     rules_dir: Path | None = None) -> list[ProgrammeQuality]:
    """Precision and recall of every programme's cohort (households qualifying, triage aside) against truth, and
    each difference's cause (module docstring)."""
    truth_dir = Path(truth_dir)
    snapshot = snapshot or con.execute(
        "select snapshot_id from audit.snapshot where status = 'published'").fetchall()[0][0]
    as_of = con.execute("select max(as_of) from programmes.evaluation where snapshot_id = ?", [snapshot]).fetchall()[0][0]
    if as_of is None:
        raise ValueError(f"{snapshot}: no programme evaluation yet (run `familylink cohort evaluate`)")
    events, members = true_events(con, truth_dir, as_of)
    linked_events, linked_members = product_events(con, snapshot)
    mapping = household_map(con, truth_dir, snapshot)
    exact = set(mapping.filter(pl.col("rebuilt_exactly"))["true_household"].to_list())
    to_true = dict(mapping.select("product_household", "true_household").iter_rows())
    wrong_links = records_with_link_errors(con, truth_dir, snapshot)
    prefix = f"{snapshot}."
    results = []
    for name, programme in load_programmes(rules_dir).items():
        true_evidence: dict[int, set[tuple[str, str]]] = {}
        expected = expected_cohort(events, members, programme, as_of, true_evidence)
        found_ids = {r[0] for r in con.execute("select household_id from programmes.cohort where snapshot_id = ? "
                                               "and programme = ?", [snapshot, name]).fetchall()}
        # the same rules on the product's own linkage must give exactly the SQL's cohort
        reproduced = expected_cohort(linked_events, linked_members, programme, as_of)
        product_evidence: dict[int, set[tuple[str, str]]] = {}
        for household, source, record_id in con.execute(
                "select distinct household_id, source, record_id from programmes.cohort_evidence "
                "where snapshot_id = ? and programme = ?", [snapshot, name]).fetchall():
            product_evidence.setdefault(household, set()).add((source, record_id))

        hit = {to_true[h] for h in found_ids if to_true.get(h) is not None}
        missed = expected - hit
        false = [h for h in found_ids if to_true.get(h) not in expected]  # product households
        tp = len(found_ids) - len(false)
        aged = _ages_differ(con, truth_dir, events, missed | {to_true[h] for h in false if to_true.get(h) is not None},
                            prefix)
        causes: dict[str, int] = {}
        sql_wrong = found_ids ^ reproduced  # product households
        sql_wrong_true = {to_true.get(h) for h in sql_wrong}

        def cause(records: set[tuple[str, str]], true_household: int | None, sql_disagrees: bool) -> str:
            if sql_disagrees:
                return SQL_DISAGREES
            if records & wrong_links:
                return "false or missed link among the evidence records"
            if true_household is None or true_household not in exact:
                return "household not rebuilt exactly"
            if true_household in aged:
                return "recorded date of birth gives another age"
            return "not explained"

        for household in missed:
            key = f"missed: {cause(true_evidence.get(household, set()), household, household in sql_wrong_true)}"
            causes[key] = causes.get(key, 0) + 1
        for household in false:
            true_household = to_true.get(household)
            records = product_evidence.get(household, set()) | true_evidence.get(true_household, set())
            key = f"false: {cause(records, true_household, household in sql_wrong)}"
            causes[key] = causes.get(key, 0) + 1
        unexplained = sum(v for k, v in causes.items() if "not explained" in k)
        counted = sum(v for k, v in causes.items() if SQL_DISAGREES in k)
        if len(sql_wrong) > counted:  # disagreements that happen not to change the result against truth
            causes[f"other households: {SQL_DISAGREES}"] = len(sql_wrong) - counted
        results.append(ProgrammeQuality(
            name, len(expected), len(found_ids), tp,
            precision=tp / len(found_ids) if found_ids else 1.0,
            recall=len(hit & expected) / len(expected) if expected else 1.0,
            errors_by_cause=dict(sorted(causes.items())),
            explained=len(missed) + len(false) - unexplained,
            not_explained=sum(v for k, v in causes.items() if "not explained" in k), sql_differs=len(sql_wrong)))
    return results
