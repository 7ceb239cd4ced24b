"""The scheduler's schema: episode claims (lease), the sweep's index, registered workers.

A sweep claims episodes with due timers (``claimed_by``, ``lease_until``) and fires their
timers in due order; a claim lapses at ``lease_until``, so a dead worker's episodes are taken
over. ``workers`` holds each worker's heartbeat, so a stale one's claims can be released early.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("episodes") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("lease_until", TIME, nullable=True))
    op.create_index("ix_episodes_next_due_at", "episodes", ["next_due_at"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("last_seen", TIME, nullable=False),
        sa.Column("stopped_at", TIME, nullable=True),
        sa.Column("fired", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="workers_pkey"),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_episodes_next_due_at", table_name="episodes")
    with op.batch_alter_table("episodes") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
