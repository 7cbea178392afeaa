"""Accounts, roles, sessions and login rules — plain functions over the store, testable without HTTP.

- Passwords: Argon2id (argon2-cffi defaults), re-hashed when the parameters change.
- Lockout after `lockout_attempts` failed logins for `lockout_minutes` (an alert is raised).
- Sessions: a random token in a cookie; only its SHA-256 is stored. Idle expiry and an absolute lifetime.
- Least privilege: a role sees only the agencies its sharing agreements name; a user always has exactly
  one role, and the default role sees only the user's own agency.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from practitioner._store import aware, dialect_insert, now, role as role_table, session as session_table, user as user_table

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 12

# Seeded on first start; change them with `familylink users role ...`.
DEFAULT_ROLES = {
    "practitioner": {"description": "Sees involvements of their own agency only (least privilege)",
                     "agencies": [], "household": False, "break_glass": True, "ig_officer": False, "referrals": True},
    "multi_agency": {"description": "Multi-agency safeguarding hub: every agency under the sharing protocol",
                     "agencies": ["*"], "household": True, "break_glass": True, "ig_officer": False, "referrals": True},
    "ig_officer": {"description": "Information governance: audit, alerts, break-glass review; no person pages",
                   "agencies": [], "household": False, "break_glass": False, "ig_officer": True, "referrals": False},
}


class AuthError(Exception):
    """Login refused; the message is safe to show (it never says which of user or password was wrong)."""


@dataclass(frozen=True)
class Role:
    name: str
    agencies: tuple[str, ...]
    household: bool
    break_glass: bool
    ig_officer: bool
    referrals: bool
    description: str = ""

    def covers(self, agency: str, own_agency: str) -> bool:
        """Whether this role's sharing agreements let its holder see an agency's involvements."""
        return agency == own_agency or "*" in self.agencies or agency in self.agencies


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    display_name: str
    agency: str
    team: str | None
    role: Role
    token_hash: str
    csrf_token: str
    purpose: str | None
    purpose_detail: str | None


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def _role_from_row(row) -> Role:
    return Role(row.name, tuple(row.agencies or []), bool(row.household), bool(row.break_glass), bool(row.ig_officer),
                bool(row.referrals), row.description or "")


def seed_roles(engine: Engine) -> None:
    """Add the default roles that are missing, leaving edited ones alone. Several worker processes start at once
    and each seeds: a role another has just added is skipped, not an error."""
    with engine.begin() as conn:
        for name, spec in DEFAULT_ROLES.items():
            conn.execute(dialect_insert(engine, role_table).values(name=name, **spec)
                         .on_conflict_do_nothing(index_elements=["name"]))


def set_role(engine: Engine, name: str, *, agencies: list[str], household: bool = False, break_glass: bool = True,
             ig_officer: bool = False, referrals: bool = False, description: str = "") -> Role:
    values = dict(agencies=list(agencies), household=household, break_glass=break_glass, ig_officer=ig_officer,
                  referrals=referrals, description=description)
    with engine.begin() as conn:
        conn.execute(dialect_insert(engine, role_table).values(name=name, **values)
                     .on_conflict_do_update(index_elements=["name"], set_=values))
    return get_role(engine, name)


def get_role(engine: Engine, name: str) -> Role:
    with engine.connect() as conn:
        row = conn.execute(sa.select(role_table).where(role_table.c.name == name)).first()
    if row is None:
        raise KeyError(f"no role {name!r}")
    return _role_from_row(row)


def list_roles(engine: Engine) -> list[Role]:
    with engine.connect() as conn:
        return [_role_from_row(r) for r in conn.execute(sa.select(role_table).order_by(role_table.c.name))]


def add_user(engine: Engine, username: str, *, display_name: str, agency: str, role: str = "practitioner",
             team: str | None = None, password: str | None = None, oidc_subject: str | None = None) -> int:
    get_role(engine, role)  # fails with a clear message for an unknown role
    if password is None and oidc_subject is None:
        raise ValueError("a user needs a password or an OIDC subject")
    with engine.begin() as conn:
        result = conn.execute(user_table.insert().values(
            username=username, display_name=display_name, agency=agency, team=team, role=role,
            password_hash=hash_password(password) if password else None, oidc_subject=oidc_subject,
            active=True, failed_logins=0, created_at=now()))
        return int(result.inserted_primary_key[0])


def update_user(engine: Engine, username: str, **changes) -> None:
    if "role" in changes:
        get_role(engine, changes["role"])
    if "password" in changes:
        changes["password_hash"] = hash_password(changes.pop("password"))
    with engine.begin() as conn:
        done = conn.execute(user_table.update().where(user_table.c.username == username).values(**changes))
        if done.rowcount == 0:
            raise KeyError(f"no user {username!r}")
        if changes.get("active") is False or "role" in changes:  # a changed role takes effect at once
            ids = sa.select(user_table.c.id).where(user_table.c.username == username).scalar_subquery()
            conn.execute(session_table.update().where(session_table.c.user_id == ids).values(ended=True))


def list_users(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(user_table).order_by(user_table.c.username)).mappings()
        return [{k: v for k, v in r.items() if k != "password_hash"} for r in rows]


@dataclass
class LoginOutcome:
    user_id: int
    username: str
    locked_now: bool = False


def check_password(engine: Engine, username: str, password: str, *, lockout_attempts: int,
                   lockout_minutes: int) -> int:
    """The user's id when the password is right; AuthError otherwise. Failures count towards a lockout."""
    failure: AuthError | None = None
    with engine.begin() as conn:  # the failure count is committed before the refusal is raised
        row = conn.execute(sa.select(user_table).where(user_table.c.username == username)).first()
        if row is None or not row.active or row.password_hash is None:
            _HASHER.hash("spend the same time as a real check")  # no timing hint that the user exists
            raise AuthError("Sign-in failed.")
        locked_until = aware(row.locked_until)
        if locked_until is not None and locked_until > now():
            raise AuthError("This account is locked after repeated failed sign-ins. Try later or ask an administrator.")
        try:
            _HASHER.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            # counted in the database (not read, added and written back): failures posted to two web workers
            # at once both count
            failures = conn.execute(user_table.update().where(user_table.c.id == row.id)
                                    .values(failed_logins=user_table.c.failed_logins + 1)
                                    .returning(user_table.c.failed_logins)).scalar_one()
            failure = AuthError("Sign-in failed.")
            if failures >= lockout_attempts:
                conn.execute(user_table.update().where(user_table.c.id == row.id).values(
                    failed_logins=0, locked_until=now() + dt.timedelta(minutes=lockout_minutes)))
                failure = AccountLocked("This account is locked after repeated failed sign-ins.")
        else:
            values = {"failed_logins": 0, "locked_until": None}
            if _HASHER.check_needs_rehash(row.password_hash):
                values["password_hash"] = _HASHER.hash(password)
            conn.execute(user_table.update().where(user_table.c.id == row.id).values(**values))
    if failure is not None:
        raise failure
    return row.id


