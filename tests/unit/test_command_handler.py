"""``pathway.usecases.handle``: the one way a command from outside runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pathway.definition import load_definition
from pathway.errors import InvalidRequest
from pathway.model import Open, Request
from pathway.unit_of_work import InMemoryUnitOfWork
from pathway.usecases import (
    DefinitionRegistry,
    handle,
    timer_event_episode,
    timer_event_id,
)

DEFS = DefinitionRegistry(load_definition())
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def opened(uow: InMemoryUnitOfWork) -> str:
    handled = handle(uow, DEFS, "ep-1", Open("open-1", T0, "x", {"age": 70}), T0)
    return handled.applied.outcome.episode_id


def test_an_event_id_starting_with_the_timer_prefix_is_refused_for_a_command() -> None:
    uow = InMemoryUnitOfWork()
    episode_id = opened(uow)
    reserved = timer_event_id(episode_id, "anything")
    with pytest.raises(InvalidRequest) as refused:
        handle(uow, DEFS, episode_id, Request(reserved, T0, "x", "kyphoplasty"), T0)
    assert refused.value.field == "event_id"


def test_the_timer_event_id_names_its_episode() -> None:
    assert timer_event_episode(timer_event_id("ep-1", "FU-6W")) == "ep-1"
    assert timer_event_episode("0123abcd") is None


def test_due_timers_fire_before_the_event_and_a_repeat_fires_nothing() -> None:
    uow = InMemoryUnitOfWork()
    episode_id = opened(uow)
    later = T0 + timedelta(days=400)
    first = handle(uow, DEFS, episode_id, Request("req-1", later, "x", "vertebroplasty"), later)
    assert first.timers_fired, "a year on, the episode's timers are due"
    again = handle(uow, DEFS, episode_id, Request("req-1", later, "x", "vertebroplasty"), later)
    assert again.applied.outcome.repeated and again.timers_fired == []
