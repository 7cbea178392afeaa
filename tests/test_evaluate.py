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


def test_households_rebuilt_exactly_and_what_the_records_allow(tmp_path):
    """A household is evidenced when every member is recorded at its home by some agency; it is within the
    ceiling when, besides, the records place nobody of another household only at its home (a member who left
    the area, still recorded there by every agency, makes any current-address rule put them back)."""
    import warehouse
    from linkage_models.evaluate import household_quality

    truth = pl.DataFrame({
        "source": ["health"] * 6, "record_id": [f"h{i}" for i in range(1, 7)], "person_id": [1, 2, 3, 4, 5, 6],
        # 10 and 11 share home 100 (person 3 left household 10 and the area, still recorded there); 13 is
        # recorded only at a former address
        "household_id": [10, 10, 11, 12, 12, 13],
        "uprn_recorded": [100, 100, 100, 200, 200, 301], "uprn_current": [100, 100, None, 200, 200, 300]})
    truth.write_parquet(tmp_path / "records.parquet")
    pl.DataFrame({"household_id": [10, 11, 12, 13], "uprn": [100, 100, 200, 300]}).write_parquet(
        tmp_path / "households.parquet")
    con = warehouse.connect(":memory:")
    con.execute("insert into staging.person_record (source, record_id, address_std, postcode) "
                "select 'health', 'h' || i, 'ADDRESS ' || i, 'AV1 1AA' from range(1, 7) as t(i)")
    con.execute("create table linkage.address_match as select address_key('ADDRESS ' || i, 'AV1 1AA', null) "
                "as address_key, [100, 100, 100, 200, 200, 301][i] as uprn, 'rules' as match_method "
                "from range(1, 7) as t(i)")
    con.execute("create table graph.record_link as select 'health' as source, 'h' || i as record_id, "
                "'P' || i as person_id from range(1, 7) as t(i)")
    con.execute("create table graph.household_member as select * from (values ('P1', 'A'), ('P2', 'A'), "
                "('P3', 'A'), ('P4', 'B'), ('P5', 'B'), ('P6', 'C')) as t(person_id, household_id)")
    q = household_quality(con, tmp_path)
    assert q["households_true"] == 4 and q["households_exact"] == 2  # 12, and 13 alone at its former address
    assert q["households_evidenced_share"] == pytest.approx(2 / 4)  # 10 and 12
    assert q["households_ceiling_share"] == pytest.approx(1 / 4)  # 12: person 3 is placed at 10's home
    assert q["uprn_accuracy_on_matched"] == pytest.approx(1.0)
