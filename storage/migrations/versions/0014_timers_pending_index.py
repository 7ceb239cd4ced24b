"""Due timers found through an index of pending timers only (issue 13: timers near the raw loop).

``ix_timers_status_due_at`` indexed every timer by (status, due_at), so each timer fired
moved its entry within that index (SQLite: a delete and an insert; PostgreSQL: one more index
entry per update), and the index grew with every timer ever fired, for ever. Every query
that reads it asks for ``status = 'pending'`` (due timers, the status page's counts, parked
timers): ``ix_timers_pending_due_at`` indexes those alone, by due time, so a fired timer
leaves it and it stays as small as the work still to do. Measured (100,000 timers, 30,000
status updates by 100): PostgreSQL 1.2–4.2 µs less per timer, SQLite about 1 µs.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    op.create_index(
        "ix_timers_pending_due_at",
        "timers",
        ["due_at"],
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )
    op.drop_index("ix_timers_status_due_at", table_name="timers")


def downgrade() -> None:
    op.create_index("ix_timers_status_due_at", "timers", ["status", "due_at"])
    op.drop_index("ix_timers_pending_due_at", table_name="timers")
