"""The SQL unit of work: the pathway's ``UnitOfWork`` on SQLite and PostgreSQL.

It behaves as ``InMemoryUnitOfWork`` does, which the same test suite checks on all three:
``save`` stages a change; ``commit`` writes every staged change in one transaction — the
episode row under its version (``ConcurrencyConflict`` if it moved), the observation, timer and
task rows, the audit entry with its outcome (a duplicate event id is a conflict too: the retry
then finds the stored outcome); leaving the block without ``commit`` writes nothing.

Reads before the commit are single statements, each consistent on its own, outside any
transaction. Correctness does not rest on them: the write is guarded by the version the
decision was made on, as the in-memory check at commit is. Keeping reads out of the write
transaction spares PostgreSQL a BEGIN round trip and SQLite a read lock that could not be
upgraded to a write lock once another process had committed (SQLITE_BUSY_SNAPSHOT).

Speed: statements are prepared SQL run on a ready driver cursor (``storage.queries``,
``ReadyConnections``), and ``get_episode`` reads one row when this process already holds the
snapshot at the row's version and audit hash: the hash chain covers every decision, so an
equal (version, hash) means an equal episode. A snapshot is rebuilt (one statement: row, timers
and tasks) only when another writer moved the episode. A decision thus costs three round trips
on PostgreSQL: the outcome lookup, the episode head, and the change itself.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Self

from sqlalchemy.engine import Engine

from pathway.audit import AuditKey, AuditRecord, process_key
from pathway.errors import EpisodeNotFound
from pathway.model import PENDING, Episode, Observation
from pathway.unit_of_work import Change, DueTimer, Outcome
from storage.backends import Backend, backend_for
from storage.database import create_engine_for, ensure_schema
from storage.reads import (
    audit_from_row,
    episode_from_row,
    observation_from_row,
    outcome_from_json,
    timer_from_row,
)
from storage.writes import change_rows


class SnapshotCache:
    """Episode snapshots this process read or committed, trusted only while the episode row
    still shows the same version and audit hash. Shared by the units of work of one factory."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._items: dict[str, Episode] = {}
        self._lock = threading.Lock()

    def get(self, episode_id: str) -> Episode | None:
        return self._items.get(episode_id)

    def put(self, episode: Episode) -> None:
        with self._lock:
            items = self._items
            items.pop(episode.id, None)
            items[episode.id] = episode
            if len(items) > self.capacity:
                del items[next(iter(items))]  # the least recently stored


class SqlUnitOfWork:
    """One use case's access to the database; a connection is held inside ``with``."""

    keeps_notices = True  # the webhook outbox (storage.outbox)

    def __init__(
        self,
        engine: Engine,
        snapshots: SnapshotCache | None = None,
        connections: ReadyConnections | None = None,
        *,
        held: tuple[Any, Any] | None = None,
        audit_key: AuditKey | None = None,
    ) -> None:
        """``held``: a pooled connection (proxy, driver cursor) its caller owns and will give
        back; the unit of work then runs on it and never releases it (``storage.batch``)."""
        self.engine = engine
        self.audit_key = audit_key or process_key()
        self._connections = connections or ReadyConnections(engine, keep=0)
        self._backend = self._connections.backend
        self._q = self._backend.queries
        self._snapshots = snapshots if snapshots is not None else SnapshotCache()
        self._staged: list[Change] = []
        self._held: tuple[Any, Any] | None = held  # (pooled proxy, driver cursor)
        self._bound = held is not None

    @property
    def backend(self) -> Backend:
        """What differs between SQLite and PostgreSQL for this unit of work's driver."""
        return self._backend

    def take_staged(self) -> list[Change]:
        """The changes ``save`` staged since the last commit, handed over (none stay staged)."""
        staged, self._staged = self._staged, []
        return staged

    # -- transaction ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._staged = []
        return self

    def __exit__(self, *exc: object) -> None:
        self.rollback()
        self._release()

    def commit(self) -> None:
        staged, self._staged = self._staged, []
        if not staged:
            return
        time = self._backend.time
        self._backend.write(self._connection(), [change_rows(c, time) for c in staged])
        for change in staged:
            self._snapshots.put(change.decision.episode)

    def rollback(self) -> None:
        self._staged = []

    def save(self, change: Change) -> None:
        self._staged.append(change)

    # -- reads ------------------------------------------------------------------------------

    def get_episode(self, episode_id: str) -> Episode:
        for change in reversed(self._staged):
            if change.decision.episode.id == episode_id:
                return change.decision.episode
        db, q = self._connection(), self._q
        cached = self._snapshots.get(episode_id)
        if cached is not None:
            head = db.execute(q.episode_head, {"id": episode_id}).fetchone()
            if head is None:
                raise EpisodeNotFound(episode_id)
            if head[0] == cached.version and head[1] == cached.audit_hash:
                return cached
        row = db.execute(q.episode_snapshot, {"id": episode_id}).fetchone()
        if row is None:
            raise EpisodeNotFound(episode_id)
        episode = episode_from_row(row)
        self._snapshots.put(episode)
        return episode

    def find_outcome(self, event_id: str) -> Outcome | None:
        for change in self._staged:
            if change.outcome.event_id == event_id:
                return change.outcome
        row = self._connection().execute(self._q.find_outcome, {"event_id": event_id}).fetchone()
        return None if row is None else outcome_from_json(row[0], row[1:])

    def due_timers(
        self, now: datetime, limit: int, episode_id: str | None = None
    ) -> list[DueTimer]:
        db, q = self._connection(), self._q
        params: dict[str, Any] = {"now": self._backend.time(now), "limit": limit}
        if episode_id is None:
            rows = db.execute(q.due_timers, params).fetchall()
        else:
            for change in reversed(self._staged):
                if change.decision.episode.id == episode_id:
                    return due_in(change.decision.episode, now, limit)
            rows = db.execute(q.due_timers_of_episode, {**params, "episode_id": episode_id})
            rows = rows.fetchall()
            if not rows and db.execute(q.episode_head, {"id": episode_id}).fetchone() is None:
                raise EpisodeNotFound(episode_id)
        return [DueTimer(row[0], timer_from_row(row[1:])) for row in rows]

    def audit_records(self, episode_id: str) -> list[AuditRecord]:
        rows = self._connection().execute(self._q.audit_records, {"id": episode_id})
        return [audit_from_row(row) for row in rows.fetchall()]

    def observations(self, episode_id: str) -> list[Observation]:
        rows = self._connection().execute(self._q.observations, {"id": episode_id})
        return [observation_from_row(row) for row in rows.fetchall()]

    def episode_ids(self) -> list[str]:
        return [row[0] for row in self._connection().execute(self._q.episode_ids, {}).fetchall()]

    def episodes_of_patient(self, patient_ref: str, pathway: str) -> list[Episode]:
        params = {"patient_ref": patient_ref, "pathway": pathway}
        rows = self._connection().execute(self._q.episodes_of_patient, params).fetchall()
        staged = [
            c.decision.episode.id
            for c in self._staged
            if c.decision.episode.patient_ref == patient_ref
            and c.decision.episode.pathway == pathway
        ]
        return [self.get_episode(i) for i in dict.fromkeys([*(r[0] for r in rows), *staged])]

    # -- connection -------------------------------------------------------------------------

    def connection(self) -> Any:
        """The driver cursor (sqlite3 or psycopg) this unit of work runs its statements on."""
        return self._connection()

    def _connection(self) -> Any:
        if self._held is None:
            self._held = self._connections.take()
        return self._held[1]

    def _release(self) -> None:
        if self._held is not None and not self._bound:
            held, self._held = self._held, None
            self._connections.give(held)


