"""A worker's lanes (``TimerWorker(lanes=n)``, PostgreSQL): claim → fire loops in threads of one
process. Every timer still fires exactly once and in due order, the batches really run in more
than one lane, every claim is released and the cyclic collector is back on afterwards; SQLite
runs one lane whatever is asked."""

from __future__ import annotations

import gc
import threading

import pytest

from pathway.usecases import DefinitionRegistry
from scheduler.worker import TimerWorker
from storage.unit_of_work import uow_factory
from tests.support.timer_cohort import (
    EXTRA,
    NOW,
    assert_each_timer_fired_once_in_order,
    busy_definition,
    open_idle_episodes,
    timer_firings,
)

DEFS = DefinitionRegistry(busy_definition())


def _claimed(factory) -> int:  # noqa: ANN001
    held = factory.connections.take()
    try:
        sql = "SELECT count(*) FROM episodes WHERE claimed_by IS NOT NULL"
        return held[1].execute(sql).fetchone()[0]
    finally:
        factory.connections.give(held)


def test_three_lanes_fire_each_timer_once_in_order_and_release_every_claim(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = uow_factory(fresh_postgres_url)
    ids = open_idle_episodes(factory, DEFS, 30)
    lanes_seen: set[int] = set()
    fire_batch = TimerWorker._fire_batch

    def recorded(self, episode_ids, now, *rows):  # noqa: ANN001, ANN002, ANN202
        lanes_seen.add(threading.get_ident())
        return fire_batch(self, episode_ids, now, *rows)

    monkeypatch.setattr(TimerWorker, "_fire_batch", recorded)
    worker = TimerWorker(factory, DEFS, batch=4, lanes=3)
    assert worker.lanes == 3
    assert worker.sweep(NOW) == 30 * (EXTRA + 1)
    assert len(lanes_seen) >= 2, "the batches all ran in one lane"
    assert gc.isenabled()
    assert _claimed(factory) == 0
    assert worker.sweep(NOW) == 0  # nothing left, nothing fired twice
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)
    factory.dispose()


def test_an_error_in_a_lane_is_raised_by_the_sweep(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = uow_factory(fresh_postgres_url)
    open_idle_episodes(factory, DEFS, 12)
    main = threading.get_ident()

    def broken(self, episode_ids, now, *rows):  # noqa: ANN001, ANN002, ANN202
        if threading.get_ident() != main:
            raise RuntimeError("lane broke")
        return 0  # the main lane claims and drops its batches: they stay claimed (leased)

    monkeypatch.setattr(TimerWorker, "_fire_batch", broken)
    with pytest.raises(RuntimeError, match="lane broke"):
        TimerWorker(factory, DEFS, batch=2, lanes=2).sweep(NOW)
    assert gc.isenabled()
    factory.dispose()


def test_sqlite_runs_one_lane(tmp_path) -> None:  # noqa: ANN001
    factory = uow_factory(f"sqlite:///{tmp_path / 'lanes.db'}")
    ids = open_idle_episodes(factory, DEFS, 5)
    worker = TimerWorker(factory, DEFS, batch=2, lanes=4)
    assert worker.lanes == 1
    assert worker.sweep(NOW) == 5 * (EXTRA + 1)
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)
    factory.dispose()
