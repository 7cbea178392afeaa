"""The append-only, hash-chained audit of every search, view, break-glass, referral and login.

Each row carries the SHA-256 of the row before it and of itself, so an edit or deletion anywhere breaks
the chain from that row on (`verify_chain` says where). The database refuses updates and deletes too
(triggers, migrations/0001). Rows hold who, role, agency, purpose, when, what action, which fields a
search used (never the values searched for) and the ids returned.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from practitioner._store import audit_event, aware, now

GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    username: str
    role: str | None = None
    agency: str | None = None
    purpose: str | None = None


def _row_hash(prev_hash: str, row: dict) -> str:
    body = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()
            if k not in ("prev_hash", "row_hash")}
    if isinstance(body.get("at"), str):  # one textual form whatever the database hands back
        body["at"] = aware(dt.datetime.fromisoformat(body["at"])).astimezone(dt.timezone.utc).isoformat()
    payload = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


class AuditWriter:
    """Appends audit rows. The sequence number is the primary key, so two writers (two processes on one
    PostgreSQL) can never fork the chain: the loser of a race retries on the new head."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()

    def write(self, actor: Actor, action: str, *, person_ids: list[str] | None = None, fields: str | None = None,
              detail: str | None = None) -> int:
        for _attempt in range(50):
            # the losing insert aborts its transaction: leave the `begin()` block by the exception so it is rolled
            # back, then retry on the new head (continuing inside the block would try to commit an aborted one)
            try:
                with self._lock, self.engine.begin() as conn:
                    head = conn.execute(sa.select(audit_event.c.seq, audit_event.c.row_hash)
                                        .order_by(audit_event.c.seq.desc()).limit(1)).first()
                    seq, prev = (head.seq + 1, head.row_hash) if head else (1, GENESIS)
                    stamp = now()
                    at = stamp.replace(microsecond=(stamp.microsecond // 1000) * 1000)
                    row = {"seq": seq, "at": at, "username": actor.username, "role": actor.role,
                           "agency": actor.agency, "purpose": actor.purpose, "action": action, "fields": fields,
                           "person_ids": [str(p) for p in (person_ids or [])], "detail": detail}
                    row["prev_hash"] = prev
                    row["row_hash"] = _row_hash(prev, row)
                    conn.execute(audit_event.insert().values(**row))
                return seq
            except IntegrityError:
                continue
            except OperationalError as exc:
                # SQLite: a transaction that read the head before another process committed cannot upgrade to a
                # write ("database is locked" at once, whatever the busy timeout): read the new head and retry
                if "locked" not in str(exc.orig).lower():
                    raise
                time.sleep(0.01 * (1 + _attempt % 5))
                continue
        raise RuntimeError("audit: could not append after 50 attempts")


@dataclass
class ChainCheck:
    ok: bool
    rows: int
    first_bad_seq: int | None = None


def verify_chain(engine: Engine) -> ChainCheck:
    prev = GENESIS
    count = 0
    with engine.connect() as conn:
        for row in conn.execute(sa.select(audit_event).order_by(audit_event.c.seq)).mappings():
            count += 1
            values = dict(row)
            values["at"] = aware(values["at"]).astimezone(dt.timezone.utc)
            if values["prev_hash"] != prev or _row_hash(prev, values) != values["row_hash"]:
                return ChainCheck(False, count, values["seq"])
            prev = values["row_hash"]
    return ChainCheck(True, count)


def recent_events(engine: Engine, *, limit: int = 200, username: str | None = None, action: str | None = None) -> list[dict]:
    query = sa.select(audit_event).order_by(audit_event.c.seq.desc()).limit(limit)
    if username:
        query = query.where(audit_event.c.username == username)
    if action:
        query = query.where(audit_event.c.action == action)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def export_csv(engine: Engine) -> str:
    """The whole audit as CSV, hashes included, so a reviewer can re-check the chain elsewhere."""
    out = io.StringIO()
    columns = [c.name for c in audit_event.columns]
    writer = csv.writer(out)
    writer.writerow(columns)
    with engine.connect() as conn:
        for row in conn.execute(sa.select(audit_event).order_by(audit_event.c.seq)).mappings():
            writer.writerow([json.dumps(row[c]) if c == "person_ids" else row[c] for c in columns])
    return out.getvalue()
