"""A pathway's measures pass split over worker processes gives the one-process report exactly,
on SQLite and PostgreSQL, and counts its progress up to the pathway's episodes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import carepath.measures_parallel as parallel
from carepath.bootstrap import Wiring
from carepath.measures import pathway_reports
from storage.measures import episode_count, split_ids
from tests.integration.sql_storage.test_measures_generated import wiring  # noqa: F401

AS_OF = datetime(2027, 12, 31, 23, 59, tzinfo=UTC)


def test_workers_give_the_one_process_report_exactly(
    wiring: Wiring,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = pathway_reports(wiring, pathway=None, month_from=None, month_to=None, as_of=AS_OF)
    monkeypatch.setattr(parallel, "MIN_SHARE", 10)  # a small cohort still splits
    ticks: dict[str, list[tuple[int, int]]] = {}

    def progress(pathway: str) -> parallel.Progress:
        return lambda done, total: ticks.setdefault(pathway, []).append((done, total))

    split = pathway_reports(
        wiring, pathway=None, month_from=None, month_to=None, as_of=AS_OF, workers=3,
        progress=progress,
    )  # fmt: skip
    assert split == one
    connections = wiring.uow_factory.connections
    for report in one:
        total = episode_count(connections, report["pathway"])
        seen = ticks[report["pathway"]]
        assert seen[0] == (0, total) and seen[-1] == (total, total) and total > 30
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert len(split_ids(connections, report["pathway"], total, 3)) == 3


def test_shares_cover_every_episode_once(wiring: Wiring) -> None:  # noqa: F811
    connections = wiring.uow_factory.connections
    pathway = "fracture-liaison"
    total = episode_count(connections, pathway)
    shares = split_ids(connections, pathway, total, 4)
    assert shares[0][0] is None and shares[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(shares, shares[1:], strict=False))
    from carepath.measure_tally import courses_on

    definition = wiring.definitions.current_for(pathway)
    ids = [
        c.history.episode_id for s in shares for c in courses_on(connections, definition, AS_OF, s)
    ]
    assert len(ids) == len(set(ids)) == total


def test_an_in_memory_database_stays_in_this_process() -> None:
    from carepath.bootstrap import current_definitions, wire
    from storage.unit_of_work import uow_factory

    factory = uow_factory("sqlite://")
    try:
        assert not parallel._forkable(wire(current=current_definitions(), factory=factory))
    finally:
        factory.dispose()
