"""Opening the DuckDB warehouse and creating its tables."""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import polars as pl

from sources import canonical

_SQL_DIR = Path(__file__).parent / "sql"

STAGING_TABLES: dict[str, dict[str, pl.DataType]] = {
    "person_record": canonical.PERSON_RECORD,
    "involvement": canonical.INVOLVEMENT,
    "event": canonical.EVENT,
    "stated_relationship": canonical.STATED_RELATIONSHIP,
    "person_identifier": canonical.PERSON_IDENTIFIER,
}


def duckdb_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
    mapping = {
        pl.String: "varchar",
        pl.Int64: "bigint",
        pl.Int32: "integer",
        pl.Float64: "double",
        pl.Boolean: "boolean",
        pl.Date: "date",
        pl.Datetime: "timestamp",
    }
    for polars_type, sql_type in mapping.items():
        if isinstance(dtype, polars_type):
            return sql_type
    raise TypeError(f"no DuckDB type for {dtype}")


def _create_table_sql(qualified: str, schema: dict[str, pl.DataType], extra: str = "") -> str:
    columns = ",\n    ".join(f"{name} {duckdb_type(dtype)}" for name, dtype in schema.items())
    return f"create table if not exists {qualified} (\n    {columns}{extra}\n)"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute((_SQL_DIR / "schema.sql").read_text(encoding="utf-8"))
    for name, schema in STAGING_TABLES.items():
        con.execute(_create_table_sql(f"staging.{name}", schema))
        history = {**schema, "superseded_at": pl.Datetime()}
        con.execute(_create_table_sql(f"history.{name}", history))


# "6GB", "512MiB", "80%": DuckDB's own forms, and nothing else reaches a SET statement
MEMORY_LIMIT = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,3})?\s?([KMGT]i?B|%)$", re.IGNORECASE)


def _limits(con: duckdb.DuckDBPyConnection, memory_limit: str, threads: int) -> None:
    if not MEMORY_LIMIT.fullmatch(str(memory_limit)):
        raise ValueError("duckdb memory limit must look like 6GB, 512MiB or 80% (setting duckdb_memory_limit)")
    con.execute("set memory_limit = ?", [str(memory_limit)])
    con.execute("set threads = ?", [int(threads)])


def connect(path: Path | str, *, memory_limit: str = "6GB", threads: int = 2, read_only: bool = False,
            ensure: bool = True) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse file with the project's resource limits.

    `ensure=False` skips creating the tables, for concurrent tasks of a run that already created them.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        # another process has the file open: an analyst's connection, or a program other than familylink
        reason = (f"the warehouse file {Path(path).name} is open in another process, so this run cannot write "
                  "it; analysts must use the published snapshot, never the working warehouse")
        if not read_only:
            record_refusal(path, "open", reason)
        raise RunRefused(reason) from None
    _limits(con, memory_limit, threads)
    if ensure and not read_only:
        ensure_schema(con)
    return con


def compact(path: Path | str, *, memory_limit: str = "6GB", threads: int = 2) -> None:
    """Rewrite the warehouse file so that no deleted value survives in its free blocks.

    DuckDB reuses freed blocks but does not overwrite them, so an erased value stays readable in the file's
    bytes after DELETE, CHECKPOINT and VACUUM. Copying every schema, table, view and macro into a fresh
    file and atomically replacing the old one leaves no copy. Every connection to the file must be closed.
    """
    path = Path(path)
    fresh = path.with_name(path.name + ".compacting")
    for stale in (fresh, fresh.with_name(fresh.name + ".wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(":memory:")
    try:
        _limits(con, memory_limit, threads)
        con.execute("attach ? as old_warehouse (read_only)", [str(path)])
        con.execute("attach ? as new_warehouse", [str(fresh)])
        con.execute("copy from database old_warehouse to new_warehouse")
        con.execute("detach old_warehouse")
        con.execute("checkpoint new_warehouse")
        con.execute("detach new_warehouse")
    finally:
        con.close()
    with open(fresh, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(fresh, path)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)


class RunRefused(RuntimeError):
    """Another run holds the warehouse (or another process has the file open); this one did not start."""

    message_is_safe = True
    stage = "start"


_HELD: dict[Path, list] = {}  # lock file -> [open file, depth]: re-entrant within one process
_HELD_GUARD = threading.Lock()


def _lock_file(warehouse_path: Path | str) -> Path:
    path = Path(warehouse_path)
    return path.with_name(path.name + ".lock")


def refusals_file(warehouse_path: Path | str) -> Path:
    """Runs refused while another held the warehouse, one JSON line each (ids only); the next run to take
    the lock moves them into audit.run, since the refused run could not open the warehouse itself."""
    path = Path(warehouse_path)
    return path.with_name(path.name + ".refused.jsonl")


def record_refusal(warehouse_path: Path | str, flow: str, reason: str) -> None:
    import datetime as dt
    import json

    line = {"flow": flow, "at": dt.datetime.now(dt.timezone.utc).isoformat(), "reason": reason}
    with open(refusals_file(warehouse_path), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def acquire_run_lock(warehouse_path: Path | str, flow: str) -> None:
    """Take the warehouse's run lock (an advisory lock beside the file) or raise RunRefused in one line.

    Re-entrant within a process (a nightly's stages and tasks share their run's lock); the operating system
    releases it when the process ends, so a killed run never leaves it behind.
    """
    import fcntl
    import json

    lock = _lock_file(Path(warehouse_path).absolute())
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _HELD_GUARD:
        if lock in _HELD:
            _HELD[lock][1] += 1
            return
        fh = open(lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "{}"
            fh.close()
            try:
                held = json.loads(holder)
            except ValueError:
                held = {}
            reason = (f"another familylink run holds the warehouse ({held.get('flow', 'unknown')} started "
                      f"{held.get('started', '?')}, process {held.get('pid', '?')}); this {flow} run did not start")
            record_refusal(warehouse_path, flow, reason)
            raise RunRefused(reason) from None
        import datetime as dt

        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"flow": flow, "pid": os.getpid(),
                             "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}))
        fh.flush()
        _HELD[lock] = [fh, 1]


def release_run_lock(warehouse_path: Path | str) -> None:
    import fcntl

    lock = _lock_file(Path(warehouse_path).absolute())
    with _HELD_GUARD:
        held = _HELD.get(lock)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            fh = held[0]
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
            del _HELD[lock]


@contextmanager
def run_lock(warehouse_path: Path | str, flow: str) -> Iterator[None]:
    acquire_run_lock(warehouse_path, flow)
    try:
        yield
    finally:
        release_run_lock(warehouse_path)


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `schema.table` exists (a table or a view) in any attached database."""
    schema, name = table.split(".")
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? and "
                            "table_name = ?", [schema, name]).fetchall()[0][0])


def column_names(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The columns of a table or view, by the name a query would use for it."""
    return {row[0] for row in con.execute(f"select column_name from (describe {table})").fetchall()}


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit when the block finishes, roll back on any error (or interruption)."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
