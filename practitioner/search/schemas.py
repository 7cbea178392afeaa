"""What a search takes and what it returns: only enough to choose the right person."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SearchQuery(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    date_of_birth: str | None = Field(default=None, max_length=20)
    postcode: str | None = Field(default=None, max_length=10)
    address: str | None = Field(default=None, max_length=200)
    identifier: str | None = Field(default=None, max_length=40)


class SearchResult(BaseModel):
    person_id: str
    name: str
    birth_year: int | None
    district: str | None  # the postcode's outward code, not the address
    agency_count: int | None
    shielded: bool = False
    provisional: bool = False
