"""Bad extract files: each gets a clear error naming file, row and column, and nothing is read partially."""

import pytest
import polars as pl
import xlsxwriter

from sources._contract import SourceContract
from sources._readers import ExtractError, read_extract


def _contract(fmt="csv", **extra) -> SourceContract:
    base = {
        "source": "test", "agency": "Test", "file_pattern": "*", "format": fmt, "record_key": "ID",
        "trust_rank": 1,
        "sharing": {"owning_organisation": "x", "lawful_basis": "y", "retention_days": 10},
        "person": {"first_name": {"column": "FIRST"}, "last_name": {"column": "LAST"},
                   "date_of_birth": {"column": "DOB", "formats": ["%d/%m/%Y"]}},
    }
    base.update(extra)
    return SourceContract.model_validate(base)


GOOD = "ID,FIRST,LAST,DOB\r\n1,Ann,Lee,01/02/2000\r\n2,Bob,Ray,03/04/2001\r\n"


def test_good_csv_reads_all_rows_as_text_with_row_numbers(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(GOOD, encoding="utf-8", newline="")
    frame = read_extract(path, _contract())
    assert frame["_row_number"].to_list() == [2, 3]
    assert frame.schema["DOB"] == pl.String


@pytest.mark.parametrize(
    "name, content, contract_kw, row, column, reason",
    [
        ("empty.csv", b"", {}, None, None, "empty"),
        ("header_only.csv", b"ID,FIRST,LAST,DOB\r\n", {}, None, None, "no data rows"),
        ("semicolons.csv", GOOD.replace(",", ";").encode(), {}, 1, None, "delimiter"),
        ("ragged_more.csv", (GOOD + "3,Cy,Di,01/01/1999,EXTRA\r\n").encode(), {}, 4, None, "more fields"),
        ("truncated.csv", (GOOD + "3,Cy\r\n").encode(), {}, 4, "LAST", "fewer fields"),
        ("missing_col.csv", b"ID,FIRST,DOB\r\n1,Ann,01/02/2000\r\n", {}, 1, "LAST", "missing"),
        ("cp1252.csv", "ID,FIRST,LAST,DOB\r\n1,Zoë,Lee,01/02/2000\r\n".encode("cp1252"), {}, 2, None, "encoding"),
        ("renamed.xlsx", GOOD.encode(), {"format": "xlsx"}, None, None, "not an XLSX"),
        ("renamed.parquet", GOOD.encode(), {"format": "parquet"}, None, None, "not a complete Parquet"),
    ],
)
def test_bad_files_are_named_with_row_and_column(tmp_path, name, content, contract_kw, row, column, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ExtractError) as info:
        read_extract(path, _contract(**contract_kw))
    err = info.value
    assert reason in str(err)
    assert name in str(err)
    assert err.row == row
    if column:
        assert column in (err.column or "")
    for value in ("Ann", "Lee", "Zoë", "01/02/2000"):
        assert value not in str(err)  # no personal data in messages


@pytest.mark.parametrize("header, column, reason", [
    ("ID,FIRST,LAST,DOB,SHOE_SIZE", "SHOE_SIZE", "does not expect"),
    ("ID,FIRST,LAST", "DOB", "missing"),
])
def test_declared_header_rejects_extra_and_missing_columns(tmp_path, header, column, reason):
    path = tmp_path / "x.csv"
    width = header.count(",") + 1
    path.write_text(header + "\n" + ",".join(["1"] * width) + "\n")
    contract = _contract(columns=["ID", "FIRST", "LAST", "DOB"])
    with pytest.raises(ExtractError, match=reason) as info:
        read_extract(path, contract)
    assert info.value.row == 1 and column in info.value.column


def test_missing_file(tmp_path):
    with pytest.raises(ExtractError, match="file not found"):
        read_extract(tmp_path / "nope.csv", _contract())


def test_xlsx_header_not_on_declared_row(tmp_path):
    path = tmp_path / "caseload.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Caseload")
    sheet.write_row(0, 0, ["Probation caseload export"])
    sheet.write_row(1, 0, ["ID", "FIRST", "LAST", "DOB"])
    sheet.write_row(2, 0, ["1", "Ann", "Lee", "01/02/2000"])
    book.close()
    with pytest.raises(ExtractError, match="header on another row") as info:
        read_extract(path, _contract(format="xlsx", sheet="Caseload"))
    assert info.value.row == 1
    frame = read_extract(path, _contract(format="xlsx", sheet="Caseload", header_row=2))
    assert frame["_row_number"].to_list() == [3] and frame["LAST"].to_list() == ["Lee"]


def test_parquet_reads_as_text(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame({"ID": [1, 2], "FIRST": ["a", "b"], "LAST": ["c", None], "DOB": ["01/02/2000", ""]}).write_parquet(path)
    frame = read_extract(path, _contract(format="parquet"))
    assert frame.schema["ID"] == pl.String and frame["LAST"].to_list() == ["c", ""]
