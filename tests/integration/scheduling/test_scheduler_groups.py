"""A sweep's batch written as one group (storage.group_writes) on SQLite and PostgreSQL: the
same firings as one savepoint per timer, the careful redo only when the group fails, and a
batch's claims released in one statement."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from pathway.usecases import DefinitionRegistry
from scheduler.worker import TimerWorker
from storage.batch import BatchUnitOfWork
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
REDONE = "redone carefully"


@pytest.fixture
def factory(database_url: str):
    f = uow_factory(database_url)
    yield f
    f.dispose()


def test_a_clean_sweep_is_written_in_groups_and_never_redone(factory, caplog) -> None:
    ids = open_idle_episodes(factory, DEFS, 12)
    flushed: list[int] = []
    real = BatchUnitOfWork.flush

    def counting(self: BatchUnitOfWork, release_for: str | None = None) -> set[str]:
        flushed.append(len(self._queue))
        return real(self, release_for)

    with caplog.at_level(logging.INFO, "carepath.scheduler"), pytest.MonkeyPatch.context() as mp:
        mp.setattr(BatchUnitOfWork, "flush", counting)
        assert TimerWorker(factory, DEFS, batch=5).sweep(NOW) == 12 * (EXTRA + 1)
    assert REDONE not in caplog.text
    assert sum(flushed) == 12 * (EXTRA + 1)  # every firing went through a group
    assert max(flushed) == 5 * (EXTRA + 1)  # a batch's firings in one group
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)


def test_a_failing_timer_fails_its_group_and_the_redo_parks_it_alone(
    factory, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = open_idle_episodes(factory, DEFS, 4)
    from pathway import engine

    real = engine.decide

    def flaky(definition, episode, event, now):  # noqa: ANN001, ANN202
        if episode.id == ids[1]:
            raise RuntimeError("corrupt episode")
        return real(definition, episode, event, now)

    monkeypatch.setattr("pathway.usecases.decide", flaky)
    worker = TimerWorker(factory, DEFS, backoff=timedelta(minutes=1))
    with caplog.at_level(logging.INFO, "carepath.scheduler"):
        assert worker.sweep(NOW) == 3 * (EXTRA + 1)
    assert REDONE in caplog.text
    firings = timer_firings(factory, ids)
    assert not firings.get(ids[1])
    assert all(len(firings[i]) == EXTRA + 1 for i in ids if i != ids[1])


def test_release_many_releases_only_this_workers_claims(factory) -> None:
    ids = open_idle_episodes(factory, DEFS, 3)
    worker = TimerWorker(factory, DEFS, worker_id="w-a")
    claims = worker.claims
    with claims.connection() as db, claims.transaction(db):
        assert sorted(claims.claim(db, "w-a", NOW, 2, NOW + timedelta(minutes=1))) == sorted(
            ids[:2]
        )
        assert claims.claim(db, "w-b", NOW, 5, NOW + timedelta(minutes=1)) == [ids[2]]
    with claims.connection() as db, claims.transaction(db):
        claims.release_many(db, ids, "w-a")  # w-b's claim on ids[2] is not w-a's to release
    with factory() as uow:
        rows = uow.connection().execute("SELECT id, claimed_by FROM episodes").fetchall()
    assert {r[0]: r[1] for r in rows} == {ids[0]: None, ids[1]: None, ids[2]: "w-b"}
