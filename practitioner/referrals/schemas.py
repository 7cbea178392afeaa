"""A referral: one row in a source contract's shape (its own column names), and what linking decided."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReferralIn(BaseModel):
    source: str = Field(min_length=1, max_length=64)
    row: dict[str, str | int | float | None]


class ReferralOut(BaseModel):
    referral_id: int
    source: str
    record_id: str
    person_id: str
    provisional: bool
    match_probability: float | None
    seconds: float
    already_known: bool
