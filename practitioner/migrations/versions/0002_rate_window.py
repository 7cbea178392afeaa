"""Rate limits shared by every web worker: request counts per key and minute in the store.

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from practitioner._store import rate_window

    rate_window.create(op.get_bind(), checkfirst=True)  # a store created fresh by 0001 already has it


def downgrade() -> None:
    from practitioner._store import rate_window

    rate_window.drop(op.get_bind(), checkfirst=True)
