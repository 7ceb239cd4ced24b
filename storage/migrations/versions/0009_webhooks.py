"""Webhooks (issue 11, item 4): subscriptions and the outbox of messages to deliver.

``webhook_subscriptions`` holds each target, the event types it wants (``,a,b,``: matched with
LIKE in the statement that fills the outbox) and its signing secret, encrypted (AES-GCM under a
key derived from the audit key, which is never in the database: ``storage.webhook_secrets``).
``webhook_messages`` is the outbox: one row per (notice, matching subscription), written in the
transaction of the decision that raised it, claimed by scheduler workers under a lease like
timers, retried with backoff, then ``delivered`` or ``failed``.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("include_patient_ref", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="webhook_subscriptions_pkey"),
    )
    op.create_table(
        "webhook_messages",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("subscription_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("episode_id", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("patient_ref", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="webhook_messages_pkey"),
    )
    op.create_index(
        "ix_webhook_messages_status_next_attempt_at",
        "webhook_messages",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_webhook_messages_subscription_id", "webhook_messages", ["subscription_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_messages_subscription_id", "webhook_messages")
    op.drop_index("ix_webhook_messages_status_next_attempt_at", "webhook_messages")
    op.drop_table("webhook_messages")
    op.drop_table("webhook_subscriptions")
