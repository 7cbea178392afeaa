"""The service's store: roles, users, sessions, hash-chained audit, alerts, consent, referrals.

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_APPEND_ONLY_SQLITE = """
create trigger audit_event_no_{op} before {op} on audit_event
begin select raise(abort, 'audit_event is append-only'); end
"""
_APPEND_ONLY_PG = """
create or replace function audit_event_append_only() returns trigger language plpgsql as $$
begin raise exception 'audit_event is append-only'; end $$;
create trigger audit_event_no_update before update or delete on audit_event
for each row execute function audit_event_append_only();
"""


def upgrade() -> None:
    from practitioner._store import metadata

    bind = op.get_bind()
    metadata.create_all(bind)
    # The audit can only grow: the database itself refuses edits and deletions (the hash chain shows any
    # edit made around this, e.g. by someone with file access).
    if bind.dialect.name == "sqlite":
        for operation in ("update", "delete"):
            op.execute(_APPEND_ONLY_SQLITE.format(op=operation))
    elif bind.dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_PG)


def downgrade() -> None:
    from practitioner._store import metadata

    metadata.drop_all(op.get_bind())
