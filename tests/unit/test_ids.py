"""Time-ordered ids (pathway.ids): shaped like uuid4().hex, sorted by the time they were made."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from pathway import usecases
from pathway.ids import POOLED, random_digits, time_ordered_id
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork
from tests.support.episode_driver import DEFS, PROFILE

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_an_id_is_32_hex_digits_like_a_uuid4() -> None:
    made = time_ordered_id(T0)
    assert len(made) == 32 and int(made, 16) >= 0 and made == made.lower()


def test_ids_sort_in_the_order_of_their_times() -> None:
    times = [T0 + timedelta(milliseconds=n) for n in (0, 1, 2, 1000, 86_400_000)]
    made = [time_ordered_id(t) for t in times]
    assert sorted(made) == made


def test_ids_made_in_the_same_millisecond_differ() -> None:
    assert len({time_ordered_id(T0) for _ in range(1000)}) == 1000


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        time_ordered_id(datetime(2026, 1, 5, 9))


def test_opened_episodes_get_ids_in_the_order_they_were_opened() -> None:
    store = InMemoryStore()
    ids = [
        usecases.open_episode(
            InMemoryUnitOfWork(store), DEFS, PROFILE, at=at, now=at, actor="t"
        ).outcome.episode_id
        for at in (T0, T0 + timedelta(seconds=1), T0 + timedelta(days=1))
    ]
    assert sorted(ids) == ids and all(len(i) == 32 for i in ids)


def test_events_given_no_id_get_ids_in_the_order_they_were_decided() -> None:
    """So that the audit log's unique event-id index appends in batch work (imports, scheduler,
    replay into a database) instead of scattering one random page per decision."""
    store = InMemoryStore()
    opened = usecases.open_episode(
        InMemoryUnitOfWork(store), DEFS, PROFILE, at=T0, now=T0, actor="t"
    )
    eid = opened.outcome.episode_id
    for n in (1, 2, 3):
        at = T0 + timedelta(minutes=n)
        usecases.observe(
            InMemoryUnitOfWork(store), DEFS, eid, {"pain_score": n}, at=at, now=at, actor="t"
        )
    with InMemoryUnitOfWork(store) as uow:
        events = [r.event_id for r in uow.audit_records(eid)]
    assert len(events) == 4 and sorted(events) == events
    assert events[0][:12] == f"{int(T0.timestamp() * 1000):012x}"


def test_ids_drawn_across_many_pool_refills_all_differ() -> None:
    drawn = [time_ordered_id(T0) for _ in range(3 * POOLED + 7)]
    assert len(set(drawn)) == len(drawn)
    assert all(len(d) == 32 and int(d, 16) >= 0 for d in drawn)


def _drawn_after_fork() -> tuple[list[str], list[str]]:
    """The next ids the parent and a forked child draw, from a pool both had half-used."""
    time_ordered_id(T0)  # the pool is filled, with ids left in it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids to the parent, then out without pytest's teardown
        try:
            os.write(write, ",".join(time_ordered_id(T0) for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = [time_ordered_id(T0) for _ in range(5)]
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    return parent, child


def test_a_forked_child_does_not_draw_the_parents_ids() -> None:
    """Forked workers (replay, the scheduler's) each make ids: none may repeat another's."""
    parent, child = _drawn_after_fork()
    assert len(child) == 5 and not set(parent) & set(child)


def test_threads_drawing_at_once_never_share_an_id() -> None:
    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(lambda _: [random_digits() for _ in range(2000)], range(8)))
    drawn = [d for batch in batches for d in batch]
    assert len(set(drawn)) == len(drawn) == 16_000
