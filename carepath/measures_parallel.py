"""One pathway's measures pass split over processes, with progress (issues 10 and 13).

The pass is CPU-bound Python on one core (reading rows, building courses, counting them); a
pathway's episodes split by id into one share per worker are independent, so each worker
(forked: the definition and wiring are inherited, not pickled) streams its own share on its
own connection and returns only its ``Tally.totals()``, a few kilobytes bounded by months,
states and rules; the parent adds them up. Each worker reads in its own snapshot: a write
landing between them can be counted by one share and not another, as with any report read
while the database changes. An in-memory SQLite database, a platform without fork, or a
pathway too small to be worth a process runs in this process.
"""

from __future__ import annotations

import multiprocessing
from datetime import datetime
from typing import TYPE_CHECKING, Any

from carepath.measure_tally import Progress, Tally, courses_on
from storage.measures import WHOLE, IdRange, episode_count, split_ids

if TYPE_CHECKING:
    from carepath.bootstrap import Wiring

MIN_SHARE = 5000  # episodes a worker must have to be worth forking it
TICK = 512  # courses between two progress ticks

_JOB: Any = None  # (wiring, report, as_of, done): what forked workers inherit


def add_every_course(
    report: Tally,
    wiring: Wiring,
    as_of: datetime,
    workers: int,
    tick: Progress | None,
) -> None:
    """Add every course of ``report``'s pathway to it, on up to ``workers`` processes."""
    global _JOB
    connections = wiring.uow_factory.connections
    definition = report.definition
    total = episode_count(connections, definition.id)
    show = tick or _quiet
    show(0, total)
    parts = min(workers, total // MIN_SHARE) if _forkable(wiring) else 1
    if parts <= 1:
        for done, course in enumerate(courses_on(connections, definition, as_of, WHOLE), 1):
            report.add(course)
            if done % TICK == 0:
                show(done, total)
        show(total, total)
        return
    shares = split_ids(connections, definition.id, total, parts)
    context = multiprocessing.get_context("fork")
    done_shared = context.Value("q", 0)
    _JOB = (wiring, report, as_of, done_shared)
    try:
        with context.Pool(len(shares)) as pool:
            pending = pool.map_async(_share, shares, chunksize=1)
            while not pending.ready():
                pending.wait(0.25)
                show(min(done_shared.value, total), total)
            for totals in pending.get():
                report.absorb(totals)
    finally:
        _JOB = None
    show(total, total)


def _share(ids: IdRange) -> tuple[Any, ...]:
    """In a worker: one share's totals, on a connection of its own."""
    from storage.unit_of_work import ReadyConnections

    wiring, parent, as_of, done = _JOB
    engine = wiring.uow_factory.engine
    engine.dispose(close=False)  # the parent's pooled connections are not this process's
    connections = ReadyConnections(engine)
    report = Tally(parent.definition, parent.lo, parent.hi)
    for n, course in enumerate(courses_on(connections, parent.definition, as_of, ids), 1):
        report.add(course)
        if n % TICK == 0:
            with done.get_lock():
                done.value += TICK
    connections.close()
    return report.totals()


def _forkable(wiring: Wiring) -> bool:
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    url = wiring.uow_factory.engine.url
    return url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")


def _quiet(done: int, total: int) -> None:
    return None
