"""A group commit (``storage.group``) works out its decisions' webhook notices only when
someone subscribed (read inside the chunk's transaction): with a subscription its outbox rows
are the decision-by-decision ones; with none, the engine is not even asked for them."""

from __future__ import annotations

from typing import Any

import pytest

from pathway import usecases
from storage.group import run_grouped
from storage.unit_of_work import uow_factory
from tests.integration.sql_storage.test_replay_grouped import (  # noqa: F401 - and its fixture
    counted_ids,
    subscribe,
    table_rows,
    two_urls,
)
from tests.integration.sql_storage.test_rows_once import (
    EPISODES,
    STEPS,
    step,
    stepped_decision_by_decision,
)
from tests.support.episode_driver import DEFS, PRESENTATION, PROFILE, Course, day


def test_a_group_with_a_subscription_writes_the_decision_by_decision_outbox_rows(
    two_urls: tuple[str, str],  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_decision, grouped, steps = stepped_decision_by_decision(two_urls, monkeypatch, subscribe)
    results = run_grouped(grouped, steps, step, size=len(steps) // 2)
    assert not [r for r in results if isinstance(r, Exception)]
    want, have = table_rows(by_decision), table_rows(grouped)
    assert len(want["webhook_messages"]) > len(EPISODES)  # transitions raised notices
    assert have == want
    by_decision.dispose()
    grouped.dispose()


def test_a_group_nobody_subscribed_to_works_out_no_notice(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = uow_factory(database_url)
    for episode_id in (*EPISODES, "ep-z"):
        Course(factory, episode_id).open(PROFILE)
    asked: list[Any] = []
    notices_for = usecases.notices_for

    def counted(*args: Any) -> Any:
        asked.append(args)
        return notices_for(*args)

    monkeypatch.setattr(usecases, "notices_for", counted)
    steps = range(len(EPISODES) * len(STEPS))
    results = run_grouped(factory, steps, step, size=len(steps) // 2)
    assert not [r for r in results if isinstance(r, Exception)]
    assert asked == []
    with factory() as uow:  # outside a group, a decision still asks (its outbox: none either)
        usecases.observe(uow, DEFS, "ep-z", PRESENTATION, at=day(0), now=day(0), actor="t")
    assert len(asked) == 1
    factory.dispose()
