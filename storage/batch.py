"""Firing many timers in one database transaction, with a savepoint per timer (the scheduler's
unit of work; storage's, because it writes as ``SqlUnitOfWork`` does, inside its caller's
transaction).

One transaction per timer tops out near 0.9k timers/s on this machine; a batch of a hundred
in one transaction goes far faster. ``BatchUnitOfWork`` is the SQL unit of work bound to an
open transaction: each use case's ``commit()`` writes its changes (the decision and those on the
episodes it enrols or closes) inside one savepoint, so one bad episode rolls back alone and the
batch goes on. Snapshots enter the shared cache only when the outer transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson

from pathway.model import Episode
from pathway.unit_of_work import DueTimer, Outcome
from pathway.usecases import timer_event_episode
from storage.batch_arrays import write_group_arrays
from storage.columns import to_json
from storage.group_writes import GroupFailed, write_group
from storage.outbox import notices_due
from storage.queries import SQLITE
from storage.reads import episode_from_row
from storage.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory, due_in
from storage.writes import ChangeRows, change_rows


class BatchUnitOfWork(SqlUnitOfWork):
    """A unit of work whose commits are part of a transaction its caller owns.

    Two modes. *Careful*: each ``commit()`` writes its changes inside one savepoint, so one bad
    episode rolls back alone, and a decision is never written without the enrolment it caused.
    *Deferred* (both backends): ``commit()`` only queues the changes, and ``flush()`` writes
    them all in a handful of statements (``storage.group_writes``: one per statement kind, not
    six per decision); if any write fails (another writer moved an episode, a timer already
    applied), ``flush`` raises ``BatchFailed``, the caller rolls the whole batch back and
    replays it in careful mode.

    After its first write to an episode the batch holds that row (PostgreSQL's row lock, or
    SQLite's single writer) until it commits, so the snapshot it wrote is the truth: later
    firings on that episode read it from memory. A timer's outcome needs no lookup either: a
    timer already applied is no longer pending in the snapshot, and an outcome written
    concurrently fails the batch's write on the outcome's primary key.
    """

    def __init__(
        self,
        factory: SqlUnitOfWorkFactory,
        held: tuple[Any, Any],
        *,
        deferred: bool = False,
        trusted: bool = False,
    ) -> None:
        """``trusted`` (deferred only; ``storage.group``): read nothing per decision that the
        group's write checks anyway — no outcome lookup (an event id already applied fails the
        write on its unique key) and no head check of a cached snapshot (the episode write is
        guarded by the version and audit hash it was decided on; a snapshot the group only read
        is checked at ``flush``, all in one statement). Any such failure fails the group, which
        is then redone carefully, with every read."""
        super().__init__(
            factory.engine,
            factory.snapshots,
            factory.connections,
            held=held,
            audit_key=factory.audit_key,
        )
        self.deferred = deferred
        self.trusted = trusted and deferred
        self.probes_found = 0  # outcome lookups that found one, head checks that did not match
        self._unchecked: dict[str, Episode] = {}  # trusted snapshots, checked at flush
        self.written: dict[str, Episode] = {}  # cached once the outer transaction commits
        self._queue: list[ChangeRows] = []

    def preload(self, episode_ids: list[str]) -> None:
        """Read the snapshots of a whole claim in one statement. Only inside the transaction
        that will write them: it holds them (row locks, or SQLite's write lock) or the
        version guard of the write fails the batch.

        With no webhook subscription, the batch's decisions work out no notice (``commit``
        would drop them all): on SQLite, whose write lock the batch holds, none can appear
        before it commits; on PostgreSQL one added meanwhile gets the notices of the batches
        that begin after it, as ``storage.outbox.Subscribed`` allows."""
        db, q = self.connection(), self.backend.queries
        if q is SQLITE:
            rows = db.execute(q.episode_snapshots, {"ids": to_json(episode_ids)}).fetchall()
        else:
            with orjson_cursor(db) as cursor:
                rows = cursor.execute(q.episode_snapshots, {"ids": episode_ids}).fetchall()
        self.adopt(rows)

    def adopt(self, rows: list[Any]) -> None:
        """Take snapshot rows already read (``preload``'s, or the claim's on PostgreSQL,
        ``ClaimStore.claim_snapshots``) as the batch's. A row read before this transaction is
        guarded as one read in it is: the batch's write of that episode is guarded by the
        version and audit hash it was decided on, so an episode moved meanwhile fails the
        batch (redone carefully, with every read)."""
        db = self.connection()
        self.keeps_notices = notices_due(self.backend, db)
        written = self.written
        for row in rows:
            episode = episode_from_row(row)
            written[episode.id] = episode

    def commit(self) -> None:
        backend, db = self.backend, self.connection()
        staged = self.take_staged()
        subscribed = backend.subscribed
        if subscribed is not None and any(c.notices for c in staged) and not subscribed.check(db):
            for change in staged:  # nobody subscribed: no outbox rows, so no payload to build
                change.notices = ()
        rows = [change_rows(change, backend.time) for change in staged]
        if self.deferred:
            self._queue.extend(rows)
        elif rows:
            with backend.savepoint(db):  # a decision and its enrolments: all or none
                for one in rows:
                    backend.write_change(db, one)
        for change in staged:
            episode = change.decision.episode
            self.written[episode.id] = episode

    def flush(self, release_for: str | None = None) -> set[str]:
        """Write the queued changes in a handful of statements (PostgreSQL: one per row kind,
        ``storage.batch_arrays``; SQLite: ``storage.group_writes``); BatchFailed if any did
        not apply. PostgreSQL also releases worker ``release_for``'s claims on the episodes it
        updates and returns their ids (the caller releases the others)."""
        queue, self._queue = self._queue, []
        self._check_unwritten({r.episode_id for r in queue})
        try:
            if self.backend.dialect == "postgresql":
                return write_group_arrays(self.backend, self.connection(), queue, release_for)
            write_group(self.backend, self.connection(), queue)
        except GroupFailed as exc:
            raise BatchFailed(str(exc)) from exc
        return set()

    def _check_unwritten(self, written: set[str]) -> None:
        """A trusted group's cached snapshots that no write of it guards (an episode a decision
        only read: a linked one, say) are checked in one statement; BatchFailed if one moved."""
        unchecked, self._unchecked = self._unchecked, {}
        read = {i: e for i, e in unchecked.items() if i not in written}
        if not read:
            return
        ids: Any = to_json(list(read)) if self.backend.queries is SQLITE else list(read)
        rows = self.connection().execute(self.backend.queries.episode_heads, {"ids": ids})
        heads = {row[0]: (row[1], row[2]) for row in rows.fetchall()}
        for episode_id, episode in read.items():
            if heads.get(episode_id) != (episode.version, episode.audit_hash):
                raise BatchFailed(f"episode {episode_id} moved under the batch (read, not written)")

    def get_episode(self, episode_id: str) -> Episode:
        held = self.written.get(episode_id)
        if held is not None:
            return held
        cached = self._snapshots.get(episode_id)
        if self.trusted and cached is not None:
            self._unchecked[episode_id] = cached  # checked at flush (see there)
            return cached
        episode = super().get_episode(episode_id)
        if cached is not None and episode is not cached:
            self.probes_found += 1
        return episode

    def find_outcome(self, event_id: str) -> Outcome | None:
        timer_of = timer_event_episode(event_id)
        if timer_of is not None and (self.deferred or timer_of in self.written):
            return None  # the snapshot says whether this timer is pending (see the class doc)
        if self.trusted:
            for change in self._staged:
                if change.outcome.event_id == event_id:
                    return change.outcome
            return None  # a stored one fails the group's write on its unique key (see __init__)
        found = super().find_outcome(event_id)
        if found is not None:
            self.probes_found += 1
        return found

    def episodes_of_patient(self, patient_ref: str, pathway: str) -> list[Episode]:
        """Those the database holds, and those this batch wrote or queued (deferred: unsent)."""
        found = super().episodes_of_patient(patient_ref, pathway)
        seen = {e.id for e in found}
        return found + [
            e
            for e in self.written.values()
            if e.id not in seen and e.patient_ref == patient_ref and e.pathway == pathway
        ]

    def due_timers(
        self, now: datetime, limit: int, episode_id: str | None = None
    ) -> list[DueTimer]:
        if episode_id is not None:
            return due_in(self.get_episode(episode_id), now, limit)
        return super().due_timers(now, limit, episode_id)


@contextmanager
def orjson_cursor(db: Any) -> Iterator[Any]:
    """A new cursor on ``db``'s psycopg connection whose JSON columns are parsed by orjson (the
    batch read's facts, timers and tasks: ~2.5x faster than psycopg's default, the stdlib's).
    That cursor only: the connection's other readers keep the default. Every JSON value it
    reads was written by orjson (``storage.writes``) or built by PostgreSQL from typed columns,
    so both parsers read it alike."""
    from psycopg.types.json import set_json_loads

    cursor = db.connection.cursor()
    try:
        set_json_loads(orjson.loads, cursor)
        yield cursor
    finally:
        cursor.close()


class BatchFailed(Exception):
    """A deferred batch could not be written as a whole: roll back and redo it carefully."""
