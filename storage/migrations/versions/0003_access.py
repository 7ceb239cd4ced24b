"""API access and the worklist: bearer tokens, and the indexes the worklist query reads.

``tokens`` holds one row per API token: its name (the audit actor is ``token:<name>``), its
role, and the sha256 of the token, never the token itself (shown once, when created). The
worklist (``storage/worklist.py``) searches patient refs and labels by case-insensitive prefix
(``lower(...)`` indexes; on PostgreSQL in the "C" collation, so that a prefix is a range
whatever the database's locale), lists live episodes with nothing pending by id through a
partial index, and finds open escalations through a partial index on tasks.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
OPEN_ESCALATION = "kind = 'escalation' AND status = 'open'"
UNDATED = "next_due_at IS NULL"
SEARCHED = {"ix_episodes_patient_ref_search": "patient_ref", "ix_episodes_label_search": "label"}


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.Column("last_used_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="tokens_pkey"),
    )
    op.create_index("ix_tokens_token_hash", "tokens", ["token_hash"], unique=True)
    op.create_index("ix_tokens_name", "tokens", ["name"], unique=True)
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, column in SEARCHED.items():
        expression = f'(lower({column}) COLLATE "C")' if postgres else f"lower({column})"
        op.execute(f"CREATE INDEX {name} ON episodes ({expression})")
    op.create_index(
        "ix_episodes_undated",
        "episodes",
        ["state", "id"],
        sqlite_where=sa.text(UNDATED),
        postgresql_where=sa.text(UNDATED),
    )
    op.create_index(
        "ix_tasks_open_escalations",
        "tasks",
        ["episode_id"],
        sqlite_where=sa.text(OPEN_ESCALATION),
        postgresql_where=sa.text(OPEN_ESCALATION),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_open_escalations", table_name="tasks")
    op.drop_index("ix_episodes_undated", table_name="episodes")
    for name in SEARCHED:
        op.drop_index(name, table_name="episodes")
    op.drop_index("ix_tokens_name", table_name="tokens")
    op.drop_index("ix_tokens_token_hash", table_name="tokens")
    op.drop_table("tokens")
