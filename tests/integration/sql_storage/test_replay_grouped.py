"""``replay --database`` writes many scenarios per transaction (``carepath.replay.grouped``):
the same output and the same stored rows as one transaction per decision, one COMMIT per group
with a savepoint per decision, and a failure never leaves half a group behind."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from carepath.replay import grouped
from carepath.replay.grouped import replay_grouped
from carepath.replay.runner import replay_many
from carepath.replay.scenario import load_scenario
from pathway import usecases
from pathway.errors import InvalidScenario
from pathway.unit_of_work import InMemoryUnitOfWork
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory
from tests.support.episode_driver import DEFS
from tests.support.protocol import REPOSITORY, SCENARIO_DIR

L1_L2 = [  # the default pathway's shipped scenario files
    s for s in (load_scenario(p) for p in sorted(SCENARIO_DIR.glob("*.json"))) if s.pathway is None
]


@pytest.fixture
def factory() -> Iterator[SqlUnitOfWorkFactory]:
    made = uow_factory("sqlite://")
    yield made
    made.dispose()


def counted_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The use cases draw event and episode ids from a counter (restarted on each call)."""
    counter = itertools.count()
    monkeypatch.setattr(usecases, "new_event_id", lambda: f"event-{next(counter)}")
    monkeypatch.setattr(usecases, "time_ordered_id", lambda now: f"ep-{next(counter)}")


def everything(factory: SqlUnitOfWorkFactory) -> dict[str, Any]:
    uow = factory()
    with uow:
        return {
            i: (uow.get_episode(i), uow.audit_records(i), uow.observations(i))
            for i in uow.episode_ids()
        }


def statements(factory: SqlUnitOfWorkFactory) -> list[str]:
    """Every statement the factory's (one, in-memory) connection runs from now on."""
    seen: list[str] = []
    held = factory.connections.take()
    held[1].connection.set_trace_callback(seen.append)
    factory.connections.give(held)
    return seen


def test_grouped_replay_outputs_and_stores_what_one_transaction_per_decision_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert len(L1_L2) > 7
    one_each, grouped_db = uow_factory("sqlite://"), uow_factory("sqlite://")
    counted_ids(monkeypatch)
    expected = replay_many(L1_L2, DEFS, one_each)
    counted_ids(monkeypatch)
    got = replay_grouped(L1_L2, DEFS, grouped_db, per_transaction=7)  # groups of 7, one of less

    assert [r.output for r in got] == [r.output for r in expected]
    assert [r.failures for r in got] == [r.failures for r in expected]
    assert all(r.output["audit_verified"] for r in got)
    assert everything(grouped_db) == everything(one_each)
    one_each.dispose()
    grouped_db.dispose()


def test_one_commit_per_group_and_a_savepoint_per_decision(factory: SqlUnitOfWorkFactory) -> None:
    seen = statements(factory)
    replay_grouped(L1_L2[:5], DEFS, factory, per_transaction=100)
    assert seen.count("COMMIT") == 1
    uow = factory()
    with uow:  # a savepoint per decision: per audit entry, bar those written with another's
        entries = sum(len(uow.audit_records(i)) for i in uow.episode_ids())
    assert 0 < seen.count("SAVEPOINT timer") == seen.count("RELEASE timer") <= entries
    assert seen.count("SAVEPOINT timer") >= entries - 5  # only enrolments share (≤ 1 each)
    seen.clear()
    replay_grouped(L1_L2[:5], DEFS, factory, per_transaction=2)
    assert seen.count("COMMIT") == 3


def test_an_unopenable_patient_keeps_the_scenarios_before_it_and_writes_nothing_of_its_own(
    factory: SqlUnitOfWorkFactory,
) -> None:
    bad = replace(L1_L2[0], patient={"age": "old"}, source="bad.json")
    with pytest.raises(InvalidScenario, match="bad.json: patient"):
        replay_grouped([L1_L2[0], L1_L2[1], bad, L1_L2[2]], DEFS, factory, per_transaction=100)
    uow = factory()
    with uow:
        assert len(uow.episode_ids()) == 2  # the two before it, committed; none after it


def test_a_failure_rolls_its_whole_group_back_and_keeps_the_groups_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference, failed = uow_factory("sqlite://"), uow_factory("sqlite://")
    counted_ids(monkeypatch)
    replay_grouped(L1_L2[:2], DEFS, reference, per_transaction=2)
    calls = itertools.count()
    real = grouped.replay

    def failing_after_the_fourth(*args: Any) -> Any:
        result = real(*args)  # its decisions are written (in the group's transaction)
        if next(calls) == 3:
            raise RuntimeError("disk full")
        return result

    monkeypatch.setattr(grouped, "replay", failing_after_the_fourth)
    counted_ids(monkeypatch)
    with pytest.raises(RuntimeError, match="disk full"):
        replay_grouped(L1_L2[:6], DEFS, failed, per_transaction=2)
    assert everything(failed) == everything(reference)  # the first group, nothing of the second
    reference.dispose()
    failed.dispose()


def scenario_files(n: int) -> list[str]:
    return [str(p) for p in sorted(SCENARIO_DIR.glob("*.json"))[:n]]


def run_replay(*args: str) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "carepath.cli", "replay", "--json", *args],
        capture_output=True, cwd=REPOSITORY, timeout=120,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return re.sub(rb"episode [0-9a-f]{32}", b"episode <id>", done.stdout)  # random ids


def test_replay_database_prints_byte_for_byte_what_the_in_memory_replay_prints(  # but ids
    tmp_path: Path,
) -> None:
    files = scenario_files(12)
    url = f"sqlite:///{tmp_path / 'replay.sqlite'}"
    assert run_replay("--database", url, *files) == run_replay("--workers", "1", *files)


def test_grouped_replay_on_both_backends_stores_what_the_in_memory_replay_holds(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = InMemoryUnitOfWork()
    counted_ids(monkeypatch)
    expected = replay_many(L1_L2, DEFS, lambda: memory)
    factory = uow_factory(database_url)
    counted_ids(monkeypatch)
    got = replay_grouped(L1_L2, DEFS, factory, per_transaction=5)
    assert [r.output for r in got] == [r.output for r in expected]
    uow = factory()
    with uow:
        assert sorted(uow.episode_ids()) == sorted(memory.episode_ids())
        for i in memory.episode_ids():
            assert uow.get_episode(i) == memory.get_episode(i)
            assert uow.audit_records(i) == memory.audit_records(i)
    factory.dispose()
