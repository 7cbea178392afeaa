"""Mapping: four- and two-digit years, and titles in names (sources/_mapping.py). Synthetic names only."""

import datetime as dt

import polars as pl
import pytest

from sources._contract import SourceContract
from sources._mapping import apply_contract
from sources._standardise import standardise_person_records

EXTRACT_DATE = dt.date(2026, 1, 1)


def _contract(person: dict, **blocks) -> SourceContract:
    return SourceContract.model_validate({
        "source": "test_agency", "agency": "Test Agency", "file_pattern": "*", "format": "csv", "record_key": "ref",
        "trust_rank": 1, "sharing": {"owning_organisation": "o", "lawful_basis": "b", "retention_days": 1},
        "person": person, **blocks})


def _frame(**columns: list) -> pl.DataFrame:
    height = len(next(iter(columns.values())))
    return pl.DataFrame({"ref": [f"R{i}" for i in range(height)], **columns}).with_row_index("_row_number", 1)


def _person_record(person: dict, extract_date: dt.date | None = EXTRACT_DATE, **columns: list) -> pl.DataFrame:
    mapped = apply_contract(_frame(**columns), _contract(person), file_sha256="x", extract_date=extract_date)
    return mapped.person_record.sort("row_number")


def _persons(person: dict, extract_date: dt.date | None = EXTRACT_DATE, **columns: list) -> list[dict]:
    return _person_record(person, extract_date, **columns).to_dicts()


# --- years ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("formats, text, expected", [
    (["%d/%m/%Y"], "01/02/1980", dt.date(1980, 2, 1)),
    (["%d/%m/%Y"], "01/02/80", None),  # not the year 80: unparseable under a four-digit-year format
    (["%d/%m/%Y"], "01/02/198", None),
    (["%Y-%m-%d"], "80-02-01", None),
    (["%d/%m/%Y", "%d/%m/%y"], "01/02/80", dt.date(1980, 2, 1)),  # falls to the next format
    (["%d/%m/%Y", "%d/%m/%y"], "01/02/1980", dt.date(1980, 2, 1)),
    (["%Y-%m-%d"], "0800-06-01", dt.date(800, 6, 1)),  # written with four digits: a historical register's year
])
def test_a_four_digit_year_format_does_not_read_a_shorter_year(formats, text, expected):
    (row,) = _persons({"last_name": {"column": "s"}, "date_of_birth": {"column": "d", "formats": formats}},
                      s=["Testname"], d=[text])
    assert row["date_of_birth"] == expected
    assert ("date_of_birth_unparseable" in row["quality_flags"]) == (expected is None)


@pytest.mark.parametrize("text, expected", [
    ("01/02/58", dt.date(1958, 2, 1)),  # the parser alone says 2058
    ("01/02/68", dt.date(1968, 2, 1)),
    ("02/03/81", dt.date(1981, 3, 2)),
    ("31/12/25", dt.date(2025, 12, 31)),
    ("01/01/26", dt.date(2026, 1, 1)),  # on the extract date: kept
    ("02/01/26", dt.date(1926, 1, 2)),  # a day after it: a century back
    ("29/02/60", dt.date(1960, 2, 29)),
])
def test_a_two_digit_year_is_never_read_as_after_the_extract_date(text, expected):
    (row,) = _persons({"last_name": {"column": "s"}, "date_of_birth": {"column": "d", "formats": ["%d/%m/%y"]},
                       "address_from": {"column": "a", "formats": ["%d/%m/%y"]}},
                      s=["Testname"], d=[text], a=[text])
    assert (row["date_of_birth"], row["address_from"]) == (expected, expected)
    assert row["quality_flags"] == []


def test_without_an_extract_date_a_two_digit_year_is_never_after_today():
    ahead = dt.date.today() + dt.timedelta(days=400)  # the parser's own rule reads it as ahead (years 00-68)
    text = ahead.strftime("%d/%m/%y")
    (row,) = _persons({"last_name": {"column": "s"}, "date_of_birth": {"column": "d", "formats": ["%d/%m/%y"]}},
                      extract_date=None, s=["Testname"], d=[text])
    assert row["date_of_birth"] == ahead.replace(year=ahead.year - 100)


def test_two_digit_years_of_events_and_involvements_read_against_the_extract_date_but_not_a_planned_end():
    contract = _contract(
        {"last_name": {"column": "s"}},
        involvements=[{"agency": "Test Agency", "service": {"value": "Support"},
                       "start_date": {"column": "start", "formats": ["%d/%m/%y"]},
                       "end_date": {"column": "end", "formats": ["%d/%m/%y"]}}],
        events=[{"event_type": {"value": "visit"}, "event_date": {"column": "start", "formats": ["%d/%m/%y"]}}])
    mapped = apply_contract(_frame(s=["Testname"], start=["01/02/60"], end=["30/06/27"]), contract,
                            file_sha256="x", extract_date=EXTRACT_DATE)
    involvement = mapped.involvement.to_dicts()[0]
    assert involvement["start_date"] == dt.date(1960, 2, 1)
    assert involvement["end_date"] == dt.date(2027, 6, 30)  # an end date may be planned: ahead of the extract
    assert mapped.event["event_date"].to_list() == [dt.date(1960, 2, 1)]


