"""Erasure and rectification of one source record, through every table.

Erasure finds every table in the warehouse that holds source records — any table with `source` and
`record_id` columns (or `record_key` in raw, or both sides of a pair table) — so a table added later
is covered without changing this code. Snapshots that contained the record are dropped with their
Parquet exports once a new snapshot without it is published (the caller republishes).

Rectification stores the corrected value in `staging.rectification` and applies it after every load,
so the next extract from the source cannot quietly undo it. The audit trail names the record and the
field, never the values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from sources import canonical
from warehouse._db import transaction

_NOT_RECTIFIABLE = {"source", "record_id", "file_sha256", "row_number", "record_role", "extract_date"}


@dataclass
class ErasureResult:
    source: str
    record_id: str
    rows_deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows_deleted.values())


class ErasureError(ValueError):
    """An erasure that cannot be done; nothing was changed (ids only in the message)."""

    message_is_safe = True  # names files, keys and ids, never values (warehouse.safe_error)


def _record_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str]]]:
    """(schema, table, key predicate columns) for every base table holding source records.

    A one-element key is a Splink-style `unique_id` column holding `source:record_id` (scored pairs, the
    clustering edges in the main schema, the linkage input)."""
    columns = con.execute(
        """
        select c.table_schema, c.table_name, list(c.column_name)
        from information_schema.columns as c
        join information_schema.tables as t using (table_schema, table_name)
        where t.table_type = 'BASE TABLE'
        group by all
        """
    ).fetchall()
    found = []
    for schema, table, cols in columns:
        names = set(cols)
        if {"source", "record_id"} <= names:
            found.append((schema, table, ["source", "record_id"]))
        if {"source", "record_key"} <= names:
            found.append((schema, table, ["source", "record_key"]))
        for side in ("l", "r"):
            if {f"source_{side}", f"record_id_{side}"} <= names:
                found.append((schema, table, [f"source_{side}", f"record_id_{side}"]))
        if {"source", "related_record_id"} <= names:
            found.append((schema, table, ["source", "related_record_id"]))
        for unique_id in ("unique_id", "unique_id_l", "unique_id_r"):
            if unique_id in names:
                found.append((schema, table, [unique_id]))
    return sorted(found)


def _blank_related_in_rows(con: duckdb.DuckDBPyConnection, source: str, record_id: str,
                           related_columns: dict[str, list[str]]) -> dict[str, int]:
    """A related person (a pupil's parent, `P0000001-P1`) has no row of their own: their name and phone sit
    in the subject's row as received. Blank those columns in raw and quarantine rows of the subject."""
    changed: dict[str, int] = {}
    for suffix, columns in related_columns.items():
        if not columns or not record_id.endswith(suffix) or len(record_id) == len(suffix):
            continue
        subject = record_id[: -len(suffix)]
        patch = json.dumps(dict.fromkeys(columns, ""))
        for table, key in (("raw.row", "record_key"), ("quarantine.row", "record_id")):
            n = con.execute(
                f"update {table} set payload = json_merge_patch(payload, ?::json) "
                f"where source = ? and {key} = ? and payload is not null",
                [patch, source, subject],
            ).fetchall()[0][0]
            if n:
                changed[table] = changed.get(table, 0) + n
    return changed


def erase_record(
    con: duckdb.DuckDBPyConnection, source: str, record_id: str, *, actor: str, reason: str,
    related_columns: dict[str, list[str]] | None = None,
) -> ErasureResult:
    """Delete one source record from every table, in one transaction, and log it.

    `related_columns` (record id suffix -> source columns, from the source contract's related persons) lets
    the erasure of a related person blank their columns in the subject's received row. An erasure that finds
    no record changes nothing — not even the block on later extracts — and raises ErasureError.
    """
    result = ErasureResult(source, record_id)
    with transaction(con):
        for schema, table, key_columns in _record_tables(con):
            if len(key_columns) == 1:
                where, params = f'"{key_columns[0]}" = ?', [f"{source}:{record_id}"]
            else:
                where, params = f'"{key_columns[0]}" = ? and "{key_columns[1]}" = ?', [source, record_id]
            deleted = con.execute(f'delete from "{schema}"."{table}" where {where}', params).fetchall()[0][0]
            if deleted:
                key = f"{schema}.{table}"
                result.rows_deleted[key] = result.rows_deleted.get(key, 0) + deleted
        for key, n in _blank_related_in_rows(con, source, record_id, related_columns or {}).items():
            result.rows_deleted[f"{key} (related person's columns blanked)"] = n
        if not result.total:
            # raising rolls the transaction back: a mistaken id never blocks a record for ever
            raise ErasureError(f"no record {source}:{record_id} in the warehouse; nothing was erased")
        # later extracts that still carry the record must not bring it back
        con.execute("insert or replace into audit.erased_record (erased_source, erased_record_id, reference) "
                    "values (?, ?, ?)", [source, record_id, reason])
        con.execute(
            "insert into audit.access_log (actor, action, object, purpose, detail) values (?, 'erase', ?, ?, ?)",
            [actor, f"{source}:{record_id}", reason, {"rows_deleted": result.rows_deleted}],
        )
    return result


def lift_erasure_block(con: duckdb.DuckDBPyConnection, source: str, record_id: str, *, actor: str,
                       reason: str) -> bool:
    """Correct a mistaken erasure: later extracts may stage the record again (the deleted rows do not come
    back by themselves; the next extract that carries the record restores it). Audited; returns whether a
    block existed."""
    with transaction(con):
        existed = con.execute("delete from audit.erased_record where erased_source = ? and erased_record_id = ?",
                              [source, record_id]).fetchall()[0][0]
        if existed:
            con.execute(
                "insert into audit.access_log (actor, action, object, purpose, detail) "
                "values (?, 'lift erasure block', ?, ?, ?)", [actor, f"{source}:{record_id}", reason, {}])
    return bool(existed)


def _ensure_rectification(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        create table if not exists staging.rectification (
            source varchar, record_id varchar, field varchar, value varchar,
            rectified_at timestamp default current_timestamp,
            primary key (source, record_id, field)
        )
        """
    )


def rectify_record(
    con: duckdb.DuckDBPyConnection, source: str, record_id: str, field_name: str, value: str | None, *,
    actor: str, reason: str,
) -> int:
    """Correct one field of one staged record now and on every later load. Returns rows changed."""
    if field_name not in canonical.PERSON_RECORD or field_name in _NOT_RECTIFIABLE:
        raise ValueError(f"{field_name!r} is not a field of staging.person_record that can be rectified")
    _ensure_rectification(con)
    with transaction(con):
        con.execute(
            "insert or replace into staging.rectification (source, record_id, field, value) values (?, ?, ?, ?)",
            [source, record_id, field_name, value],
        )
        changed = apply_rectifications(con, source=source, record_id=record_id)
        con.execute(
            "insert into audit.access_log (actor, action, object, purpose, detail) values (?, 'rectify', ?, ?, ?)",
            [actor, f"{source}:{record_id}", reason, {"field": field_name}],
        )
    return changed


def apply_rectifications(con: duckdb.DuckDBPyConnection, source: str | None = None, record_id: str | None = None) -> int:
    """Re-apply stored corrections to staging.person_record (called after each load)."""
    _ensure_rectification(con)
    where = ""
    params: list[str] = []
    if source is not None:
        where = "where source = ? and record_id = ?"
        params = [source, record_id or ""]
    changed = 0
    for src, rid, field_name, value in con.execute(
        f"select source, record_id, field, value from staging.rectification {where}", params
    ).fetchall():
        dtype = _duck_type(field_name)
        changed += con.execute(
            f"update staging.person_record set {field_name} = cast(? as {dtype}) where source = ? and record_id = ?",
            [value, src, rid],
        ).fetchall()[0][0]
    return changed


def _duck_type(field_name: str) -> str:
    from warehouse._db import duckdb_type

    return duckdb_type(canonical.PERSON_RECORD[field_name])
