"""The service's own store: users, roles, sessions, audit, alerts, consent, referrals.

SQLAlchemy Core tables, so the same code runs on SQLite (default, embedded) and PostgreSQL (production).
The schema is created and upgraded by Alembic (migrations/); `open_store` runs the migrations first.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

role = sa.Table(
    "role", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("description", sa.String(200), nullable=False, server_default=""),
    # the agencies whose involvements this role may see (its information sharing agreements); "*" = all
    sa.Column("agencies", sa.JSON, nullable=False),
    sa.Column("household", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("break_glass", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("ig_officer", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("referrals", sa.Boolean, nullable=False, server_default=sa.false()),
)

user = sa.Table(
    "app_user", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(120), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("agency", sa.String(120), nullable=False),
    sa.Column("team", sa.String(120)),
    sa.Column("role", sa.String(64), sa.ForeignKey("role.name"), nullable=False),
    sa.Column("password_hash", sa.String(300)),
    sa.Column("oidc_subject", sa.String(300), unique=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

session = sa.Table(
    "app_session", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 of the cookie; the token is never stored
    sa.Column("user_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(200)),
    sa.Column("purpose_detail", sa.String(500)),
    sa.Column("ended", sa.Boolean, nullable=False, server_default=sa.false()),
)

audit_event = sa.Table(
    "audit_event", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("username", sa.String(120), nullable=False),
    sa.Column("role", sa.String(64)),
    sa.Column("agency", sa.String(120)),
    sa.Column("purpose", sa.String(200)),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("fields", sa.String(200)),  # which fields a search used (never their values)
    sa.Column("person_ids", sa.JSON, nullable=False),  # what was returned
    sa.Column("detail", sa.String(1000)),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False, unique=True),
)

alert = sa.Table(
    "alert", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),  # break_glass | lockout | unusual_volume
    sa.Column("username", sa.String(120), nullable=False),
    sa.Column("person_id", sa.String(40)),
    sa.Column("reason", sa.String(1000)),
    sa.Column("audit_seq", sa.Integer),
    sa.Column("status", sa.String(20), nullable=False, server_default="open"),  # open | reviewed
    sa.Column("reviewed_by", sa.String(120)),
    sa.Column("reviewed_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.String(1000)),
    sa.Column("delivery", sa.String(200)),  # what happened to the webhook / email
)

consent = sa.Table(
    "consent", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("person_id", sa.String(40), nullable=False, index=True),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("recorded_by", sa.String(120), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("basis", sa.String(500), nullable=False),
)

referral = sa.Table(
    "referral", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_by", sa.String(120), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("record_id", sa.String(200), nullable=False),
    sa.Column("person_id", sa.String(40), nullable=False, index=True),  # an existing person or a provisional "R…"
    sa.Column("provisional", sa.Boolean, nullable=False),
    sa.Column("match_probability", sa.Float),
    sa.Column("snapshot_id", sa.String(40), nullable=False),  # the snapshot it was linked against
    sa.Column("record", sa.JSON, nullable=False),  # the standardised record (matching forms) and its involvements
    sa.Column("status", sa.String(20), nullable=False, server_default="linked"),  # linked | reconciled
    sa.Column("nightly_person_id", sa.String(40)),
    sa.Column("outcome", sa.String(20)),  # kept | confirmed | merged | split | not_yet_in_extract
    sa.Column("reconciled_snapshot", sa.String(40)),
    sa.Column("reconciled_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("source", "record_id", name="uq_referral_record"),
)

rate_window = sa.Table(
    # requests per key (a session, or an address before sign-in) per minute, shared by every web worker
    "rate_window", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("window", sa.BigInteger, primary_key=True, autoincrement=False),  # minutes since the epoch
    sa.Column("count", sa.Integer, nullable=False),
)

_MIGRATIONS = Path(__file__).parent / "migrations"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes for what was written as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def migrate(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def dialect_insert(engine: Engine, table: sa.Table):
    """An INSERT that can say what to do on a conflict (``on_conflict_do_nothing`` / ``_do_update``): one atomic
    statement, so two processes writing the same key at once never fail or lose a write. PostgreSQL or SQLite."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def open_store(url: str) -> Engine:
    """Create the engine (SQLite file folders included) and bring the schema to the newest migration."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # WAL: readers never wait for the audit writer
            cursor = dbapi_connection.cursor()
            cursor.execute("pragma journal_mode=wal")
            # WAL + NORMAL: a crash loses no committed audit row's integrity (the chain re-verifies), and
            # commits do not wait for fsync one by one under 20 concurrent users
            cursor.execute("pragma synchronous=normal")
            cursor.execute("pragma foreign_keys=on")
            cursor.close()
    else:
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    migrate(engine)
    return engine
