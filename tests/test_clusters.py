"""Clustering with clerical decisions and the over-merge guard, on hand-made scored pairs."""

import datetime as dt

import polars as pl
import pytest

import warehouse
from linkage_models._clusters import cluster_persons
from linkage_models.clerical import record_decision

D = dt.date


@pytest.fixture()
def con():
    con = warehouse.connect(":memory:")
    nodes = pl.DataFrame(
        {
            "unique_id": ["h:a", "p:b", "e:c", "h:d", "p:e", "h:f", "p:g", "e:h", "h:i", "p:j", "h:k", "p:l"],
            "nhs_number": ["9434765919", None, "9434765870", None, None, None, None, None, None, None, None, None],
            "date_of_birth": [D(1990, 1, 1)] * 10 + [D(1980, 1, 1), D(2010, 1, 1)],
        }
    )
    pairs = pl.DataFrame(
        [
            ("h:a", "p:b", 0.999),  # a-b-c: two NHS numbers joined through b; b-c is the weaker link
            ("p:b", "e:c", 0.995),
            ("h:d", "p:e", 0.999),  # a reviewer said d and e are different people
            ("h:f", "p:g", 0.999),  # f-g-h chain with a cannot-link between f and h
            ("p:g", "e:h", 0.993),
            ("h:k", "p:l", 0.999),  # dates of birth 30 years apart
            ("h:i", "p:j", 0.40),   # too weak, but a reviewer said they match
        ],
        schema=["unique_id_l", "unique_id_r", "match_probability"],
        orient="row",
    ).with_columns(pl.lit(10.0).alias("match_weight"))
    con.register("_n", nodes)
    con.execute("create table person_linkage_input as select * from _n")
    con.register("_p", pairs)
    con.execute("create table linkage.person_pairs as select * from _p")
    yield con
    con.close()


def _groups(result) -> set[frozenset[str]]:
    grouped = result.clusters.group_by("cluster_id").agg("unique_id")
    return {frozenset(ids) for ids in grouped["unique_id"].to_list()}


def test_plain_clustering_joins_everything_above_the_threshold(con):
    result = cluster_persons(con, "person_linkage_input", 0.99)
    groups = _groups(result)
    assert frozenset({"h:d", "p:e"}) in groups and frozenset({"h:f", "p:g", "e:h"}) in groups
    assert frozenset({"h:i"}) in groups and frozenset({"p:j"}) in groups


def test_two_nhs_numbers_split_at_the_weakest_link_and_are_recorded(con):
    result = cluster_persons(con, "person_linkage_input", 0.99)
    groups = _groups(result)
    assert frozenset({"h:a", "p:b"}) in groups and frozenset({"e:c"}) in groups
    split = result.flags.filter(pl.col("action") == "split")
    assert set(split["unique_id"]) == {"h:a", "p:b", "e:c"}
    assert set(split["reason"]) == {"nhs_number_conflict"}
    assert split["cluster_key"].n_unique() == 1


def test_clerical_decisions_are_honoured(con):
    record_decision(con, ("h", "d"), ("p", "e"), "non_match", reviewer="test")
    record_decision(con, ("h", "f"), ("e", "h"), "non_match", reviewer="test")
    record_decision(con, ("p", "j"), ("h", "i"), "match", reviewer="test")
    result = cluster_persons(con, "person_linkage_input", 0.99)
    groups = _groups(result)
    assert frozenset({"h:d"}) in groups and frozenset({"p:e"}) in groups
    assert frozenset({"h:f", "p:g"}) in groups and frozenset({"e:h"}) in groups
    assert frozenset({"h:i", "p:j"}) in groups
    cannot = result.flags.filter(pl.col("reason") == "cannot_link")
    assert set(cannot["unique_id"]) == {"h:f", "p:g", "e:h"}


def test_the_latest_decision_wins(con):
    record_decision(con, ("h", "d"), ("p", "e"), "non_match", reviewer="test")
    record_decision(con, ("h", "d"), ("p", "e"), "match", reviewer="second reviewer")
    assert frozenset({"h:d", "p:e"}) in _groups(cluster_persons(con, "person_linkage_input", 0.99))


def test_dates_of_birth_far_apart_are_flagged_not_split(con):
    result = cluster_persons(con, "person_linkage_input", 0.99)
    assert frozenset({"h:k", "p:l"}) in _groups(result)
    flagged = result.flags.filter(pl.col("action") == "flagged")
    assert set(flagged["unique_id"]) == {"h:k", "p:l"}
    assert set(flagged["reason"]) == {"date_of_birth_conflict"}
