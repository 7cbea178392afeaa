"""Clerical review: a stratified sample, a minimal view, decisions stored by id and audited, fed to the report."""

import shutil

import pytest

from pipelines.settings import Settings
from pipelines.stages import open_warehouse
from reports import _figures
from reports.review import review, sample_pairs, view

pytestmark = pytest.mark.slow


@pytest.fixture()
def con(published_city, tmp_path):
    settings, _ = published_city
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(settings.warehouse, copy)  # decisions must not leak into the shared city
    con = open_warehouse(Settings(data_dir=tmp_path, warehouse_path=copy))
    yield con
    con.close()


def test_sample_is_stratified_and_skips_decided_pairs(con):
    pairs = sample_pairs(con, 0.99, borderline=5, random=5)
    assert [p.stratum for p in pairs].count("borderline") == 5 and [p.stratum for p in pairs].count("random") == 5
    centre = 6.63  # log2(0.99 / 0.01)
    assert all(abs(p.match_weight - centre) <= 4.0 for p in pairs if p.stratum == "borderline")
    review(con, pairs[:3], lambda *_: "m", reviewer="tester", model_version="v1")
    again = sample_pairs(con, 0.99, borderline=50, random=50)
    decided = {(p.left, p.right) for p in pairs[:3]}
    assert not decided & {(p.left, p.right) for p in again}


def test_view_shows_only_what_the_decision_needs(con):
    pair = sample_pairs(con, 0.99, borderline=1, random=0)[0]
    shown = view(con, pair)
    assert [name for name, *_ in shown.rows] == ["first_name", "first_name_std", "last_name", "last_name_std",
                                                 "date_of_birth", "sex", "postcode_district"]
    for name, left, right in shown.rows:
        if name == "postcode_district":  # a district, never a full postcode or address (names may have spaces)
            assert all(" " not in str(v) or str(v) == "—" for v in (left, right))
    identifiers = con.execute(
        "select nhs_number, upn, pnc_id, ni_number from staging.person_record where source = ? and record_id = ?",
        list(pair.left)).fetchall()[0]
    shown_text = repr(shown)
    assert all(value is None or value not in shown_text for value in identifiers)
    assert {agreement for _, agreement in shown.identifiers} <= {"same", "different", "missing"}


def test_decisions_are_stored_by_id_audited_and_estimate_precision(con):
    pairs = sample_pairs(con, 0.99, borderline=6, random=4)
    answers = iter(["m", "n", "u", "s", "m", "m", "n", "m", "m", "q"])
    counts = review(con, pairs, lambda *_: next(answers), reviewer="tester", model_version="v1")
    assert counts == {"match": 5, "non_match": 2, "unsure": 1, "skipped": 1}
    stored = con.sql("select * from linkage.clerical_decision").pl()
    assert stored.height == 8 and set(stored["reviewer"]) == {"tester"}
    assert set(stored.columns) == {"source_l", "record_id_l", "source_r", "record_id_r", "decision", "stratum",
                                   "match_probability", "model_version", "reviewer", "decided_at"}
    audit = con.execute("select actor, action, detail from audit.access_log where action = 'clerical_review'").fetchall()
    assert audit and audit[-1][0] == "tester"
    clerical = _figures.accuracy(con, None)["clerical"]
    assert clerical["pairs_labelled"] == 7 and clerical["unsure"] == 1
    pooled = clerical["all"]
    low, high = pooled["precision_ci"]
    assert pooled["precision_n"] > 0 and low <= pooled["precision"] <= high
    # the headline uses the random stratum only (borderline pairs are over-sampled on purpose)
    assert clerical["random"]["precision_n"] + clerical["random"]["recall_n"] < pooled["precision_n"] + pooled["recall_n"]


def test_the_review_shows_the_name_as_recorded_beside_its_matching_form():
    """A name in another script is matched on its transliteration; the reviewer sees both (issue 13, item 11)."""
    import datetime as dt

    import duckdb
    import polars as pl

    from reports.review import LABELS, Pair
    from sources import canonical, standardise_person_records

    records = standardise_person_records(canonical.conform(pl.DataFrame({
        "source": ["police", "health"], "record_id": ["a", "b"], "record_role": ["subject", "subject"],
        "first_name": ["Дмитрий", "Dmitriy"], "last_name": ["Волков", "Volkov"]}), canonical.PERSON_RECORD),
        as_of=dt.date(2026, 11, 1))
    con = duckdb.connect()
    con.execute("create schema staging")
    con.register("_records", records)
    con.execute("create table staging.person_record as select * from _records")
    shown = view(con, Pair(("police", "a"), ("health", "b"), 0.9, 3.2, "borderline"))
    rows = {name: (left, right) for name, left, right in shown.rows}
    assert rows["first_name"] == ("Дмитрий", "Dmitriy") and rows["last_name"] == ("Волков", "Volkov")
    assert rows["first_name_std"] == ("dmitriy", "dmitriy") and rows["last_name_std"] == ("volkov", "volkov")
    assert set(LABELS) == {name for name, *_ in shown.rows}
