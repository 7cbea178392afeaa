"""Extract-level checks: any problem stops that source's load (its last good data stays in place).

The checks run as one GX checkpoint on the extract as read (source column names), so they appear in
Data Docs beside the row-level suite. The suite is built at run time, not kept as JSON: its
thresholds come from the source contract and the last good load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl

from expectations._gx import ROW_INDEX, failing_rows, run_suite

# How many row numbers a duplicate-key message names.
_FIRST_ROWS = 5


@dataclass(frozen=True)
class ExtractProblem:
    """One reason to stop a source's load; the message names file, column and counts, never values."""

    check: str  # required_column_missing | row_count_dropped | key_mostly_empty | names_mostly_empty | duplicate_keys
    #              | dates_unparseable | row_count_grew | column_emptied
    column: str | None
    message: str
    row_numbers: tuple[int, ...] = field(default=())  # rows involved (duplicate keys: the first few)

    def __str__(self) -> str:
        return self.message


def _blank_to_null(column: str) -> pl.Expr:
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text != "").then(text)


def check_extract(
    source: str,
    frame: pl.DataFrame,
    *,
    previous_row_count: int | None,
    required_columns: Sequence[str],
    key_column: str,
    max_drop_share: float = 0.5,
    key_min_filled_share: float = 0.5,
    name_columns: Sequence[str] = (),
    file_name: str | None = None,
    context_dir: Path | None = None,
    date_formats: dict[str, list[str]] | None = None,
    default_date_columns: Sequence[str] = (),
    max_unparsed_date_share: float = 0.5,
    max_growth_factor: float | None = 10.0,
    previous_filled_shares: dict[tuple[str, ...], float] | None = None,
    emptied_share: float = 0.01,
    filled_before_share: float = 0.5,
) -> list[ExtractProblem]:
    """Problems with the extract as a whole (an empty list means load it).

    - a required column is missing;
    - the row count fell by more than `max_drop_share` against the last good load (`previous_row_count`), or
      grew more than `max_growth_factor` times (another agency's file, a join gone wrong, duplicated exports);
    - fewer than `key_min_filled_share` of rows have a record key, or (when `name_columns` are given)
      a name in at least one of them;
    - record keys are duplicated (how many rows, and the first few row numbers);
    - more than `max_unparsed_date_share` of the filled values of a date column (`date_formats`: column ->
      the contract's formats, or the default format for the `default_date_columns` whose fields declare none)
      match none of its formats: the contract and the file disagree, and loading would silently drop every date;
    - a mapped field (`previous_filled_shares`: its source columns -> the share of the last good load's staged
      rows that had it) is filled on fewer than `emptied_share` of rows though the last good load had it on at
      least `filled_before_share`: an empty column would silently replace good data.
    Row numbers come from the reader's `_row_number` column (1-based data rows when it is absent).
    """
    prefix = f"{file_name}: " if file_name else ""
    present_names = [c for c in name_columns if c in frame.columns]
    has_key = key_column in frame.columns
    row_number = pl.col("_row_number") if "_row_number" in frame.columns else pl.int_range(1, pl.len() + 1)

    view = frame.with_columns(row_number.cast(pl.Int64).alias("_row_number"))
    if has_key:
        view = view.with_columns(_blank_to_null(key_column).alias(key_column))
    if present_names:
        view = view.with_columns(
            pl.any_horizontal([_blank_to_null(c).is_not_null() for c in present_names]).alias("_has_name"))

    expectations: list[gxe.Expectation] = [
        gxe.ExpectColumnToExist(column=c, meta={"check": "required_column_missing"}) for c in required_columns
    ]
    minimum = maximum = None
    if previous_row_count:
        minimum = math.ceil(previous_row_count * (1 - max_drop_share))
        expectations.append(gxe.ExpectTableRowCountToBeBetween(min_value=minimum, meta={"check": "row_count_dropped"}))
        if max_growth_factor:
            maximum = math.floor(previous_row_count * max_growth_factor)
            expectations.append(gxe.ExpectTableRowCountToBeBetween(max_value=maximum,
                                                                   meta={"check": "row_count_grew"}))
    if has_key:
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=key_column, mostly=key_min_filled_share,
                                              meta={"check": "key_mostly_empty"}),
            gxe.ExpectColumnValuesToBeUnique(column=key_column, meta={"check": "duplicate_keys"}),
        ]
    if present_names:
        expectations.append(gxe.ExpectColumnValuesToBeInSet(column="_has_name", value_set=[True],
                                                            mostly=key_min_filled_share,
                                                            meta={"check": "names_mostly_empty"}))

    suite = gx.ExpectationSuite(name=f"familylink_{source}_extract", expectations=expectations,
                                meta={"source": source, "built_by": "expectations/_extract_checks.py"})
    data_columns = [c for c in view.columns if not c.startswith("_") or c == "_has_name"]
    pdf = view.select(data_columns).with_row_index(ROW_INDEX).to_pandas().set_index(ROW_INDEX)
    validation = run_suite(context_dir=context_dir, asset_name=f"{source}_extract", suite=suite, frame=pdf,
                           run_name=f"{source}-extract")

    problems = []
    for res in validation.results:
        if res.success:
            continue
        check = res.expectation_config.meta["check"]
        stats = res.result or {}
        column = res.expectation_config.kwargs.get("column")
        if check == "required_column_missing":
            problems.append(ExtractProblem(check, column, f"{prefix}required column {column} is missing"))
        elif check == "row_count_dropped":
            problems.append(ExtractProblem(
                check, None,
                f"{prefix}row count fell from {previous_row_count:,} to {frame.height:,}, more than "
                f"{max_drop_share:.0%} below the last good load (at least {minimum:,} rows expected)"))
        elif check == "row_count_grew":
            problems.append(ExtractProblem(
                check, None,
                f"{prefix}row count grew from {previous_row_count:,} to {frame.height:,}, more than "
                f"{max_growth_factor:g} times the last good load (at most {maximum:,} rows expected): another "
                "agency's file or a duplicated export?"))
        elif check == "key_mostly_empty":
            filled = 100 - float(stats.get("unexpected_percent") or 0)
            problems.append(ExtractProblem(
                check, column, f"{prefix}column {column}: only {filled:.0f}% of rows have a record key "
                               f"(at least {key_min_filled_share:.0%} needed)"))
        elif check == "names_mostly_empty":
            filled = 100 - float(stats.get("unexpected_percent") or 0)
            problems.append(ExtractProblem(
                check, ", ".join(present_names),
                f"{prefix}columns {', '.join(present_names)}: only {filled:.0f}% of rows have a name "
                f"(at least {key_min_filled_share:.0%} needed)"))
        elif check == "duplicate_keys":
            positions = sorted(failing_rows(res))
            numbers = tuple(view["_row_number"].gather(positions[:_FIRST_ROWS]).to_list())
            more = "…" if len(positions) > _FIRST_ROWS else ""
            problems.append(ExtractProblem(
                check, column,
                f"{prefix}column {column}: {len(positions):,} rows share a record key with another row "
                f"(rows {', '.join(map(str, numbers))}{more})", numbers))
    problems += _unparsed_dates(frame, date_formats or {}, max_unparsed_date_share, prefix, set(default_date_columns))
    problems += _emptied_columns(frame, previous_filled_shares or {}, emptied_share, filled_before_share, prefix)
    return problems


