"""Onboarding a new extract: a wrong contract or a badly named, malformed or emptied file stops with one line
naming the file, row or column and key, never a traceback, and never changes what an earlier extract staged."""

import datetime as dt
import os
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from expectations import check_extract
from pipelines.cli import app
from sources._contract import ContractError, ExtractNameError, dated_extracts, find_extract, load_contract
from tests._new_agency import new_agency_contract

_contract = new_agency_contract
HEADER = "ref,first,surname,dob,postcode\n"


def _rows(n: int, *, dob: bool = True, start: int = 1) -> str:
    return "".join(f"A{i},Ann{i},Lee,{f'{1 + i % 28:02d}/02/1980' if dob else ''},TN1 1AA\n"
                   for i in range(start, start + n))


def _case(tmp_path: Path, contracts: dict[str, str], files: dict[str, str]) -> Path:
    (tmp_path / "contracts").mkdir()
    for name, text in contracts.items():
        (tmp_path / "contracts" / f"{name}.yaml").write_text(text)
    for name, text in files.items():
        path = tmp_path / "landing" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _ingest(case: Path, command: str = "ingest"):
    options = ["--data-dir", str(case / "data"), "--contracts", str(case / "contracts")]
    if command == "ingest":
        options += ["--landing", str(case / "landing")]
    result = CliRunner().invoke(app, [command, *options])
    assert "Traceback" not in result.output, result.output
    return result


