"""Event ids reserved for timer firings and enrolments are refused by the use cases themselves.

Replay, the demo and the migration call the use cases directly (not through ``handle``), so the
refusal lives in them: a command under a pending timer's own event id would otherwise take the
timer's outcome and block it for good.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pathway import usecases
from pathway.definition import load_definition
from pathway.errors import InvalidRequest
from pathway.unit_of_work import InMemoryUnitOfWork
from pathway.usecases import DefinitionRegistry, timer_event_id

DEFS = DefinitionRegistry(load_definition())
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=2)  # FU-INTAKE-OVERDUE (1 day in intake) is due
TIMER = "FU-INTAKE-OVERDUE@1"

COMMANDS: dict[str, Callable[..., Any]] = {
    "observe": lambda uow, eid, event_id: usecases.observe(
        uow, DEFS, eid, {"pain_score": 4}, at=LATER, now=LATER, actor="x", event_id=event_id
    ),
    "request": lambda uow, eid, event_id: usecases.request(
        uow, DEFS, eid, "kyphoplasty", at=LATER, now=LATER, actor="x", event_id=event_id
    ),
    "close": lambda uow, eid, event_id: usecases.close(
        uow, DEFS, eid, "declined", at=LATER, now=LATER, actor="x", event_id=event_id
    ),
    "update_task": lambda uow, eid, event_id: usecases.update_task(
        uow, DEFS, eid, "k", "done", note=None, at=LATER, now=LATER, actor="x", event_id=event_id
    ),
    "open_episode": lambda uow, eid, event_id: usecases.open_episode(
        uow, DEFS, {"age": 70}, at=LATER, now=LATER, actor="x", event_id=event_id
    ),
}


@pytest.mark.parametrize("prefix", ["timer", "enrol"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_use_case_refuses_a_reserved_event_id_and_the_timer_still_fires(
    command: str, prefix: str
) -> None:
    uow = InMemoryUnitOfWork()
    opened = usecases.open_episode(uow, DEFS, {"age": 70}, at=T0, now=T0, actor="x")
    eid = opened.outcome.episode_id
    reserved = timer_event_id(eid, TIMER) if prefix == "timer" else f"enrol:{eid}"
    with pytest.raises(InvalidRequest) as refused:
        COMMANDS[command](uow, eid, reserved)
    assert refused.value.field == "event_id" and refused.value.value == reserved
    with uow:
        assert uow.find_outcome(reserved) is None  # nothing written under it
    fired = usecases.fire_due_timers(uow, DEFS, LATER, episode_id=eid)
    assert [a.decision.timer_fired.key for a in fired if a.decision] == [TIMER]