def _emptied_columns(frame: pl.DataFrame, previous_filled_shares: dict[tuple[str, ...], float], emptied_share: float,
                     filled_before_share: float, prefix: str) -> list[ExtractProblem]:
    problems = []
    if frame.height == 0:
        return problems
    for columns, before in sorted(previous_filled_shares.items()):
        present = [c for c in columns if c in frame.columns]
        if not present or before < filled_before_share:  # a missing column is required_column_missing
            continue
        filled = frame.select(pl.any_horizontal([_blank_to_null(c).is_not_null() for c in present]).sum()).item()
        share = filled / frame.height
        if share < emptied_share:
            label = f"column {present[0]}" if len(present) == 1 else f"columns {', '.join(present)}"
            problems.append(ExtractProblem(
                "column_emptied", ", ".join(present),
                f"{prefix}{label}: filled on {share:.1%} of rows ({filled:,} of {frame.height:,}) against {before:.0%} "
                f"of the rows staged from the current extract: an emptied column would replace good data (at least "
                f"{emptied_share:.0%} needed where the current extract has {filled_before_share:.0%} or more)"))
    return problems


def _unparsed_dates(frame: pl.DataFrame, date_formats: dict[str, list[str]], max_share: float,
                    prefix: str, defaulted: set[str]) -> list[ExtractProblem]:
    from sources import parse_dates  # the mapping's own reading (no year of "01/02/80" under %Y); sources imports us

    problems = []
    for column, formats in sorted(date_formats.items()):
        if column not in frame.columns:
            continue
        text = _blank_to_null(column)
        parsed = parse_dates(text, formats)
        filled, unparsed = frame.select(text.is_not_null().sum().alias("filled"),
                                        (text.is_not_null() & parsed.is_null()).sum().alias("unparsed")
                                        ).row(0)
        if filled and unparsed / filled > max_share:
            which = (f"the default date format {', '.join(formats)} (the contract gives no `formats` for it)"
                     if column in defaulted else f"the contract's date formats {', '.join(formats)}")
            problems.append(ExtractProblem(
                "dates_unparseable", column,
                f"{prefix}column {column}: {unparsed:,} of {filled:,} filled values ({unparsed / filled:.0%}) match "
                f"none of {which}: is the file in another date format?"))
    return problems
