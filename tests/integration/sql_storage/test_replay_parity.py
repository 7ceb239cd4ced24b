"""Every scenario replays to the same output in memory and through SQL (``replay --database``).

With event and episode ids made deterministic, the two runs must also store exactly the same
thing: snapshot, audit entries (payload bytes and hashes) and observations.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carepath.replay.runner import replay
from carepath.replay.scenario import Scenario, load_scenario
from pathway import usecases
from pathway.definition import load_definition, shipped_definition_files
from pathway.unit_of_work import InMemoryUnitOfWork, UnitOfWork
from pathway.usecases import DefinitionRegistry
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory
from tests.support.episode_driver import DEFS
from tests.support.protocol import SCENARIO_DIR

# A scenario naming its pathway (fracture-liaison) replays on every shipped definition; the
# default pathway's files on its definition alone, so that they open no enrolled episode here.
SHIPPED = DefinitionRegistry([load_definition(p) for p in shipped_definition_files()])


def scenarios() -> list[Scenario]:
    """The shipped scenario files (the SCENARIOS.md example among them, checked verbatim by
    the e2e tests)."""
    found = [
        load_scenario(p) for p in sorted(SCENARIO_DIR.glob("*")) if p.suffix in (".json", ".yaml")
    ]
    assert found, f"no scenario files in {SCENARIO_DIR}"
    return found


@pytest.fixture(scope="module")
def sql_factory() -> Iterator[SqlUnitOfWorkFactory]:
    factory = uow_factory("sqlite://")
    yield factory
    factory.dispose()


@pytest.fixture
def reset_ids(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make the use cases draw ids from a counter, restarted (under ``prefix``) on each call."""

    def reset(prefix: str) -> None:
        counter = itertools.count()
        monkeypatch.setattr(
            usecases, "new_event_id", lambda now=None: f"{prefix}-event-{next(counter)}"
        )
        monkeypatch.setattr(
            usecases, "time_ordered_id", lambda now: f"{prefix}-episode-{next(counter)}"
        )

    return reset


def stored(uow: UnitOfWork, episode_id: str) -> tuple[object, ...]:
    with uow:
        episode = uow.get_episode(episode_id)
        return episode, uow.audit_records(episode_id), uow.observations(episode_id)


@pytest.mark.parametrize("scenario", scenarios(), ids=lambda s: Path(s.source).stem)
def test_replay_through_sql_equals_replay_in_memory(
    scenario: Scenario, sql_factory: SqlUnitOfWorkFactory, reset_ids: Callable[[str], None]
) -> None:
    name = Path(scenario.source).stem
    definitions = DEFS if scenario.pathway is None else SHIPPED
    memory = InMemoryUnitOfWork()
    reset_ids(name)
    in_memory = replay(scenario, definitions, lambda: memory)
    reset_ids(name)
    through_sql = replay(scenario, definitions, sql_factory)

    assert through_sql.output == in_memory.output
    assert through_sql.failures == in_memory.failures
    (episode_id,) = memory.episode_ids()
    assert stored(sql_factory(), episode_id) == stored(memory, episode_id)
