"""Extract readers: blank lines and a Ctrl-Z at the end of a CSV are not rows; XLSX date cells, and numbers in a date
field's column (Excel serial dates), reach the contract as dates in its own format; header messages name the near-miss column and unnamed columns. Synthetic data only."""

import datetime as dt

import duckdb
import polars as pl
import pytest
import xlsxwriter

from sources._contract import SourceContract
from sources._readers import ExtractError, read_extract


def _contract(fmt="csv", dob_formats=("%d/%m/%Y",), **extra) -> SourceContract:
    base = {
        "source": "test", "agency": "Test", "file_pattern": "*", "format": fmt, "record_key": "ID",
        "trust_rank": 1,
        "sharing": {"owning_organisation": "x", "lawful_basis": "y", "retention_days": 10},
        "person": {"first_name": {"column": "FIRST"}, "last_name": {"column": "LAST"},
                   "date_of_birth": {"column": "DOB", "formats": list(dob_formats)}},
    }
    base.update(extra)
    return SourceContract.model_validate(base)


HEADER = "ID,FIRST,LAST,DOB,NOTE"
ROWS = ["1,Ann,Lee,01/02/2000,a", "2,Bob,Ray,03/04/2001,b  "]


def _csv(tmp_path, text: str, name="x.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# ------------------------------------------------------------------ CSV: what ends a file is not a row
@pytest.mark.parametrize("newline, tail", [
    ("\n", "\n"),                  # one blank line
    ("\n", "\n\n\n"),              # several
    ("\n", "     \n"),             # a whitespace-only last line
    ("\n", " \t "),                # whitespace-only, no final line break
    ("\r\n", "\r\n"),              # CRLF file, blank last line
    ("\n", "\x1a"),                # DOS end-of-file mark
    ("\r\n", "\r\n\x1a\r\n"),      # a blank line, then Ctrl-Z on its own line
])
def test_blank_lines_and_ctrl_z_at_the_end_are_not_rows(tmp_path, newline, tail):
    path = _csv(tmp_path, newline.join([HEADER, *ROWS]) + newline + tail)
    frame = read_extract(path, _contract())
    assert frame["_row_number"].to_list() == [2, 3]
    assert frame["ID"].to_list() == ["1", "2"]
    assert frame["NOTE"].to_list() == ["a", "b  "]  # the last field keeps its own trailing spaces
    assert frame["_text_limited"].to_list() == [False, False]


def test_ctrl_z_right_after_the_last_row_is_dropped_and_the_row_kept(tmp_path):
    frame = read_extract(_csv(tmp_path, "\n".join([HEADER, *ROWS]) + "\x1a"), _contract())
    assert frame["NOTE"].to_list() == ["a", "b  "] and frame["_row_number"].to_list() == [2, 3]
    # the mark is not read into the last cell (which would flag the row as having had its text cut)
    assert frame["_text_limited"].to_list() == [False, False]


def test_a_blank_line_in_the_middle_is_still_refused_at_its_row(tmp_path):
    path = _csv(tmp_path, "\n".join([HEADER, ROWS[0], "", ROWS[1]]) + "\n\n")
    with pytest.raises(ExtractError, match="blank line inside the data") as info:
        read_extract(path, _contract())
    assert info.value.row == 3


def test_a_whitespace_only_line_in_the_middle_is_still_refused(tmp_path):
    path = _csv(tmp_path, "\n".join([HEADER, ROWS[0], "   ", ROWS[1]]) + "\n")
    with pytest.raises(ExtractError, match="fewer fields") as info:
        read_extract(path, _contract())
    assert info.value.row == 3 and info.value.column == "FIRST"


def test_row_numbers_of_a_later_fault_do_not_shift(tmp_path):
    path = _csv(tmp_path, "\n".join([HEADER, *ROWS, "3,Cy"]) + "\n\n  \n\x1a", name="short.csv")
    with pytest.raises(ExtractError, match="fewer fields") as info:
        read_extract(path, _contract(header_row=1))
    assert info.value.row == 4 and info.value.column == "LAST"
    assert "Cy" not in str(info.value)


def test_row_numbers_count_from_a_later_header_row(tmp_path):
    path = _csv(tmp_path, "\n".join(["Export of 2 rows", HEADER, *ROWS]) + "\n\n\n")
    frame = read_extract(path, _contract(header_row=2))
    assert frame["_row_number"].to_list() == [3, 4]


def test_a_header_followed_only_by_blank_lines_has_no_data_rows(tmp_path):
    with pytest.raises(ExtractError, match="header but no data rows"):
        read_extract(_csv(tmp_path, HEADER + "\n\n \n\x1a"), _contract())


# ------------------------------------------------------------------ XLSX: date cells
def _workbook(path, cells: list[tuple[str, object]], header_row: int = 1, date_1904: bool = False):
    """One sheet: ID, FIRST, LAST, DOB; DOB is written as a real date cell for a date or datetime, else as is (a
    number as a number cell); `date_1904`: the workbook's 1904 date system flag."""
    book = xlsxwriter.Workbook(str(path), {"date_1904": date_1904})
    sheet = book.add_worksheet("S")
    as_date = book.add_format({"num_format": "dd/mm/yyyy"})
    as_stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    if header_row > 1:
        sheet.write_string(0, 0, "Export")
    sheet.write_row(header_row - 1, 0, ["ID", "FIRST", "LAST", "DOB"])
    row = header_row
    for ref, dob in cells:
        if ref is None:  # an empty row
            row += 1
            continue
        sheet.write_string(row, 0, ref)
        sheet.write_string(row, 1, "Ann")
        sheet.write_string(row, 2, "Lee")
        if isinstance(dob, dt.datetime):
            sheet.write_datetime(row, 3, dob, as_stamp if dob.time() != dt.time() else as_date)
        elif isinstance(dob, str):
            sheet.write_string(row, 3, dob)
        elif dob is not None:
            sheet.write_number(row, 3, dob)
        row += 1
    book.close()
    return path


MIXED = [
    ("d1", dt.datetime(1958, 10, 5)),          # a date cell
    ("t1", "21/07/1976"),                      # text in the declared format
    ("t2", "1958-10-05 00:00:00"),             # text that spells a date as a date cell reads: text, left alone
    ("d2", dt.datetime(2001, 2, 13, 14, 30)),  # a date cell with a time of day
    ("n1", 21463),                             # a number cell: an Excel serial date (1958-10-05)
    ("e1", None),                              # an empty cell
]


@pytest.mark.parametrize("formats, expected", [
    (["%d/%m/%Y"], ["05/10/1958", "21/07/1976", "1958-10-05 00:00:00", "13/02/2001", "05/10/1958", ""]),
    (["%Y-%m-%d"], ["1958-10-05", "21/07/1976", "1958-10-05 00:00:00", "2001-02-13", "1958-10-05", ""]),
    # only a two-digit year declared: written so, and read as the latest such date not after the extract's
    (["%d/%m/%y"], ["05/10/58", "21/07/1976", "1958-10-05 00:00:00", "13/02/01", "05/10/58", ""]),
    (["%d/%m/%y", "%d.%m.%Y"], ["05.10.1958", "21/07/1976", "1958-10-05 00:00:00", "13.02.2001", "05.10.1958", ""]),
    # a contract written for how date cells used to arrive keeps working
    (["%Y-%m-%d %H:%M:%S", "%Y-%m-%d"],
     ["1958-10-05 00:00:00", "21/07/1976", "1958-10-05 00:00:00", "2001-02-13 14:30:00", "1958-10-05 00:00:00", ""]),
])
def test_xlsx_date_cells_become_dates_in_the_contracts_format_and_text_is_untouched(tmp_path, formats, expected):
    path = _workbook(tmp_path / "x.xlsx", MIXED)
    frame = read_extract(path, _contract("xlsx", dob_formats=formats))
    assert frame["ID"].to_list() == [ref for ref, _ in MIXED]
    assert frame["DOB"].to_list() == expected


def _contract_without_dob_formats(person_dob: dict | None = None) -> SourceContract:
    """The XLSX contract with DOB mapped as `person_dob` (a date field without formats by default, None: unmapped)."""
    person = {"first_name": {"column": "FIRST"}, "last_name": {"column": "LAST"}}
    return SourceContract.model_validate({**_contract("xlsx").model_dump(exclude_unset=True), "person": {
        **person, **({"date_of_birth": person_dob} if person_dob is not None else {})}})


def test_xlsx_date_column_without_declared_formats_is_iso(tmp_path):
    path = _workbook(tmp_path / "x.xlsx", [("d1", dt.datetime(1958, 10, 5)), ("d2", dt.datetime(1960, 1, 2)),
                                           ("n1", 36526)])
    contract = _contract_without_dob_formats({"column": "DOB"})
    assert read_extract(path, contract)["DOB"].to_list() == ["1958-10-05", "1960-01-02", "2000-01-01"]


SERIALS = [  # (cell, as read in the 1900 date system, in the 1904 one), under %d/%m/%Y
    (36526, "01/01/2000", "02/01/2004"),
    (36526.75, "01/01/2000", "02/01/2004"),  # a time of day: the contract reads dates
    (35064, "31/12/1995", "01/01/2000"),
    (1, "01/01/1900", "02/01/1904"),
    (59, "28/02/1900", "29/02/1904"),
    (60, "60", "01/03/1904"),  # 1900-02-29, which Excel counts and never was: left as written (unparseable)
    (61, "01/03/1900", "02/03/1904"),  # from here on one day later than the count
    (1985, "1985", "1985"),  # a year keyed into a date column, not a day of 1905: left as written (unparseable)
    (2999, "2999", "2999"),
    (3000, "18/03/1908", "19/03/1912"),
    (2958465, "31/12/9999", "2958465"),  # Excel's last day (1900), beyond it (1904)
    (2957003, "30/12/9995", "31/12/9999"),
    (0, "0", "0"),
    (-3, "-3", "-3"),
    (2958466, "2958466", "2958466"),
    ("36526", "36526", "36526"),  # a text cell of digits is text
]


@pytest.mark.parametrize("date_1904", [False, True], ids=["1900 dates", "1904 dates"])
def test_xlsx_numbers_in_a_date_fields_column_are_excel_serial_dates(tmp_path, date_1904):
    path = _workbook(tmp_path / "x.xlsx", [(f"r{i}", cell) for i, (cell, _, _) in enumerate(SERIALS)],
                     date_1904=date_1904)
    frame = read_extract(path, _contract("xlsx"))
    assert frame["DOB"].to_list() == [in_1904 if date_1904 else in_1900 for _, in_1900, in_1904 in SERIALS]


def test_xlsx_numbers_outside_a_date_field_and_numbers_the_contract_reads_are_untouched(tmp_path):
    path = _workbook(tmp_path / "x.xlsx", [("n1", 36526), ("n2", 19800201)])
    assert read_extract(path, _contract_without_dob_formats())["DOB"].to_list() == ["36526", "19800201"]
    # a number that reads as a date under the contract's own format is that date, not a serial
    assert read_extract(path, _contract("xlsx", dob_formats=["%Y%m%d"]))["DOB"].to_list() == [
        "20000101", "19800201"]


def test_xlsx_date_cells_stay_with_their_rows_across_empty_rows_and_a_later_header(tmp_path):
    cells = [("d1", dt.datetime(1958, 10, 5)), (None, None), ("t1", "21/07/1976"), ("d2", dt.datetime(1999, 12, 31))]
    path = _workbook(tmp_path / "x.xlsx", cells, header_row=2)
    frame = read_extract(path, _contract("xlsx", header_row=2, sheet="S"))
    # an empty row is dropped as before; each date stays on its own row
    assert dict(zip(frame["ID"], frame["DOB"])) == {"d1": "05/10/1958", "t1": "21/07/1976", "d2": "31/12/1999"}


def test_parquet_dates_are_written_with_a_four_digit_year_where_the_contract_reads_one(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame({"ID": ["1"], "FIRST": ["Ann"], "LAST": ["Lee"], "DOB": [dt.date(1958, 10, 5)]}).write_parquet(path)
    assert read_extract(path, _contract("parquet", dob_formats=["%d/%m/%y", "%d/%m/%Y"]))["DOB"].to_list() == [
        "05/10/1958"]
    assert read_extract(path, _contract("parquet", dob_formats=["%d/%m/%Y"]))["DOB"].to_list() == ["05/10/1958"]
    assert read_extract(path, _contract("parquet", dob_formats=["%d/%m/%y"]))["DOB"].to_list() == ["05/10/58"]
    # a format with a time of day writes a date column at midnight instead of failing
    assert read_extract(path, _contract("parquet", dob_formats=["%Y-%m-%d %H:%M:%S"]))["DOB"].to_list() == [
        "1958-10-05 00:00:00"]


# ------------------------------------------------------------------ header messages
@pytest.mark.parametrize("header, missing, hint", [
    ("ID ,FIRST,LAST,DOB", "ID", "(the header has 'ID ' for ID: surrounding spaces?)"),
    ("id,FIRST,Last,DOB", "ID, LAST", "(the header has 'id' for ID, 'Last' for LAST: different case?)"),
    (" Id,FIRST,LAST,DOB", "ID", "(the header has ' Id' for ID: surrounding spaces and different case?)"),
])
def test_a_header_that_differs_only_in_spaces_or_case_says_so(tmp_path, header, missing, hint):
    path = _csv(tmp_path, header + "\n1,Ann,Lee,01/02/2000\n")
    with pytest.raises(ExtractError, match="required column") as info:
        read_extract(path, _contract())
    assert info.value.column == missing and info.value.row == 1
    assert str(info.value).endswith(hint)
    assert "Ann" not in str(info.value)


def test_a_missing_column_with_no_near_miss_has_no_hint(tmp_path):
    with pytest.raises(ExtractError) as info:
        read_extract(_csv(tmp_path, "ID,FIRST,SURNAME,DOB\n1,Ann,Lee,01/02/2000\n"), _contract())
    assert str(info.value).endswith("required column(s) missing from the header") and info.value.column == "LAST"


def test_xlsx_header_in_another_case_says_so_instead_of_another_row(tmp_path):
    path = tmp_path / "x.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("S")
    sheet.write_row(0, 0, ["ID", "First", "LAST", "DOB"])
    sheet.write_row(1, 0, ["1", "Ann", "Lee", "01/02/2000"])
    book.close()
    with pytest.raises(ExtractError) as info:
        read_extract(path, _contract("xlsx"))
    assert info.value.column == "FIRST"
    assert "'First' for FIRST: different case?" in str(info.value) and "another row" not in str(info.value)


def test_an_extra_delimiter_is_named_as_an_unnamed_column(tmp_path):
    path = _csv(tmp_path, "ID,FIRST,LAST,DOB,\n1,Ann,Lee,01/02/2000,\n")
    with pytest.raises(ExtractError, match="does not expect") as info:
        read_extract(path, _contract(columns=["ID", "FIRST", "LAST", "DOB"]))
    assert info.value.column == "(unnamed column 5)" and info.value.row == 1
    assert "column (unnamed column 5)" in str(info.value)


def test_two_extra_delimiters_name_the_repeated_unnamed_column(tmp_path):
    path = _csv(tmp_path, "ID,FIRST,LAST,DOB,,\n1,Ann,Lee,01/02/2000,,\n")
    with pytest.raises(ExtractError, match="column named twice") as info:
        read_extract(path, _contract())
    assert info.value.column == "(unnamed column 6)"


def test_a_declared_column_in_another_case_says_so(tmp_path):
    path = _csv(tmp_path, "ID,FIRST,LAST,DOB,note\n1,Ann,Lee,01/02/2000,x\n")
    with pytest.raises(ExtractError, match="does not expect") as info:
        read_extract(path, _contract(columns=["ID", "FIRST", "LAST", "DOB", "NOTE"]))
    assert info.value.column == "note"
    assert str(info.value).endswith("(the header has 'note' for NOTE: different case?)")


# ------------------------------------------------------------------ end to end: what is staged


def _ingest(tmp_path, ext: str, fmt: str, write):
    from pipelines.settings import Settings
    from pipelines.stages import run_ingest

    from tests._new_agency import new_agency_contract

    contracts = tmp_path / "contracts"
    contracts.mkdir()
    text = new_agency_contract(**{"extract_*.csv": f"extract_*.{ext}", "format: csv": f"format: {ext}",
                                  "%d/%m/%Y": fmt})
    (contracts / "newagency.yaml").write_text(text, encoding="utf-8")
    landing = tmp_path / "data" / "landing" / "new"
    landing.mkdir(parents=True)
    write(landing / f"extract_20260101.{ext}")
    settings = Settings(data_dir=tmp_path / "data", contracts_dir=contracts)
    (load,) = run_ingest(settings, only=["newagency"])
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        staged = con.execute("select record_id, date_of_birth from staging.person_record "
                             "where source = 'newagency' order by record_id").fetchall()
    finally:
        con.close()
    return load, staged


def test_a_csv_ending_in_blank_lines_and_ctrl_z_is_staged_whole(tmp_path):
    text = ("ref,first,surname,dob,postcode\n"
            "A1,Ann,Lee,01/02/1980,TN1 1AA\nA2,Bob,Lee,02/03/1981,TN1 1AA\n\n   \n\x1a")
    load, staged = _ingest(tmp_path, "csv", "%d/%m/%Y", lambda p: p.write_bytes(text.encode()))
    assert load.status == "loaded", load.message
    assert staged == [("A1", dt.date(1980, 2, 1)), ("A2", dt.date(1981, 3, 2))]


def test_xlsx_date_cells_and_text_dates_in_one_column_are_all_staged(tmp_path):
    def write(path):
        book = xlsxwriter.Workbook(str(path))
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["ref", "first", "surname", "dob", "postcode"])
        sheet.write_row(1, 0, ["A1", "Ann", "Lee"])
        sheet.write_datetime(1, 3, dt.datetime(1958, 10, 5), book.add_format({"num_format": "dd/mm/yyyy"}))
        sheet.write_row(2, 0, ["A2", "Bob", "Lee", "21/07/1976", "TN1 1AA"])
        sheet.write_string(1, 4, "TN1 1AA")
        book.close()

    load, staged = _ingest(tmp_path, "xlsx", "%d/%m/%Y", write)
    assert load.status == "loaded", load.message
    assert staged == [("A1", dt.date(1958, 10, 5)), ("A2", dt.date(1976, 7, 21))]


def test_xlsx_serial_dates_in_number_cells_are_staged_as_dates(tmp_path):
    def write(path):
        book = xlsxwriter.Workbook(str(path))
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["ref", "first", "surname", "dob", "postcode"])
        for row, (ref, serial) in enumerate((("A1", 36526), ("A2", 21463)), start=1):
            sheet.write_row(row, 0, [ref, "Ann", "Lee"])
            sheet.write_number(row, 3, serial)  # the cell is not formatted as a date
            sheet.write_string(row, 4, "TN1 1AA")
        book.close()

    load, staged = _ingest(tmp_path, "xlsx", "%d/%m/%Y", write)
    assert load.status == "loaded", load.message
    assert staged == [("A1", dt.date(2000, 1, 1)), ("A2", dt.date(1958, 10, 5))]
