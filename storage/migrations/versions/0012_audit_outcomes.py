"""Idempotency outcomes folded into the audit log (issue 13: fewer rows and pages per decision).

Every decision wrote one audit entry and one ``outcomes`` row under the same event id, the
outcome in a B-tree of its own keyed by that (random) id: on SQLite that table alone was half
of a group commit's WAL pages (measured: COMMIT 25.6 → 12.4 µs per decision without it). The
outcome's columns (``outcome``, ``caller``, ``idempotency_key``, ``request_hash``) now sit on
the audit entry, and ``ix_audit_log_event_id`` (unique) is the idempotency lookup and the guard
against an event applied twice, as ``outcomes_pkey`` was.

Upgrade copies each outcome onto the entry with its event id (the append-only triggers are
lifted for that one statement, inside the migration's transaction) and drops ``outcomes``; an
outcome with no entry (never written by carepath) stops the upgrade rather than be lost.
Downgrade rebuilds ``outcomes`` from the entries, exactly as it was.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = ("caller", "idempotency_key", "request_hash")
SQLITE_NO_UPDATE = """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END"""
CLUSTERED = {"sqlite_with_rowid": False}


def upgrade() -> None:
    bind = op.get_bind()
    orphans = bind.exec_driver_sql(
        "SELECT count(*) FROM outcomes o WHERE NOT EXISTS "
        "(SELECT 1 FROM audit_log a WHERE a.event_id = o.event_id)"
    ).scalar_one()
    if orphans:
        raise RuntimeError(
            f"outcomes: {orphans} row(s) have no audit entry with their event id; expected "
            "none (every decision writes both): keep revision 0011 and report this"
        )
    op.add_column("audit_log", sa.Column("outcome", sa.JSON(), nullable=True))
    for column in COLUMNS:
        op.add_column("audit_log", sa.Column(column, sa.String(), nullable=True))
    copy = (
        "UPDATE audit_log SET outcome = o.outcome, caller = o.caller, "
        "idempotency_key = o.idempotency_key, request_hash = o.request_hash "
        "FROM outcomes o WHERE o.event_id = audit_log.event_id"
    )
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        op.execute(copy)
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute(copy)
        op.execute(SQLITE_NO_UPDATE)
    op.create_index("ix_audit_log_event_id", "audit_log", ["event_id"], unique=True)
    op.drop_table("outcomes")


def downgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("episode_id", sa.String(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        *(sa.Column(column, sa.String(), nullable=True) for column in COLUMNS),
        sa.ForeignKeyConstraint(["episode_id"], ["episodes.id"]),
        sa.PrimaryKeyConstraint("event_id", name="outcomes_pkey"),
        **CLUSTERED,
    )
    op.execute(
        "INSERT INTO outcomes (event_id, episode_id, outcome, caller, idempotency_key, "
        "request_hash) SELECT event_id, episode_id, outcome, caller, idempotency_key, "
        "request_hash FROM audit_log WHERE outcome IS NOT NULL"
    )
    op.drop_index("ix_audit_log_event_id", "audit_log")
    for column in ("request_hash", "idempotency_key", "caller", "outcome"):
        op.execute(f"ALTER TABLE audit_log DROP COLUMN {column}")
