"""An episode changed many times in one group gets its row built once, from its last change
(``storage.writes.ChangeRows.params``), and what is stored is exactly what the decision-by-
decision path stores: a deferred group (``storage.group``), a scheduler batch (SQLite's
``storage.group_writes``, PostgreSQL's ``storage.batch_arrays``) and the replay's bulk loader,
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

import storage.writes
from pathway import usecases
from pathway.usecases import DefinitionRegistry
from scheduler.worker import TimerWorker
from storage.batch import BatchUnitOfWork
from storage.group import run_grouped
from storage.unit_of_work import uow_factory
from tests.integration.sql_storage.test_replay_grouped import (  # noqa: F401 - and its fixture
    counted_ids,
    subscribe,
    table_rows,
    two_urls,
)
from tests.support.episode_driver import DEFS, PRESENTATION, PROFILE, WORKUP, Course, day
from tests.support.timer_cohort import (
    EXTRA,
    NOW,
    assert_each_timer_fired_once_in_order,
    busy_definition,
    open_idle_episodes,
    timer_firings,
)

BUSY = DefinitionRegistry(busy_definition())
EPISODES = ("ep-a", "ep-b")
# Each episode's course after opening, all in one group: intake → workup → care, timers fired
# late (reviews, several at once), pain scores that move it and some that do not.
STEPS: list[tuple[str, float, dict[str, Any]]] = [
    ("observe", 0, PRESENTATION),
    ("observe", 1, WORKUP),
    ("fire", 15, {}),
    ("observe", 16, {"pain_score": 7}),
    ("fire", 29, {}),
    ("observe", 29, {"pain_score": 4}),
    ("observe", 33, {"pain_score": 2, "dxa_done": True, "osteoporosis_treatment_started": True}),
    ("fire", 60, {}),
    ("observe", 61, {"pain_score": 5}),
    ("observe", 62, {"pain_score": 5}),
    ("fire", 95, {}),
    ("observe", 96, {"pain_score": 8}),
    ("fire", 130, {}),
]


def step(uow: Any, n: int) -> Any:
    """The n-th step: the two episodes taking turns through STEPS."""
    episode_id = EPISODES[n % 2]
    kind, at_day, facts = STEPS[n // 2]
    at = day(at_day)
    if kind == "fire":
        return usecases.fire_due_timers(uow, DEFS, at, episode_id=episode_id)
    return usecases.observe(uow, DEFS, episode_id, facts, at=at, now=at, actor="t")


def episode_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The episode ids whose episode row's columns were built, one entry per build."""
    built: list[str] = []
    build = storage.writes.episode_columns

    def counted(episode: Any, time: Any) -> Any:
        built.append(episode.id)
        return build(episode, time)

    monkeypatch.setattr(storage.writes, "episode_columns", counted)
    return built


def stepped_decision_by_decision(
    urls: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    prepare: Callable[[Any], None] = lambda factory: None,
) -> tuple[Any, Any, range]:
    """Two databases with the same EPISODES opened (each after ``prepare``) under the same
    ids, and every step applied to the first decision by decision: the two factories and the
    steps, for the second to take as a group."""
    by_decision, grouped = (uow_factory(url) for url in urls)
    for factory in (by_decision, grouped):
        prepare(factory)
        counted_ids(monkeypatch)
        for episode_id in EPISODES:
            Course(factory, episode_id).open(PROFILE)
    steps = range(len(EPISODES) * len(STEPS))
    counted_ids(monkeypatch)
    for n in steps:
        with by_decision() as uow:
            step(uow, n)
    counted_ids(monkeypatch)
    return by_decision, grouped, steps


def test_a_group_that_changes_an_episode_many_times_stores_the_decision_by_decision_rows(
    two_urls: tuple[str, str],  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_decision, grouped, steps = stepped_decision_by_decision(two_urls, monkeypatch)
    built = episode_builds(monkeypatch)
    results = run_grouped(grouped, steps, step, size=len(steps))
    assert not [r for r in results if isinstance(r, Exception)]
    assert sorted(built) == sorted(EPISODES)  # one row each, from its last change
    want, have = table_rows(by_decision), table_rows(grouped)
    assert sum("timer" in row for row in want["audit_log"]) == 10  # kinds: timers fired too
    assert have == want
    by_decision.dispose()
    grouped.dispose()


def test_a_scheduler_batch_firing_many_timers_of_an_episode_stores_the_careful_rows(
    two_urls: tuple[str, str],  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factories = [uow_factory(url) for url in two_urls]
    for factory in factories:
        subscribe(factory)  # escalation notices: outbox rows too
        counted_ids(monkeypatch)
        open_idle_episodes(factory, BUSY, 3)
    careful = TimerWorker(factories[0], BUSY, worker_id="w-1")
    careful.grouped = False  # a savepoint and a row build per timer
    counted_ids(monkeypatch)
    assert careful.sweep(NOW) == 3 * (EXTRA + 1)
    counted_ids(monkeypatch)
    built = episode_builds(monkeypatch)
    assert TimerWorker(factories[1], BUSY, worker_id="w-1").sweep(NOW) == 3 * (EXTRA + 1)
    assert len(built) == 3  # one batch: each episode's row built once for its EXTRA + 1 firings
    want, have = (table_rows(f) for f in factories)
    assert len(want["audit_log"]) == 3 * (EXTRA + 2) and want["webhook_messages"]
    for table in want.keys() - {"workers"}:  # the worker's own heartbeat row: not a decision's
        assert have[table] == want[table], table
    for factory in factories:
        factory.dispose()


def test_a_scheduler_batch_nobody_subscribed_to_works_out_no_notice(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No subscription when the batch began (read inside its transaction): its decisions do
    not even list their notices, which ``commit`` would only have dropped."""
    factory = uow_factory(database_url)
    ids = open_idle_episodes(factory, BUSY, 2)

    def refuse(*args: Any) -> Any:
        raise AssertionError("notices worked out for nobody")

    monkeypatch.setattr(usecases, "notices_for", refuse)
    worker = TimerWorker(factory, BUSY)
    assert worker.sweep(NOW) == 2 * (EXTRA + 1)
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)
    factory.dispose()


def test_the_batch_read_parses_its_json_with_orjson_on_a_cursor_of_its_own(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshots a scheduler batch reads in one statement (PostgreSQL: JSON parsed by
    orjson) equal those the default reader builds; the connection's cursor keeps the default."""
    factory = uow_factory(fresh_postgres_url)
    ids = open_idle_episodes(factory, BUSY, 3)
    parsed: list[bytes] = []
    loads = orjson.loads
    monkeypatch.setattr(orjson, "loads", lambda data: parsed.append(data) or loads(data))
    held = factory.connections.take()
    try:
        uow = BatchUnitOfWork(factory, held, deferred=True)
        with uow.backend.transaction(held[1]):
            uow.preload(ids)
        assert parsed  # facts, timers and tasks of each row
        count = len(parsed)
        held[1].execute("SELECT facts FROM episodes").fetchall()
        assert len(parsed) == count  # the shared cursor: psycopg's default
    finally:
        factory.connections.give(held)
    with uow_factory(fresh_postgres_url)() as fresh:  # no cache: every row read the default way
        assert {i: fresh.get_episode(i) for i in ids} == uow.written
    factory.dispose()
