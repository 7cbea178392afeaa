"""What a person page shows: the index entries, nothing from the case file."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class Involvement(BaseModel):
    agency: str
    service: str | None
    worker_name: str | None
    worker_role: str | None
    worker_phone: str | None
    worker_email: str | None
    start_date: dt.date | None
    end_date: dt.date | None
    is_open: bool


class HouseholdMember(BaseModel):
    person_id: str
    name: str
    birth_year: int | None  # no address: it is the person's, and theirs is not shown twice
    household_role: str | None
    involvements: list[Involvement]
    withheld_agencies: int


class PersonView(BaseModel):
    person_id: str
    snapshot_id: str
    name: str
    date_of_birth: dt.date | None
    sex: str | None
    address: str | None
    postcode: str | None
    provisional: bool
    involvements: list[Involvement]
    withheld_agencies: int
    household: list[HouseholdMember]
    access: str


class BreakGlass(BaseModel):
    reason: str = Field(min_length=10, max_length=1000)
