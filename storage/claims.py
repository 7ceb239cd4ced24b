"""The scheduler's side of the database: claims with a lease, parking, workers and their
heartbeat, behind ``ClaimStore`` (the SQL is in ``storage/sql/queries.sql``).

A sweep claims *episodes* that have due timers, not single timers: all of an episode's due
timers then fire in one worker, in due order, so per-episode order holds however many workers
run. On PostgreSQL the claim skips rows another worker is claiming (``FOR UPDATE SKIP
LOCKED``); on SQLite the claim runs in ``BEGIN IMMEDIATE`` (one writer at a time). A claim is a
lease: past ``lease_until`` any worker may take the episode over, so a dead worker loses
nothing. Exactly-once does not rest on the claim: each firing's event id is derived from the
timer and the episode row is written under its version, so a timer applied twice is impossible.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.batch import orjson_cursor
from storage.columns import to_json
from storage.queries import POSTGRESQL
from storage.sql import QUERIES, pyformat
from storage.unit_of_work import SqlUnitOfWorkFactory

_CLAIM_PG = QUERIES["claim@postgresql"]
_CLAIM_SQLITE = QUERIES["claim@sqlite"]


def _claim_snapshots() -> str:
    """``claim_snapshots@postgresql`` with episode_snapshot's select list filled in."""
    snapshot, tail = POSTGRESQL.episode_snapshots.rsplit("FROM episodes e WHERE", 1)
    if tail.strip() != "e.id = ANY(%(ids)s)":
        raise RuntimeError(f"episode_snapshots no longer ends as expected: {tail!r}")
    return pyformat(QUERIES["claim_snapshots@postgresql"]).replace("{snapshot}", snapshot.strip())


CLAIM_SNAPSHOTS_PG = _claim_snapshots()
_RELEASE_MANY_PG = QUERIES["release_many@postgresql"]
_RELEASE_MANY_SQLITE = QUERIES["release_many@sqlite"]
RELEASE = QUERIES["release"]
RELEASE_ALL = QUERIES["release_all"]
PARK_EPISODE = QUERIES["park_episode"]
ATTEMPTS = QUERIES["attempts"]
PARK_TIMER = QUERIES["park_timer"]
REGISTER = QUERIES["register"]
HEARTBEAT = QUERIES["heartbeat"]
CLOCK_REFUSED = QUERIES["clock_refused"]
CLOCK_OK = QUERIES["clock_ok"]
STOPPED = QUERIES["stopped"]
RELEASE_STALE = QUERIES["release_stale"]
WORKERS = QUERIES["workers"]
COUNT_DUE = QUERIES["count_due"]
COUNT_PARKED = QUERIES["count_parked"]
PARKED = QUERIES["parked"]
COUNT_ESCALATIONS = QUERIES["count_escalations"]
OLDEST_DUE = QUERIES["oldest_due"]
DATABASE_NOW = QUERIES["database_now@postgresql"]


@dataclass(frozen=True, slots=True)
class ClaimQueries:
    """The statements in one driver's parameter style."""

    claim: str
    release_many: str
    release: str
    release_all: str
    park_episode: str
    park_timer: str
    attempts: str
    register: str
    heartbeat: str
    clock_refused: str
    clock_ok: str
    stopped: str
    release_stale: str
    workers: str
    count_due: str
    count_parked: str
    parked: str
    count_escalations: str
    oldest_due: str

    @classmethod
    def for_dialect(cls, dialect: str) -> ClaimQueries:
        common = {
            "release": RELEASE,
            "release_all": RELEASE_ALL,
            "park_episode": PARK_EPISODE,
            "park_timer": PARK_TIMER,
            "attempts": ATTEMPTS,
            "register": REGISTER,
            "heartbeat": HEARTBEAT,
            "clock_refused": CLOCK_REFUSED,
            "clock_ok": CLOCK_OK,
            "stopped": STOPPED,
            "release_stale": RELEASE_STALE,
            "workers": WORKERS,
            "count_due": COUNT_DUE,
            "count_parked": COUNT_PARKED,
            "parked": PARKED,
            "count_escalations": COUNT_ESCALATIONS,
            "oldest_due": OLDEST_DUE,
        }
        if dialect == "sqlite":
            return cls(claim=_CLAIM_SQLITE, release_many=_RELEASE_MANY_SQLITE, **common)
        pg = {name: pyformat(sql) for name, sql in common.items()}
        return cls(claim=pyformat(_CLAIM_PG), release_many=pyformat(_RELEASE_MANY_PG), **pg)


@dataclass(frozen=True, slots=True)
class SchedulerRows:
    """What ``scheduler status`` reports, read in one transaction (times as stored)."""

    workers: list[Any]  # (id, host, pid, started_at, last_seen, stopped_at, fired, skew, refusal)
    due: int
    oldest_due: Any
    parked: list[Any]  # (episode_id, key, due_at, attempts, last_error), the first 20
    parked_count: int
    open_escalations: int


