"""The outbox hook of a change: its notices become ``webhook_messages`` rows in its transaction.

``notice_rows`` turns a change's notices (``pathway.notifications``) into statement parameters;
``write_notices`` runs one ``INSERT … SELECT`` per notice, which writes a row for each
subscription that wants the notice's type (none when nobody subscribed: the statement then
touches nothing). The backends call it right after the change's own rows, inside the same
transaction or savepoint, so a decision and its messages are written together or not at all.
"""

from __future__ import annotations

from typing import Any

from pathway.unit_of_work import Change
from storage.columns import to_json
from storage.sql import QUERIES, pyformat

_INSERT = {
    "sqlite": QUERIES["webhook_insert_messages@sqlite"],
    "postgresql": pyformat(QUERIES["webhook_insert_messages@postgresql"]),
}


def notice_rows(change: Change) -> list[dict[str, Any]]:
    """One parameter dict per notice of the change (its rows are due at the database's clock:
    the scheduler's time, ``scheduler.clock``, not the clinical time of the event)."""
    return [
        {
            "notice_id": n.id,
            "event_type": n.type,
            "episode_id": change.decision.episode.id,
            "payload": to_json(n.payload()),
            "patient_ref": n.patient_ref,
            "pattern": f"%,{n.type},%",
        }
        for n in change.notices
    ]


def insert_statement(dialect: str) -> str:
    return _INSERT[dialect]


def write_notices(db: Any, dialect: str, rows: list[dict[str, Any]]) -> None:
    """Write the outbox rows of a change's notices, inside the caller's transaction."""
    db.executemany(_INSERT[dialect], rows)
