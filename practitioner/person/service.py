"""The person page = the index, not the case file.

Shown: the person's name, date of birth and own address; which agencies and services are involved, the
named worker and how to contact them, since when, and whether open. Household members and their
involvements only when the role covers households. Never events, case notes or other people's addresses.

Rules, in order:
1. A shielded person: nothing beyond "contact is brokered" (break-glass does not lift shielding).
2. A legitimate relationship (the viewer's agency, or team, is involved with the person) or a
   break-glass granted in this session; otherwise the page is refused and break-glass offered.
3. Involvements of agencies outside the role's sharing agreements are withheld (and counted), unless the
   viewer broke glass for this person.
4. Sensitive services (configurable) are hidden unless consent is recorded — except to their own agency.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from practitioner._index import PractitionerIndex
from practitioner.auth.service import Principal
from practitioner.ig.service import break_glass_granted, consented_services
from practitioner.person.schemas import Involvement, PersonView, HouseholdMember


class PersonNotFound(LookupError):
    pass


@dataclass
class Access:
    allowed: bool
    reason: str  # relationship | break_glass | none | shielded
    broke_glass: bool = False


def _rows(index: PractitionerIndex, sql: str, params: list) -> list[dict]:
    with index.cursor() as cur:
        result = cur.execute(sql, params)
        names = [d[0] for d in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]


def get_person(index: PractitionerIndex, person_id: str) -> dict:
    rows = _rows(index, f"select * from {index.rel('person', touched=index.touches([person_id]))} where person_id = ?",
                 [person_id])
    if not rows:
        raise PersonNotFound(person_id)
    rows[0]["shielded"] = index.is_shielded(person_id, rows[0]["shielded"])
    return rows[0]


def involvements_of(index: PractitionerIndex, person_ids: list[str]) -> list[dict]:
    if not person_ids:
        return []
    marks = ", ".join("?" for _ in person_ids)
    return _rows(index, f"select * from {index.rel('involvement', touched=index.touches(person_ids))} "
                        f"where person_id in ({marks}) "
                        "order by person_id, is_open desc, start_date desc nulls last, agency, service", person_ids)


def has_relationship(principal: Principal, involvements: list[dict]) -> bool:
    """Legitimate relationship: the viewer's own agency is involved, or their team is the service involved."""
    team = (principal.team or "").lower()
    return any(inv["agency"] == principal.agency or (team and (inv["service"] or "").lower() == team)
               for inv in involvements)


def check_access(engine: Engine, principal: Principal, person: dict, involvements: list[dict], *,
                 max_hours: int) -> Access:
    if person["shielded"]:
        return Access(False, "shielded")
    if has_relationship(principal, involvements):
        return Access(True, "relationship")
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=max_hours)
    if break_glass_granted(engine, principal.username, person["person_id"], since=since):
        return Access(True, "break_glass", broke_glass=True)
    return Access(False, "none")


def is_sensitive(service: str | None, sensitive: list[str]) -> bool:
    text = (service or "").lower()
    return any(s.lower() in text for s in sensitive)


@dataclass
class Filtered:
    shown: list[Involvement] = field(default_factory=list)
    withheld_agencies: int = 0  # outside the role's sharing agreements


def filter_involvements(principal: Principal, rows: list[dict], *, broke_glass: bool, sensitive: list[str],
                        consents: set[str]) -> Filtered:
    out = Filtered()
    for row in rows:
        own = row["agency"] == principal.agency
        if is_sensitive(row["service"], sensitive) and not own and (row["service"] or "").lower() not in consents:
            continue  # not even counted: the existence of a sensitive service is itself sensitive
        if not (broke_glass or principal.role.covers(row["agency"], principal.agency)):
            out.withheld_agencies += 1
            continue
        out.shown.append(Involvement(agency=row["agency"], service=row["service"], worker_name=row["worker_name"],
                                     worker_role=row["worker_role"], worker_phone=row["worker_phone"],
                                     worker_email=row["worker_email"], start_date=row["start_date"],
                                     end_date=row["end_date"], is_open=bool(row["is_open"])))
    return out


def person_view(engine: Engine, index: PractitionerIndex, principal: Principal, person_id: str, *,
                sensitive: list[str], max_hours: int) -> tuple[Access, PersonView | None]:
    person = get_person(index, person_id)
    members: list[dict] = []
    if principal.role.household and person["household_id"] and not person["shielded"]:
        # fetched before the access check so that every involvement comes in one query (three round trips per
        # page, not four); nothing about the members is shown or audited unless access is granted
        members = [m for m in _rows(index, "select person_id, first_name, last_name, date_of_birth, household_role, "
                                           # provisional persons have no household: the file's table answers
                                           f"shielded from {index.rel('person', touched=False)} "
                                           "where household_id = ? and person_id <> ? "
                                           "and not shielded order by date_of_birth nulls last, person_id",
                                    [person["household_id"], person_id])
                   if not index.is_shielded(m["person_id"], False)]
    every_row = involvements_of(index, [person_id] + [m["person_id"] for m in members])
    own_rows = [r for r in every_row if r["person_id"] == person_id]
    access = check_access(engine, principal, person, own_rows, max_hours=max_hours)
    if not access.allowed:
        return access, None
    ids = [person_id] + [m["person_id"] for m in members]
    consents = consented_services(engine, ids)
    mine = filter_involvements(principal, own_rows, broke_glass=access.broke_glass, sensitive=sensitive,
                               consents=consents.get(person_id, set()))
    member_rows = [r for r in every_row if r["person_id"] != person_id]
    household = []
    for member in members:
        theirs = filter_involvements(principal, [r for r in member_rows if r["person_id"] == member["person_id"]],
                                     broke_glass=access.broke_glass, sensitive=sensitive,
                                     consents=consents.get(member["person_id"], set()))
        household.append(HouseholdMember(
            person_id=member["person_id"], name=" ".join(x for x in (member["first_name"], member["last_name"]) if x),
            birth_year=member["date_of_birth"].year if member["date_of_birth"] else None,
            household_role=member["household_role"], involvements=theirs.shown,
            withheld_agencies=theirs.withheld_agencies))
    view = PersonView(
        person_id=person_id, snapshot_id=index.snapshot_id,
        name=" ".join(x for x in (person["first_name"], person["middle_names"], person["last_name"]) if x),
        date_of_birth=person["date_of_birth"], sex=person["sex"], address=person["address"],
        postcode=person["postcode"], provisional=bool(person["provisional"]), involvements=mine.shown,
        withheld_agencies=mine.withheld_agencies, household=household, access=access.reason)
    return access, view
