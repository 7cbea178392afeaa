"""Publish the golden dataset as a versioned snapshot, and switch to it atomically.

A snapshot is a schema `snapshot_NNNNNN` holding the tables warehouse/published.yaml registers (golden
person, household, involvement, relationship, person_source_link, person_record and the pseudonymised
tables). It is built beside the published one, checked (every column described in the data dictionary),
exported — Parquet named after the views (`golden/person.parquet`), a read-only `analysts.duckdb` with
every table and column commented, a manifest — and only then do the `golden.*` and `pseudonymised.*` views
switch to it, in one transaction. A snapshot identical to the published one is not published again. A run that fails or is killed before the switch leaves the
published snapshot as it was; its half-built schema is dropped by the next publish.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from sources import file_sha256
from warehouse._db import table_exists, transaction
from warehouse._published import ANALYSTS_DATABASE, dictionary, write_analysts_database, write_parquet
import yaml

_SQL = Path(__file__).parent / "sql" / "golden"
_RULES = Path(__file__).parent / "survivorship.yaml"
# built in this order from warehouse/sql/golden/<name>.sql (person first, from survivorship; the pseudonymised
# tables last, from the golden ones); which tables are published is warehouse/published.yaml
_BUILT_AFTER_PERSON = ("household", "involvement", "relationship", "person_source_link", "person_record")

# attribute -> (value shown in golden, value compared for frequency)
_ATTRIBUTE_EXPRESSIONS = {
    "first_name": ("trim(r.first_name)", "r.first_name_std"),
    "middle_names": ("trim(r.middle_names)", "r.middle_names_std"),
    "last_name": ("trim(r.last_name)", "r.last_name_std"),
}
_RULE_ORDER = {
    "trust_rank": "trust_rank asc",
    "most_recent": "extract_date desc nulls last, address_from desc nulls last",
    "most_frequent": "frequency desc",
    "longest": "value_length desc",
}


class PublishError(RuntimeError):
    """A snapshot failed its checks; nothing was switched."""

    message_is_safe = True  # names files, keys and ids, never values (warehouse.safe_error)

    stage = "publish"


@dataclass
class SnapshotResult:
    snapshot_id: str
    row_counts: dict[str, int]
    parquet_dir: Path
    manifest_path: Path
    expired: list[str] = field(default_factory=list)
    unchanged_from: str | None = None  # set when the new snapshot was identical to this published one


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists golden")
    con.execute("create schema if not exists pseudonymised")
    con.execute(
        """
        create table if not exists audit.snapshot (
            snapshot_id varchar primary key,
            run_id varchar not null,
            model_version varchar,
            status varchar not null,         -- building | ready | published | superseded | rolled_back | failed | expired | purged
            created_at timestamp not null,
            published_at timestamp,
            row_counts json,
            parquet_dir varchar,
            message varchar
        )
        """
    )


def load_survivorship_rules(path: Path = _RULES) -> dict[str, list[str]]:
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))["person"]
    for attribute, order in rules.items():
        unknown = [r for r in order if r not in _RULE_ORDER]
        if unknown:
            raise ValueError(f"{path}: person.{attribute}: unknown rule(s) {unknown}; use {sorted(_RULE_ORDER)}")
    return rules


def survivorship_sql(attribute: str, rules: list[str]) -> str:
    """One select that picks the surviving value of one attribute for every person, with its source."""
    value, compare = _ATTRIBUTE_EXPRESSIONS.get(attribute, (f"r.{attribute}", f"r.{attribute}"))
    order = ", ".join([_RULE_ORDER[r] for r in rules] + ["source", "record_id"])
    return f"""
        select person_id, value as {attribute}, source as {attribute}_source
        from (
            select
                l.person_id,
                {value} as value,
                r.source,
                r.record_id,
                r.extract_date,
                r.address_from,
                coalesce(t.trust_rank, 99) as trust_rank,
                count(*) over (partition by l.person_id, {compare}) as frequency,
                length(cast({value} as varchar)) as value_length
            from staging.person_record as r
            inner join graph.record_link as l using (source, record_id)
            left join linkage.source_trust as t on t.source = r.source
            where {value} is not null and trim(cast({value} as varchar)) <> ''
        )
        qualify row_number() over (partition by person_id order by {order}) = 1
    """


def _person_sql(snapshot: str, rules: dict[str, list[str]]) -> str:
    columns = ",\n".join(
        f"        pick_{a}.{a},\n        pick_{a}.{a}_source" for a in rules
    )
    joins = "\n".join(f"    left join {snapshot}._pick_{a} as pick_{a} using (person_id)" for a in rules)
    template = (_SQL / "person.sql").read_text(encoding="utf-8")
    return template.replace("{pick_columns}", columns).replace("{pick_joins}", joins).replace("{snapshot}", snapshot)


def _render(name: str, snapshot: str) -> str:
    return (_SQL / f"{name}.sql").read_text(encoding="utf-8").replace("{snapshot}", snapshot)


def pseudonym(key: bytes, kind: str, value: object) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:20]


def _pseudonyms(con: duckdb.DuckDBPyConnection, snapshot: str, key: bytes) -> pl.DataFrame:
    ids = con.sql(
        f"""
        select distinct 'person' as kind, person_id as id from {snapshot}.person
        union all select distinct 'household', household_id from {snapshot}.household
        union all select distinct 'uprn', uprn from {snapshot}.household where uprn is not null
        union select distinct 'uprn', uprn from {snapshot}.person where uprn is not null
        """
    ).pl()
    return ids.with_columns(
        pl.struct("kind", "id")
        .map_elements(lambda r: pseudonym(key, r["kind"], r["id"]), return_dtype=pl.String)
        .alias("pseudonym")
    )


def _check_snapshot(con: duckdb.DuckDBPyConnection, snapshot: str) -> list[str]:
    def one(sql: str) -> int:
        return con.execute(sql).fetchall()[0][0]

    problems = []
    if one(f"select count(*) from {snapshot}.person") != one("select count(*) from graph.person"):
        problems.append("golden person rows do not reconcile with graph.person")
    if one(f"select count(*) from {snapshot}.household") != one("select count(*) from graph.household"):
        problems.append("golden household rows do not reconcile with graph.household")
    if one(f"select count(*) - count(distinct person_id) from {snapshot}.person"):
        problems.append("duplicate person_id in golden person")
    if one(f"select count(*) - count(distinct household_id) from {snapshot}.household"):
        problems.append("duplicate household_id in golden household")
    if one(f"select count(*) - count(distinct (source, record_id)) from {snapshot}.person_source_link"):
        problems.append("duplicate (source, record_id) in person_source_link")
    orphans = one(
        f"select count(*) from {snapshot}.person p anti join {snapshot}.person_source_link l using (person_id)"
    )
    if orphans:
        problems.append(f"{orphans} person(s) without a source record")
    unlinked = one(
        f"select count(*) from staging.person_record r anti join {snapshot}.person_source_link l "
        "using (source, record_id)"
    )
    if unlinked:
        problems.append(f"{unlinked} staged record(s) without a person")
    return problems


def _next_snapshot_id(con: duckdb.DuckDBPyConnection) -> str:
    n = con.execute("select count(*) from audit.snapshot").fetchall()[0][0] + 1
    return f"snapshot_{n:06d}"


def _drop_abandoned(con: duckdb.DuckDBPyConnection) -> None:
    """Schemas of snapshots whose build never finished (a killed or failed run)."""
    published = {r[0] for r in con.execute(
        "select snapshot_id from audit.snapshot where status in ('published', 'superseded', 'rolled_back')"
    ).fetchall()}
    for (schema,) in con.execute(
        "select schema_name from information_schema.schemata where schema_name like 'snapshot_%'"
    ).fetchall():
        if schema not in published:
            con.execute(f"drop schema if exists {schema} cascade")
            con.execute("update audit.snapshot set status = 'failed' where snapshot_id = ? "
                        "and status in ('building', 'ready')", [schema])


def sql_string(value: object) -> str:
    """A SQL string literal for statements that take no parameters (COPY … TO, ATTACH): quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def remove_orphan_exports(con: duckdb.DuckDBPyConnection, snapshots_dir: Path | None) -> list[str]:
    """Parquet exports of snapshots that were never published (a publish that failed or was killed during
    the export) hold personal data nobody can reach through the views: delete them. Called by publish and
    erasure, which hold the run lock, so no other export is being written."""
    if snapshots_dir is None or not Path(snapshots_dir).is_dir():
        return []
    _ensure_tables(con)
    kept = {r[0] for r in con.execute(
        "select snapshot_id from audit.snapshot where status in ('published', 'superseded', 'rolled_back')"
    ).fetchall()}
    removed = []
    for folder in sorted(Path(snapshots_dir).glob("snapshot_*")):
        if folder.is_dir() and folder.name not in kept:
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed


