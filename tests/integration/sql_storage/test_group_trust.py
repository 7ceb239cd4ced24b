"""A trusted group (storage.group, storage.batch): no outcome lookup and no head check per
decision, because the group's write catches what they would have — and when it does, the
group is redone carefully, with every read, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

import storage.group
from pathway import usecases
from pathway.errors import IdempotencyKeyReused
from pathway.model import Observe
from storage.group import run_grouped
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import DEFS, check_stored_episode, day, in_care

EPISODES = ("ep-a", "ep-b")


@pytest.fixture
def factory(database_url: str) -> Any:
    f = uow_factory(database_url)
    for episode_id in EPISODES:
        in_care(f, episode_id)
    yield f
    f.dispose()


def observe(uow: Any, n: int, event_id: str | None = None) -> Any:
    at = day(2 + n / 100)
    episode_id = EPISODES[n % 2]
    facts = {"pain_score": n % 10}
    return usecases.observe(
        uow, DEFS, episode_id, facts, at=at, now=at, actor="t", event_id=event_id
    )


def careful_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the chunks run carefully (a savepoint per decision, every read)."""
    calls: list[int] = []
    run = storage.group._run

    def counted(*args: Any, deferred: bool, trusted: bool = False) -> Any:
        if not deferred:
            calls.append(len(args[2]))
        return run(*args, deferred=deferred, trusted=trusted)

    monkeypatch.setattr(storage.group, "_run", counted)
    return calls


def test_an_event_applied_in_an_earlier_group_replays_its_first_outcome(factory) -> None:
    first = run_grouped(factory, range(4), lambda uow, n: observe(uow, n, f"e{n}"), size=4)
    versions = [check_stored_episode(factory(), e).version for e in EPISODES]
    again = run_grouped(factory, range(4), lambda uow, n: observe(uow, n, f"e{n}"), size=4)
    assert all(r.outcome.repeated for r in again)
    assert [r.outcome.event_id for r in again] == [r.outcome.event_id for r in first]
    assert [check_stored_episode(factory(), e).version for e in EPISODES] == versions


def test_a_key_reused_for_another_request_is_still_refused_in_a_group(factory) -> None:
    def handle(uow: Any, n: int) -> Any:
        at = day(2 + n / 100)
        event = Observe("key-1", at, "t", {"pain_score": n})
        return usecases.handle(uow, DEFS, "ep-a", event, at, caller="cli:t").applied

    first = run_grouped(factory, [1], handle, size=2)
    results = run_grouped(factory, [1, 2], handle, size=2)
    assert results[0].outcome.repeated
    assert results[0].outcome.event_id == first[0].outcome.event_id
    assert isinstance(results[1], IdempotencyKeyReused)  # the same key, another body


def test_a_re_import_redoes_one_chunk_carefully_not_every_chunk(factory, monkeypatch) -> None:
    run_grouped(factory, range(12), lambda uow, n: observe(uow, n, f"e{n}"), size=4)
    careful = careful_runs(monkeypatch)
    again = run_grouped(factory, range(12), lambda uow, n: observe(uow, n, f"e{n}"), size=4)
    assert all(r.outcome.repeated for r in again)
    assert careful == [4]  # the first chunk found the stored outcomes; the others looked first


def test_trust_returns_after_a_chunk_that_found_nothing_stored(factory, monkeypatch) -> None:
    run_grouped(factory, range(4), lambda uow, n: observe(uow, n, f"e{n}"), size=4)
    careful = careful_runs(monkeypatch)
    items = [*range(4), *range(100, 112)]  # one chunk of repeats, then fresh events
    results = run_grouped(factory, items, lambda uow, n: observe(uow, n, f"e{n}"), size=4)
    assert [r.outcome.repeated for r in results] == [True] * 4 + [False] * 12
    assert careful == [4]


def test_a_snapshot_moved_by_another_writer_is_decided_again_on_the_stored_one(
    factory, database_url
) -> None:
    run_grouped(factory, range(2), lambda uow, n: observe(uow, n), size=2)  # both cached
    other = uow_factory(database_url)
    try:
        observe(other(), 2)  # ep-a moves under the first factory's cache
    finally:
        other.dispose()
    results = run_grouped(factory, [4, 5], lambda uow, n: observe(uow, n), size=2)
    assert all(r.decision is not None for r in results)
    episode = check_stored_episode(factory(), "ep-a")  # its chain holds: nothing lost
    assert episode.version == 2 + 3


def test_a_cached_snapshot_with_the_stored_version_but_another_hash_is_not_trusted(
    factory,
) -> None:
    run_grouped(factory, [0], lambda uow, n: observe(uow, n), size=1)  # ep-a cached
    db = factory.engine.raw_connection()
    try:  # the row now holds another history at the same version (a restored copy, say)
        cursor = db.cursor()
        cursor.execute("UPDATE episodes SET audit_hash = 'another' WHERE id = 'ep-a'")
        db.commit()
    finally:
        db.close()
    results = run_grouped(factory, [2], lambda uow, n: observe(uow, n), size=1)
    with factory() as uow:
        entry = uow.audit_records("ep-a")[-1]
    assert entry.event_id == results[0].outcome.event_id
    assert entry.prev_hash == "another"  # decided on the stored row, not on the cached one


def test_the_collector_pauses_during_a_chunk_and_is_left_as_it_was(factory) -> None:
    import gc

    seen: list[bool] = []

    def decide(uow: Any, n: int) -> Any:
        seen.append(gc.isenabled())
        return observe(uow, n)

    assert gc.isenabled()
    run_grouped(factory, range(3), decide, size=2)
    assert seen == [False] * 3 and gc.isenabled()
    gc.disable()
    try:
        run_grouped(factory, range(3, 5), decide, size=2)
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()


def test_a_cached_snapshot_a_decision_only_read_is_checked_before_the_group_commits(
    factory, database_url
) -> None:
    run_grouped(factory, range(2), lambda uow, n: observe(uow, n), size=2)  # both cached
    other = uow_factory(database_url)
    try:
        observe(other(), 3)  # ep-b moves under the first factory's cache
        moved_to = check_stored_episode(other(), "ep-b").version
    finally:
        other.dispose()

    def decide(uow: Any, n: int) -> Any:
        seen = uow.get_episode("ep-b").version  # read, never written by this group
        observe(uow, 0)  # ep-a
        return seen

    assert run_grouped(factory, [0], decide, size=1) == [moved_to]
