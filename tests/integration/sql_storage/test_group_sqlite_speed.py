"""The grouped SQLite write's shortcuts store exactly what the decision-by-decision path does:
positional parameters (``storage.group_positional``) and, for episodes a group only updates in
place, just the columns that update sets (``ChangeRows.in_place_params``), and parameters None
in every row of a group written as the literal NULL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pathway import usecases
from storage.group import run_grouped
from storage.group_positional import execute_many, null_everywhere, positional
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


def test_a_parameter_none_in_every_row_is_written_as_null_and_means_the_same() -> None:
    sql, values = positional(
        "UPDATE t SET a = :a, b = :b WHERE id = :id AND b IS :b", frozenset({"b"})
    )
    assert sql == "UPDATE t SET a = ?1, b = NULL WHERE id = ?2 AND b IS NULL"
    assert values({"id": 3, "b": None, "a": 1}) == (1, 3)
    assert positional("DELETE FROM t WHERE id = :id", frozenset({"id"}))[0] == (
        "DELETE FROM t WHERE id = NULL"
    )
    rows = [{"a": 1, "b": None, "c": None}, {"a": None, "b": None, "c": 2}]
    assert null_everywhere("INSERT INTO t VALUES (:a, :b, :c)", rows) == {"b"}
    assert null_everywhere("INSERT INTO t VALUES (:a, :b, :c)", []) == set()


def test_a_group_with_columns_null_in_every_row_stores_what_named_parameters_store() -> None:
    sql = "INSERT INTO t (k, a, b, c) VALUES (:k, :a, :b, :c)"
    rows = [{"k": i, "a": None, "b": i if i % 2 else None, "c": None} for i in range(6)]
    dbs = [sqlite3.connect(":memory:") for _ in range(2)]
    for db in dbs:
        db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, a TEXT, b INTEGER, c DATETIME)")
    dbs[0].executemany(sql, rows)
    execute_many(dbs[1].cursor(), sql, rows)
    stored = [db.execute("SELECT k, a, typeof(a), b, typeof(b), c FROM t").fetchall() for db in dbs]
    assert stored[0] == stored[1] and len(stored[0]) == 6
    update = "UPDATE t SET a = :a WHERE k = :k AND c IS :c"  # a NULL in a comparison too
    changes = [{"k": 1, "a": "x", "c": None}, {"k": 2, "a": "y", "c": None}]
    dbs[0].executemany(update, changes)
    execute_many(dbs[1].cursor(), update, changes)
    stored = [db.execute("SELECT k, a FROM t WHERE a IN ('x', 'y')").fetchall() for db in dbs]
    assert stored[0] == stored[1] == [(1, "x"), (2, "y")]
