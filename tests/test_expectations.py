"""GX validation: exact quarantine with every reason, warnings don't quarantine, suites from JSON,
the default suite for an unseen source, extract-level problems, Data Docs, errors never pass."""

import datetime as dt
import json
import shutil

import polars as pl
import pytest

from expectations import ExpectationError, ExtractProblem, build_suites, check_extract, validate_records
from expectations._suites import SUITES_DIR, suite_json
from sources import canonical

EXTRACT_DATE = dt.date(2026, 11, 1)
DOB = dt.date(2001, 5, 6)
GOOD = dict(first_name="Ann", last_name="Lee", date_of_birth=DOB, sex="F", postcode="AV1 1AA")

MIN = "none of date of birth, identifier, address, postcode, phone or email (minimum data for linking)"
# record_id → (row, reasons it is quarantined for; [] = staged)
ROWS = {
    "ok": (dict(GOOD), []),
    None: (dict(GOOD), ["no record id"]),
    "  ": (dict(GOOD), ["no record id"]),
    "no-name": (dict(GOOD, first_name=None, last_name=" "), ["no name"]),
    "first-name-only": (dict(GOOD, last_name=None), []),
    "last-name-only": (dict(GOOD, first_name=""), []),
    "no-dob-no-id": (dict(GOOD, date_of_birth=None), []),  # a postcode is enough by default
    "name-only": (dict(first_name="Ann", last_name="Lee"), [MIN]),
    "name-and-phone": (dict(first_name="Ann", last_name="Lee", phone="+447700900123"), []),
    "name-and-email": (dict(first_name="Ann", last_name="Lee", email="a@example.org"), []),
    "name-and-address": (dict(first_name="Ann", last_name="Lee", address_text="1 Mill Lane"), []),
    "no-dob-nhs": (dict(GOOD, date_of_birth=None, nhs_number="9434765919"), []),
    "no-dob-upn": (dict(GOOD, date_of_birth=None, upn="A123456789012"), []),
    "no-dob-pnc": (dict(GOOD, date_of_birth=None, pnc_id="12/345678A"), []),
    "no-dob-crn": (dict(GOOD, date_of_birth=None, crn="X123456"), []),
    "no-dob-ni-only": (dict(first_name="Ann", ni_number="AB123456C"), []),
    "no-name-no-dob": (dict(first_name=None, last_name=None), ["no name", MIN]),
    # warnings only: reported, still staged
    "bad-postcode": (dict(GOOD, postcode="ZZ99BAD"), []),
    "sex-unknown": (dict(GOOD, sex="U"), []),
    "nhs-9-digits": (dict(GOOD, nhs_number="943476591"), []),
    "born-1850": (dict(GOOD, date_of_birth=dt.date(1850, 1, 1)), []),
    "born-after-extract": (dict(GOOD, date_of_birth=dt.date(2027, 1, 1)), []),
    "flagged": (dict(GOOD, quality_flags=["nhs_number_invalid"]), []),
}
# the row with every quarantine reason at once, added last
ALL_REASONS = dict(record_id=None, first_name=" ", last_name=None)


def _records(rows: list[dict], source: str = "health") -> pl.DataFrame:
    rows = [dict(r, source=source, row_number=i + 2) for i, r in enumerate(rows)]
    return canonical.conform(pl.DataFrame(rows, infer_schema_length=None), canonical.PERSON_RECORD)


def _city_rows() -> list[dict]:
    return [dict(row, record_id=rid) for rid, (row, _) in ROWS.items()] + [ALL_REASONS]


@pytest.fixture(scope="module")
def health(tmp_path_factory):
    """One file-context run over every case (GX runs are the slow part of these tests)."""
    gx_dir = tmp_path_factory.mktemp("gx")
    frame = _records(_city_rows())
    return frame, validate_records("health", frame, EXTRACT_DATE, context_dir=gx_dir), gx_dir


