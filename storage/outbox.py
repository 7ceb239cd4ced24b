"""The outbox hook of a change: its notices become ``webhook_messages`` rows in its transaction.

``notice_rows`` turns a change's notices (``pathway.notifications``) into statement parameters.
On SQLite ``write_notices`` runs one ``INSERT … SELECT`` per notice right after the change's own
rows, in the same transaction or savepoint; on PostgreSQL the notices are one more part of the
change's single statement (``pg_save_notices``, arrays through ``unnest``), so they cost no
round trip. Either way a row is written for each subscription that wants the notice's type
(none when nobody subscribed), and a decision and its messages are written together or not at
all.

On PostgreSQL an ``INSERT`` part costs ~0.2 ms of executor start-up even when it writes no
row (measured: timer firings that open escalations went from ~1,500/s to ~700/s), so a
deployment with no subscription should not pay it: ``Subscribed`` remembers, per backend (one
per unit-of-work factory), whether any subscription exists, re-read at most once a second. A
subscription added through the same factory is known at once; one added by another process
receives the notices of decisions committed from at most a second later. Removal is always
exact: which subscriptions get a row is decided by the statement itself.
"""

from __future__ import annotations

import time
from typing import Any

from pathway.unit_of_work import Change
from storage.columns import to_json
from storage.sql import QUERIES, pyformat

_INSERT = {
    "sqlite": QUERIES["webhook_insert_messages"],
    "postgresql": pyformat(QUERIES["webhook_insert_messages@postgresql"]),  # group commits only
}
_ANY_SUBSCRIPTION = QUERIES["webhook_any_subscription"]


def any_subscription(db: Any) -> bool:
    """Whether any webhook subscription exists, read now on the driver cursor ``db`` (inside
    the caller's transaction, if any)."""
    return bool(db.execute(_ANY_SUBSCRIPTION).fetchone()[0])


def notices_due(backend: Any, db: Any) -> bool:
    """Whether a group's (or a scheduler batch's) decisions need their webhook notices, read
    inside its transaction. On SQLite that transaction holds the write lock: no subscription
    can appear before it commits. On PostgreSQL one added meanwhile gets the notices of the
    groups that begin after it, as ``Subscribed`` allows (the write would drop them anyway)."""
    subscribed = backend.subscribed
    return any_subscription(db) if subscribed is None else subscribed.check(db)


class Subscribed:
    """Whether the database has any webhook subscription, re-read at most every ``ttl`` s."""

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._known = False
        self._read_at = float("-inf")

    def check(self, db: Any) -> bool:
        """On the driver cursor ``db`` (inside the caller's transaction, if any)."""
        now = time.monotonic()
        if now - self._read_at > self.ttl:
            self._known = any_subscription(db)
            self._read_at = now
        return self._known

    def added(self) -> None:
        """A subscription was just added through this backend's factory."""
        self._known, self._read_at = True, time.monotonic()


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
