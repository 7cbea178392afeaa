"""Linkage quality against ground truth (evaluation only; the pipeline never reads truth).

Pairwise precision, recall and F1 on the final clusters (every pair of records placed together, not only
the scored pairs), B-cubed precision and recall, and precision on pairs of different people who live in
the same household (the pairs a household-blind model merges).

The truth is a Parquet file with one row per record. Only `source`, `record_id` and `person_id` are required
(of any type: they are compared as text); the synthetic city's truth adds `household_id`, `uprn_recorded`,
`uprn_current` and `noise`, and the measures that need one of those are `NotComputed` (with the reason)
when the truth has no values in it, as a public benchmark's truth usually has not.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

TRUTH_COLUMNS = ("source", "record_id", "person_id")


class TruthError(ValueError):
    """The truth file cannot be evaluated against; the message names the file and columns, never values."""

    message_is_safe = True


class NotComputed(str):
    """Stands in for a measure this truth cannot give; the text says why, in one line."""


def read_truth(path: Path | str) -> pl.DataFrame:
    """The truth file with its record and person ids as text (a benchmark may write them as integers), or a
    TruthError naming the file and the required columns."""
    path = Path(path)
    try:
        truth = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError):
        raise TruthError(f"{path}: not a readable Parquet file") from None
    missing = [column for column in TRUTH_COLUMNS if column not in truth.columns]
    if missing:
        raise TruthError(f"{path} has no {', '.join(missing)} column: a truth file needs the columns "
                         f"{', '.join(TRUTH_COLUMNS)} (household_id, uprn_recorded, uprn_current and noise are "
                         "optional)")
    return truth.with_columns(_as_text(truth[column]) for column in TRUTH_COLUMNS)


def _as_text(ids: pl.Series) -> pl.Series:
    if ids.dtype.is_float():  # integer ids with a gap come out of pandas as floats: 7.0 is the record "7"
        present = ids.drop_nulls()
        if present.is_finite().all() and (present == present.round(0)).all():
            ids = ids.cast(pl.Int64)
    return ids.cast(pl.String)


def has_values(truth: pl.DataFrame, *columns: str) -> bool:
    """Whether the truth has every one of `columns`, each with at least one value."""
    return all(column in truth.columns and truth[column].null_count() < truth.height for column in columns)


def _no(*columns: str) -> NotComputed:
    return NotComputed(f"the truth has no {' or '.join(columns)} values")


def truth_coverage(clusters: pl.DataFrame, truth: pl.DataFrame, quarantined: pl.DataFrame | None = None) -> dict:
    """How far the truth and the linked records cover each other (counts only): truth records not linked (of
    them, quarantined at ingest, and of sources with no linked record at all), linked records without a truth
    row, and the records in both (the ones every person measure is computed on)."""
    keys = ["source", "record_id"]
    truth_keys, linked = truth.select(keys).unique(), clusters.select(keys).unique()
    not_linked = truth_keys.join(linked, on=keys, how="anti")
    quarantined = (not_linked.join(quarantined.select(keys).unique(), on=keys, how="semi").height
                   if quarantined is not None else 0)
    unknown_sources = not_linked.filter(~pl.col("source").is_in(linked["source"].unique().implode()))
    return {
        "truth_records": truth_keys.height,
        "linked_records": linked.height,
        "in_both": truth_keys.height - not_linked.height,
        "truth_not_linked": not_linked.height,
        "truth_quarantined": quarantined,
        "truth_not_in_warehouse": not_linked.height - quarantined,
        "truth_of_unknown_sources": unknown_sources.height,
        "unknown_sources": unknown_sources["source"].n_unique(),
        "linked_without_truth": linked.join(truth_keys, on=keys, how="anti").height,
    }


def _pairs(frame: pl.DataFrame, keys: list[str]) -> int:
    sizes = frame.group_by(keys).len()["len"]
    return int((sizes * (sizes - 1) // 2).sum())


def person_link_quality(clusters: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float | int | NotComputed]:
    """clusters: source, record_id, cluster_id; truth: source, record_id, person_id and, optionally,
    household_id (without it the same-household measures are NotComputed)."""
    households = has_values(truth, "household_id")
    c = clusters.join(truth.select("source", "record_id", "person_id", *(["household_id"] if households else [])),
                      on=["source", "record_id"])
    true_positive = _pairs(c, ["cluster_id", "person_id"])
    predicted = _pairs(c, ["cluster_id"])
    actual = _pairs(c, ["person_id"])
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # B-cubed: per record, the share of its cluster that is the same person, and of its person in its cluster
    both = c.group_by("cluster_id", "person_id").len().rename({"len": "n_both"})
    per = c.join(both, on=["cluster_id", "person_id"]).with_columns(
        pl.len().over("cluster_id").alias("n_cluster"), pl.len().over("person_id").alias("n_person"))
    b3_precision = (per["n_both"] / per["n_cluster"]).mean()
    b3_recall = (per["n_both"] / per["n_person"]).mean()
    if households:
        # same household, different people, wrongly merged (a record with no household is in none)
        h = c.filter(pl.col("household_id").is_not_null())
        same_household_wrong = _pairs(h, ["cluster_id", "household_id"]) \
            - _pairs(h, ["cluster_id", "household_id", "person_id"])
        same_household_pairs = _pairs(h, ["household_id"]) - _pairs(h, ["household_id", "person_id"])
        same_household_precision = 1 - same_household_wrong / same_household_pairs if same_household_pairs else 1.0
    else:
        same_household_pairs = same_household_wrong = same_household_precision = _no("household_id")
    return {
        "records": c.height,
        "pairwise_precision": precision,
        "pairwise_recall": recall,
        "pairwise_f1": f1,
        "bcubed_precision": float(b3_precision) if b3_precision is not None else NotComputed("no record in both"),
        "bcubed_recall": float(b3_recall) if b3_recall is not None else NotComputed("no record in both"),
        "same_household_different_person_pairs": same_household_pairs,
        "same_household_wrongly_merged": same_household_wrong,
        "same_household_precision": same_household_precision,
        "clusters": c["cluster_id"].n_unique(),
        "true_persons": c["person_id"].n_unique(),
    }


def _pairs_by_source(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Pairs of records placed together under `keys`, counted by the (unordered) pair of their sources."""
    counts = frame.group_by([*keys, "source"]).len()
    both = counts.join(counts, on=keys, suffix="_b").filter(pl.col("source") <= pl.col("source_b"))
    pairs = pl.when(pl.col("source") == pl.col("source_b")).then(pl.col("len") * (pl.col("len") - 1) // 2) \
        .otherwise(pl.col("len") * pl.col("len_b"))
    return both.group_by(pl.col("source").alias("source_a"), "source_b").agg(pairs.sum().alias("pairs"))


def person_link_quality_by_source_pair(clusters: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Pairwise precision, recall and F1 for each pair of sources (a source with itself is its duplicates)."""
    c = clusters.join(truth.select("source", "record_id", "person_id"), on=["source", "record_id"])
    keys = ["source_a", "source_b"]
    table = (
        _pairs_by_source(c, ["person_id"]).rename({"pairs": "true_pairs"})
        .join(_pairs_by_source(c, ["cluster_id"]).rename({"pairs": "linked_pairs"}), on=keys, how="full",
              coalesce=True)
        .join(_pairs_by_source(c, ["cluster_id", "person_id"]).rename({"pairs": "correct_pairs"}), on=keys,
              how="full", coalesce=True)
        .fill_null(0)
        .with_columns(
            pl.when(pl.col("linked_pairs") > 0).then(pl.col("correct_pairs") / pl.col("linked_pairs"))
            .otherwise(1.0).alias("precision"),
            pl.when(pl.col("true_pairs") > 0).then(pl.col("correct_pairs") / pl.col("true_pairs"))
            .otherwise(1.0).alias("recall"),
        )
        .with_columns((2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall")))
                      .fill_nan(0.0).alias("f1"))
    )
    return table.sort(keys)


def household_quality(con, truth_dir) -> dict[str, float | int | NotComputed]:
    """Share of true households (of people the agencies know) rebuilt exactly, and UPRN accuracy.

    A measure whose truth column is missing or empty (household_id; uprn_recorded and uprn_current for the
    ceiling) is NotComputed. Truth records the warehouse never received (neither linked nor quarantined) are
    left out, so a truth covering more than the agencies sent does not count households nobody could rebuild.
    """
    from warehouse import table_exists, uprn_match_rate

    truth = read_truth(Path(truth_dir) / "records.parquet")
    links = con.sql("select source, record_id, person_id from graph.record_link").pl()
    members = con.sql("select person_id, household_id from graph.household_member").pl()
    received = links.select("source", "record_id")
    if table_exists(con, "quarantine.row"):
        received = pl.concat([received, con.sql(
            "select source, record_id from quarantine.row where record_id is not null").pl()])
    truth = truth.join(received.unique(), on=["source", "record_id"], how="semi")
    rate = uprn_match_rate(con)  # the one definition: warehouse.UPRN_MATCH_RATE_DEFINITION
    if has_values(truth, "household_id"):
        households = _households(truth.filter(pl.col("household_id").is_not_null()), links, members, truth_dir)
    else:
        households = dict.fromkeys(("households_true", "households_exact", "households_exact_share",
                                    "households_evidenced_share", "households_ceiling_share"), _no("household_id"))
    return {**households, "uprn_matched_share": rate["share"], "uprn_accuracy_on_matched": _uprn_accuracy(con, truth)}


def _households(truth: pl.DataFrame, links: pl.DataFrame, members: pl.DataFrame, truth_dir) -> dict:
    # each predicted person stands for the true person most of its records belong to (ties: the first by id)
    votes = links.join(truth.select("source", "record_id", pl.col("person_id").alias("true_person")),
                       on=["source", "record_id"]).group_by("person_id", "true_person").len()
    person_map = votes.sort(["len", "true_person"], descending=[True, False]).unique(
        "person_id", keep="first", maintain_order=True).select("person_id", "true_person")
    predicted = members.join(person_map, on="person_id").group_by("household_id").agg(
        pl.col("true_person").sort().alias("members"))
    known = truth.select(pl.col("person_id").alias("true_person"), "household_id").unique()
    actual = known.group_by("household_id").agg(pl.col("true_person").sort().alias("members"))
    exact = actual.join(predicted.select("members").with_columns(pl.lit(True).alias("found")),
                        on="members", how="left")
    found = exact["found"].fill_null(False)
    result = {"households_true": actual.height, "households_exact": int(found.sum()),
              "households_exact_share": float(found.mean())}
    if not has_values(truth, "uprn_recorded", "uprn_current"):
        why = _no("uprn_recorded", "uprn_current")
        return {**result, "households_evidenced_share": why, "households_ceiling_share": why}
    # The ceiling any current-address rule can reach: households every member of which some agency records
    # at the household's current address. A member whom every agency still records at a former address
    # cannot be placed from the records (ADR 5).
    evidenced = (truth.group_by("person_id").agg(
        (pl.col("uprn_recorded") == pl.col("uprn_current")).fill_null(False).any().alias("at_current"),
        pl.col("household_id").first())
        .group_by("household_id").agg(pl.col("at_current").all()))
    # Nor can it rebuild a household at whose home the records still place someone of another household and
    # nowhere else: a member who left the area or died, still recorded at the old address by every agency.
    # (The city's households name their home; without it the ceiling is the one above.)
    homes = Path(truth_dir) / "households.parquet"
    if homes.exists():
        only_here = (truth.group_by("person_id").agg(pl.col("household_id").first(),
                                                     pl.col("uprn_recorded").drop_nulls().unique().alias("recorded"))
                     .filter(pl.col("recorded").list.len() == 1)
                     .select("household_id", pl.col("recorded").list.first().alias("uprn")))
        intruded = only_here.join(pl.read_parquet(homes).select("household_id", "uprn"), on="uprn", suffix="_home") \
            .filter(pl.col("household_id") != pl.col("household_id_home"))["household_id_home"].unique()
        ceiling = evidenced.with_columns(pl.col("at_current") & ~pl.col("household_id").is_in(intruded.implode()))
    else:
        ceiling = evidenced
    return {**result, "households_evidenced_share": float(evidenced["at_current"].mean()),
            "households_ceiling_share": float(ceiling["at_current"].mean())}


def _uprn_accuracy(con, truth: pl.DataFrame) -> float | NotComputed:
    """Of the records whose address matched a UPRN, the share matched to the UPRN the truth records."""
    if not has_values(truth, "uprn_recorded"):
        return _no("uprn_recorded")
    addresses = con.sql(
        "select r.source, r.record_id, m.uprn from staging.person_record r join linkage.address_match m "
        "on m.address_key = address_key(r.address_std, r.postcode, r.uprn) where m.uprn is not null").pl()
    if addresses.is_empty():
        return NotComputed("no address matched a UPRN (no gazetteer)")
    checked = addresses.join(truth.select("source", "record_id", "uprn_recorded"), on=["source", "record_id"]) \
        .filter(pl.col("uprn_recorded").is_not_null())
    if checked.is_empty():
        return NotComputed("no record whose address matched a UPRN has a uprn_recorded in the truth")
    matched, recorded = checked["uprn"], checked["uprn_recorded"]
    if matched.dtype != recorded.dtype:  # a benchmark's UPRNs may be text
        matched, recorded = _as_text(matched), _as_text(recorded)
    return float((matched == recorded).mean())


def link_errors_by_cause(clusters: pl.DataFrame, truth: pl.DataFrame, top: int = 10) -> pl.DataFrame:
    """The largest classes of missed links (same person, different clusters) and false links (different
    people, one cluster), by cause: the noise the generator put on either record (truth `noise`), and
    the pair of sources. Pairs are counted once; a pair whose records carry no noise is "no recorded noise".

    Returns kind (missed | false), cause, sources, pairs — the `top` largest classes of each kind.
    """
    noise = truth["noise"] if "noise" in truth.columns else pl.Series("noise", [[]] * truth.height,
                                                                     dtype=pl.List(pl.String))
    records = clusters.join(
        truth.select("source", "record_id", "person_id").with_columns(noise.alias("noise")),
        on=["source", "record_id"]).with_row_index("_i")
    left, right = records, records.rename({c: f"{c}_r" for c in records.columns})
    # missed: same person, different cluster; false: same cluster, different person (both within blocks
    # of one person or one cluster, so the self-joins stay the size of the true and predicted pairs)
    missed = left.join(right, left_on="person_id", right_on="person_id_r").filter(
        (pl.col("_i") < pl.col("_i_r")) & (pl.col("cluster_id") != pl.col("cluster_id_r")))
    false = left.join(right, left_on="cluster_id", right_on="cluster_id_r").filter(
        (pl.col("_i") < pl.col("_i_r")) & (pl.col("person_id") != pl.col("person_id_r")))

    def classes(pairs: pl.DataFrame, kind: str) -> pl.DataFrame:
        cause = pl.concat_list("noise", "noise_r").list.unique().list.sort().list.join(" + ")
        sources = pl.concat_list("source", "source_r").list.sort().list.join(" × ")
        return (pairs.select(pl.lit(kind).alias("kind"),
                             pl.when(cause == "").then(pl.lit("no recorded noise")).otherwise(cause).alias("cause"),
                             sources.alias("sources"))
                .group_by("kind", "cause", "sources").len("pairs")
                .sort(["pairs", "cause", "sources"], descending=[True, False, False]).head(top))

    return pl.concat([classes(missed, "missed"), classes(false, "false")])


def programme_truth_gap(truth_dir) -> str | None:
    """Why the programme cohorts cannot be evaluated against this truth, or None when they can: that evaluation
    (programmes._truth) reads the synthetic city's truth files as they are, households and dates of birth."""
    truth_dir = Path(truth_dir)
    records = pl.read_parquet_schema(truth_dir / "records.parquet")
    if "household_id" not in records:
        return "the truth has no household_id"
    if any(records.get(column) != pl.String for column in ("source", "record_id")):
        return "the truth's source and record_id are not text"
    persons = truth_dir / "persons.parquet"
    if not persons.exists():
        return f"no {persons.name} (true dates of birth) beside the truth"
    people = pl.read_parquet_schema(persons)
    if "date_of_birth" not in people or people.get("person_id") != records.get("person_id"):
        return f"{persons.name} has no date_of_birth, or its person_id is not of the truth's type"
    return None
