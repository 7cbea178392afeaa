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
    nodes = pl.DataFrame(
        {
            "unique_id": ["h:a", "p:b", "e:c", "h:d", "p:e", "h:f", "p:g", "e:h", "h:i", "p:j", "h:k", "p:l", "e:m",
                          "h:n", "p:o", "h:q", "p:r", "h:s", "p:t", "e:u"],
            "nhs_number": ["9434765919", None, "9434765870"] + [None] * 17,
            "date_of_birth": [D(1990, 1, 1)] * 10 + [D(1980, 1, 1), D(2010, 1, 1), None, D(1990, 1, 1),
                                                     D(1992, 6, 1), D(1987, 5, 3), D(1997, 5, 3), D(1950, 3, 1),
                                                     D(2001, 7, 9), D(1950, 3, 1)],
        }
    )
    pairs = pl.DataFrame(
        [
            ("h:a", "p:b", 0.999),  # a-b-c: two NHS numbers joined through b; b-c is the weaker link
            ("p:b", "e:c", 0.995),
            ("h:d", "p:e", 0.999),  # a reviewer said d and e are different people
            ("h:f", "p:g", 0.999),  # f-g-h chain with a cannot-link between f and h
            ("p:g", "e:h", 0.993),
            ("h:k", "e:m", 0.999),  # k (born 1980) and l (born 2010) joined through m, which has no date;
            ("e:m", "p:l", 0.995),  # m-l is the weaker link
            ("h:n", "p:o", 0.999),  # dates of birth two years apart: kept together, flagged
            ("h:q", "p:r", 0.999),  # 1987 and 1997: one mistyped digit, kept together, flagged
            ("h:s", "p:t", 0.999),  # 1950 and 2001 linked with both dates: the model weighed them; kept, flagged
            ("e:u", "h:s", 0.999),  # u's date agrees with s's: u-s-t is one person whose t date was keyed badly
            ("h:i", "p:j", 0.40),   # too weak, but a reviewer said they match
        ],
        schema=["unique_id_l", "unique_id_r", "match_probability"],
        orient="row",
    ).with_columns(pl.lit(10.0).alias("match_weight"))
    con = _warehouse(nodes, pairs)
    yield con
    con.close()


def _warehouse(nodes: pl.DataFrame, pairs: pl.DataFrame):
    """An in-memory warehouse with `nodes` as the linkage input and `pairs` as the scored pairs."""
    con = warehouse.connect(":memory:")
    con.register("_n", nodes)
    con.execute("create table person_linkage_input as select * from _n")
    con.register("_p", pairs)
    con.execute("create table linkage.person_pairs as select * from _p")
    return con


def _scored(*pairs: tuple[str, str, float]) -> pl.DataFrame:
    return pl.DataFrame(list(pairs), schema=["unique_id_l", "unique_id_r", "match_probability"], orient="row",
                        ).with_columns(pl.lit(10.0).alias("match_weight"))


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
    split = result.flags.filter(pl.col("action") == "split", pl.col("reason") != "generations_apart")
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


def test_dates_of_birth_apart_are_flagged_not_split(con):
    result = cluster_persons(con, "person_linkage_input", 0.99)
    groups = _groups(result)
    assert frozenset({"h:n", "p:o"}) in groups and frozenset({"h:q", "p:r"}) in groups
    assert frozenset({"h:s", "p:t", "e:u"}) in groups
    flagged = result.flags.filter(pl.col("action") == "flagged")
    assert set(flagged["unique_id"]) == {"h:n", "p:o", "h:q", "p:r", "h:s", "p:t", "e:u"}
    assert set(flagged["reason"]) == {"date_of_birth_conflict"}


def test_dates_of_birth_a_generation_apart_are_split_at_the_weakest_link(con):
    result = cluster_persons(con, "person_linkage_input", 0.99)
    groups = _groups(result)
    assert frozenset({"h:k", "e:m"}) in groups and frozenset({"p:l"}) in groups
    split = result.flags.filter(pl.col("reason") == "generations_apart")
    assert set(split["unique_id"]) == {"h:k", "e:m", "p:l"} and set(split["action"]) == {"split"}
    # a 1987/1997 pair is one keying error apart: suspected, not split, so not recorded as split
    assert not result.flags.filter(pl.col("unique_id") == "h:q", pl.col("action") == "split").height


def test_generations_allow_one_keying_error():
    from linkage_models._clusters import dates_conflict

    assert dates_conflict("1980-01-01", "2010-01-01")
    assert not dates_conflict("1987-05-03", "1997-05-03")  # one digit
    assert not dates_conflict("1978-05-03", "1987-05-03")  # two digits transposed
    assert not dates_conflict("1990-01-01", "1999-12-31")  # within the generation gap


def test_a_stated_parent_is_split_from_anyone_born_after_their_bound():
    """An undated record a source states to be a parent (born_before: the child's date less PARENT_YEARS) is not
    the same person as a record born after that bound, however strongly the two were scored: the guard refuses
    that link and keeps the parent's link to a record born before the bound."""
    con = _warehouse(pl.DataFrame({
        "unique_id": ["e:p1", "h:child", "h:parent", "e:p2", "h:other"],
        "nhs_number": [None] * 5,
        "date_of_birth": [None, D(2019, 11, 17), D(1985, 4, 2), None, D(1990, 1, 1)],
        "born_before": [D(2007, 11, 17), None, None, D(2010, 1, 1), None],
    }), _scored(("e:p1", "h:child", 0.9999), ("e:p1", "h:parent", 0.995), ("e:p2", "h:other", 0.999)))
    result = cluster_persons(con, "person_linkage_input", 0.99)
    groups = _groups(result)
    assert frozenset({"e:p1", "h:parent"}) in groups and frozenset({"h:child"}) in groups
    assert frozenset({"e:p2", "h:other"}) in groups  # born before the bound: undecided, the score stands
    split = result.flags.filter(pl.col("action") == "split")
    assert set(split["unique_id"]) == {"e:p1", "h:child", "h:parent"}
    assert set(split["reason"]) == {"generations_apart,parent_and_child"}


def test_a_stated_parent_linked_only_to_their_child_is_split_without_another_date():
    """The generation guard needs two dates a generation apart; a stated parent's record joined to their child's
    records alone holds one date, and the parent's bound is what tells them apart."""
    con = _warehouse(pl.DataFrame({"unique_id": ["e:p1", "h:child", "e:child"], "nhs_number": [None] * 3,
                                   "date_of_birth": [None, D(2019, 11, 17), D(2019, 11, 17)],
                                   "born_before": [D(2007, 11, 17), None, None]}),
                     _scored(("e:p1", "h:child", 0.9999), ("h:child", "e:child", 0.999)))
    result = cluster_persons(con, "person_linkage_input", 0.99)
    assert _groups(result) == {frozenset({"e:p1"}), frozenset({"h:child", "e:child"})}
    assert set(result.flags.filter(pl.col("action") == "split")["reason"]) == {"parent_and_child"}
