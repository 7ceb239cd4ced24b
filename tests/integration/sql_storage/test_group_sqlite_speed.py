"""The grouped SQLite write's shortcuts store exactly what the decision-by-decision path does:
positional parameters (``storage.group_positional``) and, for episodes a group only updates in
place, just the columns that update sets (``ChangeRows.in_place_params``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pathway import usecases
from storage.group import run_grouped
from storage.group_positional import positional
from storage.queries import SQLITE
from storage.unit_of_work import uow_factory
from tests.integration.sql_storage.test_replay_grouped import counted_ids, table_rows
from tests.integration.sql_storage.test_rows_once import episode_builds
from tests.support.episode_driver import DEFS, PRESENTATION, PROFILE, WORKUP, Course, day

EPISODES = ("ep-a", "ep-b", "ep-c")


def observe(uow: Any, n: int) -> Any:
    """Pain scores that move nothing (the episodes stay in their state): in-place updates."""
    at = day(2 + n / 10)
    facts = {"pain_score": n % 10}
    return usecases.observe(uow, DEFS, EPISODES[n % 3], facts, at=at, now=at, actor="t")


def test_a_group_of_in_place_updates_stores_the_decision_by_decision_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_decision, grouped = (uow_factory(f"sqlite:///{tmp_path / n}") for n in ("a.db", "b.db"))
    for factory in (by_decision, grouped):
        counted_ids(monkeypatch)
        for episode_id in EPISODES:
            course = Course(factory, episode_id)
            course.open(PROFILE)
            course.observe({**PRESENTATION, **WORKUP}, 0)
    steps = range(30)
    counted_ids(monkeypatch)
    for n in steps:
        with by_decision() as uow:
            observe(uow, n)
    counted_ids(monkeypatch)
    built = episode_builds(monkeypatch)
    results = run_grouped(grouped, steps, observe, size=len(steps))
    assert not [r for r in results if isinstance(r, Exception)]
    assert built == []  # no full episode row: only the in-place update's columns
    want, have = table_rows(by_decision), table_rows(grouped)
    assert len(want["audit_log"]) == len(EPISODES) * 2 + len(steps)
    assert have == want
    by_decision.dispose()
    grouped.dispose()


def test_positional_numbers_each_name_once_and_takes_the_values_in_that_order() -> None:
    sql, values = positional("UPDATE t SET a = :a, b = :b WHERE id = :id AND a <> :a")
    assert sql == "UPDATE t SET a = ?1, b = ?2 WHERE id = ?3 AND a <> ?1"
    assert values({"id": 3, "b": 2, "a": 1, "unused": 0}) == (1, 2, 3)
    one, value = positional("DELETE FROM t WHERE id = :id")
    assert one == "DELETE FROM t WHERE id = ?1" and value({"id": 7}) == (7,)


def test_every_group_statement_keeps_its_parameters_when_made_positional() -> None:
    for sql in (SQLITE.insert_audit, SQLITE.update_episode_in_place, SQLITE.insert_observation):
        text, _ = positional(sql)
        assert ":" not in text.replace("::", "")  # every named parameter rewritten
        assert text.count("?") == sql.count(":") - 2 * sql.count("::")
