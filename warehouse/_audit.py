"""The audit trail: runs, and every access to personal data."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from contextlib import contextmanager
from typing import Iterator

import duckdb

from warehouse._db import transaction


def safe_error(exc: BaseException) -> str:
    """An exception as it may be written to the audit trail, logs and Prefect: our own errors (classes with
    `message_is_safe = True`, whose messages name files, rows, columns and ids) in full; any other only by
    its kind, because a library's message may quote the value it failed on (polars, DuckDB, pydantic)."""
    if getattr(type(exc), "message_is_safe", False):
        return str(exc)
    return f"{type(exc).__name__} (details withheld: they may quote personal data)"


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, flow: str, parameters: dict | None = None) -> None:
    con.execute(
        "insert into audit.run (run_id, flow, started_at, status, parameters) values (?, ?, current_timestamp, 'running', ?)",
        [run_id, flow, json.dumps(parameters or {}, default=str)],
    )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, failed_stage: str | None = None, error: str | None = None
) -> None:
    """Record a run's end. A completed run commits the person and household ids it assigned and their lineage
    with this update (callers hold one transaction around it), so neither ever belongs to an incomplete run."""
    if status == "completed":
        from linkage_models import commit_assignment

        commit_assignment(con, run_id)
    con.execute(
        "update audit.run set finished_at = current_timestamp, status = ?, failed_stage = ?, error = ? where run_id = ?",
        [status, failed_stage, error, run_id],
    )


@contextmanager
def audited_run(con: duckdb.DuckDBPyConnection, flow: str, parameters: dict | None = None, run_id: str | None = None) -> Iterator[str]:
    """Record a run's start and end; a failure is recorded with its stage and a message free of personal data."""
    run_id = run_id or new_run_id()
    start_run(con, run_id, flow, parameters)
    try:
        yield run_id
    except BaseException as exc:
        stage = getattr(exc, "stage", None)
        finish_run(con, run_id, "failed", stage, safe_error(exc)[:2000])
        raise
    with transaction(con):
        finish_run(con, run_id, "completed")


def import_refusals(con: duckdb.DuckDBPyConnection, refusals: "Path") -> int:
    """Move runs refused while another held the warehouse (written beside it, since they could not open it)
    into audit.run with status 'refused'. Called by the next run to take the lock."""
    from pathlib import Path

    refusals = Path(refusals)
    if not refusals.exists():
        return 0
    lines = [json.loads(line) for line in refusals.read_text(encoding="utf-8").splitlines() if line.strip()]
    for line in lines:
        at = dt.datetime.fromisoformat(line["at"]).astimezone(dt.timezone.utc).replace(tzinfo=None)
        con.execute(
            "insert into audit.run (run_id, flow, started_at, finished_at, status, parameters, failed_stage, error) "
            "values (?, ?, ?, ?, 'refused', '{}', 'start', ?)",
            [new_run_id(), line.get("flow", "unknown"), at, at, line.get("reason", "")[:2000]],
        )
    refusals.unlink()
    return len(lines)


def log_access(
    con: duckdb.DuckDBPyConnection, actor: str, action: str, object_name: str, purpose: str | None = None,
    detail: dict | None = None,
) -> None:
    con.execute(
        "insert into audit.access_log (actor, action, object, purpose, detail) values (?, ?, ?, ?, ?)",
        [actor, action, object_name, purpose, json.dumps(detail or {}, default=str)],
    )
