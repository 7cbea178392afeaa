"""The one place that talks to Great Expectations: context, checkpoint run, result checks.

Both row-level validation and extract-level checks go through `run_suite`, so every GX run is a
checkpoint run (Data Docs written when there is a file context) with the same result format.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig

# GX sets this module's logger to INFO when it is imported ("Created temporary directory ... for
# ephemeral docs site" on every check): keep it at WARNING like the rest of GX.
logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

# Row position of each frame row, carried as the pandas index so GX reports failing rows by it.
ROW_INDEX = "_row_idx"

# COMPLETE gives every failing row; exclude_unexpected_values keeps the failing *values* (names,
# dates of birth, identifiers) out of the results GX stores and renders in Data Docs: only row
# positions are kept. The index query string would repeat every position, so it is left out.
RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_INDEX],
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
}

_DATASOURCE = "familylink"
_BATCH = "whole_extract"

# A GX context is not thread-safe and GX keeps a process-wide "current context": sources may be
# read and standardised concurrently, but their GX runs take turns.
_GX_LOCK = threading.Lock()


class ExpectationError(RuntimeError):
    """An expectation could not be evaluated, or a suite could not be loaded. Never silently passed."""


def data_docs_index(context_dir: Path) -> Path:
    """Where the file context under `context_dir` writes its Data Docs home page."""
    return Path(context_dir) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def _context(context_dir: Path | None):
    if context_dir is None:
        ctx = gx.get_context(mode="ephemeral")
    else:
        Path(context_dir).mkdir(parents=True, exist_ok=True)
        ctx = gx.get_context(mode="file", project_root_dir=str(context_dir))
    # TQDM_DISABLE does not reach GX's bars; the context variable does.
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _batch_definition(ctx, asset_name: str):
    datasource = ctx.data_sources.all().get(_DATASOURCE) or ctx.data_sources.add_pandas(name=_DATASOURCE)
    if asset_name in datasource.get_asset_names():
        asset = datasource.get_asset(asset_name)
    else:
        asset = datasource.add_dataframe_asset(name=asset_name)
    existing = [b for b in asset.batch_definitions if b.name == _BATCH]
    return existing[0] if existing else asset.add_batch_definition_whole_dataframe(_BATCH)


def run_suite(
    *,
    context_dir: Path | None,
    asset_name: str,
    suite: gx.ExpectationSuite,
    frame: pd.DataFrame,
    run_name: str,
    parameters: dict | None = None,
) -> ExpectationSuiteValidationResult:
    """One checkpoint run of `suite` over `frame` (indexed by ROW_INDEX).

    With a file context the suite, validation definition and checkpoint are kept under
    context_dir/gx and Data Docs are rebuilt; with none, an ephemeral context and no Data Docs.
    Raises ExpectationError if any expectation could not be evaluated.
    """
    if frame.index.name != ROW_INDEX:
        raise ValueError(f"the frame given to GX must be indexed by {ROW_INDEX}")
    expected = len(suite.expectations)
    with _GX_LOCK:
        ctx = _context(context_dir)
        definition = gx.ValidationDefinition(name=suite.name, data=_batch_definition(ctx, asset_name), suite=suite)
        actions = [UpdateDataDocsAction(name="update_data_docs")] if context_dir is not None else []
        checkpoint = ctx.checkpoints.add_or_update(
            gx.Checkpoint(name=suite.name, validation_definitions=[definition], actions=actions,
                          result_format=RESULT_FORMAT)
        )
        result = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters or {},
            run_id=RunIdentifier(run_name=run_name),
        )
    validation = next(iter(result.run_results.values()))
    raise_for_errors(suite.name, validation, expected)
    return validation


def _raised(info) -> list[dict]:
    """Exception records in a result's exception_info, whichever of GX's two shapes it has.

    An error while validating gives {"raised_exception": True, ...}; an error while computing a
    metric (e.g. a datetime column compared with date bounds) gives {metric id: {...}, ...} with no
    top-level flag, which a check of info["raised_exception"] alone would miss.
    """
    if not info:
        return []
    if "raised_exception" in info:
        return [info] if info.get("raised_exception") else []
    return [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def _exception_names(record: dict) -> str:
    """The classes of the chained exceptions, root cause first (e.g. "InvalidComparison, TypeError,
    MetricResolutionError"). Never their messages: a message can quote the data, such as a value
    that failed to parse."""
    names: list[str] = []
    for line in (record.get("exception_traceback") or "").splitlines():
        found = _EXCEPTION_LINE.match(line)
        if found and found.group(1) != "Traceback":
            name = found.group(1).rsplit(".", 1)[-1]
            if name not in names:
                names.append(name)
    return ", ".join(names) or "no traceback"


def raise_for_errors(suite_name: str, validation: ExpectationSuiteValidationResult, expected: int) -> None:
    problems = []
    for res in validation.results:
        raised = _raised(res.exception_info)
        if raised:
            problems.append(f"{describe(res)} could not be evaluated ({_exception_names(raised[0])})")
    if problems:
        raise ExpectationError(f"suite {suite_name}: " + "; ".join(problems)
                               + " — with a file context the stored GX validation result holds the full error")
    if len(validation.results) != expected:
        raise ExpectationError(f"suite {suite_name}: {expected} expectations but {len(validation.results)} results")


def describe(res: ExpectationValidationResult) -> str:
    cfg = res.expectation_config
    column = cfg.kwargs.get("column")
    return f"{cfg.type}" + (f" on column {column}" if column else "")


def failing_rows(res: ExpectationValidationResult) -> list[int]:
    """Row positions GX reported as unexpected, checked against GX's own unexpected_count."""
    stats = res.result or {}
    found: list[int] = []
    for item in stats.get("unexpected_index_list") or []:
        if isinstance(item, dict):
            value = item[ROW_INDEX]
            # exclude_unexpected_values gives one {index column: [positions]}; otherwise one dict per row
            found.extend(value if isinstance(value, list) else [value])
        else:
            found.append(item)
    count = int(stats.get("unexpected_count") or 0)
    if len(found) != count:
        raise ExpectationError(f"{describe(res)}: GX counted {count} unexpected rows but listed {len(found)}")
    return [int(i) for i in found]
