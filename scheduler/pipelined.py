"""A PostgreSQL sweep whose batch writes overlap the deciding of the next batch.

One worker alternates two kinds of work: deciding a batch (Python: the engine, the audit
entries, the rows) and writing it (mostly the database server's time: the group's statements
and the commit). Sequentially, each waits for the other; on a machine with a second core the
server could be writing batch N while this process decides batch N+1. ``pipelined_sweep`` does
exactly that: batch N's flush, release and commit run in one helper thread, on batch N's own
connection and transaction, while the main thread claims and decides N+1 on another; N is
settled (its snapshots cached, or redone carefully if its group failed) before N+1's writes are
handed over, so at most one batch is in flight.

Nothing about exactly-once changes: N's episodes stay claimed under their lease until N
commits, so N+1 never holds one of them; every write is still guarded by the version the
decision was made on and each firing's event id is unique; a failed group rolls back whole and
is redone with a savepoint per timer, as in ``TimerWorker._fire_batch``. A claim that comes back
empty while a batch is in flight settles it and claims once more, so whatever that batch made
due is fired in the same sweep, as sequentially. SQLite is never pipelined: its single writer
would make the next batch wait for the one in flight.

Opt-in (``TimerWorker.pipelined``), because measured it does not pay here: 4 interleaved A/B
pairs of 33,000 timers in one process (one worker, 2 shared cores, load 3–4) gave a median
+6 % before migration 0012 and −13 % after it (7.0k/s against 8.0k/s sequential), once a
firing wrote one row fewer: the server's part left to hide is smaller than what the helper
thread costs in GIL hand-offs. It may pay where the database has a host of its own.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.batch import BatchFailed, BatchUnitOfWork

if TYPE_CHECKING:
    from scheduler.worker import TimerWorker

log = logging.getLogger("carepath.scheduler")


@dataclass
class InFlight:
    """A decided batch whose writes and commit are being done by the helper thread."""

    held: tuple[Any, Any]
    stack: ExitStack  # its open transaction
    uow: BatchUnitOfWork
    episode_ids: list[str]
    now: datetime
    fired: int
    done: Future[str | None] | None = None  # None: committed; else why the group failed


def pipelined_sweep(worker: TimerWorker, now: datetime, pool: ThreadPoolExecutor) -> int:
    """Claim → decide → (write while the next is decided), until nothing is due."""
    fired, pending = 0, None
    try:
        while not worker.stopping:
            claimed = worker._claim(now)
            if not claimed:
                if pending is None:
                    break
                fired += settle(worker, pending)  # it may have made more due: claim again
                pending = None
                continue
            started = decide(worker, claimed, now)
            if pending is not None:
                fired += settle(worker, pending)
                pending = None
            if isinstance(started, int):  # decided and written carefully already
                fired += started
                continue
            started.done = pool.submit(write, worker, started)
            pending = started
    finally:
        if pending is not None:
            fired += settle(worker, pending)
    return fired


def decide(worker: TimerWorker, episode_ids: list[str], now: datetime) -> InFlight | int:
    """Open the batch's transaction and fire its timers with every write deferred; if that
    fails, roll back and redo it carefully at once (returning how many fired)."""
    connections = worker.factory.connections
    held = connections.take()
    stack = ExitStack()
    try:
        stack.enter_context(worker.claims.transaction(held[1]))
        uow = BatchUnitOfWork(worker.factory, held, deferred=True)
        uow.preload(episode_ids)
        fired = 0
        for episode_id in episode_ids:
            if not worker.stopping:
                fired += worker._fire_episode(uow, held[1], episode_id, now, strict=True)
    except BatchFailed as exc:
        stack.__exit__(type(exc), exc, exc.__traceback__)  # rolled back
        log.info("batch of %d episodes redone carefully: %s", len(episode_ids), exc)
        try:
            return worker._fire_in(held, episode_ids, now, deferred=False)
        finally:
            connections.give(held)
    except BaseException as exc:
        stack.__exit__(type(exc), exc, exc.__traceback__)
        connections.give(held)
        raise
    return InFlight(held, stack, uow, episode_ids, now, fired)


def write(worker: TimerWorker, batch: InFlight) -> str | None:
    """In the helper thread: the group's writes, the claims released, the commit. Returns
    None when committed, or why the group failed (rolled back, to be redone carefully)."""
    db = batch.held[1]
    try:
        try:
            released = batch.uow.flush(release_for=worker.id)
            rest = [e for e in batch.episode_ids if e not in released]
            if rest:
                worker.claims.release_many(db, rest, worker.id)
        except BaseException as exc:
            batch.stack.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, BatchFailed):
                return str(exc)
            raise
        batch.stack.close()  # commit
        return None
    finally:
        worker.factory.connections.give(batch.held)


def settle(worker: TimerWorker, batch: InFlight) -> int:
    """Wait for the batch in flight: cache what it committed, or redo it carefully."""
    assert batch.done is not None
    failed = batch.done.result()  # a commit that failed for another reason raises here
    if failed is not None:
        log.info("batch of %d episodes redone carefully: %s", len(batch.episode_ids), failed)
        with worker.claims.held_connection() as held:
            return worker._fire_in(held, batch.episode_ids, batch.now, deferred=False)
    for episode in batch.uow.written.values():  # committed: now the cache may trust them
        worker.factory.snapshots.put(episode)
    return batch.fired
