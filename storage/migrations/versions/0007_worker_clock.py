"""A scheduler worker's clock: how far its host runs from the database, and its refusal.

On PostgreSQL a worker whose host clock is off the server's by more than the tolerance refuses
to run (``scheduler/clock.py``); it still registers, at the database's time, with the skew and
the refusal, so that ``carepath scheduler status`` on any host shows which worker refuses and
why. A later heartbeat within the tolerance clears the refusal.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("clock_skew_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("clock_refusal", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("clock_refusal")
        batch.drop_column("clock_skew_seconds")
