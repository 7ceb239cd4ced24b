"""Definition versions: every document an episode may be pinned to, kept in the database.

A definition is named by its content (``<id>@<sha256 prefix>``), so a changed file is a new
version. Storing each version's document the first time a process runs it means episodes
opened under it keep running (timers, observations) after the file changes, until they are
migrated (``carepath definition migrate``). Rows are only ever added.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "definitions",
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name="definitions_pkey"),
    )


def downgrade() -> None:
    op.drop_table("definitions")
