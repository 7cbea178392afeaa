"""Row-level validation: run a source's suite in one checkpoint and split its rows into staged and quarantined."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import polars as pl

from expectations._gx import ROW_INDEX, ExpectationError, data_docs_index, failing_rows, run_suite
from expectations._suites import (EXTRACT_DATE, LINKING_IDENTIFIERS, MINIMUM_DATA_DEFAULT, QUARANTINE, SUITES_DIR,
                                  load_suite)

SUMMARY_SCHEMA = {
    "expectation": pl.String,
    "column": pl.String,
    "severity": pl.String,
    "reason": pl.String,
    "unexpected_count": pl.Int64,
    "unexpected_percent": pl.Float64,
    "success": pl.Boolean,
}


@dataclass(frozen=True)
class ValidationOutcome:
    """What validating one source's records produced; nothing here holds a failing value."""

    staged: pl.DataFrame  # the input rows that pass every quarantine rule, in input order
    quarantined: pl.DataFrame  # row_number, record_id, reasons (every failing quarantine rule, suite order)
    summary: pl.DataFrame  # one row per expectation, columns as SUMMARY_SCHEMA
    success: bool  # GX's verdict: every expectation, warnings included, met
    suite: str  # the suite file used, e.g. "police.json" or "default.json" for an unseen source
    data_docs: str | None  # Data Docs index.html (file context only)


def _present(column: str) -> pl.Expr:
    return pl.col(column).is_not_null() & (pl.col(column).cast(pl.String).str.strip_chars() != "")


_MINIMUM_DATA_WORDS = {"date_of_birth": "date of birth", "identifier": "identifier", "address": "address",
                       "postcode": "postcode", "phone": "phone", "email": "email"}


def minimum_data_reason(any_of: Sequence[str]) -> str:
    """The quarantine reason that names the rule a record failed, e.g. "name but no date of birth, … or email"."""
    words = [_MINIMUM_DATA_WORDS[f] for f in any_of]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    return f"none of {listed} (minimum data for linking)"


def _minimum_data(frame: pl.DataFrame, any_of: Sequence[str]) -> pl.Expr:
    present = {
        "date_of_birth": [pl.col("date_of_birth").is_not_null()],
        "identifier": [pl.col(c).is_not_null() for c in LINKING_IDENTIFIERS if c in frame.columns]
        + ([pl.col("_has_declared_identifier")] if "_has_declared_identifier" in frame.columns else []),
        "address": [_present("address_text")] if "address_text" in frame.columns else [],
        "postcode": [_present("postcode")] if "postcode" in frame.columns else [],
        "phone": [_present("phone")] if "phone" in frame.columns else [],
        "email": [_present("email")] if "email" in frame.columns else [],
    }
    tests = [t for field in any_of for t in present[field]]
    return pl.any_horizontal(tests).fill_null(False) if tests else pl.lit(False)


def with_derived_columns(frame: pl.DataFrame, minimum_any_of: Sequence[str] = MINIMUM_DATA_DEFAULT) -> pl.DataFrame:
    """The boolean columns the suites check for rules that span several columns (see DERIVED_COLUMNS)."""
    flags = pl.col("quality_flags")
    return frame.with_columns(
        (_present("first_name") | _present("last_name")).alias("_has_name"),
        _minimum_data(frame, minimum_any_of).alias("_has_minimum_data"),
        (flags.is_null() | (flags.list.len() == 0)).alias("_no_values_set_aside"),
    )


_NS_EARLIEST, _NS_LATEST = dt.date(1677, 9, 22), dt.date(2262, 4, 11)  # what datetime64[ns] holds


