"""Many pathways: episodes name their pathway, link to other pathways' episodes, and remember
the facts their definition declares for "the previous review"; timers keep when they were set.

- ``episodes.pathway``: the definition id (``definition_version`` is ``<id>@<hash>``), indexed
  with ``next_due_at`` for the worklist's pathway filter.
- ``episodes.remembered`` replaces ``last_review_pain``: a JSON object fact → value at the last
  review, for whichever facts a definition's ``previous_review`` derived values name. Rows are
  carried over as carepath 0.1's engine meant the column (the pain score at the last review).
- ``episodes.links``: JSON list of [episode id, pathway, rule, relation] (enrolments).
- indexes: (pathway, next_due_at) for the worklist; (pathway, patient_ref) for enrolment,
  which links a patient's live episode of the enrolling pathway instead of opening another.
- ``timers.set_at``: the clinical time of the event that set the timer, so a timer anchored on
  a date fact can be re-timed when the fact is corrected (NULL for timers set before this).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ALTER TABLE on both backends (no table rebuild: SQLite keeps its expression indexes).
    op.add_column("episodes", sa.Column("pathway", sa.String(), nullable=False, server_default=""))
    op.add_column(
        "episodes", sa.Column("remembered", sa.JSON(), nullable=False, server_default="{}")
    )
    op.add_column("episodes", sa.Column("links", sa.JSON(), nullable=False, server_default="[]"))
    find = "instr" if op.get_bind().dialect.name == "sqlite" else "strpos"
    op.execute(
        f"UPDATE episodes SET pathway = substr(definition_version, 1, "
        f"{find}(definition_version, '@') - 1)"
    )
    op.execute(
        "UPDATE episodes SET remembered = CAST('{\"pain_score\": ' || last_review_pain || '}'"
        f" AS {'TEXT' if find == 'instr' else 'json'}) WHERE last_review_pain IS NOT NULL"
    )
    op.execute("ALTER TABLE episodes DROP COLUMN last_review_pain")
    op.create_index("ix_episodes_pathway_next_due_at", "episodes", ["pathway", "next_due_at"])
    op.create_index("ix_episodes_pathway_patient_ref", "episodes", ["pathway", "patient_ref"])
    op.add_column("timers", sa.Column("set_at", TIME, nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE timers DROP COLUMN set_at")
    op.drop_index("ix_episodes_pathway_patient_ref", "episodes")
    op.drop_index("ix_episodes_pathway_next_due_at", "episodes")
    op.add_column("episodes", sa.Column("last_review_pain", sa.Integer(), nullable=True))
    for column in ("links", "remembered", "pathway"):
        op.execute(f"ALTER TABLE episodes DROP COLUMN {column}")
