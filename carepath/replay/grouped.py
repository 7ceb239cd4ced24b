"""``replay --database``: scenarios decided in memory and written in bulk, on every core.

A replayed scenario opens a new episode, so what it decides does not depend on the database:
it runs on the in-memory unit of work (``carepath.replay.decided``), and its changes become the
very rows the SQL unit of work would have written (``storage.writes.change_rows``). A chunk of
up to ``per_transaction`` scenarios is then written in one transaction — one ``executemany`` per
table for the chunk, each scenario all or nothing (``storage.bulk_load``) — and each scenario's
chain is verified from the stored rows inside that transaction (``bulk_load.verify_stored``),
so the output's ``audit_verified`` says what the database holds (the chunk's chains read
back in two statements, ``bulk_load.stored_chains``).

A large cohort is split over worker processes (as ``replay`` without a database is), each
deciding a chunk and then writing it on its own connection: only the outputs come back, never
the rows (pickling them costs ~470 µs an episode), and while one worker writes (SQLite: holding
a lock the workers take turns on) the other decides its next chunk.
An in-memory SQLite database cannot be shared between processes: it is replayed here. The
workers are ``carepath.replay.workers``': one that dies raises ``BrokenProcessPool``, and a
Ctrl-C lets the chunks being written end (each all or nothing) before the replay stops.
A new SQLite file is built aside (``carepath.replay.into_database``, ``storage.new_file``): its
engine ``is_building``, and the workers open it the same way (journal in memory, no fsync).

A file that is not a scenario, or whose patient cannot be opened, writes nothing; every other
scenario is written, and then the first such error is raised. ``replay_decision_by_decision``
is the SQL unit of work path this replaces (a savepoint per decision); a scenario that would
need the database to decide (see ``decided``) still goes through it.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from carepath.replay.decided import Decided, decide_all
from carepath.replay.runner import ReplayResult, replay
from carepath.replay.scenario import Scenario
from carepath.replay.workers import in_workers
from pathway.audit import AuditKey
from pathway.errors import InvalidScenario, PathwayError
from pathway.unit_of_work import Outcome
from pathway.usecases import DefinitionRegistry
from storage.batch import BatchUnitOfWork
from storage.bulk_load import Chain, load_units, stored_chains, verify_stored
from storage.database import create_engine_for, is_building, is_memory
from storage.outbox import any_subscription
from storage.unit_of_work import SqlUnitOfWorkFactory

PER_TRANSACTION = 250  # scenarios (~2,000 decisions) per transaction and per worker task
CHUNKS_PER_WORKER = 4  # at least: the last chunks leave a worker idle, so not too large
TAIL_CHUNK = 100  # scenarios: the last chunks shrink to this, no less: a chunk's write costs
# ~5 ms of CPU besides its rows (the pages its commit writes), measured (``chunk_sizes``)
PARALLEL_FROM = 200  # scenarios: fewer are replayed in this process (no pool to start)

Done = tuple[list[ReplayResult], list[PathwayError]]  # a chunk's results, and its errors


class ReplayUnitOfWork(BatchUnitOfWork):
    """The batch unit of work of a replay, which looks up no stored outcome: every event id a
    replay sends is new (random, or derived from an episode id it made just now, as enrolments'
    and timers' are), so the lookup (one statement per event) could only miss; a duplicate
    would still be refused by the outcome's primary key."""

    def find_outcome(self, event_id: str) -> Outcome | None:
        return None


def replay_grouped(*args: Any, **kwargs: Any) -> list[ReplayResult]:
    """``replay_all`` (the same arguments): the results in order, and the first scenario's
    error raised once all the others are written."""
    return raise_first(replay_all(*args, **kwargs))


def raise_first(done: Done) -> list[ReplayResult]:
    results, errors = done
    if errors:
        raise errors[0]
    return results


def replay_all(
    scenarios: Sequence[Scenario | str],
    definitions: DefinitionRegistry,
    factory: SqlUnitOfWorkFactory,
    per_transaction: int = PER_TRANSACTION,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = 1,
) -> Done:
    """Replay scenarios (or scenario files, loaded by the workers) into the database: the
    results in order and the scenarios' errors in order. ``workers`` processes (``None``: one
    per core); ``progress(done, total)`` after each transaction."""
    workers = _workers(workers, len(scenarios), factory)
    chunks, first = [], 0
    for size in chunk_sizes(len(scenarios), per_transaction, workers):
        chunks.append(scenarios[first : first + size])
        first += size
    results: list[ReplayResult] = []
    errors: list[PathwayError] = []
    done = 0
    for chunk, (chunk_results, chunk_errors) in zip(
        chunks, _replayed(chunks, definitions, factory, workers), strict=True
    ):
        results += chunk_results
        errors += chunk_errors
        done += len(chunk)
        if progress is not None:
            progress(done, len(scenarios))
    return results, errors


def chunk_sizes(total: int, per_transaction: int, workers: int) -> list[int]:
    """How many scenarios each chunk takes, in order. One process: ``per_transaction`` each.
    Workers: at most ``CHUNKS_PER_WORKER`` per worker's share, a first chunk a quarter of
    that (``TAIL_CHUNK`` at least), so that the write turn is first taken soon rather than
    once every worker has decided a whole chunk, and the last ones shrinking (each at most a
    ``2 × workers``-th of what is left, ``TAIL_CHUNK`` at least), so that a worker deciding or
    writing the last large chunk leaves the others idle for less of the end (measured with
    equal chunks: 10–16 % of the workers' time idle, 2,000 files on 2 workers; 6–8 % so, for
    ~1.5 % more CPU: 12 transactions instead of 8, bench/profile_replay_turns.py
    --tail-chunk)."""
    size = max(1, per_transaction)
    if workers <= 1:
        return [min(size, total - i) for i in range(0, total, size)]
    size = min(size, -(-total // (CHUNKS_PER_WORKER * workers)))
    sizes, left = [], total
    while left > 0:
        share = max(size // 4, 1) if not sizes else -(-left // (2 * workers))
        sizes.append(min(left, size, max(share, TAIL_CHUNK)))
        left -= sizes[-1]
    return sizes


def replay_chunk(
    chunk: Sequence[Scenario | str],
    definitions: DefinitionRegistry,
    factory: SqlUnitOfWorkFactory,
    notices: bool = True,
    turn: AbstractContextManager[Any] | None = None,
) -> Done:
    """Decide a chunk in memory, then write it in one transaction. ``notices=False``: decided
    without webhook notices, as no subscription existed when the replay began; should one
    exist by the time of the write, the chunk is decided again with them. ``turn``: held
    while writing (the workers' turns at SQLite's one write lock), and let go before the
    chains read back in the transaction are checked (the check writes nothing, and the other
    worker may write meanwhile; with the episode rows built while deciding, a turn is ~15 %
    shorter, measured). The cyclic garbage collector pauses meanwhile (as in
    ``storage.group``): the chunk's decided rows stay alive until they are written, so each
    collection in between only scanned them again."""
    key, time = factory.audit_key, factory.connections.backend.time
    collecting = gc.isenabled()
    gc.disable()
    try:
        decided = decide_all(chunk, definitions, key, time, notices)
        redo = None if notices else (lambda: decide_all(chunk, definitions, key, time, True))
        with turn if turn is not None else nullcontext():
            done, stored = _transaction(decided, definitions, factory, redo)
        _verify_all(stored, key)  # from the rows read in the transaction: the turn is free
        return done
    finally:
        if collecting:
            gc.enable()


def _replayed(
    chunks: list[Sequence[Scenario | str]],
    definitions: DefinitionRegistry,
    factory: SqlUnitOfWorkFactory,
    workers: int,
) -> Iterator[Done]:
    """Each chunk replayed and written, in order: here, or by a pool of forked workers."""
    notices = _subscribed(factory)
    if workers <= 1:
        for chunk in chunks:
            yield replay_chunk(chunk, definitions, factory, notices)
        return
    import multiprocessing

    global _POOL
    url = factory.engine.url.render_as_string(hide_password=False)
    # SQLite has one writer: workers take turns on a lock of their own, handed over at once,
    # rather than polling for SQLite's (its busy handler sleeps up to 100 ms between tries).
    turn = (
        multiprocessing.get_context("fork").Lock()
        if factory.connections.backend.dialect == "sqlite"
        else None
    )
    _POOL = (definitions, url, factory.audit_key, notices, turn, is_building(factory.engine))
    factory.connections.close()  # no connection of this process crosses the fork
    gc.freeze()  # no worker's collection touches (and so copies) the pages of these objects
    try:
        yield from in_workers(_in_worker, chunks, workers)  # each disposes of its engine at exit
    finally:
        gc.unfreeze()


_POOL: tuple[Any, ...] | None = None  # (definitions, URL, audit key, notices, turn, building)
_WORKER_FACTORY: SqlUnitOfWorkFactory | None = None  # a worker's own engine and connections


def _in_worker(chunk: Sequence[Scenario | str]) -> Done:
    global _WORKER_FACTORY
    assert _POOL is not None
    definitions, url, key, notices, turn, building = _POOL
    if _WORKER_FACTORY is None:
        from multiprocessing.util import Finalize

        _WORKER_FACTORY = SqlUnitOfWorkFactory(create_engine_for(url, building), key)
        Finalize(_WORKER_FACTORY, _WORKER_FACTORY.dispose, exitpriority=10)
    return replay_chunk(chunk, definitions, _WORKER_FACTORY, notices, turn)


def _workers(asked: int | None, total: int, factory: SqlUnitOfWorkFactory) -> int:
    """How many processes: one for a small replay or an in-memory database (which another
    process cannot open), else as asked (``None``: one per core)."""
    if total < PARALLEL_FROM or is_memory(factory.engine.url):
        return 1
    return asked if asked is not None else (os.cpu_count() or 1)


def _subscribed(factory: SqlUnitOfWorkFactory) -> bool:
    held = factory.connections.take()
    try:
        return any_subscription(held[1])
    finally:
        factory.connections.give(held)


def _transaction(
    decided: list[Decided],
    definitions: DefinitionRegistry,
    factory: SqlUnitOfWorkFactory,
    redo: Callable[[], list[Decided]] | None = None,
) -> tuple[Done, list[tuple[Decided, Chain]]]:
    """Write decided scenarios in one transaction, each all or nothing, reading their chains
    back there: the results of those written, in order, and the others' errors; and each
    written scenario with its chain as stored, for ``_verify_all``."""
    held = factory.connections.take()
    backend, db = factory.connections.backend, held[1]
    uow = ReplayUnitOfWork(factory, held)  # for a scenario that needs the database
    results: list[ReplayResult] = []
    errors: list[PathwayError] = []
    read_back: list[tuple[Decided, Chain]] = []
    try:
        with backend.transaction(db):
            if redo is not None and any_subscription(db):  # one appeared: notices are due
                decided = redo()
            ready = [d for d in decided if d.result is not None]
            failed = load_units(backend, db, [d.rows for d in ready])
            why_not = dict(zip(map(id, ready), failed, strict=True))
            written = [d.episode_id for d in ready if why_not[id(d)] is None]
            stored = stored_chains(backend, db, written)
            for one in decided:
                if one.scenario is not None:
                    try:
                        results.append(replay(one.scenario, definitions, _same(uow)))
                    except InvalidScenario as exc:  # at its opening: nothing of it written
                        errors.append(exc)
                elif one.result is None:
                    assert one.error is not None
                    errors.append(one.error)
                elif (why := why_not[id(one)]) is not None:
                    errors.append(PathwayError(f"{one.source}: not stored: {why}"))
                else:
                    read_back.append((one, stored[one.episode_id]))
                    results.append(one.result)
    finally:
        factory.connections.give(held)
    for episode in uow.written.values():  # committed: now the cache may trust them
        factory.snapshots.put(episode)
    return (results, errors), read_back


def _verify_all(read_back: list[tuple[Decided, Chain]], key: AuditKey) -> None:
    for decided, chain in read_back:
        _verified(decided, chain, key)


def _verified(decided: Decided, chain: Chain, key: AuditKey) -> None:
    """The scenario's chain, from the rows just stored: the output says what they hold."""
    episode_id = decided.episode_id
    stored, head = chain
    written = [rows for rows in decided.rows if rows.own["id"] == episode_id]
    assert decided.result is not None
    decided.result.output["audit_verified"] = verify_stored(
        episode_id, stored, head, written, key, decided.linked
    )


def replay_decision_by_decision(
    scenarios: Iterable[Scenario],
    definitions: DefinitionRegistry,
    factory: SqlUnitOfWorkFactory,
    per_transaction: int = PER_TRANSACTION,
) -> list[ReplayResult]:
    """The SQL unit of work path: each decision in a savepoint of its own, ``per_transaction``
    scenarios per transaction (the reference the bulk path is checked against). The first
    scenario that cannot be opened stops the replay; those before it are committed."""
    results: list[ReplayResult] = []
    pending = list(scenarios)
    for first in range(0, len(pending), max(1, per_transaction)):
        held = factory.connections.take()
        uow = ReplayUnitOfWork(factory, held)
        error = None
        try:
            with uow.backend.transaction(held[1]):
                for scenario in pending[first : first + per_transaction]:
                    try:
                        results.append(replay(scenario, definitions, _same(uow)))
                    except InvalidScenario as exc:
                        error = exc
                        break
        finally:
            factory.connections.give(held)
        for episode in uow.written.values():  # committed: now the cache may trust them
            factory.snapshots.put(episode)
        if error is not None:
            raise error
    return results


def _same(uow: ReplayUnitOfWork) -> Callable[[], ReplayUnitOfWork]:
    """Every use case of a replay on the one unit of work of its transaction."""
    return lambda: uow