@pytest.mark.parametrize("row_number, record_id, reasons", [
    (i + 2, rid, reasons) for i, (rid, (_, reasons)) in enumerate(ROWS.items())
] + [(len(ROWS) + 2, None, ["no record id", "no name", MIN])])
def test_each_row_is_quarantined_for_exactly_its_reasons(health, row_number, record_id, reasons):
    _, outcome, _ = health
    found = outcome.quarantined.filter(pl.col("row_number") == row_number)
    staged = outcome.staged.filter(pl.col("row_number") == row_number)
    if reasons:
        assert found["reasons"].to_list() == [reasons]
        assert found["record_id"].to_list() == [record_id]
        assert staged.height == 0
    else:
        assert found.height == 0
        assert staged["record_id"].to_list() == [record_id]


def test_staged_plus_quarantined_is_every_row_and_staged_keeps_the_columns(health):
    frame, outcome, _ = health
    assert outcome.staged.height + outcome.quarantined.height == frame.height
    assert outcome.quarantined.columns == ["row_number", "record_id", "reasons"]
    assert outcome.staged.columns == frame.columns
    assert outcome.staged["row_number"].to_list() == sorted(outcome.staged["row_number"].to_list())


@pytest.mark.parametrize("reason, severity, unexpected, success", [
    ("no record id", "quarantine", 3, False),
    ("no name", "quarantine", 3, False),
    (MIN, "quarantine", 3, False),
    ("date of birth outside the contract's bounds or after the extract date", "warning", 2, False),
    ("postcode not in UK format", "warning", 1, False),
    ("NHS number not 10 digits", "warning", 1, False),
    ("sex not M or F", "warning", 1, False),
    ("more than 10% of rows had a value set aside", "warning", 1, True),  # 1 of 20 is within mostly=0.9
    ("more than 20% of rows have no NHS number", "warning", 22, False),  # health only
])
def test_summary_has_one_row_per_expectation_with_counts(health, reason, severity, unexpected, success):
    _, outcome, _ = health
    row = outcome.summary.filter(pl.col("reason") == reason)
    assert row.select("severity", "unexpected_count", "success").rows() == [(severity, unexpected, success)]


def test_gx_success_flag_and_suite_used(health):
    _, outcome, _ = health
    assert outcome.success is False
    assert outcome.suite == "health.json"


def test_data_docs_index_is_written_under_the_context_folder(health):
    _, outcome, gx_dir = health
    index = gx_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert outcome.data_docs == str(index) and index.exists()
    assert "familylink_health" in index.read_text(encoding="utf-8")


def test_no_failing_value_is_written_by_gx(health):
    # names, dates of birth and identifiers that failed an expectation stay out of GX's files
    _, _, gx_dir = health
    written = "".join(p.read_text(encoding="utf-8", errors="ignore") for p in gx_dir.rglob("*") if p.is_file()
                      and p.suffix in (".json", ".html"))
    for value in ("ZZ99BAD", "943476591", "1850-01-01", "2027-01-01"):
        assert value not in written


def test_a_clean_extract_succeeds_and_an_unseen_source_uses_the_default_suite():
    frame = _records([dict(GOOD, record_id="a"), dict(GOOD, record_id="b", first_name=None, last_name=None)],
                     source="fire_service")
    outcome = validate_records("fire_service", frame, EXTRACT_DATE, context_dir=None)
    assert outcome.suite == "default.json"
    assert outcome.quarantined.rows() == [(3, "b", ["no name"])]
    assert outcome.staged["record_id"].to_list() == ["a"]
    assert outcome.data_docs is None
    default_reasons = [MIN if e["kwargs"].get("column") == "_has_minimum_data" else e["meta"]["reason"]
                       for e in suite_json("default")["expectations"]]
    assert outcome.summary["reason"].to_list() == default_reasons
    clean = validate_records("fire_service", frame.head(1), EXTRACT_DATE)
    assert clean.success is True and clean.quarantined.height == 0 and clean.staged.height == 1