class ClaimStore:
    """The statements a timer worker runs, on one database. Methods that take ``db`` (a driver
    cursor from ``connection()``) run inside the caller's ``transaction(db)``."""

    def __init__(self, factory: SqlUnitOfWorkFactory) -> None:
        self.factory = factory
        self.backend = factory.connections.backend
        self.dialect = factory.engine.dialect.name
        self.q = ClaimQueries.for_dialect(self.dialect)
        self._time = self.backend.time

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A driver cursor from the factory's pool, given back at the end of the block."""
        held = self.factory.connections.take()
        try:
            yield held[1]
        finally:
            self.factory.connections.give(held)

    @contextmanager
    def held_connection(self) -> Iterator[tuple[Any, Any]]:
        """The pooled connection itself (proxy, driver cursor), for a ``BatchUnitOfWork``."""
        held = self.factory.connections.take()
        try:
            yield held
        finally:
            self.factory.connections.give(held)

    def transaction(self, db: Any, immediate: bool = True) -> AbstractContextManager[None]:
        return self.backend.transaction(db, immediate)

    def register(self, db: Any, worker: str, now: datetime, host: str, pid: int) -> None:
        db.execute(
            self.q.register, {"id": worker, "now": self._time(now), "host": host, "pid": pid}
        )

    def heartbeat(self, db: Any, worker: str, now: datetime, fired: int) -> None:
        db.execute(self.q.heartbeat, {"id": worker, "now": self._time(now), "fired": fired})

    def clock_refused(
        self, db: Any, worker: str, now: datetime, skew_seconds: float, refusal: str
    ) -> None:
        params = {"id": worker, "now": self._time(now), "skew": skew_seconds, "refusal": refusal}
        db.execute(self.q.clock_refused, params)

    def clock_ok(self, db: Any, worker: str) -> None:
        db.execute(self.q.clock_ok, {"id": worker})

    def release_stale(self, db: Any, stale_before: datetime) -> None:
        db.execute(self.q.release_stale, {"stale_before": self._time(stale_before)})

    def release_all(self, db: Any, worker: str) -> None:
        db.execute(self.q.release_all, {"worker": worker})

    def stopped(self, db: Any, worker: str, now: datetime) -> None:
        db.execute(self.q.stopped, {"id": worker, "now": self._time(now)})

    def claim(self, db: Any, worker: str, now: datetime, limit: int, until: datetime) -> list[str]:
        """Claim up to ``limit`` episodes with timers due by ``now``, leased ``until``."""
        params = {
            "worker": worker,
            "now": self._time(now),
            "limit": limit,
            "until": self._time(until),
        }
        return [row[0] for row in db.execute(self.q.claim, params).fetchall()]

    def claim_snapshots(
        self, db: Any, worker: str, now: datetime, limit: int, until: datetime
    ) -> list[Any]:
        """PostgreSQL: ``claim`` and the claimed episodes' snapshot rows (``episode_from_row``)
        in one statement, one round trip instead of two; JSON parsed by orjson as the batch's
        own read is (``storage.batch.orjson_cursor``)."""
        time = self._time
        params = {"worker": worker, "now": time(now), "limit": limit, "until": time(until)}
        with orjson_cursor(db) as cursor:
            return cursor.execute(CLAIM_SNAPSHOTS_PG, params, prepare=True).fetchall()

    def release(self, db: Any, episode_id: str, worker: str) -> None:
        db.execute(self.q.release, {"id": episode_id, "worker": worker})

    def release_many(self, db: Any, episode_ids: list[str], worker: str) -> None:
        """Release a whole batch's claims in one statement (one round trip, not one each)."""
        ids: Any = to_json(episode_ids) if self.dialect == "sqlite" else episode_ids
        db.execute(self.q.release_many, {"ids": ids, "worker": worker})

    def attempts(self, db: Any, episode_id: str, key: str) -> int:
        row = db.execute(self.q.attempts, {"id": episode_id, "key": key}).fetchone()
        return int(row[0]) if row else 0

    def park(self, db: Any, episode_id: str, key: str, error: str, retry_at: datetime) -> None:
        """A failed timer: record the attempt and the error; leave the episode until ``retry_at``."""
        db.execute(self.q.park_timer, {"id": episode_id, "key": key, "error": error})
        db.execute(self.q.park_episode, {"id": episode_id, "retry_at": self._time(retry_at)})

    def database_now(self) -> datetime | None:
        """The database server's clock (PostgreSQL); None on SQLite, whose clock is the host's."""
        if self.dialect != "postgresql":
            return None
        with self.connection() as db:
            return db.execute(DATABASE_NOW).fetchone()[0]  # type: ignore[no-any-return]

    def status(self, now: datetime) -> SchedulerRows:
        """A consistent picture (one read transaction) of the scheduler's side of the database."""
        q, at = self.q, {"now": self._time(now)}
        with self.connection() as db, self.transaction(db, immediate=False):
            return SchedulerRows(
                workers=db.execute(q.workers, {}).fetchall(),
                due=int(db.execute(q.count_due, at).fetchone()[0]),
                oldest_due=db.execute(q.oldest_due, at).fetchone()[0],
                parked=db.execute(q.parked, {}).fetchall(),
                parked_count=int(db.execute(q.count_parked, {}).fetchone()[0]),
                open_escalations=int(db.execute(q.count_escalations, {}).fetchone()[0]),
            )
