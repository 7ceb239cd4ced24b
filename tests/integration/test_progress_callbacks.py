"""The progress callbacks the long use cases take, ``(done, total)``, counted as the work is
done: ``definition migrate`` (planned, then migrated) and the demo history load (patients).
The command line draws them (``carepath.progress``); here only the counts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from carepath.demo_history import history_cohort
from carepath.demo_play import load_batched
from pathway.migration.usecases import migrate_all
from pathway.unit_of_work import InMemoryUnitOfWork
from pathway.usecases import DefinitionRegistry
from storage.unit_of_work import uow_factory
from tests.support.pathway_runs import START, Run
from tests.unit.test_migration_pure import _open, days, variant


def test_migrate_all_counts_episodes_planned_then_migrated() -> None:
    uow, old = InMemoryUnitOfWork(), Run().definition
    registry = DefinitionRegistry(old)
    for eid, day in (("a", 0), ("b", -30), ("c", -31)):
        _open(uow, registry, eid, day)
    new = variant(days("FU-REASSESS", 35))
    registry = DefinitionRegistry(new, [old])
    seen: list[tuple[int, int]] = []
    dry = migrate_all(lambda: uow, registry, new.version, {}, now=START, actor="m",
                      dry_run=True, progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert seen == [(1, 3), (2, 3), (3, 3)] and dry.dry_run
    seen.clear()
    migrate_all(lambda: uow, registry, new.version, {}, now=START, actor="m",
                progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert seen == [(1, 3), (2, 3), (3, 3), (4, 6), (5, 6), (6, 6)]


def test_the_demo_history_load_counts_its_patients(tmp_path: Path) -> None:
    from carepath.bootstrap import current_definitions

    factory = uow_factory(f"sqlite:///{tmp_path / 'demo.db'}")
    patients = history_cohort(spine=3, fls=2)
    seen: list[tuple[int, int]] = []
    try:
        load_batched(factory, DefinitionRegistry(current_definitions()), datetime.now(UTC),
                     patients, per_transaction=2, progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    finally:
        factory.dispose()
    assert seen == [(2, 5), (4, 5), (5, 5)]
