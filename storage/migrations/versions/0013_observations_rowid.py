"""SQLite: observations in a rowid table (issue 13: fewer WAL pages per group commit).

``observations`` was a WITHOUT ROWID table, its rows stored in their primary key's B-tree,
keyed (episode_id, seq): a new observation lands inside its episode's run of rows, so a group
of 100 decisions on 100 episodes dirtied a page (and, the B-tree storing whole rows even in its
interior pages, often a split) per row. Measured on bench_storage's grouped SQLite path (WAL
frames mapped to their B-trees, 100 decisions per commit): observations 120.5 of 277 frames;
as a rowid table, its rows append at the table's end (5.7 frames) and the primary key's own
index, of short entries, takes 43.4: 206 frames, COMMIT about 8 µs less per decision.

Upgrade rebuilds the table from its own ``CREATE`` text without ``WITHOUT ROWID`` (same
columns, key, foreign key and rows); downgrade rebuilds it as it was, text and all.
PostgreSQL has no such choice: nothing changes there.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import re

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CLUSTERED_SUFFIX = "\n WITHOUT ROWID\n\n"  # as SQLAlchemy wrote it in 0001
_CLUSTERED = re.compile(r"\s*WITHOUT ROWID\s*$", re.IGNORECASE)


def upgrade() -> None:
    sql = _create_sql()
    if sql is not None and _CLUSTERED.search(sql):
        _rebuild(_CLUSTERED.sub("", sql))


def downgrade() -> None:
    sql = _create_sql()
    if sql is not None and not _CLUSTERED.search(sql):
        _rebuild(sql.rstrip() + CLUSTERED_SUFFIX)


def _create_sql() -> str | None:
    """The observations table's ``CREATE`` statement on SQLite; None on PostgreSQL."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    return str(
        bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'observations'"
        ).scalar_one()
    )


def _rebuild(create: str) -> None:
    """The table recreated by ``create`` (its own name kept, so its text is exactly that)."""
    op.execute("ALTER TABLE observations RENAME TO observations_rebuilt")
    op.execute(create)
    op.execute("INSERT INTO observations SELECT * FROM observations_rebuilt")
    op.execute("DROP TABLE observations_rebuilt")
