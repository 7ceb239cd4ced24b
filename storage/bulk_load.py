"""Decisions made elsewhere, written in bulk: a replay's scenarios, all or nothing each.

``carepath replay --database`` decides its scenarios on the in-memory unit of work (on every
core) and hands the rows of each scenario's changes here, built by ``storage.writes.change_rows``
exactly as the SQL unit of work builds them. ``load_units`` writes a group of such *units* (one
scenario's rows each) inside the caller's transaction with ``storage.group_writes.write_group``:
one ``executemany`` per statement kind for the whole group, inside one savepoint. If the group
fails as a whole (a duplicate event id, an episode already there), that savepoint is rolled back
and the units are written again one savepoint each, so the bad unit writes nothing and the
others land. ``stored_chain`` then reads a chain back from the stored rows, in the same
transaction, for ``pathway.audit.verify_chain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pathway.audit import AuditRecord
from storage.backends import Backend
from storage.group_writes import GroupFailed, write_group
from storage.outbox import any_subscription
from storage.reads import audit_from_row
from storage.writes import ChangeRows


def load_units(backend: Backend, db: Any, units: Sequence[list[ChangeRows]]) -> list[str | None]:
    """Write every unit, each all or nothing, inside the caller's transaction on the driver
    cursor ``db``; per unit, ``None`` when it was written or why it was not.

    With no webhook subscription, the notices' outbox statements would write no row: they are
    left out. The check runs inside the caller's write transaction: on SQLite, which holds the
    write lock, no subscription can appear before the write; on PostgreSQL one added meanwhile
    gets the notices of decisions committed after it, as ``storage.outbox.Subscribed`` allows."""
    flat = [rows for unit in units for rows in unit]
    if any(rows.notices for rows in flat) and not any_subscription(db):
        for rows in flat:
            rows.notices = []
    try:
        with backend.savepoint(db):
            write_group(backend, db, flat)
        return [None] * len(units)
    except GroupFailed:
        pass  # find the unit(s) that failed: one savepoint each
    failures: list[str | None] = []
    for unit in units:
        try:
            with backend.savepoint(db):
                write_group(backend, db, unit)
            failures.append(None)
        except GroupFailed as exc:
            failures.append(str(exc))
    return failures


def stored_chain(
    backend: Backend, db: Any, episode_id: str
) -> tuple[list[AuditRecord], tuple[int, str] | None]:
    """The episode's audit entries as stored, and its row's (version, audit hash); ``None``
    for the head when there is no such episode row."""
    q = backend.queries
    rows = db.execute(q.audit_records, {"id": episode_id}).fetchall()
    head = db.execute(q.episode_head, {"id": episode_id}).fetchone()
    return [audit_from_row(r) for r in rows], (None if head is None else (head[0], head[1]))
