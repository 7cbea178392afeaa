"""Forms the IG pages accept."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AlertReview(BaseModel):
    alert_id: int
    outcome: str = Field(min_length=3, max_length=1000)


class ConsentRecord(BaseModel):
    person_id: str = Field(max_length=40)
    service: str = Field(min_length=2, max_length=200)
    basis: str = Field(min_length=3, max_length=500)