class AccountLocked(AuthError):
    """This failure locked the account (an alert is raised)."""


def user_for_oidc(engine: Engine, subject: str) -> int:
    with engine.connect() as conn:
        row = conn.execute(sa.select(user_table.c.id, user_table.c.active)
                           .where(user_table.c.oidc_subject == subject)).first()
    if row is None or not row.active:
        raise AuthError("Your single sign-on account is not registered for this service. Ask an administrator.")
    return row.id


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def start_session(engine: Engine, user_id: int, *, idle_minutes: int, max_hours: int) -> str:
    token = secrets.token_urlsafe(32)
    stamp = now()
    with engine.begin() as conn:
        conn.execute(session_table.insert().values(
            token_hash=_token_hash(token), user_id=user_id, created_at=stamp, last_seen=stamp,
            expires_at=stamp + dt.timedelta(hours=max_hours), csrf_token=secrets.token_urlsafe(32), ended=False))
    return token


def resolve_session(engine: Engine, token: str, *, idle_minutes: int) -> Principal | None:
    """The signed-in principal for a cookie, or None when it is unknown, ended, idle too long or expired."""
    if not token:
        return None
    digest = _token_hash(token)
    stamp = now()
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(session_table, user_table.c.username, user_table.c.display_name, user_table.c.agency,
                      user_table.c.team, user_table.c.active, role_table)
            .join(user_table, user_table.c.id == session_table.c.user_id)
            .join(role_table, role_table.c.name == user_table.c.role)
            .where(session_table.c.token_hash == digest)).first()
        if row is None or row.ended or not row.active:
            return None
        if aware(row.expires_at) <= stamp or aware(row.last_seen) + dt.timedelta(minutes=idle_minutes) <= stamp:
            conn.execute(session_table.update().where(session_table.c.token_hash == digest).values(ended=True))
            return None
        if aware(row.last_seen) + dt.timedelta(seconds=30) <= stamp:  # idle clock to 30 s: not a write per request
            conn.execute(session_table.update().where(session_table.c.token_hash == digest).values(last_seen=stamp))
    return Principal(row.user_id, row.username, row.display_name, row.agency, row.team, _role_from_row(row), digest,
                     row.csrf_token, row.purpose, row.purpose_detail)


def set_purpose(engine: Engine, token_hash: str, purpose: str, detail: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(session_table.update().where(session_table.c.token_hash == token_hash)
                     .values(purpose=purpose, purpose_detail=detail))


def end_session(engine: Engine, token_hash: str) -> None:
    with engine.begin() as conn:
        conn.execute(session_table.update().where(session_table.c.token_hash == token_hash).values(ended=True))
