"""A scheduler worker: claims episodes with due timers and fires them, exactly once.

``sweep(now)`` repeats claim → fire until nothing is due: each round claims up to ``batch``
episodes (a lease of ``lease`` seconds), fires each one's due timers in due order inside one
transaction, and releases the claims in that same transaction. The batch is first written as
one group (its snapshots read in one statement, on PostgreSQL the claim's own; its writes in a
handful, ``storage.batch``); if the group fails (a conflict, a bad timer), it is redone with a
savepoint per timer. A batch that came back full is followed at once by the next claim,
without waiting for the next sweep.

- A timer that raises is *parked*: its attempts and error are recorded, the episode is left
  alone for a backoff that doubles with each attempt (capped), and it is retried after that —
  never silently dropped. ``carepath scheduler status`` lists parked timers.
- A concurrent write to an episode (a coordinator's observation) is a ``ConcurrencyConflict``:
  the episode is released and its remaining timers fire on the next round.
- ``stop()`` (SIGTERM) lets the current timer finish, commits, releases claims and returns.
- A worker that dies loses nothing: its transaction rolls back and its leases lapse; the
  heartbeat of live workers releases the claims of workers that stopped beating sooner.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from pathway import usecases
from pathway.errors import ConcurrencyConflict
from pathway.model import PENDING, Episode, Timer
from pathway.usecases import DefinitionRegistry
from scheduler.missed import sweep_missed
from storage.batch import BatchFailed, BatchUnitOfWork
from storage.claims import ClaimStore
from storage.unit_of_work import SqlUnitOfWorkFactory

log = logging.getLogger("carepath.scheduler")

BACKOFF_CAP = timedelta(hours=1)


class TimerAppliedButPending(Exception):
    """An outcome exists for a timer's event id while the timer is still pending (a client took
    the id before ids were reserved, or the rows were edited): firing it would only answer the
    old outcome again, so the worker parks it with this error for a person to look at."""

    def __init__(self, episode_id: str, key: str, kind: str) -> None:
        event_id = usecases.timer_event_id(episode_id, key)
        super().__init__(
            f"timer {key} of episode {episode_id} is still pending but its event id "
            f"{event_id!r} already has an outcome (a {kind} event): parked, not fired; "
            "remove that outcome or cancel the timer by hand"
        )


def next_due(episode: Episode, now: datetime) -> Timer | None:
    """The episode's first pending timer due by ``now`` in firing order (due time, then the
    definition's order), or None: ``due_in(…)[0]`` without a list and a sort per firing (the
    first of equals, as ``min`` and a stable sort give)."""
    first: Timer | None = None
    for t in episode.timers:
        if t.status != PENDING or t.due_at > now:
            continue
        if (
            first is None
            or t.due_at < first.due_at
            or (t.due_at == first.due_at and t.order < first.order)
        ):
            first = t
    return first


class TimerWorker:
    """One worker process's (or thread's) view of the shared timers table."""

    def __init__(
        self,
        factory: SqlUnitOfWorkFactory,
        definitions: DefinitionRegistry,
        *,
        worker_id: str | None = None,
        batch: int = 100,
        lease: timedelta = timedelta(seconds=60),
        backoff: timedelta = timedelta(seconds=30),
        stale_after: timedelta = timedelta(seconds=60),
        lanes: int = 1,
    ) -> None:
        """``lanes`` (PostgreSQL; SQLite always runs one): claim → fire loops run at once in
        this worker, each on its own connection, so that one lane's Python (the engine, the
        rows) runs while the database writes another's batch (``sweep``)."""
        self.factory = factory
        self.definitions = definitions
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.batch, self.lease, self.backoff, self.stale_after = batch, lease, backoff, stale_after
        self.claims = ClaimStore(factory)
        self.lanes = lanes if self.claims.dialect == "postgresql" else 1
        self._gc_lock = threading.Lock()
        self._gc_holders = 0  # batches under way (lanes): the collector pauses while any is
        self._gc_resume = False
        self.grouped = True  # deferred writes first (one group per batch); False: careful only
        self._stopping = threading.Event()
        self._registered = False
        self._unreported = 0  # fired since the last heartbeat
        self.fired_total = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def heartbeat(self, now: datetime) -> None:
        """Say this worker is alive; release the claims of workers that stopped beating."""

        claims = self.claims
        with claims.connection() as db:
            with claims.transaction(db):
                if not self._registered:
                    claims.register(db, self.id, now, socket.gethostname(), os.getpid())
                    self._registered = True
                claims.heartbeat(db, self.id, now, self._unreported)
                claims.clock_ok(db, self.id)  # its clock was checked: a refusal is over
                claims.release_stale(db, now - self.stale_after)
            self._unreported = 0

    def refuse(self, now: datetime, skew_seconds: float, refusal: str) -> None:
        """Say this worker is alive but refuses to run (its host clock is off the database's,
        ``scheduler.clock``): ``now`` is the database's time. No claim is released or taken."""
        claims = self.claims
        with claims.connection() as db, claims.transaction(db):
            if not self._registered:
                claims.register(db, self.id, now, socket.gethostname(), os.getpid())
                self._registered = True
            claims.clock_refused(db, self.id, now, skew_seconds, refusal)

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def close(self, now: datetime) -> None:
        """Release every claim this worker holds and record that it stopped."""
        claims = self.claims
        with claims.connection() as db:
            with claims.transaction(db):
                claims.release_all(db, self.id)
                if self._registered:
                    claims.heartbeat(db, self.id, now, self._unreported)
                    claims.stopped(db, self.id, now)
            self._unreported = 0

    # -- sweeping ----------------------------------------------------------------------------

    def sweep(self, now: datetime) -> int:
        """Fire every timer due by ``now`` that no other worker holds; return how many fired."""
        if not self._registered:
            self.heartbeat(now)
        fired = self._drain_in_lanes(now) if self.lanes > 1 else self._drain(now)
        if not self._stopping.is_set():  # appointments whose day passed unkept (issue 11)
            sweep_missed(self.factory, self.definitions, now, actor=f"scheduler:{self.id}")
        self.fired_total += fired
        self._unreported += fired
        return fired

    def _drain(self, now: datetime) -> int:
        """Claim and fire batches until nothing is due (or stop); return how many fired."""
        fired = 0
        while not self._stopping.is_set():
            with self._gc_paused():  # the claim's snapshot rows too (see _fire_batch)
                claimed, rows = self._claim(now)
                if claimed:
                    fired += self._fire_batch(claimed, now, rows)
            if not claimed:
                break
        return fired

    def _drain_in_lanes(self, now: datetime) -> int:
        """``_drain`` in ``lanes`` threads at once. Each lane's claims exclude the others'
        episodes (the lease, ``SKIP LOCKED``) as another worker's would, so exactly-once and
        per-episode order hold as with that many workers; what the lanes share is one
        process: while one waits on the database (its batch's writes release the GIL), another
        runs the engine on its own batch. An error in a lane is raised once the others end."""
        with ThreadPoolExecutor(self.lanes - 1, thread_name_prefix="carepath-lane") as pool:
            others = [pool.submit(self._drain, now) for _ in range(self.lanes - 1)]
            fired = self._drain(now)
            return fired + sum(lane.result() for lane in others)

    @contextmanager
    def _gc_paused(self) -> Iterator[None]:
        """The cyclic collector off while any lane's batch is under way (see _fire_batch)."""
        with self._gc_lock:
            if self._gc_holders == 0:
                self._gc_resume = gc.isenabled()
                gc.disable()
            self._gc_holders += 1
        try:
            yield
        finally:
            with self._gc_lock:
                self._gc_holders -= 1
                if self._gc_holders == 0 and self._gc_resume:
                    gc.enable()

    def _claim(self, now: datetime) -> tuple[list[str], list[Any] | None]:
        """The episodes claimed, and on PostgreSQL their snapshot rows, read by the claim's
        own statement (one round trip; the batch adopts them instead of reading them again)."""
        claims, until = self.claims, now + self.lease
        with claims.connection() as db, claims.transaction(db):
            if claims.dialect == "postgresql" and self.grouped:
                rows = claims.claim_snapshots(db, self.id, now, self.batch, until)
                return [row[0] for row in rows], rows
            return claims.claim(db, self.id, now, self.batch, until), None

    def _fire_batch(
        self, episode_ids: list[str], now: datetime, rows: list[Any] | None = None
    ) -> int:
        """Fire the claimed episodes' timers in one transaction: first with the batch's reads in
        one statement and every write deferred to one group (a handful of statements); if that
        fails as a whole, again with a savepoint each. The cyclic garbage collector pauses
        meanwhile, as in ``storage.group``: the batch's snapshots and queued rows stay alive
        until its commit, so a collection in between only scans them again."""
        with self._gc_paused(), self.claims.held_connection() as held:
            if self.grouped:
                try:
                    return self._fire_in(held, episode_ids, now, deferred=True, rows=rows)
                except BatchFailed as exc:
                    log.info("batch of %d episodes redone carefully: %s", len(episode_ids), exc)
            return self._fire_in(held, episode_ids, now, deferred=False)

    def _fire_in(
        self,
        held: tuple[Any, Any],
        episode_ids: list[str],
        now: datetime,
        *,
        deferred: bool,
        rows: list[Any] | None = None,
    ) -> int:
        db = held[1]
        uow = BatchUnitOfWork(self.factory, held, deferred=deferred)
        fired = 0
        with self.claims.transaction(db):
            if deferred and rows is not None:
                uow.adopt(rows)  # read by the claim (PostgreSQL)
            elif deferred:
                uow.preload(episode_ids)
            for episode_id in episode_ids:
                if not self._stopping.is_set():
                    fired += self._fire_episode(uow, db, episode_id, now, strict=deferred)
            released = uow.flush(release_for=self.id)  # PostgreSQL: with the episode rows
            rest = [e for e in episode_ids if e not in released]
            if rest:
                self.claims.release_many(db, rest, self.id)
        for episode in uow.written.values():  # committed: now the cache may trust them
            self.factory.snapshots.put(episode)
        return fired

    def _fire_episode(
        self, uow: BatchUnitOfWork, db: Any, episode_id: str, now: datetime, *, strict: bool
    ) -> int:
        """Fire the episode's due timers in due order, including timers that firing sets.
        ``strict`` (a deferred batch): any failure fails the batch, to be redone carefully."""
        fired = 0
        actor = f"scheduler:{self.id}"
        with uow:
            episode = uow.get_episode(episode_id)
        while not self._stopping.is_set():
            timer = next_due(episode, now)
            if timer is None:
                break
            try:
                applied = usecases.fire_timer(
                    uow, self.definitions, episode_id, timer.key, timer.due_at, now=now, actor=actor
                )
            except Exception as exc:
                if strict:
                    raise BatchFailed(f"episode {episode_id}: {type(exc).__name__}") from exc
                if not isinstance(exc, ConcurrencyConflict):  # a bug or bad data: park it
                    self._park(db, episode_id, timer.key, exc, now)
                break  # a conflict: another writer moved the episode; it fires next round
            if applied.decision is None:
                if applied.outcome.repeated:  # applied, yet pending: it would be claimed forever
                    stuck = TimerAppliedButPending(episode_id, timer.key, applied.outcome.kind)
                    if strict:
                        raise BatchFailed(str(stuck))
                    self._park(db, episode_id, timer.key, stuck, now)
                break  # no longer pending (cannot loop: the snapshot said it was)
            fired += 1
            episode = uow.written.get(episode_id) or episode  # what the firing committed
        return fired

    def _park(self, db: Any, episode_id: str, key: str, exc: Exception, now: datetime) -> None:
        attempts = self.claims.attempts(db, episode_id, key)
        delay = min(self.backoff * (2**attempts), BACKOFF_CAP)
        log.warning(
            "timer %s of episode %s failed (attempt %d), retry in %s: %s",
            key,
            episode_id,
            attempts + 1,
            delay,
            type(exc).__name__,
        )
        error = f"{type(exc).__name__}: {exc}"[:2000]
        self.claims.park(db, episode_id, key, error, now + delay)
