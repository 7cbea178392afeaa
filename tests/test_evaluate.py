"""Evaluation measures on hand-made clusters with known answers."""

import polars as pl
import pytest

from linkage_models.evaluate import person_link_quality, person_link_quality_by_source_pair

TRUTH = pl.DataFrame(
    {
        "source": ["health", "police", "education", "health", "police", "health"],
        "record_id": ["h1", "p1", "e1", "h2", "p2", "h3"],
        "person_id": [1, 1, 1, 2, 2, 2],
        "household_id": [10, 10, 10, 10, 10, 10],
    }
)


def test_pairwise_measures_count_every_pair_in_the_final_clusters():
    # person 1 found whole; person 2's police record wrongly joined to person 1
    clusters = TRUTH.select("source", "record_id").with_columns(
        pl.Series("cluster_id", ["a", "a", "a", "b", "a", "b"]))
    q = person_link_quality(clusters, TRUTH)
    # predicted pairs: cluster a has 4 records (6 pairs), b has 2 (1 pair) → 7; correct: 3 + 1 = 4; true: 3 + 3 = 6
    assert q["pairwise_precision"] == pytest.approx(4 / 7)
    assert q["pairwise_recall"] == pytest.approx(4 / 6)
    assert q["same_household_wrongly_merged"] == 3


def test_measures_by_source_pair():
    clusters = TRUTH.select("source", "record_id").with_columns(
        pl.Series("cluster_id", ["a", "a", "a", "b", "a", "b"]))
    table = person_link_quality_by_source_pair(clusters, TRUTH)
    row = {(r["source_a"], r["source_b"]): r for r in table.iter_rows(named=True)}
    # health × police: true pairs h1-p1, h2-p2, h3-p2; linked h1-p1, h1-p2; correct h1-p1
    hp = row[("health", "police")]
    assert (hp["true_pairs"], hp["linked_pairs"], hp["correct_pairs"]) == (3, 2, 1)
    assert hp["precision"] == pytest.approx(0.5) and hp["recall"] == pytest.approx(1 / 3)
    # health with itself: true h2-h3 found
    hh = row[("health", "health")]
    assert (hh["true_pairs"], hh["linked_pairs"], hh["correct_pairs"]) == (1, 1, 1)
    # education × police: e1-p1 true and found, e1-p2 linked wrongly
    ep = row[("education", "police")]
    assert (ep["true_pairs"], ep["linked_pairs"], ep["correct_pairs"]) == (1, 2, 1)
    assert sum(table["linked_pairs"]) == 7 and sum(table["true_pairs"]) == 6


def test_missed_and_false_links_are_classed_by_the_noise_on_either_record():
    truth = TRUTH.with_columns(pl.Series("noise", [[], ["surname_typo"], ["dob_missing"], [], ["nickname"], []]))
    # person 1's education record missed; person 2's police record wrongly joined to person 1
    clusters = TRUTH.select("source", "record_id").with_columns(
        pl.Series("cluster_id", ["a", "a", "c", "b", "a", "b"]))
    from linkage_models.evaluate import link_errors_by_cause

    errors = link_errors_by_cause(clusters, truth)
    rows = {(r["kind"], r["cause"], r["sources"]): r["pairs"] for r in errors.iter_rows(named=True)}
    assert rows == {
        ("missed", "dob_missing", "education × health"): 1,
        ("missed", "dob_missing + surname_typo", "education × police"): 1,
        ("missed", "nickname", "health × police"): 2,  # p2 apart from h2 and h3
        ("false", "nickname", "health × police"): 1,  # p2 with h1
        ("false", "nickname + surname_typo", "police × police"): 1,  # p2 with p1
    }
