"""A replay keeps what was loaded before it out of the garbage collector's scans, and leaves the
collector as it found it: thawed if it was, and a freeze the process made itself untouched."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from carepath.replay.runner import replay_files, replay_many
from carepath.replay.scenario import load_scenario
from pathway.unit_of_work import InMemoryUnitOfWork
from pathway.usecases import DefinitionRegistry
from tests.support.pathway_runs import shipped_registry

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "scenarios_md_example.json"


@pytest.fixture
def registry() -> DefinitionRegistry:
    return shipped_registry()


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_replay_runs_frozen_and_thaws_after(registry: DefinitionRegistry, thawed: None) -> None:
    seen: list[int] = []

    def make_uow() -> InMemoryUnitOfWork:
        seen.append(gc.get_freeze_count())
        return InMemoryUnitOfWork()

    (result,) = replay_many([load_scenario(SCENARIO)], registry, make_uow)
    assert result.output["audit_verified"] is True
    assert seen and seen[0] > 0
    assert gc.get_freeze_count() == 0
    outputs, failures, code = replay_files([str(SCENARIO)], registry, workers=1)
    assert (len(outputs), failures, code) == (1, [], 0)
    assert gc.get_freeze_count() == 0


def test_a_freeze_the_process_made_is_left_alone(
    registry: DefinitionRegistry, thawed: None
) -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    replay_files([str(SCENARIO)], registry, workers=1)
    # still frozen (less the few frozen objects the replay released), not thawed
    assert frozen * 0.9 < gc.get_freeze_count() <= frozen


def test_a_failing_replay_thaws_too(registry: DefinitionRegistry, thawed: None) -> None:
    def broken() -> InMemoryUnitOfWork:
        raise RuntimeError("no unit of work")

    with pytest.raises(RuntimeError):
        replay_many([load_scenario(SCENARIO)], registry, broken)
    assert gc.get_freeze_count() == 0
