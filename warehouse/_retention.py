"""Retention: what the sharing agreements let us keep, and no longer.

Each source contract states `sharing.retention_days`. Rows of an extract that has been superseded
(received rows in raw.row, quarantined rows, and the staged rows kept in history.*) are deleted once the
extract was superseded longer ago than its source's retention period. The current extract of each
source is what the graph and golden snapshots are built from, so it is kept; superseded golden
snapshots have their own retention (`snapshot_retention_days`, warehouse/_golden.py). Every deletion is
counted in audit.access_log (table names and counts only).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from warehouse._db import STAGING_TABLES, transaction


def apply_retention(con: duckdb.DuckDBPyConnection, retention_days: dict[str, int], *,
                    now: dt.datetime | None = None, actor: str = "familylink") -> dict[str, int]:
    """Delete superseded extract rows past their source's retention period; returns rows deleted per table."""
    now = now or dt.datetime.now()
    deleted: dict[str, int] = {}

    def count(table: str, rows: int) -> None:
        if rows:
            deleted[table] = deleted.get(table, 0) + rows

    with transaction(con):
        for source, days in sorted(retention_days.items()):
            cutoff = now - dt.timedelta(days=days)
            # extracts of this source that are no longer current, with when they stopped being current
            expired = [row[0] for row in con.execute(
                """
                with loads as (
                    select file_sha256, min(recorded_at) as loaded_at
                    from audit.file_manifest
                    where source = ? and status = 'loaded' and file_sha256 is not null
                    group by file_sha256
                ),
                superseded as (
                    select l.file_sha256,
                           (select min(n.loaded_at) from loads as n where n.loaded_at > l.loaded_at) as superseded_at
                    from loads as l
                    where l.file_sha256 not in (select file_sha256 from audit.current_extract where source = ?)
                )
                select file_sha256 from superseded where superseded_at is not null and superseded_at < ?
                """,
                [source, source, cutoff],
            ).fetchall()]
            # rejected files were never staged; their received rows go after the same period, unless the same bytes
            # were also loaded (a copy of an extract under a name that gives no date is rejected): those rows are
            # the loaded extract's, and go with it
            expired += [row[0] for row in con.execute(
                "select distinct file_sha256 from audit.file_manifest where source = ? and status = 'rejected' "
                "and file_sha256 is not null and recorded_at < ? and file_sha256 not in (select file_sha256 from "
                "audit.file_manifest where source = ? and status = 'loaded' and file_sha256 is not null)",
                [source, cutoff, source]).fetchall()]
            for sha in sorted(set(expired)):
                for table in ("raw.row", "quarantine.row"):
                    count(table, con.execute(f"delete from {table} where source = ? and file_sha256 = ?",
                                             [source, sha]).fetchall()[0][0])
            for name in STAGING_TABLES:
                count(f"history.{name}", con.execute(
                    f"delete from history.{name} where source = ? and superseded_at < ?", [source, cutoff]
                ).fetchall()[0][0])
        if deleted:
            con.execute(
                "insert into audit.access_log (actor, action, object, purpose, detail) values (?, 'retention', "
                "'raw, quarantine, history', 'retention periods in the source contracts', ?)",
                [actor, deleted],
            )
    return deleted
