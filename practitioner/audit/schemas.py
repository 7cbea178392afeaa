"""Shapes the audit pages and export use."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class AuditRow(BaseModel):
    seq: int
    at: dt.datetime
    username: str
    role: str | None
    agency: str | None
    purpose: str | None
    action: str
    fields: str | None
    person_ids: list[str]
    detail: str | None
    row_hash: str