# --- titles and name forms --------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, text, expected", [
    # (title, first_name, middle_names, last_name); forenames carry no last name
    ("forenames", "Mr John", ("Mr", "John", None, None)),
    ("forenames", "Dr. Aisha Rose", ("Dr", "Aisha", "Rose", None)),
    ("forenames", "PROF. SIR  JOHN", ("PROF SIR", "JOHN", None, None)),
    ("forenames", "MR", (None, "MR", None, None)),  # a title alone stays, for standardisation to flag
    ("forenames", "Drew Misha", (None, "Drew", "Misha", None)),  # names that begin like a title are names
    ("forenames", "Ann Marie  Louise", (None, "Ann", "Marie Louise", None)),
    ("surname_first_name", "O'BRIEN, MR SEAN", ("MR", "SEAN", None, "O'BRIEN")),
    ("surname_first_name", "SMITH, JOHN PAUL MR", ("MR", "JOHN", "PAUL", "SMITH")),
    ("surname_first_name", "SMITH, JOHN, PAUL", (None, "JOHN", "PAUL", "SMITH")),
    ("surname_first_name", "SMITH,  JOHN", (None, "JOHN", None, "SMITH")),
    ("surname_first_name", ", JOHN", (None, "JOHN", None, None)),
    ("surname_first_name", "SMITH JOHN", (None, None, None, "SMITH JOHN")),  # no comma: all surname, as before
    ("full_name", "Sir Elton John", ("Sir", "Elton", None, "John")),
    ("full_name", "Dame Ann Testname", ("Dame", "Ann", None, "Testname")),
    ("full_name", "Mrs Jane  Anne Smith", ("Mrs", "Jane", "Anne", "Smith")),
    ("full_name", "Prof Sir John Smith", ("Prof Sir", "John", None, "Smith")),
    ("full_name", "Smith, John", (None, "John", None, "Smith")),  # a comma: surname first
    ("full_name", "SMITH, MR JOHN", ("MR", "JOHN", None, "SMITH")),
    ("full_name", "SMITH, JOHN, PAUL", (None, "JOHN", "PAUL", "SMITH")),
    ("full_name", "SMITH JOHN", (None, "SMITH", None, "JOHN")),  # no comma: ambiguous, read forenames first
    ("full_name", "Anna Maria de Souza", (None, "Anna", "Maria de", "Souza")),
    ("full_name", "Madonna", (None, "Madonna", None, None)),
])
def test_titles_are_taken_off_names_and_no_name_part_is_dropped(field, text, expected):
    (row,) = _persons({field: {"column": "n"}}, n=[text])
    assert (row["title"], row["first_name"], row["middle_names"], row["last_name"]) == expected


@pytest.mark.parametrize("title", ["SIR", "DAME", "LORD", "LADY", "REV", "REVD", "PROF", "MX", "MISS", "MS", "MRS",
                                   "MR", "DR", "MASTER"])
@pytest.mark.parametrize("dot", ["", "."])
def test_every_title_is_taken_off_with_or_without_a_dot_in_every_name_form(title, dot):
    person = {"forenames": {"column": "f"}, "last_name": {"column": "s"}}
    forenames, = _persons(person, f=[f"{title}{dot} Ann"], s=["Testname"])
    surname_first, = _persons({"surname_first_name": {"column": "n"}}, n=[f"TESTNAME, {title.lower()}{dot} Ann"])
    full, = _persons({"full_name": {"column": "n"}}, n=[f"{title.title()}{dot} Ann Testname"])
    for row, last_name in ((forenames, "Testname"), (surname_first, "TESTNAME"), (full, "Testname")):
        assert (row["first_name"], row["middle_names"], row["last_name"]) == ("Ann", None, last_name)
        assert row["title"].upper() == title


def test_a_forename_behind_a_title_is_matched_on_and_the_title_gives_the_sex():
    records = _person_record({"forenames": {"column": "f"}, "last_name": {"column": "s"}}, f=["Mr John", "Mrs. Ann"],
                             s=["Testname", "Testname"])
    john, ann = standardise_person_records(records, as_of=EXTRACT_DATE).sort("row_number").to_dicts()
    assert (john["first_name_std"], john["sex"]) == ("john", "M")
    assert (ann["first_name_std"], ann["sex"]) == ("ann", "F")
    assert "first_name_placeholder" not in john["quality_flags"] + ann["quality_flags"]


def test_a_mapped_title_column_comes_before_a_title_in_the_name():
    rows = _persons({"full_name": {"column": "n"}, "title": {"column": "t"}}, n=["Mrs Ann Testname", "Mr Bo Testname"],
                    t=["Dr", None])
    assert [(r["title"], r["first_name"]) for r in rows] == [("Dr", "Ann"), ("Mr", "Bo")]


# --- joint names (a subject's quarantines the row: tests/test_onboarding_errors.py) ----------------------------

def test_a_related_person_with_a_joint_name_is_not_staged_and_the_subject_is_flagged():
    """"Mr & Mrs Testname" as a pupil's parent contact is two people: no parent record, the pupil staged."""
    contract = _contract({"first_name": {"column": "f"}, "last_name": {"column": "s"}}, related_persons=[
        {"role": "parent_carer", "record_id_suffix": "-P1", "relationship": "parent_of",
         "person": {"full_name": {"column": "p"}}}])
    mapped = apply_contract(_frame(f=["Amy", "Ben", "Cal"], s=["Testname"] * 3,
                                   p=["Mr & Mrs Testname", "Mrs Andrea Testname", "Mr. and Mrs. J Testname"]),
                            contract, file_sha256="x", extract_date=EXTRACT_DATE)
    persons = {r["record_id"]: r for r in mapped.person_record.to_dicts()}
    assert sorted(persons) == ["R0", "R1", "R1-P1", "R2"]
    assert persons["R1-P1"]["first_name"] == "Andrea"
    assert [persons[r]["quality_flags"] for r in ("R0", "R1", "R2")] == [
        ["parent_carer_joint_name"], [], ["parent_carer_joint_name"]]
    assert mapped.stated_relationship["record_id"].to_list() == ["R1-P1"]