def _gx_frame(source: str, frame: pl.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Only the columns the suite reads (the pandas conversion is the costly part), indexed by row position."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ExpectationError(f"{source}: the suite reads column(s) the records do not have: {', '.join(missing)}")
    view = frame.select(
        [
            # a blank record id is no record id
            pl.when(_present(c)).then(pl.col(c)).alias(c) if c == "record_id"
            # GX compares datetime64[ns] columns with datetime bounds; polars dates would arrive as
            # datetime64[ms], which GX checks value by value in Python. Nanoseconds reach back to 1677 only:
            # an earlier date a contract allows (a historical register) is checked as that limit, which lies
            # inside the same bounds; the staged value keeps its own date
            else pl.col(c).clip(_NS_EARLIEST, _NS_LATEST).cast(pl.Datetime("ns")) if frame.schema[c] == pl.Date
            else pl.col(c)
            for c in columns
        ]
    ).with_row_index(ROW_INDEX)
    return view.to_pandas().set_index(ROW_INDEX)


def validate_records(
    source: str,
    frame: pl.DataFrame,
    extract_date: dt.date,
    context_dir: Path | None = None,
    *,
    suites_dir: Path = SUITES_DIR,
    minimum_any_of: Sequence[str] = MINIMUM_DATA_DEFAULT,
    require_name: bool = True,
) -> ValidationOutcome:
    """Validate one source's standardised person_record rows with its suite (the default for an unseen source).

    One GX checkpoint run. With `context_dir` a file context lives under context_dir/gx and Data Docs
    are written; with None an ephemeral context is used and there are no Data Docs. Raises
    ExpectationError if an expectation could not be evaluated. len(staged) + len(quarantined) == len(frame).
    """
    suite = load_suite(source, suites_dir)
    checked = with_derived_columns(frame, minimum_any_of)
    if not require_name:
        checked = checked.with_columns(pl.lit(True).alias("_has_name"))
    columns = list(dict.fromkeys(e.column for e in suite.expectations if getattr(e, "column", None)))
    validation = run_suite(
        context_dir=context_dir,
        asset_name=f"{source}_person_record",
        suite=suite,
        frame=_gx_frame(source, checked, columns),
        run_name=f"{source}-{extract_date:%Y%m%d}",
        parameters={EXTRACT_DATE: pd.Timestamp(extract_date)},
    )

    summary, failures = [], []
    for position, res in enumerate(validation.results):
        cfg = res.expectation_config
        meta = cfg.meta or {}
        stats = res.result or {}
        summary.append({
            "expectation": cfg.type,
            "column": cfg.kwargs.get("column"),
            "severity": meta.get("severity"),
            "reason": meta.get("reason"),
            "unexpected_count": stats.get("unexpected_count"),
            "unexpected_percent": stats.get("unexpected_percent"),
            "success": bool(res.success),
        })
        reason = meta.get("reason")
        if cfg.kwargs.get("column") == "_has_minimum_data":
            reason = minimum_data_reason(minimum_any_of)
            summary[-1]["reason"] = reason
        if meta.get("severity") == QUARANTINE:
            rows = failing_rows(res)
            if rows:
                failures.append(pl.DataFrame({ROW_INDEX: rows, "_rule": position, "reason": reason},
                                             schema={ROW_INDEX: pl.UInt32, "_rule": pl.Int64, "reason": pl.String}))

    staged, quarantined = _split(frame, failures)
    if staged.height + quarantined.height != frame.height:
        raise ExpectationError(f"{source}: staged {staged.height} + quarantined {quarantined.height} "
                               f"!= {frame.height} rows validated")
    docs = data_docs_index(context_dir) if context_dir is not None else None
    return ValidationOutcome(
        staged=staged,
        quarantined=quarantined,
        summary=pl.DataFrame(summary, schema=SUMMARY_SCHEMA),
        success=bool(validation.success),
        suite=suite.meta["suite_file"],
        data_docs=str(docs) if docs is not None and docs.exists() else None,
    )


def _split(frame: pl.DataFrame, failures: list[pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    if failures:
        reasons = (
            pl.concat(failures)
            .sort(ROW_INDEX, "_rule")
            .group_by(ROW_INDEX, maintain_order=True)
            .agg(pl.col("reason").alias("reasons"))
        )
    else:
        reasons = pl.DataFrame(schema={ROW_INDEX: pl.UInt32, "reasons": pl.List(pl.String)})
    indexed = frame.with_row_index(ROW_INDEX)
    quarantined = (
        indexed.select(ROW_INDEX, "row_number", "record_id")
        .join(reasons, on=ROW_INDEX, how="inner")
        .sort(ROW_INDEX)
        .drop(ROW_INDEX)
    )
    staged = indexed.filter(~pl.col(ROW_INDEX).is_in(reasons[ROW_INDEX].implode())).drop(ROW_INDEX)
    return staged, quarantined