class ReadyConnections:
    """Driver connections kept checked out of the engine's pool, prepared for units of work.

    Taking one from SQLAlchemy's pool and giving it back costs 10–30 µs (events, reset, and on
    PostgreSQL switching autocommit on and off): as much as a statement. Up to ``keep`` idle
    connections wait here instead, each with its cursor (a psycopg cursor costs ~6 µs to make);
    the rest go back to the pool. No unit of work leaves a transaction open between its calls,
    so an idle connection is always clean.
    """

    def __init__(self, engine: Engine, keep: int = 4) -> None:
        self.engine = engine
        self.backend = backend_for(engine.dialect.name)
        self.keep = keep
        self._idle: list[tuple[Any, Any]] = []

    def take(self) -> tuple[Any, Any]:
        try:
            return self._idle.pop()
        except IndexError:
            pooled = self.engine.raw_connection()
            self.backend.checkout(pooled.driver_connection)
            return pooled, pooled.driver_connection.cursor()

    def give(self, held: tuple[Any, Any]) -> None:
        if len(self._idle) < self.keep and self.backend.is_clean(held[1].connection):
            self._idle.append(held)
        else:
            self._return(held)

    def close(self) -> None:
        self.keep = 0
        while self._idle:
            self._return(self._idle.pop())

    def _return(self, held: tuple[Any, Any]) -> None:
        pooled, cursor = held
        try:
            cursor.close()
            self.backend.checkin(pooled.driver_connection)
        except Exception:
            pooled.invalidate()  # a broken connection does not go back to the pool
        pooled.close()


def due_in(episode: Episode, now: datetime, limit: int) -> list[DueTimer]:
    """The episode's pending timers due by ``now``, in firing order, read off its snapshot."""
    due = [
        DueTimer(episode.id, t) for t in episode.timers if t.status == PENDING and t.due_at <= now
    ]
    due.sort(key=lambda d: (d.timer.due_at, d.timer.order))
    return due[:limit]


class SqlUnitOfWorkFactory:
    """Makes units of work on one engine, sharing its connections and its snapshot cache."""

    def __init__(self, engine: Engine, audit_key: AuditKey | None = None) -> None:
        """``audit_key``: the configured key (``carepath.bootstrap`` always gives it); without
        one, this process's random key, for throwaway databases such as a test's."""
        self.engine = engine
        self.audit_key = audit_key or process_key()
        self.snapshots = SnapshotCache()
        self.connections = ReadyConnections(engine)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine, self.snapshots, self.connections, audit_key=self.audit_key
        )

    def dispose(self) -> None:
        self.connections.close()
        self.engine.dispose()


def uow_factory(url: str, audit_key: AuditKey | None = None) -> SqlUnitOfWorkFactory:
    """Open ``url`` once (migrating a fresh database) and return a zero-argument factory.

    Storage needs no definition: it stores what the engine decided.
    """
    engine = create_engine_for(url)
    ensure_schema(engine)
    return SqlUnitOfWorkFactory(engine, audit_key)
