"""Real-time linking of a referral, and its reconciliation by the next nightly run.

A referral arrives as one row in a source contract's shape (the columns that agency's extract has). It
is mapped and standardised by the same code as ingest (`sources.apply_contract`,
`sources.standardise_person_records`), scored against every record of the published snapshot with the
approved Splink model (`predict_between`, the model's own blocking rules, term frequencies from the
snapshot), and assigned to the best-matching person at or above the nightly match threshold, or to a new
provisional person "R<n>". It is added to the in-memory index at once, so it is searchable straight away.

The record will arrive in that agency's next extract under the same record id. When the nightly run
publishes a snapshot holding it, `reconcile` compares: an existing person kept by the nightly → `kept`;
moved to another person → `moved` (recorded with both ids); a provisional person confirmed as a new
nightly person → `confirmed`, joined to a person who already existed → `merged`; provisional persons
whose records the nightly separates → `split`. A provisional id keeps resolving to its nightly person.

Only the saved model JSON and the approved-version pointer are read from linkage_models' folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from practitioner._index import (IDENTIFIER_SQL, NAME_KEYS, PractitionerIndex, model_input_sql,
                                 name_key_with_display_sql)
from practitioner._store import now, referral
from practitioner.referrals._scoring import RealTimeLinker, equality_columns  # noqa: F401  (re-exported)
from sources import SourceContract, apply_contract, load_contracts, standardise_person_records

log = logging.getLogger("familylink.practitioner")


class ReferralError(ValueError):
    """A referral that cannot be linked; the message names fields, never values."""


@dataclass
class LinkOutcome:
    referral_id: int
    source: str
    record_id: str
    person_id: str
    provisional: bool
    match_probability: float | None
    seconds: float
    already_known: bool = False


def approved_model_path(models_dir: Path) -> Path:
    pointer = Path(models_dir) / "person" / "approved.json"
    if not pointer.exists():
        raise ReferralError("no approved person model: real-time linking needs `familylink promote-model`")
    version = json.loads(pointer.read_text(encoding="utf-8"))["version"]
    path = Path(models_dir) / "person" / version / "model.duckdb.json"
    if not path.exists():
        raise ReferralError(f"approved model {version} has no model.duckdb.json")
    return path


_CONTRACTS: dict[tuple[str, float], dict[str, SourceContract]] = {}


def contracts(contracts_dir: Path) -> dict[str, SourceContract]:
    """The source contracts, parsed once per version of the folder, not per referral or page (parsing the YAML
    on every referral page was a tenth of the service's time under load)."""
    folder = Path(contracts_dir)
    key = (str(folder), max((p.stat().st_mtime for p in folder.glob("*.yaml")), default=0.0))
    if key not in _CONTRACTS:
        _CONTRACTS[key] = load_contracts(folder)
    return _CONTRACTS[key]


def _contract(contracts_dir: Path, source: str) -> SourceContract:
    contracts_by_source = contracts(contracts_dir)
    if source not in contracts_by_source:
        raise ReferralError(f"unknown source {source!r}; known: {sorted(contracts_by_source)}")
    return contracts_by_source[source]


def contract_columns(contract: SourceContract) -> list[str]:
    return list(contract.columns or contract.required_source_columns())


def standardise_referral(contract: SourceContract, row: dict[str, object], today: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(subject person record, involvements) exactly as ingest would stage this row."""
    columns = contract_columns(contract)
    unknown = sorted(set(row) - set(columns))
    if unknown:
        raise ReferralError(f"columns not in the {contract.source} contract: {unknown}")
    if not str(row.get(contract.record_key) or "").strip():
        raise ReferralError(f"the record key column {contract.record_key!r} is empty")
    frame = pl.DataFrame({c: [None if row.get(c) in (None, "") else str(row.get(c))] for c in columns},
                         schema={c: pl.String for c in columns}).with_columns(pl.lit(1, pl.Int64).alias("_row_number"))
    digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
    mapped = apply_contract(frame, contract, file_sha256=f"referral:{digest}", extract_date=today)
    people = standardise_person_records(mapped.person_record, as_of=today)
    subject = people.filter(pl.col("record_role") == "subject")
    if subject.height != 1:
        raise ReferralError("the referral row did not give exactly one subject record")
    declared = mapped.person_identifier.filter(pl.col("record_id") == subject["record_id"][0])
    identifiers = [{"scheme": r["scheme"], "scope": r["scope"], "value": r["value"]} for r in declared.iter_rows(named=True)]
    subject = subject.with_columns(pl.Series("identifiers", [identifiers or None], dtype=pl.List(
        pl.Struct({"scheme": pl.String, "scope": pl.String, "value": pl.String}))))
    return subject, mapped.involvement


def _jsonable(frame: pl.DataFrame) -> list[dict]:
    return json.loads(frame.write_json())


def _overlay(index: PractitionerIndex, person_id: str, provisional: bool, subject: pl.DataFrame,
             involvements: pl.DataFrame, today: dt.date, model_input: str | None = None) -> None:
    """Add one linked referral to the in-memory index (caller holds the overlay lock). `model_input`: a table
    already holding the referral's model input (the linker's `referral_new`), not computed again."""
    con = index.con
    record = subject.with_columns(pl.lit(person_id).alias("person_id"),
                                  pl.col("confidential").fill_null(False))
    if "identifiers" not in record.columns:  # a pending referral re-added from the store after a switch
        record = record.with_columns(pl.lit(None, pl.List(pl.Struct(
            {"scheme": pl.String, "scope": pl.String, "value": pl.String}))).alias("identifiers"))
    con.register("_referral_record", record)
    try:
        con.execute("insert into ov_record by name select person_id, source, record_id, record_role, first_name_std, "
                    "first_name_formal, middle_names_std, last_name_std, sex, date_of_birth, postcode, uprn, "
                    "nhs_number, ni_number, upn, pnc_id, crn, phone, email, address_std, address_tokens, tenancy_ref, "
                    "local_id, identifiers, confidential from _referral_record")
        if index.links:  # a process that links scores later referrals against this one
            if model_input is None:
                con.execute(f"create or replace temp table _referral_input as "
                            f"{model_input_sql('_referral_record', index.schemes)}")
            con.execute(f"insert into ov_model_input by name select * replace (? as person_id) "
                        f"from {model_input or '_referral_input'}", [person_id])
            if index.linker is not None:
                index.linker.add_keys(index, model_input or "_referral_input")
        con.execute(IDENTIFIER_SQL.format(input="_referral_record", target="ov_identifier"))
        if provisional:
            con.execute("insert into ov_person by name select person_id, trim(first_name) as first_name, "
                        "trim(middle_names) as middle_names, trim(last_name) as last_name, date_of_birth, sex, "
                        "address_text as address, postcode, cast(null as varchar) as household_id, "
                        "cast(null as varchar) as household_role, 1 as agency_count, confidential as shielded, "
                        "true as provisional from _referral_record")
        elif bool(record["confidential"][0]):
            con.execute("insert into ov_shielded values (?)", [person_id])
            index.shielded_extra.add(person_id)
        # after the person row: a provisional person's name keys carry its own display columns
        con.execute(f"insert into ov_name_key by name "
                    f"{name_key_with_display_sql('_referral_record', 'person_base', person_id)}", [person_id])
        index.overlay_ids.add(person_id)
        for row in con.execute(f"select {', '.join(NAME_KEYS)} from ov_name_key where person_id = ?",
                               [person_id]).fetchall():
            index.overlay_keys.update(zip(NAME_KEYS, row))
        index.overlay_keys.update(("identifier", v) for (v,) in con.execute(
            "select value from ov_identifier where person_id = ?", [person_id]).fetchall())
    finally:
        con.unregister("_referral_record")
    index.overlay_rows += 1
    if involvements.height:
        rows = involvements.with_columns(
            pl.lit(person_id).alias("person_id"),
            (pl.col("end_date").is_null() | (pl.col("end_date") >= pl.lit(today))).alias("is_open"))
        con.register("_referral_involvement", rows)
        try:
            con.execute("insert into ov_involvement by name select person_id, agency, service, worker_name, worker_role, "
                        "worker_phone, worker_email, start_date, end_date, is_open, source, record_id "
                        "from _referral_involvement")
        finally:
            con.unregister("_referral_involvement")


def prepare_referral(contracts_dir: Path, source: str, row: dict[str, object],
                     today: dt.date | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Map and standardise a posted row (the ingest code): done by the web worker that received it, in
    parallel with other workers, so the one linker process spends its time only on what must be serial."""
    return standardise_referral(_contract(contracts_dir, source), row, today or dt.date.today())


def frames_to_bytes(subject: pl.DataFrame, involvements: pl.DataFrame) -> tuple[bytes, bytes]:
    """Arrow IPC: the standardised frames cross to the linker process with their exact types."""
    return subject.write_ipc(None).getvalue(), involvements.write_ipc(None).getvalue()


def frames_from_bytes(subject: bytes, involvements: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    return pl.read_ipc(subject), pl.read_ipc(involvements)


def _known(index: PractitionerIndex, source: str, record_id: str) -> str | None:
    """The person already holding this record (in the snapshot or the overlay): the file's table through its
    index, the overlay's separately."""
    rows = index.con.execute("select person_id from snap.record where source = ? and record_id = ? union all "
                             "select person_id from ov_record where source = ? and record_id = ?",
                             [source, record_id, source, record_id]).fetchall()
    return rows[0][0] if rows else None


def link_referral(engine: Engine, index: PractitionerIndex, *, contracts_dir: Path, models_dir: Path,
                  source: str, row: dict[str, object] | None = None, received_by: str, threshold: float,
                  today: dt.date | None = None,
                  prepared: tuple[pl.DataFrame, pl.DataFrame] | None = None, commit_lock=None) -> LinkOutcome:
    """Link one referral: `row` as posted, or `prepared` = `prepare_referral(...)` already done elsewhere.

    Several linker processes may link at once (`commit_lock` is then shared by them): each scores against its
    own overlay without the lock, then under the lock takes in the referrals the others committed meanwhile,
    scores again if there were any (two referrals for the same new person: the second joins the first's
    provisional person), decides and commits — so decisions are made in the store's order, each seeing every
    earlier one."""
    started = time.perf_counter()
    today = today or dt.date.today()
    subject, involvements = prepared if prepared is not None else prepare_referral(contracts_dir, source, row, today)
    record_id = subject["record_id"][0]
    con = index.con
    with index.overlay_lock:
        known = _known(index, source, record_id)
        if known is not None:  # already in the snapshot or already referred: nothing new to link
            return LinkOutcome(0, source, record_id, known, known.startswith("R"), None,
                               time.perf_counter() - started, already_known=True)
        if index.linker is None:
            index.linker = RealTimeLinker(index, approved_model_path(models_dir))
        linker: RealTimeLinker = index.linker
        con.register("_referral_source", subject.with_columns(pl.lit(None, pl.String).alias("person_id")))
        try:
            con.execute("delete from referral_new")
            con.execute(f"insert into referral_new by name {model_input_sql('_referral_source', index.schemes)}")
        finally:
            con.unregister("_referral_source")
        _sync_locked(engine, index, today)  # what other linker processes committed so far, before scoring
        scores = linker.score(index)
        with commit_lock if commit_lock is not None else contextlib.nullcontext():
            if _sync_locked(engine, index, today):  # and what they committed while this one was scored
                known = _known(index, source, record_id)
                if known is not None:
                    return LinkOutcome(0, source, record_id, known, known.startswith("R"), None,
                                       time.perf_counter() - started, already_known=True)
                if linker.has_new_candidates(con):  # one of them shares a blocking key with this referral
                    scores = linker.score(index)
            best = scores[0] if scores else None
            provisional = best is None or best[1] < threshold or best[0].startswith("R")
            stored = {"subject": _jsonable(subject)[0], "involvements": _jsonable(involvements)}
            with engine.begin() as conn:
                referral_id = conn.execute(referral.insert().values(
                    received_at=now(), received_by=received_by, source=source, record_id=record_id, person_id="",
                    provisional=provisional, match_probability=best[1] if best else None,
                    snapshot_id=index.snapshot_id, record=stored, status="linked")).inserted_primary_key[0]
                person_id = best[0] if best is not None and best[1] >= threshold else f"R{referral_id}"
                conn.execute(referral.update().where(referral.c.id == referral_id).values(person_id=person_id))
        _overlay(index, person_id, provisional, subject, involvements, today, model_input="referral_new")
        con.execute("delete from referral_new")
        index.applied = max(index.applied, int(referral_id))
    seconds = time.perf_counter() - started
    log.info("referral id=%s source=%s linked provisional=%s in %.3f s", referral_id, source, provisional, seconds)
    return LinkOutcome(int(referral_id), source, record_id, person_id, provisional, best[1] if best else None, seconds)


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    return pl.DataFrame([
        (frame[c] if c in frame.columns else pl.Series(c, [None] * len(rows))).cast(
            pl.String if dtype == pl.Date else dtype, strict=False).alias(c)
        for c, dtype in schema.items()
    ]).with_columns([pl.col(c).str.to_date(strict=False) for c, d in schema.items() if d == pl.Date])


def reconcile(engine: Engine, old: PractitionerIndex | None, new: PractitionerIndex) -> dict[str, int]:
    """Settle linked referrals against a newly published snapshot; the unsettled ones stay `linked`, and
    `sync_overlay` adds them to the new index's overlay (in every process) under their ids."""
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        pending = [dict(r) for r in conn.execute(sa.select(referral).where(referral.c.status == "linked")).mappings()]
    nightly = {}
    if pending:
        keys = pl.DataFrame({"source": [r["source"] for r in pending], "record_id": [r["record_id"] for r in pending]})
        new.con.register("_pending", keys)
        nightly = {(s, r): p for s, r, p in new.con.execute(
            "select k.source, k.record_id, r.person_id from _pending k inner join record r using (source, record_id)"
        ).fetchall()}
        new.con.unregister("_pending")
    previously_known = set()
    if old is not None and nightly:
        ids = sorted(set(nightly.values()))
        marks = ", ".join("?" for _ in ids)
        previously_known = {r[0] for r in old.con.execute(
            f"select person_id from person where person_id in ({marks}) and not provisional", ids).fetchall()}
    by_provisional: dict[str, set[str]] = {}
    for r in pending:
        if r["provisional"] and (r["source"], r["record_id"]) in nightly:
            by_provisional.setdefault(r["person_id"], set()).add(nightly[(r["source"], r["record_id"])])
    stamp = now()
    for r in pending:
        target = nightly.get((r["source"], r["record_id"]))
        if target is None:
            # not in this extract yet: `sync_overlay` keeps it in the new index's overlay under the same id
            counts["pending"] = counts.get("pending", 0) + 1
            continue
        if not r["provisional"]:
            outcome = "kept" if target == r["person_id"] else "moved"
        elif len(by_provisional.get(r["person_id"], ())) > 1:
            outcome = "split"
        elif target in previously_known:
            outcome = "merged"
        else:
            outcome = "confirmed"
        counts[outcome] = counts.get(outcome, 0) + 1
        with engine.begin() as conn:
            # the published snapshot now holds the record: the store keeps ids only (erasure in the warehouse
            # then leaves no copy here)
            conn.execute(referral.update().where(referral.c.id == r["id"]).values(
                status="reconciled", nightly_person_id=target, outcome=outcome, reconciled_snapshot=new.snapshot_id,
                reconciled_at=stamp, record={}))
    if pending:
        log.info("referrals reconciled against %s: %s", new.snapshot_id, json.dumps(counts, sort_keys=True))
    return counts


def sync_overlay(engine: Engine, index: PractitionerIndex, today: dt.date | None = None) -> int:
    """Add to this process's overlay the referrals linked (by a linker process or another worker's request)
    since it last looked: one indexed query on the store when nothing is new. Returns how many were added."""
    with index.overlay_lock:
        return _sync_locked(engine, index, today)


def _sync_locked(engine: Engine, index: PractitionerIndex, today: dt.date | None = None) -> int:
    from sources import canonical

    with engine.connect() as conn:
        rows = conn.execute(sa.select(referral.c.id, referral.c.person_id, referral.c.provisional, referral.c.record)
                            .where(referral.c.id > index.applied, referral.c.status == "linked")
                            .order_by(referral.c.id)).all()
    today = today or dt.date.today()
    added = 0
    for referral_id, person_id, provisional, record in rows:  # after index.applied, in order, under overlay_lock
        subject = _frame([record["subject"]], canonical.PERSON_RECORD)
        involvements = _frame(record["involvements"], canonical.INVOLVEMENT)
        _overlay(index, person_id, bool(provisional), subject, involvements, today)
        index.applied = referral_id
        added += 1
    return added


def resolve_person_id(engine: Engine, person_id: str) -> str:
    """A provisional id the nightly has reconciled resolves to the nightly person (the id keeps working)."""
    if not person_id.startswith("R"):
        return person_id
    with engine.connect() as conn:
        row = conn.execute(sa.select(referral.c.nightly_person_id).where(
            referral.c.person_id == person_id, referral.c.status == "reconciled").order_by(referral.c.id)).first()
    return row[0] if row and row[0] else person_id


def referrals_list(engine: Engine, limit: int = 100) -> list[dict]:
    with engine.connect() as conn:
        return [{k: v for k, v in dict(r).items() if k != "record"} for r in conn.execute(
            sa.select(referral).order_by(referral.c.id.desc()).limit(limit)).mappings()]
