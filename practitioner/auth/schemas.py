"""Forms of the sign-in and purpose pages."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LoginForm(BaseModel):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1000)


class PurposeForm(BaseModel):
    purpose: str = Field(min_length=1, max_length=200)
    detail: str | None = Field(default=None, max_length=500)
