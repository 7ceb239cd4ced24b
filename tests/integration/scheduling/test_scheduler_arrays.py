"""A timer batch written on PostgreSQL over arrays (storage.batch_arrays): the rows it writes
read back as the snapshots the batch decided, and each way a group can go wrong (an episode
moved under it, an event id already applied) fails the whole group, which is redone carefully."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from pathway.usecases import DefinitionRegistry
from scheduler.worker import TimerWorker
from storage import batch
from storage.batch_arrays import GroupFailed, last_status, write_group_arrays
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
def pg_url(fresh_postgres_url: str) -> str:
    return fresh_postgres_url


def test_rows_written_over_arrays_read_back_as_the_snapshots_the_batch_decided(pg_url) -> None:
    factory = uow_factory(pg_url)
    ids = open_idle_episodes(factory, DEFS, 7)
    assert TimerWorker(factory, DEFS, batch=3).sweep(NOW) == 7 * (EXTRA + 1)
    decided = {i: factory.snapshots.get(i) for i in ids}
    factory.dispose()
    fresh = uow_factory(pg_url)  # an empty snapshot cache: every episode read from its rows
    with fresh() as uow:
        for episode_id in ids:
            assert decided[episode_id] is not None
            assert uow.get_episode(episode_id) == decided[episode_id]
    assert_each_timer_fired_once_in_order(timer_firings(fresh, ids), EXTRA + 1)
    fresh.dispose()


def _sabotaged(monkeypatch: pytest.MonkeyPatch, sabotage) -> list[Exception]:  # noqa: ANN001
    """Run ``sabotage(db, queue)`` before the first array write only; collect what it raised."""
    raised: list[Exception] = []

    def write(backend, db, queue, release_for=None):  # noqa: ANN001, ANN202
        if not raised:
            sabotage(db, queue)
        try:
            return write_group_arrays(backend, db, queue, release_for)
        except GroupFailed as exc:
            raised.append(exc)
            raise

    monkeypatch.setattr(batch, "write_group_arrays", write)
    return raised


def test_an_episode_moved_under_the_batch_fails_the_group_and_the_redo_fires_once(
    pg_url, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = uow_factory(pg_url)
    ids = open_idle_episodes(factory, DEFS, 3)

    def move(db, queue):  # noqa: ANN001, ANN202 - another writer's version, in its place
        db.execute("UPDATE episodes SET version = version + 1 WHERE id = %s", (ids[1],))

    raised = _sabotaged(monkeypatch, move)
    with caplog.at_level(logging.INFO, "carepath.scheduler"):
        assert TimerWorker(factory, DEFS).sweep(NOW) == 3 * (EXTRA + 1)
    assert raised and "moved under the batch" in str(raised[0])
    assert REDONE in caplog.text
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)
    factory.dispose()


def test_an_event_id_already_applied_fails_the_group_and_the_redo_fires_once(
    pg_url, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = uow_factory(pg_url)
    ids = open_idle_episodes(factory, DEFS, 3)

    def apply_first(db, queue):  # noqa: ANN001, ANN202 - another writer's entry, same event id
        first = queue[0].params
        db.execute(
            "INSERT INTO audit_log (episode_id, seq, event_id, kind, actor, at, recorded_at,"
            " state_to, definition_version, payload, prev_hash, hash)"
            " SELECT id, 100000, %s, 'timer', 'x', now(), now(), state, definition_version,"
            " '{}', audit_hash, 'h' FROM episodes WHERE id = %s",
            (first["event_id"], first["id"]),
        )

    raised = _sabotaged(monkeypatch, apply_first)
    with caplog.at_level(logging.INFO, "carepath.scheduler"):
        assert TimerWorker(factory, DEFS).sweep(NOW) == 3 * (EXTRA + 1)
    assert raised and "UniqueViolation" in str(raised[0])
    assert REDONE in caplog.text
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)
    factory.dispose()


def test_a_timer_that_changed_twice_in_a_batch_is_updated_once_with_its_last_status() -> None:
    rows = [
        {"episode_id": "e1", "key": "a", "status": "fired"},
        {"episode_id": "e2", "key": "a", "status": "fired"},
        {"episode_id": "e1", "key": "a", "status": "cancelled"},
    ]
    assert last_status(rows) == [
        {"episode_id": "e1", "key": "a", "status": "cancelled"},
        {"episode_id": "e2", "key": "a", "status": "fired"},
    ]


def test_a_batch_nobody_subscribed_to_builds_no_webhook_payload(
    pg_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escalations raise notices; with no subscription no outbox row is written, so their
    payloads (a canonical JSON document each) are not even built."""
    from pathway.notifications import Notice

    factory = uow_factory(pg_url)
    ids = open_idle_episodes(factory, DEFS, 2)

    def refuse(self):  # noqa: ANN001, ANN202
        raise AssertionError("payload built for nobody")

    monkeypatch.setattr(Notice, "payload", refuse)
    assert TimerWorker(factory, DEFS).sweep(NOW) == 2 * (EXTRA + 1)
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)
    factory.dispose()


