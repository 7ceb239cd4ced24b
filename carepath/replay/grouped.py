"""``replay --database``: many scenarios per database transaction (group commit).

One transaction per decision costs a BEGIN/COMMIT (SQLite: a WAL append and its lock;
PostgreSQL: round trips) for each of an episode's ~8 decisions. A replay has all its
decisions at once, so it writes a group of scenarios in one transaction through
``storage.batch.BatchUnitOfWork`` (the scheduler's unit of work, in its *careful* mode): each
use case's ``commit()`` still writes its decision, its enrolments and their audit entries
inside one savepoint, all or none, and the scenario's chain is verified from the stored rows
inside the same transaction. The output is the same as one transaction per decision.

A scenario whose patient cannot be opened (``InvalidScenario``) writes nothing; the scenarios
before it are committed and the error is raised, as with one transaction per decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from carepath.replay.runner import ReplayResult, replay
from carepath.replay.scenario import Scenario
from pathway.errors import InvalidScenario
from pathway.unit_of_work import Outcome
from pathway.usecases import DefinitionRegistry
from storage.batch import BatchUnitOfWork
from storage.unit_of_work import SqlUnitOfWorkFactory

PER_TRANSACTION = 100  # scenarios (~800 decisions) per transaction


class ReplayUnitOfWork(BatchUnitOfWork):
    """The batch unit of work of a replay, which looks up no stored outcome: every event id a
    replay sends is new (random, or derived from an episode id it made just now, as enrolments'
    and timers' are), so the lookup (one statement per event) could only miss; a duplicate
    would still be refused by the outcome's primary key."""

    def find_outcome(self, event_id: str) -> Outcome | None:
        return None


def replay_grouped(
    scenarios: Sequence[Scenario],
    definitions: DefinitionRegistry,
    factory: SqlUnitOfWorkFactory,
    per_transaction: int = PER_TRANSACTION,
    progress: Callable[[int, int], None] | None = None,
) -> list[ReplayResult]:
    """Replay scenarios in order through the SQL database, ``per_transaction`` per transaction;
    ``progress(done, total)`` after each transaction."""
    results: list[ReplayResult] = []
    for first in range(0, len(scenarios), max(1, per_transaction)):
        group = scenarios[first : first + per_transaction]
        error = _replay_group(group, definitions, factory, results)
        if error is not None:
            raise error
        if progress is not None:
            progress(len(results), len(scenarios))
    return results


def _replay_group(
    group: Sequence[Scenario],
    definitions: DefinitionRegistry,
    factory: SqlUnitOfWorkFactory,
    results: list[ReplayResult],
) -> InvalidScenario | None:
    """Replay ``group`` in one transaction, appending to ``results``; the first scenario that
    could not be opened stops the group (what came before it is committed) and is returned."""
    held = factory.connections.take()
    uow = ReplayUnitOfWork(factory, held)
    error = None
    try:
        with uow.backend.transaction(held[1]):
            for scenario in group:
                try:
                    results.append(replay(scenario, definitions, lambda: uow))
                except InvalidScenario as exc:
                    error = exc
                    break
    finally:
        factory.connections.give(held)
    for episode in uow.written.values():  # committed: now the cache may trust them
        factory.snapshots.put(episode)
    return error
