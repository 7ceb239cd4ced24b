"""The episode's appointment: its booked review inside a protocol window (issue 11, item 2).

Five nullable columns, all NULL while nothing is booked: the window (the rule id of the timer
that opens it), the day (``YYYY-MM-DD`` text, so it sorts and compares as a date on both
databases), the status (booked, missed, reviewed), the reason given and whether the day is
outside the window (a deviation). They change only through an audited ``booking`` decision (or
the review that keeps it), and ``audit verify`` rebuilds them from the log. One index serves
the worklist's sort by booked day and the scheduler's sweep for missed appointments.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = (
    ("appointment_window", sa.String()),
    ("appointment_on", sa.String()),
    ("appointment_status", sa.String()),
    ("appointment_reason", sa.Text()),
    ("appointment_deviation", sa.Boolean()),
)


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("episodes", sa.Column(name, type_, nullable=True))
    op.create_index("ix_episodes_appointment_on", "episodes", ["appointment_on", "id"])


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ and PostgreSQL), as 0008 does.
    op.drop_index("ix_episodes_appointment_on", "episodes")
    for name, _ in reversed(COLUMNS):
        op.execute(f"ALTER TABLE episodes DROP COLUMN {name}")
