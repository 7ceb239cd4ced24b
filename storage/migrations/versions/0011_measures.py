"""One pathway's episodes in id order (issue 10, item 3: measures at volume).

The measures read every audit entry of one pathway's episodes in (episode, seq) order. With
this index the statement walks that pathway's episodes in id order and seeks each one's
entries by the audit log's (episode_id, seq) key, so a pathway never reads the other
pathways' rows and nothing is sorted.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # unique (id is): so SQLite knows each episode comes once, and reads its entries in
    # seq order from the audit key without sorting them
    op.create_index("ix_episodes_pathway_id", "episodes", ["pathway", "id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_episodes_pathway_id", "episodes")
