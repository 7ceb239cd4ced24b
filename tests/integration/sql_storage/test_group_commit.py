"""Group commit (storage.group, storage.group_writes): many decisions in one transaction, each
written with its audit entry or not at all, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from pathway import usecases
from pathway.errors import ConcurrencyConflict
from storage.audit_rows import verify_uow_rows
from storage.batch import BatchFailed, BatchUnitOfWork
from storage.group import run_grouped
from storage.group_writes import episode_rows
from storage.unit_of_work import uow_factory
from storage.writes import ChangeRows
from tests.support.episode_driver import DEFS, check_stored_episode, day, in_care

EPISODES = ("ep-a", "ep-b", "ep-c")


@pytest.fixture
def factory(database_url: str) -> Any:
    f = uow_factory(database_url)
    for episode_id in EPISODES:
        in_care(f, episode_id)
    yield f
    f.dispose()


def observe(n: int, event_id: str | None = None) -> Any:
    """Decision ``n``: a pain score on one of the episodes, several per episode per group."""

    def decide(uow: Any, _: Any = None) -> Any:
        at = day(2 + n / 100)
        facts = {"pain_score": n % 10}
        return usecases.observe(
            uow, DEFS, EPISODES[n % 3], facts, at=at, now=at, actor="t", event_id=event_id
        )

    return decide


def check_all(factory: Any) -> dict[str, int]:
    versions = {}
    for episode_id in EPISODES:
        versions[episode_id] = check_stored_episode(factory(), episode_id).version
    with factory() as uow:
        report = verify_uow_rows(uow, DEFS.get)
    assert report is not None and report.broken == 0, report.differences
    return versions


def test_a_group_writes_every_decision_as_one_at_a_time_would(factory) -> None:
    results = run_grouped(factory, range(10), lambda uow, n: observe(n)(uow), size=4)
    assert all(r.decision is not None for r in results)
    versions = check_all(factory)
    assert sum(versions.values()) == 3 * 2 + 10  # opened and in care (2 each), then 10 decisions


def test_a_failing_decision_rolls_back_alone_and_the_rest_are_written(factory) -> None:
    def decide(uow: Any, n: int) -> Any:
        if n == 4:
            raise ValueError("bad item")
        return observe(n)(uow)

    results = run_grouped(factory, range(8), decide, size=8)
    assert isinstance(results[4], ValueError)
    assert [r for i, r in enumerate(results) if i != 4 and r.decision is None] == []
    assert sum(check_all(factory).values()) == 6 + 7


def test_an_event_applied_twice_in_one_group_is_applied_once(factory) -> None:
    results = run_grouped(
        factory, range(2), lambda uow, n: observe(3, event_id="same")(uow), size=2
    )
    assert results[0].decision is not None
    assert results[1].decision is None and results[1].outcome.repeated
    assert sum(check_all(factory).values()) == 6 + 1


def test_an_episode_moved_under_a_deferred_group_fails_it_whole(factory) -> None:
    held = factory.connections.take()
    db = held[1]
    uow = BatchUnitOfWork(factory, held, deferred=True)
    try:
        with uow.backend.transaction(db):
            observe(0)(uow)
            observe(1)(uow)
            db.execute("UPDATE episodes SET version = version + 100 WHERE id = 'ep-a'")
            with pytest.raises(BatchFailed, match="moved under the batch"):
                uow.flush()
            raise ConcurrencyConflict("ep-a", 0, None)  # the caller rolls the group back
    except ConcurrencyConflict:
        pass
    finally:
        factory.connections.give(held)
    assert sum(check_all(factory).values()) == 6  # nothing of the group was written


def test_each_episode_row_is_written_once_under_its_first_expected_version() -> None:
    def rows(episode: str, expected: int | None, moved: bool) -> ChangeRows:
        version = (expected or 0) + 1
        params = {
            "id": episode,
            "expected_version": expected,
            "version": version,
            "prev_hash": f"h{expected}",
        }
        return ChangeRows(expected is None, params, moved)

    queue = [rows("a", 3, False), rows("b", None, True), rows("a", 4, True), rows("b", 1, False)]
    inserts, updates, in_place = episode_rows(queue)
    assert inserts == [queue[3].params]  # opened in the group: inserted as it ends
    # guarded by the first change's version and audit hash (its prev_hash)
    assert updates == [{"id": "a", "expected_version": 3, "version": 5, "prev_hash": "h3"}]
    assert in_place == []
    assert episode_rows([rows("c", 7, False)])[2] == [
        {"id": "c", "expected_version": 7, "version": 8, "prev_hash": "h7"}
    ]


def test_a_group_size_below_one_is_refused(factory) -> None:
    with pytest.raises(ValueError, match="size 0"):
        run_grouped(factory, [1], lambda uow, n: None, size=0)


def test_a_bug_in_the_group_write_fails_loudly_not_in_a_careful_redo(
    factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the database's refusals (a duplicate, a moved episode, a deadlock) send a group to
    its careful redo: a programming error there would otherwise be hidden by redoing every
    group decision by decision, ten times slower and silently."""
    from storage import batch_arrays, group_writes

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("a bug in the group write")

    monkeypatch.setattr(group_writes, "execute_many", broken)  # SQLite's statements
    monkeypatch.setattr(batch_arrays, "columns", broken)  # PostgreSQL's
    before = check_all(factory)
    with pytest.raises(TypeError, match="a bug in the group write"):
        run_grouped(factory, range(4), lambda uow, n: observe(n)(uow), size=4)
    monkeypatch.undo()
    assert check_all(factory) == before  # nothing written
