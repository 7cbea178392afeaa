"""Programme rules as YAML: one file per programme and version, validated with errors that name the file, the key
and the problem (never a data value — rules hold none).

A programme has criteria; a criterion is met by a household when any of its conditions holds for a member; a
condition is a set of typed events (sources/canonical.EVENT_TYPES) within a look-back window ending at the
snapshot date, optionally for members of an age, with event values, totals, counts or detail text. The household
rule says how many criteria (and which) make a household qualify. See programmes/README.md for every key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sources import canonical

RULES_DIR = Path(__file__).parent / "rules"
UNIT_COSTS = Path(__file__).parent / "unit_costs.yaml"
_NAME = r"^[a-z][a-z0-9_]*$"


class RuleError(ValueError):
    """A programme or unit-cost file is wrong; the message names the file, the key and the problem."""

    message_is_safe = True  # names files and keys only (warehouse.safe_error)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonFilter(_Strict):
    """Which members' events count: age in whole years at the snapshot date."""

    min_age: int | None = Field(default=None, ge=0, le=130)
    max_age: int | None = Field(default=None, ge=0, le=130)

    @model_validator(mode="after")
    def _order(self) -> "PersonFilter":
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age is greater than max_age")
        return self


class Condition(_Strict):
    events: list[str] = Field(min_length=1)
    within_months: int | None = Field(default=None, ge=1, le=120, description="default: the programme's look_back")
    person: PersonFilter = PersonFilter()
    value_at_least: float | None = None
    value_at_most: float | None = None
    total_value_at_least: float | None = Field(default=None, description="sum of the events' values, per member")
    count_at_least: int = Field(default=1, ge=1, description="events per member in the window")
    detail_matches: str | None = Field(default=None, description="a regular expression on the event detail")
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "Condition":
        unknown = sorted(set(self.events) - set(canonical.EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event type(s) {unknown}; known: {list(canonical.EVENT_TYPES)}")
        if self.detail_matches is not None:
            try:
                re.compile(self.detail_matches)
            except re.error as exc:
                raise ValueError(f"detail_matches is not a valid regular expression ({exc.msg})") from None
        if self.value_at_least is not None and self.value_at_most is not None \
                and self.value_at_least > self.value_at_most:
            raise ValueError("value_at_least is greater than value_at_most")
        return self


class Criterion(_Strict):
    title: str
    source_document: str = Field(min_length=3, description="the published document the criterion comes from")
    national: bool = False
    any_of: list[Condition] = Field(min_length=1)


class Alternative(_Strict):
    at_least: int = Field(ge=1)
    of: list[str] = Field(min_length=1)
    plus_one_of: list[str] = Field(default_factory=list, description="and at least one of these as well")
    note: str | None = None


class HouseholdRule(_Strict):
    any_of: list[Alternative] = Field(min_length=1)


class HouseholdRequires(_Strict):
    dependent_child_max_age: int | None = Field(default=None, ge=0, le=25)


class Programme(_Strict):
    programme: str = Field(pattern=_NAME)
    title: str
    version: str
    source_document: str = Field(min_length=3)
    look_back_months: int = Field(default=12, ge=1, le=120)
    criteria: dict[str, Criterion] = Field(min_length=1)
    household_rule: HouseholdRule
    household_requires: HouseholdRequires = HouseholdRequires()
    not_evaluated: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> "Programme":
        for name in self.criteria:
            if not re.match(_NAME, name):
                raise ValueError(f"criteria.{name}: a criterion name is lower case letters, digits and _")
        for i, alt in enumerate(self.household_rule.any_of):
            for key in ("of", "plus_one_of"):
                unknown = [c for c in getattr(alt, key) if c not in self.criteria]
                if unknown:
                    raise ValueError(f"household_rule.any_of.{i}.{key}: unknown criteria {unknown}; "
                                     f"defined: {sorted(self.criteria)}")
            if alt.at_least > len(alt.of):
                raise ValueError(f"household_rule.any_of.{i}.at_least: {alt.at_least} is more than the "
                                 f"{len(alt.of)} criteria listed in `of`")
        return self

    def look_back(self, condition: Condition) -> int:
        return condition.within_months or self.look_back_months


def _location(error: dict) -> str:
    return ".".join(str(p) for p in error["loc"]) or "(top level)"


def _problem(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key missing"
    return message


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RuleError(f"{path}: not valid YAML{where}") from None
    except OSError as exc:
        raise RuleError(f"{path}: cannot be read ({type(exc).__name__})") from None


def load_programme(path: Path) -> Programme:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise RuleError(f"{path}: (top level): a programme file is a mapping of keys")
    try:
        programme = Programme.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e)}: {_problem(e)}" for e in exc.errors())
        raise RuleError(f"{path}: {problems}") from None
    if programme.programme != path.stem:
        raise RuleError(f"{path}: programme: must equal the file name ({path.stem!r}), one file per programme "
                        "and version")
    return programme


def load_programmes(folder: Path | None = None) -> dict[str, Programme]:
    """Every programme file in a folder (default: the shipped rules), validated; RuleError names the first bad file."""
    folder = Path(folder or RULES_DIR)
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not files:
        raise RuleError(f"{folder}: no programme files (*.yaml)")
    return {p.programme: p for p in (load_programme(f) for f in files)}


# ------------------------------------------------------------------------------------------------ unit costs
class UnitCost(_Strict):
    """One unit cost: what it prices, per what, how much, in which year's prices, and where the figure comes from.
    A row without a published figure is a placeholder (cost null) for the council to fill."""

    key: str = Field(pattern=_NAME)
    title: str
    event_type: str | None = None
    detail_matches: str | None = None
    agency: str | None = None
    unit: Literal["per_event", "per_week_open", "per_year_open"]
    cost: float | None = Field(default=None, ge=0)
    price_year: int | None = Field(default=None, ge=1990, le=2100)
    source: str = Field(min_length=3)
    url: str | None = None
    placeholder: bool = False
    verified: str | None = None  # where and when the figure was checked against its published source, and what it says
    note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "UnitCost":
        if (self.event_type is None) == (self.agency is None):
            raise ValueError("name exactly one of event_type (priced per event) or agency (priced per involvement)")
        if self.event_type is not None and self.event_type not in canonical.EVENT_TYPES:
            raise ValueError(f"unknown event type {self.event_type!r}; known: {list(canonical.EVENT_TYPES)}")
        if self.event_type is not None and self.unit != "per_event":
            raise ValueError("an event is priced per_event")
        if self.agency is not None and self.unit == "per_event":
            raise ValueError("an involvement is priced per_week_open or per_year_open")
        if self.placeholder and self.cost is not None:
            raise ValueError("a placeholder has no cost: fill the cost and set placeholder: false")
        if not self.placeholder and (self.cost is None or self.price_year is None):
            raise ValueError("a published figure needs cost and price_year (or mark the row placeholder: true)")
        if not self.placeholder and not (self.url and self.verified):
            raise ValueError("a published figure needs url and verified (where it was checked and what the source "
                             "says); a figure nobody could check is a placeholder")
        return self


class PriceIndex(_Strict):
    """An index of prices by year (e.g. HM Treasury GDP deflators) for uplifting costs to one price year."""

    name: str
    source: str
    placeholder: bool = False
    values: dict[int, float] = Field(default_factory=dict)


class UnitCosts(_Strict):
    currency: Literal["GBP"] = "GBP"
    statement: str = Field(min_length=10, description="what the figures are (and are not)")
    costs: list[UnitCost] = Field(min_length=1)
    price_index: PriceIndex

    @model_validator(mode="after")
    def _unique(self) -> "UnitCosts":
        keys = [c.key for c in self.costs]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise ValueError(f"duplicate cost key(s) {duplicated}")
        return self


def load_unit_costs(path: Path | None = None) -> UnitCosts:
    path = Path(path or UNIT_COSTS)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise RuleError(f"{path}: (top level): a unit-cost file is a mapping of keys")
    try:
        return UnitCosts.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e)}: {_problem(e)}" for e in exc.errors())
        raise RuleError(f"{path}: {problems}") from None