def _export(con: duckdb.DuckDBPyConnection, snapshot: str, out_dir: Path, manifest: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    published = dictionary()
    for table in published.tables.values():
        path = out_dir / table.parquet_file
        write_parquet(con, snapshot, table, path, published)
        files[table.name] = {"file": table.parquet_file, "sha256": file_sha256(path)}
    analysts = out_dir / ANALYSTS_DATABASE
    write_analysts_database(con, snapshot, analysts, published, {
        k: manifest.get(k) for k in ("snapshot_id", "run_id", "as_of", "model_version", "created_at")})
    files["analysts_database"] = {"file": analysts.name, "sha256": file_sha256(analysts)}
    manifest = {**manifest, "files": files}
    manifest_path = out_dir / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return manifest_path


def switch_views(con: duckdb.DuckDBPyConnection, snapshot: str) -> None:
    """Point golden.* and pseudonymised.* at one snapshot (call inside a transaction)."""
    for table in dictionary().tables.values():
        if table_exists(con, f"{snapshot}.{table.built_as}"):  # a snapshot published before the table existed lacks it
            con.execute(f"create or replace view {table.name} as select * from {snapshot}.{table.built_as}")
        else:
            con.execute(f"drop view if exists {table.name}")


def _identical(con: duckdb.DuckDBPyConnection, new: str, old: str) -> bool:
    """Whether two built snapshots hold the same rows in every published table (order aside)."""
    for table in dictionary().tables.values():
        if not table_exists(con, f"{old}.{table.built_as}"):
            return False
        for a, b in ((new, old), (old, new)):
            try:
                if con.execute(f"select count(*) from (select * from {a}.{table.built_as} "
                               f"except all select * from {b}.{table.built_as})").fetchall()[0][0]:
                    return False
            except duckdb.Error:  # different columns: a changed schema is a change
                return False
    return True


def publish_snapshot(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    model_version: str,
    as_of: dt.date,
    snapshots_dir: Path,
    pseudonymisation_key: bytes,
    retention_days: int,
    fail_before_switch: bool = False,
    notes: dict | None = None,
    switch: bool = True,
    skip_if_unchanged: bool = True,
) -> SnapshotResult:
    _ensure_tables(con)
    _drop_abandoned(con)
    remove_orphan_exports(con, snapshots_dir)
    snapshot = _next_snapshot_id(con)
    con.execute(
        "insert into audit.snapshot (snapshot_id, run_id, model_version, status, created_at) "
        "values (?, ?, ?, 'building', current_timestamp)",
        [snapshot, run_id, model_version],
    )
    con.execute(f"create schema {snapshot}")
    con.execute("set variable as_of = ?", [as_of])
    rules = load_survivorship_rules()
    for attribute, order in rules.items():
        con.execute(f"create table {snapshot}._pick_{attribute} as {survivorship_sql(attribute, order)}")
    con.execute(_person_sql(snapshot, rules))
    for attribute in rules:
        con.execute(f"drop table {snapshot}._pick_{attribute}")
    for name in _BUILT_AFTER_PERSON:
        con.execute(_render(name, snapshot))
    con.register("_pseudonym", _pseudonyms(con, snapshot, pseudonymisation_key))
    con.execute(_render("pseudonymised", snapshot))
    con.unregister("_pseudonym")

    problems = _check_snapshot(con, snapshot) + dictionary().missing_descriptions(con, snapshot)
    if problems:
        con.execute("update audit.snapshot set status = 'failed', message = ? where snapshot_id = ?",
                    ["; ".join(problems), snapshot])
        con.execute(f"drop schema {snapshot} cascade")
        raise PublishError(f"{snapshot} failed its checks: " + "; ".join(problems))

    current = current_snapshot(con)
    if skip_if_unchanged and current and not notes and _identical(con, snapshot, current):
        # nothing changed since the published snapshot: publishing a copy would only add a duplicate
        con.execute("update audit.snapshot set status = 'unchanged', message = ? where snapshot_id = ?",
                    [f"identical to {current}; not published", snapshot])
        con.execute(f"drop schema {snapshot} cascade")
        recorded = con.execute("select row_counts, parquet_dir from audit.snapshot where snapshot_id = ?",
                               [current]).fetchall()[0]
        parquet_dir = Path(recorded[1]) if recorded[1] else snapshots_dir / current
        return SnapshotResult(current, json.loads(recorded[0]) if recorded[0] else {}, parquet_dir,
                              parquet_dir / "manifest.json", [], unchanged_from=current)

    counts = {t.built_as: con.execute(f"select count(*) from {snapshot}.{t.built_as}").fetchall()[0][0]
              for t in dictionary().tables.values()}
    out_dir = snapshots_dir / snapshot
    try:
        manifest_path = _export(con, snapshot, out_dir, {
            "snapshot_id": snapshot, "run_id": run_id, "model_version": model_version,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(), "as_of": as_of.isoformat(),
            "row_counts": counts, **(notes or {}),
        })
        if fail_before_switch:  # used by tests to prove a failure here changes nothing published
            raise PublishError(f"{snapshot}: stopped before the switch on request")
    except BaseException:
        # a half-written export is personal data outside any snapshot (a kill here is cleaned by the next
        # publish or erasure: remove_orphan_exports)
        shutil.rmtree(out_dir, ignore_errors=True)
        raise

    con.execute("update audit.snapshot set status = 'ready', row_counts = ?, parquet_dir = ? where snapshot_id = ?",
                [json.dumps(counts), str(out_dir), snapshot])
    if not switch:
        # the caller switches later (`switch_to`, or `make_current` in the transaction that records its run)
        return SnapshotResult(snapshot, counts, out_dir, manifest_path, [])
    expired = switch_to(con, snapshot, snapshots_dir, retention_days)
    return SnapshotResult(snapshot, counts, out_dir, manifest_path, expired)


def switch_to(con: duckdb.DuckDBPyConnection, snapshot: str, snapshots_dir: Path, retention_days: int) -> list[str]:
    """Make a ready snapshot current (views and status in one transaction), move the pointer files to it, and
    expire old snapshots; returns the snapshots expired."""
    with transaction(con):
        make_current(con, snapshot)
    write_current_pointer(snapshots_dir, snapshot)
    return expire_snapshots(con, retention_days, snapshots_dir)


def make_current(con: duckdb.DuckDBPyConnection, snapshot: str) -> None:
    """Point the views at a built, checked and exported ('ready') snapshot and mark it published. Call inside
    a transaction — the nightly's is the one that records its run as completed, so a snapshot is never
    published by a run that did not complete. A ready snapshot never made current is dropped, with its
    Parquet export, by the next publish."""
    switch_views(con, snapshot)
    con.execute("update audit.snapshot set status = 'superseded' where status = 'published'")
    con.execute("update audit.snapshot set status = 'published', published_at = current_timestamp "
                "where snapshot_id = ? and status = 'ready'", [snapshot])


CURRENT_POINTER = "current.json"


CURRENT_LINK = "current"


def write_current_pointer(snapshots_dir: Path, snapshot: str) -> None:
    """snapshots/current.json names the published snapshot, so readers outside the warehouse (the practitioner
    service) find it without opening the working DuckDB file; snapshots/current is a symbolic link to its
    folder, so analysts and Parquet readers open `snapshots/current/analysts.duckdb` or
    `snapshots/current/pseudonymised/person.parquet`. Each is replaced atomically (rename): a reader sees the
    old or the new one, never half of one."""
    snapshots_dir = Path(snapshots_dir)
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    tmp = snapshots_dir / f".{CURRENT_POINTER}.tmp"
    tmp.write_text(json.dumps({"snapshot_id": snapshot, "switched_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                               "folder": snapshot, "analysts_database": f"{snapshot}/{ANALYSTS_DATABASE}"}),
                   encoding="utf-8")
    tmp.replace(snapshots_dir / CURRENT_POINTER)
    current = snapshots_dir / CURRENT_LINK
    if current.is_dir() and not current.is_symlink():
        # a data folder copied without keeping symbolic links (cp -r, copytree): a stale copy of a snapshot
        shutil.rmtree(current)
    link = snapshots_dir / f".{CURRENT_LINK}.tmp"
    link.unlink(missing_ok=True)
    os.symlink(snapshot, link)  # relative: a moved data folder keeps working
    link.replace(snapshots_dir / CURRENT_LINK)


def current_snapshot(con: duckdb.DuckDBPyConnection) -> str | None:
    _ensure_tables(con)
    row = con.execute("select snapshot_id from audit.snapshot where status = 'published'").fetchall()
    return row[0][0] if row else None


def rollback(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """Return the views to the snapshot published before the current one. Returns (from, to)."""
    _ensure_tables(con)
    current = current_snapshot(con)
    if current is None:
        raise PublishError("nothing is published, so there is nothing to roll back")
    previous = con.execute(
        "select snapshot_id from audit.snapshot where status = 'superseded' "
        "order by published_at desc limit 1"
    ).fetchall()
    if not previous:
        raise PublishError(f"no earlier snapshot is kept to roll back to from {current}")
    target = previous[0][0]
    with transaction(con):
        switch_views(con, target)
        con.execute("update audit.snapshot set status = 'rolled_back' where snapshot_id = ?", [current])
        con.execute("update audit.snapshot set status = 'published' where snapshot_id = ?", [target])
    recorded = con.execute("select parquet_dir from audit.snapshot where snapshot_id = ?", [target]).fetchall()
    if recorded and recorded[0][0]:
        write_current_pointer(Path(recorded[0][0]).parent, target)
    return current, target


def _export_dir(snapshot: str, recorded: str | None, snapshots_dir: Path | None) -> Path | None:
    """Where a snapshot's Parquet export is: under this installation's snapshots folder when it is known
    (so a moved or copied data folder never deletes files in the place it came from), else as recorded."""
    if snapshots_dir is not None:
        return Path(snapshots_dir) / snapshot
    return Path(recorded) if recorded else None


def expire_snapshots(con: duckdb.DuckDBPyConnection, retention_days: int,
                     snapshots_dir: Path | None = None) -> list[str]:
    """Drop snapshots older than the retention period; the published one and the one before it stay."""
    keep = {r[0] for r in con.execute(
        "select snapshot_id from audit.snapshot where status = 'published' "
        "union all (select snapshot_id from audit.snapshot where status = 'superseded' "
        "order by published_at desc limit 1)"
    ).fetchall()}
    old = con.execute(
        "select snapshot_id, parquet_dir from audit.snapshot "
        "where status in ('superseded', 'rolled_back') "
        "and published_at < current_timestamp - to_days(cast(? as integer))",
        [retention_days],
    ).fetchall()
    expired = []
    for snapshot, parquet_dir in old:
        if snapshot in keep:
            continue
        con.execute(f"drop schema if exists {snapshot} cascade")
        export = _export_dir(snapshot, parquet_dir, snapshots_dir)
        if export is not None:
            shutil.rmtree(export, ignore_errors=True)
        con.execute("update audit.snapshot set status = 'expired' where snapshot_id = ?", [snapshot])
        expired.append(snapshot)
    return expired


def purge_snapshots(con: duckdb.DuckDBPyConnection, snapshot_ids: list[str], reason: str,
                    snapshots_dir: Path | None = None) -> list[str]:
    """Drop snapshots (schema and Parquet export) that must no longer exist, e.g. after an erasure.

    The published snapshot is never purged here: publish a new one first.
    """
    current = current_snapshot(con)
    purged = []
    for snapshot in sorted(set(snapshot_ids)):
        if snapshot == current:
            continue
        row = con.execute("select parquet_dir from audit.snapshot where snapshot_id = ?", [snapshot]).fetchall()
        con.execute(f"drop schema if exists {snapshot} cascade")
        export = _export_dir(snapshot, row[0][0] if row else None, snapshots_dir)
        if export is not None:
            shutil.rmtree(export, ignore_errors=True)
        con.execute("update audit.snapshot set status = 'purged', message = ? where snapshot_id = ?", [reason, snapshot])
        purged.append(snapshot)
    return purged
