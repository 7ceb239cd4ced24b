"""The outbox hook of a change: its notices become ``webhook_messages`` rows in its transaction.

``notice_rows`` turns a change's notices (``pathway.notifications``) into statement parameters.
On SQLite ``write_notices`` runs one ``INSERT … SELECT`` per notice right after the change's own
rows, in the same transaction or savepoint; on PostgreSQL the notices are one more part of the
change's single statement (``pg_save_notices``, arrays through ``unnest``), so they cost no
round trip. Either way a row is written for each subscription that wants the notice's type
(none when nobody subscribed), and a decision and its messages are written together or not at
all.
"""

from __future__ import annotations

from typing import Any

from pathway.unit_of_work import Change
from storage.columns import to_json
from storage.sql import QUERIES

_INSERT = {"sqlite": QUERIES["webhook_insert_messages"]}


def notice_rows(change: Change) -> list[dict[str, Any]]:
    """One parameter dict per notice of the change (its rows are due at the database's clock:
    the scheduler's time, ``scheduler.clock``, not the clinical time of the event)."""
    return [
        {
            "notice_id": n.id,
            "event_type": n.type,
            "episode_id": change.decision.episode.id,  # SQLite's statement (PostgreSQL: ep.id)
            "payload": to_json(n.payload()),
            "patient_ref": n.patient_ref,
            "pattern": f"%,{n.type},%",
        }
        for n in change.notices
    ]


def write_notices(db: Any, dialect: str, rows: list[dict[str, Any]]) -> None:
    """Write the outbox rows of a change's notices, inside the caller's transaction."""
    db.executemany(_INSERT[dialect], rows)
