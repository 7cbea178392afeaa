"""Information governance: alerts (table + webhook/email), the review queue, consent, the IG overview.

An alert carries ids only (alert id, kind, user name, person id) outward — never the stated reason or
any personal data — so the webhook and email are safe to route through ordinary channels; the reason is
read on the IG page.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
from email.message import EmailMessage

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from practitioner._context import ServiceRules
from practitioner._store import alert, audit_event, aware, consent, now

log = logging.getLogger("familylink.practitioner")


def _deliver(rules: ServiceRules, payload: dict) -> str:
    outcomes = []
    if rules.alert_webhook:
        try:
            response = httpx.post(rules.alert_webhook, json=payload, timeout=3)
            outcomes.append(f"webhook {response.status_code}")
        except httpx.HTTPError as exc:
            outcomes.append(f"webhook failed ({exc.__class__.__name__})")
    if rules.alert_email and rules.smtp_host:
        message = EmailMessage()
        message["Subject"] = f"familylink alert #{payload['alert_id']}: {payload['kind']}"
        message["From"] = "familylink@localhost"
        message["To"] = rules.alert_email
        message.set_content("An alert needs review on the IG page.\n\n" + json.dumps(payload, indent=2))
        try:
            with smtplib.SMTP(rules.smtp_host, rules.smtp_port, timeout=5) as smtp:
                smtp.send_message(message)
            outcomes.append("email sent")
        except (OSError, smtplib.SMTPException) as exc:
            outcomes.append(f"email failed ({exc.__class__.__name__})")
    return "; ".join(outcomes) or "recorded (no webhook or email configured)"


def raise_alert(engine: Engine, rules: ServiceRules, *, kind: str, username: str, person_id: str | None = None,
                reason: str | None = None, audit_seq: int | None = None) -> int:
    stamp = now()
    with engine.begin() as conn:
        alert_id = conn.execute(alert.insert().values(
            at=stamp, kind=kind, username=username, person_id=person_id, reason=reason, audit_seq=audit_seq,
            status="open")).inserted_primary_key[0]
    payload = {"alert_id": alert_id, "kind": kind, "username": username, "person_id": person_id,
               "audit_seq": audit_seq, "at": stamp.isoformat()}
    delivery = _deliver(rules, payload)
    with engine.begin() as conn:
        conn.execute(alert.update().where(alert.c.id == alert_id).values(delivery=delivery))
    log.warning("alert id=%s kind=%s user=%s person_id=%s", alert_id, kind, username, person_id)
    return int(alert_id)


def break_glass_granted(engine: Engine, username: str, person_id: str, *, since: dt.datetime) -> bool:
    with engine.connect() as conn:
        row = conn.execute(sa.select(alert.c.id).where(
            alert.c.kind == "break_glass", alert.c.username == username, alert.c.person_id == person_id,
            alert.c.at >= since).limit(1)).first()
    return row is not None


def review_alert(engine: Engine, alert_id: int, *, reviewer: str, outcome: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(alert.update().where(alert.c.id == alert_id, alert.c.status == "open").values(
            status="reviewed", reviewed_by=reviewer, reviewed_at=now(), outcome=outcome))
        if done.rowcount == 0:
            raise KeyError(f"no open alert {alert_id}")


def alerts(engine: Engine, *, status: str | None = None, limit: int = 200) -> list[dict]:
    query = sa.select(alert).order_by(alert.c.id.desc()).limit(limit)
    if status:
        query = query.where(alert.c.status == status)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def record_consent(engine: Engine, *, person_id: str, service: str, recorded_by: str, basis: str) -> None:
    with engine.begin() as conn:
        conn.execute(consent.insert().values(person_id=person_id, service=service, recorded_by=recorded_by,
                                             recorded_at=now(), basis=basis))


def consented_services(engine: Engine, person_ids: list[str]) -> dict[str, set[str]]:
    if not person_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(consent.c.person_id, consent.c.service)
                            .where(consent.c.person_id.in_(person_ids))).all()
    out: dict[str, set[str]] = {}
    for person_id, service in rows:
        out.setdefault(person_id, set()).add(service.lower())
    return out


def overview(engine: Engine, rules: ServiceRules, *, days: int = 30) -> dict:
    """Views and searches per user, break-glass events, unusual daily volumes."""
    since = now() - dt.timedelta(days=days)
    with engine.connect() as conn:
        per_user = conn.execute(
            sa.select(audit_event.c.username, audit_event.c.action, sa.func.count().label("n"))
            .where(audit_event.c.at >= since, audit_event.c.action.in_(["search", "view", "break_glass", "referral"]))
            .group_by(audit_event.c.username, audit_event.c.action)).all()
        daily = conn.execute(
            sa.select(audit_event.c.username, audit_event.c.at).where(audit_event.c.at >= since,
                                                                       audit_event.c.action == "view")).all()
    users: dict[str, dict[str, int]] = {}
    for username, action, n in per_user:
        users.setdefault(username, {})[action] = n
    per_day: dict[tuple[str, dt.date], int] = {}
    for username, at in daily:
        key = (username, aware(at).date())
        per_day[key] = per_day.get(key, 0) + 1
    unusual = sorted(({"username": u, "day": d, "views": n} for (u, d), n in per_day.items()
                      if n > rules.unusual_views_per_day), key=lambda r: (-r["views"], r["username"]))
    return {"users": dict(sorted(users.items())), "unusual": unusual, "days": days}
