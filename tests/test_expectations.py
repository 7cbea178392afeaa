"""GX validation: exact quarantine with every reason, warnings don't quarantine, extract-level checks, Data Docs."""

import datetime as dt
import json

import polars as pl
import pytest

from expectations import build_suites, check_extract, validate_records
from expectations._suites import SUITES_DIR, suite_json
from sources import canonical

ROWS = [
    dict(record_id="ok", first_name="Ann", last_name="Lee", date_of_birth=dt.date(2000, 1, 2), sex="F", postcode="AV1 1AA"),
    dict(record_id="no-name", first_name=None, last_name=" ", date_of_birth=dt.date(2000, 1, 2)),
    dict(record_id="no-dob-no-id", first_name="Bo", last_name="Ray"),
    dict(record_id="no-dob-but-nhs", first_name="Cy", last_name="Day", nhs_number="9434765919"),
    dict(record_id="both", first_name=None, last_name=None),
    dict(record_id="bad-postcode", first_name="Di", last_name="Ek", date_of_birth=dt.date(1990, 1, 1), postcode="XX",
         sex="U"),
]


def _frame():
    rows = [dict(r, source="health", row_number=i + 2) for i, r in enumerate(ROWS)]
    return canonical.conform(pl.DataFrame(rows), canonical.PERSON_RECORD)


def test_quarantine_holds_exactly_the_unusable_rows_with_every_reason(tmp_path):
    outcome = validate_records("health", _frame(), dt.date(2026, 11, 1), context_dir=tmp_path)
    reasons = {r["record_id"]: sorted(r["reasons"]) for r in outcome.quarantined.to_dicts()}
    assert reasons == {
        "no-name": ["no name"],
        "no-dob-no-id": ["no date of birth or identifier"],
        "both": ["no date of birth or identifier", "no name"],
    }
    assert outcome.quarantined["row_number"].to_list() == [3, 4, 6]
    assert sorted(outcome.staged["record_id"]) == ["bad-postcode", "no-dob-but-nhs", "ok"]
    assert outcome.staged.height + outcome.quarantined.height == len(ROWS)
    warnings = outcome.summary.filter(pl.col("severity") == "warning")
    postcode = warnings.filter(pl.col("column") == "postcode")
    assert postcode["unexpected_count"].to_list() == [1] and postcode["success"].to_list() == [False]
    assert outcome.data_docs and tmp_path.joinpath("gx", "uncommitted", "data_docs", "local_site", "index.html").exists()


def test_unseen_source_uses_default_suite():
    outcome = validate_records("fire_service", _frame(), dt.date(2026, 11, 1))
    assert outcome.quarantined.height == 3


def test_committed_suites_are_what_the_builder_writes(tmp_path):
    build_suites(tmp_path)
    for path in SUITES_DIR.glob("*.json"):
        assert json.loads(path.read_text()) == json.loads((tmp_path / path.name).read_text()), path.name
    assert suite_json("health")["expectations"][0]["meta"]["severity"] == "quarantine"


@pytest.mark.parametrize("frame, previous, expected", [
    (pl.DataFrame({"ID": ["1", "2", "2"], "_row_number": [2, 3, 4]}), None, "share a record key"),
    (pl.DataFrame({"ID": ["1", "2"], "_row_number": [2, 3]}), 10, "row count fell from 10 to 2"),
    (pl.DataFrame({"ID": ["1", "", "", ""], "_row_number": [2, 3, 4, 5]}), None, "only 25% of rows have a record key"),
    (pl.DataFrame({"X": ["1"], "_row_number": [2]}), None, "required column(s) missing: ID"),
])
def test_extract_level_problems(frame, previous, expected):
    problems = check_extract("s", frame, previous_row_count=previous, required_columns=["ID"], key_column="ID")
    assert any(expected in p for p in problems), problems


def test_healthy_extract_has_no_problems():
    frame = pl.DataFrame({"ID": ["1", "2"], "_row_number": [2, 3]})
    assert check_extract("s", frame, previous_row_count=2, required_columns=["ID"], key_column="ID") == []
