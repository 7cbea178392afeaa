"""Reading extract files safely: all or nothing, every column as text, errors naming file, row and column.

Row numbers count the way a person opening the file would: the header is row `header_row` (1 by
default) and the first data row is the next one, as a spreadsheet shows them. Error messages never
contain cell values.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
from pathlib import Path

import polars as pl

from sources import canonical
from sources._contract import DEFAULT_DATE_FORMATS, FieldSpec, SourceContract
from sources._mapping import parse_dates


class ExtractError(ValueError):
    """Names file, row and column and never a cell value, so its message may go to logs, audit and Prefect."""

    message_is_safe = True

    def __init__(self, file: Path | str, reason: str, row: int | None = None, column: str | None = None):
        self.file, self.row, self.column, self.reason = str(file), row, column, reason
        where = ", ".join(x for x in (f"row {row}" if row else "", f"column {column}" if column else "") if x)
        super().__init__(f"{file}{', ' + where if where else ''}: {reason}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_MAGIC = {"xlsx": b"PK\x03\x04", "parquet": b"PAR1"}


def _check_kind(path: Path, data: bytes, fmt: str) -> None:
    if fmt == "xlsx" and not data.startswith(_MAGIC["xlsx"]):
        raise ExtractError(path, "not an XLSX workbook (no zip signature): is it another format renamed?")
    if fmt == "parquet" and not (data.startswith(_MAGIC["parquet"]) and data.endswith(_MAGIC["parquet"])):
        raise ExtractError(path, "not a complete Parquet file (missing PAR1 markers): renamed or truncated?")
    if fmt in ("csv", "jsonl") and (data.startswith(_MAGIC["xlsx"]) or data.startswith(_MAGIC["parquet"])):
        raise ExtractError(path, f"declared {fmt} but the file is binary (XLSX or Parquet)")


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ExtractError(path, f"bytes not valid in the declared encoding {encoding} (byte {exc.start})", row=line
                           ) from None


def _column_label(name: str, position: int) -> str:
    """How a header column is named in a message: an empty header cell by its place (1-based)."""
    return name if name.strip() else f"(unnamed column {position})"


def _near_miss_hint(missing: list[str], columns: list[str]) -> str:
    """For required columns the header has only with other surrounding spaces or in another case, the header's
    spelling and the likely cause; the columns are never renamed, the sender corrects the file or the contract."""
    found, causes = [], []
    for wanted in missing:
        for name in columns:
            if name != wanted and name.strip().casefold() == wanted.strip().casefold():
                found.append(f"{name!r} for {wanted}")
                if name.strip() != name and "surrounding spaces" not in causes:
                    causes.append("surrounding spaces")
                if name.strip() != wanted.strip() and "different case" not in causes:
                    causes.append("different case")
                break
    return f" (the header has {', '.join(found)}: {' and '.join(causes)}?)" if found else ""


def _check_columns(path: Path, columns: list[str], contract: SourceContract, row: int) -> None:
    required = contract.required_source_columns()
    missing = [c for c in required if c not in columns]
    if missing and len(columns) == 1 and contract.format == "csv":
        raise ExtractError(path, f"the header did not split on the declared delimiter {contract.delimiter!r}: "
                           "wrong delimiter?", row=row)
    if missing:
        hint = _near_miss_hint(missing, columns)
        if not hint and contract.format == "xlsx":
            hint = " (is the header on another row?)"
        raise ExtractError(path, f"required column(s) missing from the header{hint}", row=row, column=", ".join(missing))
    labels = [_column_label(c, i) for i, c in enumerate(columns, start=1)]
    if contract.columns is not None:
        extra = [label for c, label in zip(columns, labels)
                 if c not in contract.columns and not c.startswith("__UNNAMED")]
        absent = [c for c in contract.columns if c not in columns]
        hint = _near_miss_hint(absent, columns)
        if extra:
            raise ExtractError(path, f"column(s) the contract does not expect{hint}", row=row,
                               column=", ".join(extra))
        if absent:
            raise ExtractError(path, f"column(s) the contract expects are missing{hint}", row=row,
                               column=", ".join(absent))
    # each name once, and each empty header cell after the first by its place
    duplicated = list(dict.fromkeys(label for i, (c, label) in enumerate(zip(columns, labels)) if c in columns[:i]))
    if duplicated:
        raise ExtractError(path, "column named twice in the header", row=row, column=", ".join(duplicated))


# A DOS end-of-file mark (Ctrl-Z) and the blank or whitespace-only lines that end a file are what editors and old
# exports leave behind, not rows; a blank line with data after it is still refused.
_BLANK = " \t\r\n\f\v"
_CTRL_Z = "\x1a"


def _without_blank_tail(text: str) -> str:
    """The text up to and including the line break that ends its last line that is not blank (a lone Ctrl-Z at the
    end counts as blank). Nothing before that moves, so every other row keeps its number, and a last line's own
    trailing spaces are kept: they belong to its last field."""
    content = text.rstrip(_BLANK)
    if content.endswith(_CTRL_Z):
        text = content = content[:-1]
        content = content.rstrip(_BLANK)
    breaks = [i for i in (text.find("\r", len(content)), text.find("\n", len(content))) if i >= 0]
    if not breaks:  # the last line has no line break (only spaces of its own after it)
        return text
    line_end = min(breaks)
    return text[: line_end + (2 if text.startswith("\r\n", line_end) else 1)]


def _read_csv(path: Path, data: bytes, contract: SourceContract) -> pl.DataFrame:
    encoding = contract.encoding
    text = _decode(path, data, encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise ExtractError(path, "the file is empty")
    text = _without_blank_tail(text)
    # a NUL byte is a damaged cell, not a damaged file: it is marked (U+FFFF, a noncharacter no text carries) so
    # the parser reads on and _limit_cells can name the row and column, which is then quarantined
    text = text.replace("\x00", NUL_MARK)
    lines = text.splitlines(keepends=True)
    skip = contract.header_row - 1
    body = "".join(lines[skip:])
    # strict: a quote in the middle of a field (`,"M,`) is an error here, as it is for polars below
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=contract.delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ExtractError(path, "no header row", row=contract.header_row) from None
    _check_columns(path, header, contract, contract.header_row)
    width = len(header)
    rows = 0
    try:
        for record in reader:
            rows += 1
            if len(record) != width:
                if len(record) == 0:
                    raise ExtractError(path, "blank line inside the data", row=contract.header_row + reader.line_num - 1)
                what = "more" if len(record) > width else "fewer"
                # a short row names the first column it lacks
                column = header[len(record)] if len(record) < width else None
                raise ExtractError(path, f"{what} fields ({len(record)}) than the header ({width}): ragged or "
                                   "truncated row", row=contract.header_row + reader.line_num - 1, column=column)
    except csv.Error as exc:
        # the csv module's messages describe the fault, never a value; they are still not passed on
        raise ExtractError(path, "malformed CSV: a quote inside a field or an unterminated quoted field",
                           row=contract.header_row + reader.line_num - 1) from None
    if rows == 0:
        raise ExtractError(path, "the extract has a header but no data rows")
    frame = pl.read_csv(
        body.encode("utf-8"), separator=contract.delimiter, infer_schema=False, has_header=True,
        truncate_ragged_lines=False,
    )  # read_extract translates a polars error (its message quotes the offending field) into an ExtractError
    if frame.height != rows:
        raise ExtractError(path, f"read {frame.height} rows but counted {rows}: unbalanced quotes?")
    return frame


def _read_xlsx(path: Path, contract: SourceContract) -> pl.DataFrame:
    try:
        # empty rows are dropped after the date cells are found, so that both readings of the sheet line up
        frame = pl.read_excel(path, sheet_name=contract.sheet, engine="calamine", drop_empty_rows=False,
                              read_options={"header_row": contract.header_row - 1, "dtypes": "string"})
    except Exception as exc:  # the calamine error names sheets, never cell values
        failure = type(exc).__name__
    else:
        failure = None
    if failure is not None:
        sheets = _sheet_names(path)
        if sheets is not None and contract.sheet is not None and contract.sheet not in sheets:
            raise ExtractError(path, f"the workbook has no sheet named {contract.sheet!r} (it has "
                               f"{', '.join(repr(s) for s in sheets)})")
        raise ExtractError(path, f"cannot read workbook ({failure})")
    _check_columns(path, frame.columns, contract, contract.header_row)
    frame = _xlsx_dates_as_text(path, frame, contract).filter(~pl.all_horizontal(pl.all().is_null()))
    return frame.with_columns(pl.all().fill_null(""))


# how calamine writes a date cell read as text: "1958-10-05 00:00:00"
_CELL_STAMP = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$"
# how calamine writes a number cell read as text: "36526", "36526.75", "-3"
_CELL_NUMBER = r"^-?\d+(\.\d+)?$"
# Excel's first day; a smaller serial number is a time of day with no date, not a date
_EXCEL_EPOCH = dt.datetime(1900, 1, 1)


def _xlsx_dates_as_text(path: Path, frame: pl.DataFrame, contract: SourceContract) -> pl.DataFrame:
    """Date cells as the text the contract's mapping reads, as a Parquet date column is (see `_date_text`), and so
    number cells in a column mapped to a date field (Excel serial dates in a cell not formatted as a date, see
    `_excel_serial_dates`); text cells, times of day and other columns' numbers are left as they are.

    Read as text, a date cell comes out as "1958-10-05 00:00:00", which no declared format matches. A second
    reading asks calamine for the columns that hold such text (or a number, in a date field's column) as
    datetimes: a date cell comes back as a datetime equal to its text, a text cell (even one spelling a date or a
    number the same way) comes back empty and a number comes back as a datetime that is not its text, so only real
    date and number cells are rewritten."""
    formats = date_field_formats(contract)[0]  # every date column, declared formats or the default
    candidates = [name for name, dtype in frame.schema.items() if dtype == pl.String and (
        frame[name].str.contains(_CELL_STAMP).any()
        or (name in formats and frame[name].str.contains(_CELL_NUMBER).any()))]
    if not candidates:
        return frame
    typed = pl.read_excel(path, sheet_name=contract.sheet, engine="calamine", columns=candidates,
                          drop_empty_rows=False, drop_empty_cols=False,
                          read_options={"header_row": contract.header_row - 1,
                                        "dtypes": dict.fromkeys(candidates, "datetime")})
    if typed.height != frame.height:
        raise ExtractError(path, "the sheet read differently twice: is it being written to?")
    date1904 = _uses_1904_dates(path)
    rewritten = []
    for name in candidates:
        cell = typed[name].cast(pl.Datetime("us"))
        as_read = frame[name].str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False)
        is_date_cell = cell.is_not_null() & (cell == as_read).fill_null(False) & (cell >= _EXCEL_EPOCH)
        column = pl.when(is_date_cell).then(_date_text(cell, formats.get(name)))
        if name in formats:
            # a number the contract's formats read as it stands (19800201 under %Y%m%d) is a date already
            is_number_cell = (cell.is_not_null() & frame[name].str.contains(_CELL_NUMBER).fill_null(False)
                              & frame.select(parse_dates(pl.col(name), formats[name]).is_null()).to_series())
            number = frame[name].cast(pl.Float64, strict=False)
            serial = _excel_serial_dates(number, date1904)
            # a whole number 1000-2999 is a year keyed into a date column (1985), not a day of 1902-1908: left as
            # written, so the mapping flags it unparseable instead of staging a date nobody gave
            a_year = ((number == number.floor()) & number.is_between(1000, 2999)).fill_null(False)
            column = column.when(is_number_cell & serial.is_not_null() & ~a_year).then(
                _date_text(serial, formats[name]))
        rewritten.append(column.otherwise(frame[name]).alias(name))
    return frame.with_columns(rewritten)


def _uses_1904_dates(path: Path) -> bool:
    """Whether the workbook counts its serial dates from 1904 (old Mac Excel's date system): the date1904
    attribute of workbookPr in xl/workbook.xml. calamine applies it to date cells but not to plain numbers."""
    import re
    import zipfile

    try:
        with zipfile.ZipFile(path) as book:
            text = book.read("xl/workbook.xml").decode("utf-8", errors="replace")
    except (KeyError, OSError, zipfile.BadZipFile):
        return False
    return re.search(r"""<(\w+:)?workbookPr\b[^>]*\bdate1904\s*=\s*["'](1|true)["']""", text) is not None


_LAST_DAY = dt.date(9999, 12, 31)  # Excel's last day: serial 2958465 in the 1900 date system


def _excel_serial_dates(serial: pl.Series, date1904: bool) -> pl.Series:
    """Excel serial day numbers (a fraction is the time of day) as datetimes; null outside 1 .. Excel's last day.

    In the 1900 date system serial 1 is 1900-01-01 and serial 60 is 1900-02-29, a day Excel counts (after Lotus
    1-2-3) that never was: it is no date, and every serial from 61 is one day later than its count (61 is
    1900-03-01). In the 1904 system serial 0 is 1904-01-01 and there is no such day."""
    base = dt.datetime(1904, 1, 1) if date1904 else dt.datetime(1899, 12, 31)
    last = (_LAST_DAY - base.date()).days + (0 if date1904 else 1)
    number = pl.col("serial").clip(0, last + 1)  # no overflow below, where the value is no date anyway
    day = number.floor()
    days = number if date1904 else pl.when(day >= 61).then(number - 1).otherwise(number)
    valid = (day >= 1) & (day <= last) & (pl.lit(date1904) | (day != 60))
    stamp = pl.lit(base, pl.Datetime("us")) + pl.duration(milliseconds=(days * 86_400_000).round(0).cast(pl.Int64))
    return pl.DataFrame({"serial": serial}).select(pl.when(valid).then(stamp)).to_series()


def _date_text(values: pl.Series | pl.Expr, formats: list[str] | None) -> pl.Series | pl.Expr:
    """Datetimes as text in the first of the contract's formats that reads them back as the same date (a four-digit
    year before a two-digit one; ISO %Y-%m-%d where none is declared). A time of day is
    written only if that format has one: the contract reads dates, never times. Callers pass a Date column cast to
    Datetime (a format with a time cannot be written from a Date) and a zoned Datetime as it is (its own zone's
    date: a cast would move it to UTC, and midnight in summer to the day before)."""
    return values.dt.strftime(_lossless_format(tuple(formats or ())))


# a date from each century a record may hold, on days and months that cannot be swapped
_PROBE_DATES = pl.Series([dt.date(1901, 2, 13), dt.date(1958, 10, 25), dt.date(2024, 12, 31)])


@functools.lru_cache(maxsize=64)
def _lossless_format(formats: tuple[str, ...]) -> str:
    writable = []
    for fmt in formats:
        try:
            text = _PROBE_DATES.cast(pl.Datetime("us")).dt.strftime(fmt)
            back = text.str.strptime(pl.Date, fmt, strict=False, exact=True)
        except Exception:  # a format polars cannot write or read back is not one to write dates in
            continue
        if back.equals(_PROBE_DATES):
            return fmt
        writable.append(fmt)
    # only two-digit-year formats: the mapping reads them back as the latest such date not after the extract's
    # (sources/_mapping.py parse_dates), right for every date of the last hundred years; ISO would read as none
    return writable[0] if writable else "%Y-%m-%d"


def field_specs(contract: SourceContract) -> list[tuple[str, FieldSpec]]:
    """(canonical field, spec) for every field the contract maps: persons, related persons, involvements, events."""
    specs = list(contract.person.fields().items())
    for related in contract.related_persons:
        specs += list(related.person.fields().items())
    for block in (*contract.involvements, *contract.events):
        specs += [(name, value) for name, value in block if isinstance(value, FieldSpec)]
    return specs


def date_columns(contract: SourceContract) -> dict[str, list[str]]:
    """Source column -> the date formats the contract declares for it."""
    found: dict[str, list[str]] = {}
    for _, spec in field_specs(contract):
        if spec.formats and spec.column:
            found.setdefault(spec.column, list(spec.formats))
    return found


# the canonical fields that hold dates (an extract's own date comes from its file name or a column of its own)
_DATE_FIELDS = {name for schema in (canonical.PERSON_RECORD, canonical.INVOLVEMENT, canonical.EVENT)
                for name, dtype in schema.items() if dtype == pl.Date()} - {"extract_date"}


def date_field_formats(contract: SourceContract) -> tuple[dict[str, list[str]], list[str]]:
    """Source column -> the formats its dates are read with: the contract's, or the default for a date field
    that declares none (those columns listed second), so a file whose dates they cannot read is rejected whole
    either way."""
    formats = date_columns(contract)
    defaulted = []
    for name, spec in field_specs(contract):
        if name in _DATE_FIELDS and spec.column and not spec.formats and spec.column not in formats:
            formats[spec.column] = list(DEFAULT_DATE_FORMATS)
            defaulted.append(spec.column)
    return formats, defaulted


# identifiers of a fixed number of digits that an integer column loses leading zeros of
_DIGITS = {"nhs_number": 10}


def _typed_to_text(path: Path, frame: pl.DataFrame, contract: SourceContract) -> pl.DataFrame:
    """Typed columns (a Parquet Int64 NHS number, Date columns) as the text the contract's mapping expects:
    dates written in the contract's first declared format that reads them back unchanged (`_date_text`), integers
    in full (an NHS number padded back to ten digits). Types that cannot be turned into text without losing or
    inventing digits are rejected."""
    dates = date_columns(contract)
    digits = {spec.column: _DIGITS[name] for name, spec in field_specs(contract) if name in _DIGITS and spec.column}
    converted = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype == pl.String:
            converted.append(column)
        elif dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Datetime):
            converted.append(_date_text(column.cast(pl.Datetime("us")) if dtype == pl.Date else column,
                                        dates.get(name)))
        elif dtype.is_integer():
            text = column.cast(pl.String)
            converted.append(text.str.zfill(digits[name]) if name in digits else text)
        elif dtype.is_float():
            values = frame[name].drop_nulls()
            if values.len() and not (values == values.round(0)).all():
                raise ExtractError(path, "a floating-point column with fractions where the contract expects text, "
                                   "a date or an identifier; send it as text", column=name)
            converted.append(column.cast(pl.Int64).cast(pl.String))
        elif dtype == pl.Boolean or dtype.is_decimal():
            converted.append(column.cast(pl.String))
        else:
            raise ExtractError(path, f"column type {dtype.base_type()} cannot be read as text; send it as text",
                               column=name)
    return frame.select(converted)


def _sheet_names(path: Path) -> list[str] | None:
    try:
        import fastexcel

        return list(fastexcel.read_excel(str(path)).sheet_names)
    except Exception:
        return None


def _read_parquet(path: Path, contract: SourceContract) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:
        raise ExtractError(path, f"cannot read Parquet ({type(exc).__name__})") from None
    _check_columns(path, frame.columns, contract, 1)
    return _typed_to_text(path, frame, contract).with_columns(pl.all().fill_null(""))


def _read_jsonl(path: Path, data: bytes, contract: SourceContract) -> pl.DataFrame:
    text = _decode(path, data, contract.encoding)
    try:
        frame = pl.read_ndjson(text.encode("utf-8"), infer_schema_length=None)
    except Exception as exc:
        raise ExtractError(path, f"malformed JSON lines ({type(exc).__name__})") from None
    _check_columns(path, frame.columns, contract, 1)
    return frame.with_columns(pl.all().cast(pl.String).fill_null(""))


def read_extract(path: Path, contract: SourceContract) -> pl.DataFrame:
    """The whole extract as text columns plus `_row_number`, or an ExtractError (never a partial frame).

    Any other exception a parser raises may quote cell values (polars' ComputeError quotes the field it could
    not parse), so it is replaced by an ExtractError naming the file and the kind of error only.
    """
    failure = None
    try:
        return _read_extract(Path(path), contract)
    except ExtractError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        failure = type(exc).__name__
    # raised outside the except block so the original exception (and its message) is not even chained
    raise ExtractError(path, f"the file could not be parsed as {contract.format} ({failure}); "
                             "look for unbalanced quotes, a wrong delimiter or a damaged file")


def _read_extract(path: Path, contract: SourceContract) -> pl.DataFrame:
    if not path.exists():
        raise ExtractError(path, "file not found")
    data = path.read_bytes()
    if not data:
        raise ExtractError(path, "the file is empty (0 bytes)")
    _check_kind(path, data, contract.format)
    if contract.format == "csv":
        frame = _read_csv(path, data, contract)
    elif contract.format == "xlsx":
        frame = _read_xlsx(path, contract)
    elif contract.format == "parquet":
        frame = _read_parquet(path, contract)
    else:
        frame = _read_jsonl(path, data, contract)
    if frame.height == 0:
        raise ExtractError(path, "the extract has a header but no data rows")
    first_data_row = contract.header_row + 1 if contract.format in ("csv", "xlsx") else 1
    frame = frame.with_columns((pl.int_range(pl.len(), dtype=pl.Int64) + first_data_row).alias("_row_number"))
    _refuse_mojibake(path, frame, contract)
    return _limit_cells(frame)


# No field of a person record needs more; a 100,000-character cell is an export fault or an attack, and would
# reach every table and the golden snapshot.
MAX_CELL_CHARS = 4000
_CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\uFFFF]"
NUL_MARK = "\uffff"  # where the CSV reader found a NUL byte
_NUL = r"[\x00\uFFFF]"


def _limit_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """Cut text cells to MAX_CELL_CHARS and remove NUL and other control characters; `_text_limited` marks the
    rows changed (staged with the quality flag `text_limited`). A NUL byte means the cell was damaged in transit
    or export, so its value cannot be trusted: `_nul_columns` names the columns that held one, and the ingest
    quarantines the row (the rest of the file is kept)."""
    text_columns = [c for c, t in frame.schema.items() if t == pl.String and not c.startswith("_")]
    if not text_columns:
        return frame.with_columns(pl.lit(False).alias("_text_limited"),
                                  pl.lit([], pl.List(pl.String)).alias("_nul_columns"))
    changed = pl.any_horizontal([(pl.col(c).str.len_chars() > MAX_CELL_CHARS) | pl.col(c).str.contains(_CONTROL)
                                 for c in text_columns]).fill_null(False)
    nul = pl.concat_list([pl.when(pl.col(c).str.contains(_NUL).fill_null(False)).then(pl.lit(c))
                          for c in text_columns]).list.drop_nulls()
    return frame.with_columns(changed.alias("_text_limited"), nul.alias("_nul_columns")).with_columns(
        [pl.col(c).str.replace_all(_CONTROL, "").str.slice(0, MAX_CELL_CHARS) for c in text_columns])


def _is_mojibake(text: str) -> bool:
    """UTF-8 bytes that were decoded as cp1252 or Latin-1 ("ZoÃ«" for "Zoë"): encoding back and decoding as
    UTF-8 gives shorter, different text. Correct text in any script fails that round trip."""
    for single_byte in ("cp1252", "latin-1"):
        try:
            repaired = text.encode(single_byte).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if repaired != text:
            return True
    return False


def _refuse_mojibake(path: Path, frame: pl.DataFrame, contract: SourceContract) -> None:
    """A file whose text was written in UTF-8 but declared (or read) as a single-byte encoding would be staged
    garbled; refuse it, naming the rows and columns, never the text."""
    rows: set[int] = set()
    columns: list[str] = []
    for column in frame.columns:
        if column.startswith("_") or frame.schema[column] != pl.String:
            continue
        values = frame[column]
        odd = values.filter(values.str.contains(r"[^\x00-\x7F]").fill_null(False)).unique().to_list()
        garbled = [v for v in odd if _is_mojibake(v)]
        if garbled:
            columns.append(column)
            rows.update(frame.filter(pl.col(column).is_in(garbled))["_row_number"].to_list())
    if rows:
        first = sorted(rows)[:5]
        more = "…" if len(rows) > 5 else ""
        read_as = contract.encoding if contract.format in ("csv", "jsonl") else "a single-byte encoding"
        raise ExtractError(path, f"text in {len(rows)} row(s) ({', '.join(map(str, first))}{more}) looks like UTF-8 "
                           f"read as {read_as}: re-export the file in its declared encoding, or declare the encoding "
                           "it is in", column=", ".join(columns))
