"""Who owns an episode: the coordinator it is assigned to (issue 11, item 3).

One nullable column: an episode opened (or enrolled) starts unassigned. The owner changes only
through an audited ``assign`` decision, and ``audit verify`` rebuilds it from the log.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("episodes", sa.Column("owner", sa.String(), nullable=True))
    # the worklist's assigned=NAME: one coordinator's episodes in due order, without walking
    # everyone's
    op.create_index("ix_episodes_owner_next_due_at", "episodes", ["owner", "next_due_at"])


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch rebuild of ``episodes`` would
    # have to recreate its expression and partial indexes.
    op.drop_index("ix_episodes_owner_next_due_at", "episodes")
    op.execute("ALTER TABLE episodes DROP COLUMN owner")
