"""Run a source's GX suite through a checkpoint; split rows into staged and quarantined with every reason."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.data_context.types.base import ProgressBarsConfig

from expectations._suites import DEFAULT, SUITES_DIR

logging.getLogger("great_expectations").setLevel(logging.WARNING)

_ROW = "_row_idx"
# GX contexts are not safe to share between threads: sources validate one at a time (reading,
# mapping and standardising still run concurrently).
_GX_LOCK = threading.Lock()
_IDENTIFIERS = ("nhs_number", "upn", "pnc_id", "crn")


class ValidationError(RuntimeError):
    """An expectation could not be evaluated (never silently passed)."""


@dataclass
class ValidationOutcome:
    staged: pl.DataFrame
    quarantined: pl.DataFrame  # row_number, record_id, reasons
    summary: pl.DataFrame  # expectation, column, severity, unexpected_count, unexpected_percent, success
    success: bool
    data_docs: str | None


def load_suite_config(source: str, folder: Path = SUITES_DIR) -> dict:
    path = folder / f"{source}.json"
    if not path.exists():
        path = folder / f"{DEFAULT}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _expectations(config: dict) -> list[gxe.Expectation]:
    built = []
    for item in config["expectations"]:
        cls = getattr(gxe, "".join(part.title() for part in item["type"].split("_")))
        built.append(cls(**item["kwargs"], meta=item.get("meta")))
    return built


def _with_derived(frame: pl.DataFrame) -> pl.DataFrame:
    has_id = pl.any_horizontal([pl.col(c).is_not_null() for c in _IDENTIFIERS if c in frame.columns])
    flags = pl.col("quality_flags").fill_null(pl.lit([], pl.List(pl.String)))
    invalid = flags.list.eval(pl.element().str.ends_with("_invalid") & ~pl.element().str.starts_with("postcode")
                              & ~pl.element().str.starts_with("phone")).list.any()

    def present(c: str) -> pl.Expr:
        return pl.col(c).is_not_null() & (pl.col(c).cast(pl.String).str.strip_chars() != "")

    return frame.with_columns(
        present("record_id").alias("_has_record_id"),
        (present("first_name") | present("last_name")).alias("_has_name"),
        (pl.col("date_of_birth").is_not_null() | has_id).alias("_has_dob_or_identifier"),
        pl.when(invalid).then(pl.lit("invalid")).alias("_identifier_invalid"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias(_ROW),
    )


def _context(context_dir: Path | None):
    if context_dir is None:
        ctx = gx.get_context(mode="ephemeral")
    else:
        context_dir.mkdir(parents=True, exist_ok=True)
        ctx = gx.get_context(mode="file", project_root_dir=str(context_dir))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def validate_records(source: str, frame: pl.DataFrame, extract_date: dt.date,
                     context_dir: Path | None = None) -> ValidationOutcome:
    config = load_suite_config(source)
    checked = _with_derived(frame)
    # GX sees only what the suites test (converting every column to pandas is the slow part)
    columns = [c for c in checked.columns if c.startswith("_") or c in (
        "record_id", "first_name", "last_name", "date_of_birth", "sex", "postcode", "nhs_number", "ni_number",
        "upn", "pnc_id", "crn", "uprn")]
    pdf = checked.select(columns).to_pandas()
    for c in ("date_of_birth",):
        if c in pdf.columns:
            pdf[c] = pdf[c].astype("datetime64[ns]")

    with _GX_LOCK:
        validation = _run_checkpoint(source, config, pdf, context_dir)
    return _outcome(source, frame, validation, context_dir)


def _run_checkpoint(source: str, config: dict, pdf, context_dir: Path | None):
    ctx = _context(context_dir)
    name = f"familylink_{source}"
    datasource = ctx.data_sources.add_or_update_pandas(name=f"{name}_staging")
    asset = datasource.add_dataframe_asset(name="standardised")
    batch = asset.add_batch_definition_whole_dataframe("extract")
    try:
        ctx.suites.delete(name)
    except Exception:  # not there yet
        pass
    suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=_expectations(config)))
    try:
        ctx.validation_definitions.delete(name)
    except Exception:
        pass
    definition = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    actions = [UpdateDataDocsAction(name="data_docs")] if context_dir is not None else []
    try:
        ctx.checkpoints.delete(name)
    except Exception:
        pass
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=name, validation_definitions=[definition], actions=actions,
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [_ROW],
                       "partial_unexpected_count": 0},
    ))
    result = checkpoint.run(batch_parameters={"dataframe": pdf})
    return next(iter(result.run_results.values()))


def _outcome(source: str, frame: pl.DataFrame, validation, context_dir: Path | None) -> ValidationOutcome:

    reasons: dict[int, list[str]] = {}
    summary = []
    for res in validation.results:
        cfg = res.expectation_config
        meta = cfg.meta or {}
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise ValidationError(f"{source}: expectation {cfg.type} on column {cfg.kwargs.get('column')} could "
                                  f"not be evaluated ({res.exception_info.get('exception_message', '')[:200]})")
        stats = res.result or {}
        summary.append({
            "expectation": cfg.type, "column": cfg.kwargs.get("column"), "severity": meta.get("severity", "warning"),
            "unexpected_count": int(stats.get("unexpected_count") or 0),
            "unexpected_percent": float(stats.get("unexpected_percent") or 0.0), "success": bool(res.success),
        })
        if meta.get("severity") == "quarantine" and not res.success:
            for item in stats.get("unexpected_index_list") or []:
                idx = item[_ROW] if isinstance(item, dict) else item
                reasons.setdefault(int(idx), []).append(meta.get("reason", cfg.type))

    bad = pl.DataFrame({_ROW: list(reasons), "reasons": list(reasons.values())},
                       schema={_ROW: pl.Int64, "reasons": pl.List(pl.String)})
    with_idx = frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(_ROW))
    quarantined = with_idx.join(bad, on=_ROW, how="inner").select("row_number", "record_id", "reasons").sort("row_number")
    staged = with_idx.join(bad, on=_ROW, how="anti").drop(_ROW)
    docs = None
    if context_dir is not None:
        index = Path(context_dir) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        docs = str(index) if index.exists() else None
    return ValidationOutcome(staged, quarantined, pl.DataFrame(summary), bool(validation.success), docs)
