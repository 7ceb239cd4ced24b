"""Idempotency keys bound to who sent them and what they asked; server-side page sessions.

- ``outcomes``: ``caller`` (``token:<token id>`` for the API and the pages, ``cli:<actor>`` for
  the command line), ``idempotency_key`` (the key as the caller gave it) and ``request_hash``
  (sha256 of the command, the episode and the canonical body). The stored event id of a keyed
  command is derived from (caller, key) (``pathway.idempotency``), so it stays the primary key
  and stays unique across episodes; the same key from another caller is another event. NULL
  for outcomes written before this (their event id was the key itself) and for commands sent
  without a key, timer firings and enrolments.
- ``sessions``: one row per signed-in page session: the sha256 of the random session id (the
  cookie holds the id, never the API token), the token it was opened with, when it was opened
  and last seen (idle and absolute expiry). Deleted on sign-out and when its token is revoked.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
OUTCOME_COLUMNS = ("caller", "idempotency_key", "request_hash")


def upgrade() -> None:
    for column in OUTCOME_COLUMNS:
        op.add_column("outcomes", sa.Column(column, sa.String(), nullable=True))
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(), nullable=False),
        sa.Column("token_id", sa.String(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_seen_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["tokens.id"], name="sessions_token_id_fkey"),
        sa.PrimaryKeyConstraint("id_hash", name="sessions_pkey"),
    )
    op.create_index("ix_sessions_token_id", "sessions", ["token_id"])


def downgrade() -> None:
    op.drop_index("ix_sessions_token_id", table_name="sessions")
    op.drop_table("sessions")
    for column in reversed(OUTCOME_COLUMNS):
        op.execute(f"ALTER TABLE outcomes DROP COLUMN {column}")