def test_dates_before_1677_that_a_contract_allows_are_validated_not_a_crash():
    """pandas' nanosecond datetimes start in 1677; a register of historical persons goes back further."""
    frame = _records([dict(GOOD, record_id="a", date_of_birth=dt.date(1630, 8, 1)),
                      dict(GOOD, record_id="b", date_of_birth=dt.date(1066, 10, 14))], source="fire_service")
    outcome = validate_records("fire_service", frame, EXTRACT_DATE, context_dir=None)
    assert outcome.staged["date_of_birth"].to_list() == [dt.date(1630, 8, 1), dt.date(1066, 10, 14)]
    assert outcome.quarantined.height == 0


def test_committed_suites_are_what_the_builder_writes(tmp_path):
    written = build_suites(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in SUITES_DIR.glob("*.json"))
    for path in written:
        assert json.loads((SUITES_DIR / path.name).read_text()) == json.loads(path.read_text()), path.name


def test_every_expectation_states_its_severity_and_only_three_quarantine():
    for source in ("police", "probation", "housing", "health", "education", "default"):
        expectations = suite_json(source)["expectations"]
        assert {e["meta"]["severity"] for e in expectations} == {"quarantine", "warning"}
        assert [e["meta"]["reason"] for e in expectations if e["meta"]["severity"] == "quarantine"] == [
            "no record id", "no name", "below the minimum data for linking"]  # reworded at run time


def test_suites_are_loaded_from_the_json_files(tmp_path):
    suites = tmp_path / "suites"
    shutil.copytree(SUITES_DIR, suites)
    document = json.loads((suites / "police.json").read_text())
    document["expectations"][1]["meta"]["reason"] = "nameless"
    (suites / "police.json").write_text(json.dumps(document))
    frame = _records([dict(GOOD, record_id="a", first_name=None, last_name=None)], source="police")
    outcome = validate_records("police", frame, EXTRACT_DATE, suites_dir=suites)
    assert outcome.quarantined["reasons"].to_list() == [["nameless"]]


def _broken_suite(tmp_path, change) -> object:
    suites = tmp_path / "suites"
    shutil.copytree(SUITES_DIR, suites)
    document = json.loads((suites / "default.json").read_text())
    change(document["expectations"])
    (suites / "default.json").write_text(json.dumps(document))
    return suites


def _date_bounds(expectations):
    # the STACK-NOTES pitfall: date bounds against a datetime column make GX record an exception
    between = next(e for e in expectations if e["type"] == "expect_column_values_to_be_between")
    between["kwargs"].update(min_value="1900-01-01", max_value="2026-11-01")


def _quarantine_rule_on_missing_column(expectations):
    expectations[1]["kwargs"]["column"] = "_not_a_column"


def _unknown_expectation(expectations):
    expectations[0]["type"] = "expect_column_values_to_be_lovely"


def _no_severity(expectations):
    del expectations[4]["meta"]["severity"]


@pytest.mark.parametrize("change, message", [
    (_date_bounds, "expect_column_values_to_be_between on column date_of_birth could not be evaluated"),
    (_quarantine_rule_on_missing_column, "the suite reads column(s) the records do not have: _not_a_column"),
    (_unknown_expectation, "default.json: expectation 0 (expect_column_values_to_be_lovely) is not valid"),
    (_no_severity, "default.json: expectation 4 (expect_column_values_to_match_regex) has meta.severity None"),
])
def test_an_expectation_that_cannot_be_evaluated_raises(tmp_path, change, message):
    suites = _broken_suite(tmp_path, change)
    frame = _records([dict(GOOD, record_id="a", date_of_birth=dt.date(1850, 1, 1))], source="fire_service")
    with pytest.raises(ExpectationError) as raised:
        validate_records("fire_service", frame, EXTRACT_DATE, suites_dir=suites)
    assert message in str(raised.value)
    assert "1850" not in str(raised.value)


def _extract(keys: list, **columns) -> pl.DataFrame:
    return pl.DataFrame({"ID": keys, **columns, "_row_number": list(range(2, len(keys) + 2))},
                        schema_overrides={"ID": pl.String})


