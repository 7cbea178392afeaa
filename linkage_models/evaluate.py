"""Linkage quality against ground truth (synthetic city only; the pipeline never reads truth).

Pairwise precision, recall and F1 on the final clusters (every pair of records placed together, not only
the scored pairs), B-cubed precision and recall, and precision on pairs of different people who live in
the same household (the pairs a household-blind model merges).
"""

from __future__ import annotations

import polars as pl


def _pairs(frame: pl.DataFrame, keys: list[str]) -> int:
    sizes = frame.group_by(keys).len()["len"]
    return int((sizes * (sizes - 1) // 2).sum())


def person_link_quality(clusters: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """clusters: source, record_id, cluster_id; truth: source, record_id, person_id, household_id."""
    c = clusters.join(truth.select("source", "record_id", "person_id", "household_id"), on=["source", "record_id"])
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
    # same household, different people, wrongly merged
    same_household_wrong = _pairs(c, ["cluster_id", "household_id"]) - _pairs(c, ["cluster_id", "household_id", "person_id"])
    same_household_pairs = _pairs(c, ["household_id"]) - _pairs(c, ["household_id", "person_id"])
    return {
        "records": c.height,
        "pairwise_precision": precision,
        "pairwise_recall": recall,
        "pairwise_f1": f1,
        "bcubed_precision": float(b3_precision),
        "bcubed_recall": float(b3_recall),
        "same_household_different_person_pairs": same_household_pairs,
        "same_household_wrongly_merged": same_household_wrong,
        "same_household_precision": 1 - same_household_wrong / same_household_pairs if same_household_pairs else 1.0,
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


def household_quality(con, truth_dir) -> dict[str, float]:
    """Share of true households (of people the agencies know) rebuilt exactly, and UPRN accuracy."""
    from pathlib import Path

    truth = pl.read_parquet(Path(truth_dir) / "records.parquet")
    links = con.sql("select source, record_id, person_id from graph.record_link").pl()
    members = con.sql("select person_id, household_id from graph.household_member").pl()
    # each predicted person stands for the true person most of its records belong to
    votes = links.join(truth.select("source", "record_id", pl.col("person_id").alias("true_person")),
                       on=["source", "record_id"]).group_by("person_id", "true_person").len()
    person_map = votes.sort("len", descending=True).unique("person_id", keep="first").select("person_id", "true_person")
    predicted = members.join(person_map, on="person_id").group_by("household_id").agg(
        pl.col("true_person").sort().alias("members"))
    known = truth.select(pl.col("person_id").alias("true_person"), "household_id").unique()
    actual = known.group_by("household_id").agg(pl.col("true_person").sort().alias("members"))
    exact = actual.join(predicted.select("members").with_columns(pl.lit(True).alias("found")),
                        on="members", how="left")
    addresses = con.sql(
        "select r.source, r.record_id, m.uprn from staging.person_record r join linkage.address_match m "
        "on m.address_key = address_key(r.address_std, r.postcode, r.uprn) where m.uprn is not null").pl()
    checked = addresses.join(truth.select("source", "record_id", "uprn_recorded"), on=["source", "record_id"])
    from warehouse import uprn_match_rate

    rate = uprn_match_rate(con)  # the one definition: warehouse.UPRN_MATCH_RATE_DEFINITION
    # The ceiling any current-address rule can reach: households every member of which some agency records
    # at the household's current address. A member whom every agency still records at a former address
    # cannot be placed from the records (ADR 5).
    evidenced = (truth.group_by("person_id").agg(
        (pl.col("uprn_recorded") == pl.col("uprn_current")).fill_null(False).any().alias("at_current"),
        pl.col("household_id").first())
        .group_by("household_id").agg(pl.col("at_current").all())) if {"uprn_recorded", "uprn_current"} <= set(
        truth.columns) else None
    # Nor can it rebuild a household at whose home the records still place someone of another household and
    # nowhere else: a member who left the area or died, still recorded at the old address by every agency.
    # (The city's households name their home; without it the ceiling is the one above.)
    homes = Path(truth_dir) / "households.parquet"
    if evidenced is not None and homes.exists():
        only_here = (truth.group_by("person_id").agg(pl.col("household_id").first(),
                                                     pl.col("uprn_recorded").drop_nulls().unique().alias("recorded"))
                     .filter(pl.col("recorded").list.len() == 1)
                     .select("household_id", pl.col("recorded").list.first().alias("uprn")))
        intruded = only_here.join(pl.read_parquet(homes).select("household_id", "uprn"), on="uprn", suffix="_home") \
            .filter(pl.col("household_id") != pl.col("household_id_home"))["household_id_home"].unique()
        ceiling = evidenced.with_columns(pl.col("at_current") & ~pl.col("household_id").is_in(intruded.implode()))
    else:
        ceiling = evidenced
    return {
        "households_true": actual.height,
        "households_exact": int(exact["found"].fill_null(False).sum()),
        "households_exact_share": float(exact["found"].fill_null(False).mean()),
        **({"households_evidenced_share": float(evidenced["at_current"].mean()),
            "households_ceiling_share": float(ceiling["at_current"].mean())} if evidenced is not None else {}),
        "uprn_matched_share": rate["share"],
        "uprn_accuracy_on_matched": float((checked["uprn"] == checked["uprn_recorded"]).mean()),
    }


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