def _claimed_by(factory) -> dict[str, str | None]:  # noqa: ANN001
    with factory() as uow:
        rows = uow.connection().execute("SELECT id, claimed_by FROM episodes").fetchall()
    return {r[0]: r[1] for r in rows}


def test_a_sweep_releases_its_claims_with_its_episode_rows(pg_url) -> None:
    factory = uow_factory(pg_url)
    open_idle_episodes(factory, DEFS, 4)
    worker = TimerWorker(factory, DEFS, worker_id="w-a", batch=3)
    released: list[list[str]] = []
    real = worker.claims.release_many

    def counting(db, episode_ids, who):  # noqa: ANN001, ANN202
        released.append(list(episode_ids))
        real(db, episode_ids, who)

    worker.claims.release_many = counting  # type: ignore[method-assign]
    assert worker.sweep(NOW) == 4 * (EXTRA + 1)
    assert released == []  # every claimed episode was written, and released by that write
    assert set(_claimed_by(factory).values()) == {None}
    factory.dispose()


def test_the_write_that_releases_leaves_another_workers_claim_alone(pg_url) -> None:
    factory = uow_factory(pg_url)
    ids = open_idle_episodes(factory, DEFS, 3)
    worker = TimerWorker(factory, DEFS, worker_id="w-a")
    claims = worker.claims
    with claims.connection() as db, claims.transaction(db):
        assert len(claims.claim(db, "w-a", NOW, 10, NOW + timedelta(minutes=1))) == 3
        db.execute("UPDATE episodes SET claimed_by = 'w-b' WHERE id = %s", (ids[0],))  # took over
    assert worker._fire_batch(ids, NOW) == 3 * (EXTRA + 1)
    assert _claimed_by(factory) == {ids[0]: "w-b", ids[1]: None, ids[2]: None}
    factory.dispose()


def test_binary_copied_audit_entries_verify_and_answer_their_outcomes(pg_url, caplog) -> None:  # noqa: ANN001
    """The batch copies tasks and audit entries in binary, as a group (none redone carefully):
    the chain verifies (payload bytes, hashes), each timer's outcome reads back from its
    entry, times stay UTC-aware."""
    from carepath.audit_verify import verify_database
    from pathway.usecases import timer_event_id

    factory = uow_factory(pg_url)
    ids = open_idle_episodes(factory, DEFS, 4)
    with caplog.at_level(logging.INFO, logger="carepath.scheduler"):
        assert TimerWorker(factory, DEFS, batch=4).sweep(NOW) == 4 * (EXTRA + 1)
    assert REDONE not in caplog.text
    fresh = uow_factory(pg_url)
    report = verify_database(fresh(), None)
    assert report.ok, report.findings
    assert report.entries == 4 * (EXTRA + 2)  # each episode's opening entry, then its timers
    with fresh() as uow:
        episode = uow.get_episode(ids[0])
        assert episode.tasks and all(t.created_at.utcoffset() is not None for t in episode.tasks)
        fired = [t for t in episode.timers if t.status == "fired"]
        outcome = uow.find_outcome(timer_event_id(ids[0], fired[0].key))
        assert outcome is not None and outcome.kind == "timer"
    factory.dispose()
    fresh.dispose()