def _sql(case: Path, sql: str, params=()):
    con = duckdb.connect(str(case / "data" / "warehouse" / "familylink.duckdb"), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _one_line(output: str) -> str:
    """The one failure line (the notice that files were made owner-only is not one)."""
    lines = [line for line in output.splitlines()
             if line.startswith("familylink:") and not line.endswith("made them owner-only")]
    assert len(lines) == 1, output
    return " ".join(output[output.index(lines[0]):].split())


# --------------------------------------------------------------------------------------------- contracts
@pytest.mark.parametrize("replace, fragment", [
    ({"record_key:": "recordkey:"}, "(top level): unknown key 'recordkey'"),
    ({"{column: dob,": "{colum: dob,"}, "person.date_of_birth: unknown key 'colum'"),
    ({"format: csv": "format: tsv"}, "format: Input should be"),
    ({"sharing: {": "x-sharing: {"}, "sharing: Field required"),
    ({"(?P<date>": "(?P<d>"}, "extract_date.from_file_name: the regex needs a named group `date`"),
    ({"(?P<date>\\d{8})": "(?P<date>\\d{8}"}, "extract_date.from_file_name: not a valid regular expression"),
    ({"format: csv": "format: csv\ndelimiter: '\t\t'"}, "delimiter: the delimiter must be exactly one character"),
    ({"format: csv": "format: csv\ndelimiter: ''"}, "delimiter: the delimiter must be exactly one character"),
    ({"format: csv": "format: csv\nencoding: utf8-sig"}, "encoding: unknown encoding 'utf8-sig'"),
    ({"format: csv": "format: csv\nencoding: utf-9"}, "encoding: unknown encoding 'utf-9'"),
    ({"format: csv": "format: csv\nencoding: base64"}, "encoding: 'base64' is not a text encoding"),
    ({"person:": "identifiers:\n  - {name: case_ref, column: ref, pattern: '[A-Z'}\nperson:"},
     "identifiers.0.pattern: not a valid regular expression: unterminated character set at position 0"),
    ({"person:": "identifiers:\n  - {name: case_ref, column: ref, pattern: '(?=A)A'}\nperson:"},
     "identifiers.0.pattern: a regular expression polars cannot use"),
])
def test_a_wrong_contract_is_a_contract_error_naming_file_and_key(tmp_path, replace, fragment):
    path = tmp_path / "newagency.yaml"
    path.write_text(_contract(**replace))
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("extra", ["delimiter: ';'", "delimiter: '\t'", "encoding: utf-8-sig", "encoding: cp1252",
                                   "encoding: latin-1"])
def test_a_right_delimiter_or_encoding_loads(tmp_path, extra):
    path = tmp_path / "newagency.yaml"
    path.write_text(_contract(**{"format: csv": f"format: csv\n{extra}"}))
    key, value = extra.split(": ")
    assert getattr(load_contract(path), key) == value.strip("'").replace("\\t", "\t")


def test_a_file_name_without_a_real_date_is_never_the_newest_extract(tmp_path):
    path = tmp_path / "newagency.yaml"
    path.write_text(_contract())
    contract = load_contract(path)
    folder = tmp_path / "landing" / "new"
    folder.mkdir(parents=True)
    for name in ("extract_20260101.csv", "extract_20260231.csv", "extract_2026021.csv"):
        (folder / name).write_text(HEADER)
    dated, misnamed = dated_extracts(tmp_path / "landing", contract)
    assert dated == [(dt.date(2026, 1, 1), folder / "extract_20260101.csv")]
    assert sorted(str(e) for e in misnamed) == [
        "extract_2026021.csv: the file name does not match extract_date.from_file_name (extract_(?P<date>\\d{8})), "
        "so it gives no extract date",
        "extract_20260231.csv: file name date 20260231 is not a date in format %Y%m%d"]
    assert find_extract(tmp_path / "landing", contract) == folder / "extract_20260101.csv"
    with pytest.raises(ExtractNameError, match="20260231 is not a date in format %Y%m%d"):
        contract.extract_date_for(folder / "extract_20260231.csv")


def test_without_a_file_name_rule_the_modification_date_dates_the_extract(tmp_path):
    path = tmp_path / "newagency.yaml"
    path.write_text(_contract(**{"extract_date: {from_file_name: 'extract_(?P<date>\\d{8})'}\n": ""}))
    contract = load_contract(path)
    extract = tmp_path / "extract_any.csv"
    extract.write_text(HEADER)
    os.utime(extract, (dt.datetime(2025, 3, 4, 12).timestamp(),) * 2)
    assert contract.extract_date_for(extract) == dt.date(2025, 3, 4)


@pytest.mark.parametrize("command", ["ingest", "train"])
def test_every_command_that_reads_contracts_stops_on_a_wrong_one_with_one_line(tmp_path, command):
    case = _case(tmp_path, {"newagency": _contract(**{"date_of_birth:": "date_of_brith:"})},
                 {"new/extract_20260101.csv": HEADER + _rows(3)})
    result = _ingest(case, command)
    assert result.exit_code == 1, result.output
    line = _one_line(result.output)
    assert "newagency.yaml: person: unknown canonical field(s) ['date_of_brith']" in line, line


# ------------------------------------------------------------------------------------- extract-level checks
@pytest.mark.parametrize("dobs, before, rejected", [
    ([""] * 40, 1.0, True),  # the column arrived empty where the last extract had it on every row
    (["01/02/1980"] + [""] * 39, 1.0, False),  # one in forty (2.5%) is still a filled column
    ([""] * 40, 0.4, False),  # it was mostly empty before too
    ([" "] * 40, 0.5, True),  # blanks are empty
])
def test_an_emptied_column_is_caught_against_the_last_good_load(dobs, before, rejected):
    frame = pl.DataFrame({"ref": [f"A{i}" for i in range(40)], "dob": dobs})
    problems = check_extract("newagency", frame, previous_row_count=40, required_columns=["ref", "dob"],
                             key_column="ref", previous_filled_shares={("dob",): before})
    emptied = [p for p in problems if p.check == "column_emptied"]
    assert bool(emptied) == rejected, problems
    if rejected:
        assert emptied[0].column == "dob"
        assert f"column dob: filled on 0.0% of rows (0 of 40) against {before:.0%}" in emptied[0].message


# ------------------------------------------------------------------------------------------------ ingest
def test_a_file_name_date_that_does_not_exist_rejects_that_file_and_the_other_sources_load(tmp_path):
    case = _case(tmp_path, {"newagency": _contract(), "zother": _contract(source="zother", folder="other")},
                 {"new/extract_20260231.csv": HEADER + _rows(3), "other/extract_20260101.csv": HEADER + _rows(4)})
    result = _ingest(case)
    assert result.exit_code == 1, result.output
    line = _one_line(result.output)
    assert ("newagency: landing/new/extract_20260231.csv: file name date 20260231 is not a date in format %Y%m%d"
            in line), line
    assert _sql(case, "select source, file_name, status from audit.file_manifest order by source") == [
        ("newagency", "landing/new/extract_20260231.csv", "rejected"),
        ("zother", "landing/other/extract_20260101.csv", "loaded")]
    assert _sql(case, "select source, count(*) from staging.person_record group by 1") == [("zother", 4)]
    assert _sql(case, "select source from audit.current_extract") == [("zother",)]


def test_a_file_not_named_as_the_contract_dates_them_never_blocks_the_well_named_extracts(tmp_path):
    case = _case(tmp_path, {"newagency": _contract()}, {"new/extract_20260101.csv": HEADER + _rows(3)})
    assert _ingest(case).exit_code == 0
    misnamed = case / "landing" / "new" / "extract_2026021.csv"  # a digit short; the newest file on disk
    misnamed.write_text(HEADER + _rows(1, start=90))
    (case / "landing" / "new" / "extract_20260201.csv").write_text(HEADER + _rows(5))
    os.utime(case / "landing" / "new" / "extract_20260201.csv", (dt.datetime(2025, 1, 1).timestamp(),) * 2)
    result = _ingest(case)
    assert result.exit_code == 0, result.output
    assert "warning: newagency: landing/new/extract_2026021.csv: the file name does not match" in " ".join(
        result.output.split())
    assert _sql(case, "select file_name, status, rows_read from audit.file_manifest order by recorded_at") == [
        ("landing/new/extract_20260101.csv", "superseded", 3),
        ("landing/new/extract_2026021.csv", "rejected", None),
        ("landing/new/extract_20260201.csv", "loaded", 5)]
    assert _sql(case, "select file_name, extract_date from audit.current_extract") == [
        ("landing/new/extract_20260201.csv", dt.date(2026, 2, 1))]
    assert _sql(case, "select count(*) from staging.person_record where record_id = 'A90'") == [(0,)]


def test_dates_the_default_format_cannot_read_reject_the_file(tmp_path):
    case = _case(tmp_path, {"newagency": _contract(**{', formats: ["%d/%m/%Y"]': ""})},
                 {"new/extract_20260101.csv": HEADER + _rows(3)})
    result = _ingest(case)
    assert result.exit_code == 1, result.output
    line = _one_line(result.output)
    assert ("landing/new/extract_20260101.csv: column dob: 3 of 3 filled values (100%) match none of the default "
            "date format %Y-%m-%d") in line, line
    assert _sql(case, "select status, rows_read, rows_staged, rows_quarantined from audit.file_manifest") == [
        ("rejected", 3, 0, 3)]
    assert _sql(case, "select count(*) from staging.person_record") == [(0,)]


def test_two_digit_years_under_a_four_digit_year_format_reject_the_file_as_unparseable(tmp_path):
    """"01/02/80" under %d/%m/%Y is no date (not the year 80): the extract check counts it as the mapping does."""
    rows = "".join(f"A{i},Ann{i},Lee,{1 + i % 28:02d}/02/80,TN1 1AA\n" for i in range(1, 6))
    case = _case(tmp_path, {"newagency": _contract()}, {"new/extract_20260101.csv": HEADER + rows})
    result = _ingest(case)
    assert result.exit_code == 1, result.output
    assert "column dob: 5 of 5 filled values (100%) match none of the contract's date formats %d/%m/%Y" in \
        _one_line(result.output)
    assert _sql(case, "select count(*) from staging.person_record") == [(0,)]


def test_a_repeated_header_row_is_quarantined_not_staged(tmp_path):
    text = HEADER + _rows(2) + " REF , First,SURNAME,dob,postcode\n" + _rows(2, start=3)
    case = _case(tmp_path, {"newagency": _contract()}, {"new/extract_20260101.csv": text})
    result = _ingest(case)
    assert result.exit_code == 0, result.output
    assert _sql(case, "select status, rows_read, rows_staged, rows_quarantined from audit.file_manifest") == [
        ("loaded", 5, 4, 1)]
    assert _sql(case, "select record_id, reasons from quarantine.row") == [("REF", ["repeated header row"])]
    assert _sql(case, "select count(*) from staging.person_record where lower(trim(record_id)) = 'ref'") == [(0,)]


_FULL_NAME = {"forenames: {column: first}\n  last_name: {column: surname}": "full_name: {column: first}"}


@pytest.mark.parametrize("replace, joint, other", [
    ({}, "Mr & Mrs", "Andrew Alexander"),
    ({}, "Mr and Mrs J", "Sandy"),
    ({}, "Mr. and Mrs.", "Anders"),
    ({}, "MRS&MR", "Ann"),
    ({}, "Mr + Mrs", "&"),  # a lone "&" is junk in one person's forename, not two people
    (_FULL_NAME, "Mr & Mrs Smith", "Alexander Anderson"),
    (_FULL_NAME, "Mr and Mrs J Smith", "Mr Andrew Sanderson"),
    (_FULL_NAME, "Mr. and Mrs. Smith", "Dr Anna Band"),
    (_FULL_NAME, '"SMITH, Mr and Mrs"', '"ANDERSON, Mrs Andrea"'),
], ids=lambda value: value if isinstance(value, str) else ("full_name" if value else "forenames"))
def test_a_joint_name_is_quarantined_naming_the_column_and_every_other_row_is_staged(tmp_path, replace, joint,
                                                                                       other):
    """"Mr & Mrs Smith" names two people: no one person record can hold it (its forename was "and")."""
    text = HEADER + _rows(2) + f"J1,{joint},Smith,01/02/1980,TN1 1AA\n" + f"A3,{other},Lee,01/03/1980,TN1 1AA\n"
    case = _case(tmp_path, {"newagency": _contract(**replace)}, {"new/extract_20260101.csv": text})
    result = _ingest(case)
    assert result.exit_code == 0, result.output
    assert _sql(case, "select status, rows_read, rows_staged, rows_quarantined from audit.file_manifest") == [
        ("loaded", 4, 3, 1)]
    assert _sql(case, "select file_name, row_number, record_id, reasons from quarantine.row") == [  # line 4
        ("landing/new/extract_20260101.csv", 4, "J1", ["joint name (two people in one name field) in column first"])]
    assert _sql(case, "select record_id from staging.person_record order by 1") == [("A1",), ("A2",), ("A3",)]


def test_a_column_arriving_empty_rejects_the_extract_and_keeps_the_last_good_one(tmp_path):
    case = _case(tmp_path, {"newagency": _contract()}, {"new/extract_20260101.csv": HEADER + _rows(40)})
    assert _ingest(case).exit_code == 0
    (case / "landing" / "new" / "extract_20260101.csv").unlink()
    (case / "landing" / "new" / "extract_20260201.csv").write_text(HEADER + _rows(40, dob=False))
    result = _ingest(case)
    assert result.exit_code == 1, result.output
    line = _one_line(result.output)
    assert ("landing/new/extract_20260201.csv: column dob: filled on 0.0% of rows (0 of 40) against 100% of the rows "
            "staged from the current extract") in line, line
    assert _sql(case, "select file_name, status from audit.file_manifest order by recorded_at") == [
        ("landing/new/extract_20260101.csv", "loaded"), ("landing/new/extract_20260201.csv", "rejected")]
    assert _sql(case, "select file_name from audit.current_extract") == [("landing/new/extract_20260101.csv",)]
    assert _sql(case, "select count(date_of_birth), count(*) from staging.person_record") == [(40, 40)]
    # the agency has stopped sending dates of birth, and the data team accepts it in the contract
    (case / "contracts" / "newagency.yaml").write_text(_contract() + "min_filled_share: 0\n")
    assert _ingest(case).exit_code == 0
    assert _sql(case, "select file_name from audit.current_extract") == [("landing/new/extract_20260201.csv",)]
    assert _sql(case, "select count(date_of_birth), count(*) from staging.person_record") == [(0, 40)]


def test_the_nightly_summary_names_a_file_left_unread_beside_a_loaded_extract():
    from pipelines.stages import NightlySummary
    from sources.ingest import SourceLoad

    unread = "landing/new/extract_2026021.csv: the file name does not match extract_date.from_file_name"
    summary = NightlySummary("r1", loads=[SourceLoad("newagency", "loaded", rows_read=5, rejected_files=[unread]),
                                          SourceLoad("other", "loaded", rows_read=3)])
    assert f"- newagency: {unread}" in summary.markdown.splitlines()
    assert "left unread" not in NightlySummary("r2", loads=[SourceLoad("other", "loaded")]).markdown