@pytest.mark.parametrize("frame, previous, extra, expected", [
    (_extract(["K1", "K2"]).rename({"ID": "X"}), None, {},
     [("required_column_missing", "ID", "required column ID is missing")]),
    (_extract(["K1", "K2"]), None, {"required_columns": ["ID", "NAME", "DOB"]},
     [("required_column_missing", "NAME", "required column NAME is missing"),
      ("required_column_missing", "DOB", "required column DOB is missing")]),
    (_extract(["K1", "K2", "K3", "K4"]), 10, {},
     [("row_count_dropped", None, "row count fell from 10 to 4, more than 50% below the last good load "
                                  "(at least 5 rows expected)")]),
    (_extract(["K1", "K2", "K3"]), 10, {"max_drop_share": 0.75}, []),
    (_extract(["K1", "K2", "K3", "K4", "K5"]), 10, {}, []),
    (_extract(["K1", "", None, "  "]), None, {},
     [("key_mostly_empty", "ID", "column ID: only 25% of rows have a record key (at least 50% needed)")]),
    (_extract(["K1", "K2", None, None]), None, {}, []),
    (_extract(["K1", "K2", "K3", "K4"], FIRST=["A", None, " ", None], LAST=[None, None, "", None]), None,
     {"name_columns": ["FIRST", "LAST"]},
     [("names_mostly_empty", "FIRST, LAST", "columns FIRST, LAST: only 25% of rows have a name "
                                            "(at least 50% needed)")]),
    (_extract(["K1", "K2", "K3", "K4"], FIRST=["A", None, " ", None], LAST=[None, "B", "", None]), None,
     {"name_columns": ["FIRST", "LAST"]}, []),
    (_extract(["K-SECRET", "K2", "K-SECRET", "K3"]), None, {},
     [("duplicate_keys", "ID", "column ID: 2 rows share a record key with another row (rows 2, 4)")]),
    (_extract(["K9", "K8", "K9", "K8", "K7", "K9", "K8", " K7 "]), None, {},
     [("duplicate_keys", "ID", "column ID: 8 rows share a record key with another row (rows 2, 3, 4, 5, 6…)")]),
    (_extract(["K1", "K2"]), 2, {}, []),
])
def test_extract_level_problems_are_detected_and_named(frame, previous, extra, expected):
    kwargs = {"required_columns": ["ID"], **extra}
    problems = check_extract("police", frame, previous_row_count=previous, key_column="ID", **kwargs)
    assert [(p.check, p.column, p.message) for p in problems] == expected
    assert all("SECRET" not in str(p) for p in problems)


def test_duplicate_keys_give_the_first_row_numbers_and_the_file(tmp_path):
    frame = _extract(["K1", "K2", "K1"])
    problems = check_extract("police", frame, previous_row_count=None, required_columns=["ID"], key_column="ID",
                             file_name="police/nominals_20261101.csv", context_dir=tmp_path)
    assert problems == [ExtractProblem("duplicate_keys", "ID", "police/nominals_20261101.csv: column ID: 2 rows "
                                       "share a record key with another row (rows 2, 4)", (2, 4))]
    # the extract checks show in Data Docs beside the row-level suites
    pages = list((tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations").rglob("*.html"))
    assert [p.relative_to(tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations").parts[0]
            for p in pages] == ["familylink_police_extract"]


def test_a_scripted_run_without_a_main_file_is_not_ended_by_pyspark():
    """`python -c` leaves __main__ without a file; pyspark (installed for engine: spark), imported by Great
    Expectations, would take that for its doctest run and exit 0 silently."""
    import subprocess
    import sys
    from pathlib import Path

    # and a spawned child process (the practitioner service's workers, the benchmarks) still starts: a made-up
    # __main__ file would send it looking for that file
    script = ("import expectations, great_expectations, multiprocessing as mp\n"
              "child = mp.get_context('spawn').Process(target=print, args=('child',))\n"
              "child.start(); child.join(); print('alive', child.exitcode)")
    out = subprocess.run([sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0 and "alive 0" in out.stdout, out.stderr[-2000:]
