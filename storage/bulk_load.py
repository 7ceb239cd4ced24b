"""Decisions made elsewhere, written in bulk: a replay's scenarios, all or nothing each.

``carepath replay --database`` decides its scenarios on the in-memory unit of work (on every
core) and hands the rows of each scenario's changes here, built by ``storage.writes.change_rows``
exactly as the SQL unit of work builds them. ``load_units`` writes a group of such *units* (one
scenario's rows each) inside the caller's transaction with ``storage.group_writes.write_group``:
one ``executemany`` per statement kind for the whole group, inside one savepoint. If the group
fails as a whole (a duplicate event id, an episode already there), that savepoint is rolled back
and the units are written again one savepoint each, so the bad unit writes nothing and the
others land. ``stored_chains`` then reads the chains back from the stored rows, in the same
transaction (two statements for the whole group), and ``verify_stored`` checks each.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from pathway.audit import GENESIS, AuditKey, verify_chain
from storage.backends import Backend
from storage.columns import to_json
from storage.group_writes import GroupFailed, write_group
from storage.outbox import any_subscription
from storage.reads import audit_from_row
from storage.writes import ChangeRows

# The audit_records statement's columns, as ``ChangeRows.own`` names them.
AUDIT_COLUMNS = (
    "id", "version", "event_id", "kind", "actor", "at", "recorded_at", "state_from",
    "state_to", "payload", "prev_hash", "hash",
)  # fmt: skip
_audit_columns = itemgetter(*AUDIT_COLUMNS)  # one tuple of them, in C
PAYLOAD, PREV_HASH, HASH = (AUDIT_COLUMNS.index(c) for c in ("payload", "prev_hash", "hash"))


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


Chain = tuple[list[Any], tuple[int, str] | None]  # an episode's stored audit rows, and head


def stored_chains(backend: Backend, db: Any, episode_ids: Sequence[str]) -> dict[str, Chain]:
    """Each episode's audit rows as stored (``audit_records``' columns), and its row's
    (version, audit hash), ``None`` for the head when there is no such episode row: in two
    statements for them all (two per episode cost ~10 µs an episode of a replay's write,
    measured)."""
    if not episode_ids:
        return {}
    q = backend.queries
    ids: Any = to_json(list(episode_ids)) if backend.dialect == "sqlite" else list(episode_ids)
    chains: dict[str, list[Any]] = {episode_id: [] for episode_id in episode_ids}
    for row in db.execute(q.audit_records_of_many, {"ids": ids}).fetchall():
        chains[row[0]].append(row)
    heads = {r[0]: (r[1], r[2]) for r in db.execute(q.episode_heads, {"ids": ids})}
    return {episode_id: (rows, heads.get(episode_id)) for episode_id, rows in chains.items()}


def verify_stored(
    episode_id: str,
    stored: list[Any],
    head: tuple[int, str] | None,
    written: list[ChangeRows],
    key: AuditKey,
    linked: bool = False,
) -> bool:
    """Whether the episode's stored chain verifies, columns included.

    The quick way (~5 times cheaper than parsing every payload and time): the stored rows are
    exactly the audit rows written (``written``: the episode's changes, in order), whose
    columns were set from the same entries as their payloads, and the stored payloads link up
    under ``key`` to the head the episode row holds. ``linked``: the writer checked that the
    entries ``written`` was built from link up, as ``pathway.audit.entry_for`` sealed them
    (``verify_chain`` of entries made in this process, whose every link is the HMAC
    ``entry_for`` computed from those very bytes): rows equal to them need only reach the
    head, not each HMAC computed again (~1 µs an entry). Any difference (PostgreSQL's times
    come back as datetimes, or a row that is not what was written) takes the full way:
    ``pathway.audit.verify_chain`` on the parsed rows, which compares columns with
    payloads."""
    expected = [_audit_columns(r.own) for r in written]
    if head is not None and [tuple(row) for row in stored] == expected:
        if linked:
            return bool(stored) and (len(stored), stored[-1][HASH]) == tuple(head)
        prev = GENESIS
        for row in stored:
            payload = row[PAYLOAD]
            if row[PREV_HASH] != prev or key.chain_hash(prev, payload.encode()) != row[HASH]:
                break
            prev = row[HASH]
        else:
            return (len(stored), prev) == tuple(head)
    records = [audit_from_row(row) for row in stored]
    return verify_chain(episode_id, records, head, key=key, columns=True).ok
