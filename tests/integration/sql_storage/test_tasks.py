"""Coordinators mark the pathway's tasks done or not done, with a note: an audited event."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pathway import usecases
from pathway.audit import verify_chain
from pathway.errors import EpisodeClosed, InvalidRequest
from pathway.unit_of_work import UnitOfWork
from tests.support.episode_driver import DEFS, PRESENTATION, PROFILE, day


def _in_workup(uow: UnitOfWork) -> str:
    opened = usecases.open_episode(uow, DEFS, PROFILE, at=day(0), now=day(0), actor="c")
    episode_id = opened.outcome.episode_id
    usecases.observe(uow, DEFS, episode_id, PRESENTATION, at=day(0), now=day(0), actor="c")
    return episode_id


def _task_key(uow: UnitOfWork, episode_id: str, rule: str) -> str:
    with uow:
        return next(t.key for t in uow.get_episode(episode_id).tasks if t.rule_id == rule)


def test_marking_a_task_done_keeps_the_note_and_is_audited(
    uow_factory: Callable[[], UnitOfWork],
) -> None:
    uow = uow_factory()
    episode_id = _in_workup(uow)
    key = _task_key(uow, episode_id, "WU-MRI")
    applied = usecases.update_task(
        uow, DEFS, episode_id, key, "done", note="MRI booked for Tuesday",
        at=day(0.5), now=day(0.5), actor="coordinator-1",
    )  # fmt: skip
    assert applied.outcome.kind == "task"
    with uow_factory() as fresh:
        episode = fresh.get_episode(episode_id)
        task = next(t for t in episode.tasks if t.key == key)
        assert (task.status, task.note) == ("done", "MRI booked for Tuesday")
        records = fresh.audit_records(episode_id)
        last = records[-1].body()
        assert last["actor"] == "coordinator-1"
        assert last["tasks_closed"] == [
            {"key": key, "status": "done", "note": "MRI booked for Tuesday"}
        ]
        head = (episode.version, episode.audit_hash)
        assert verify_chain(episode_id, records, head, key=fresh.audit_key).ok


def test_a_task_not_done_is_recorded_as_such(uow_factory: Callable[[], UnitOfWork]) -> None:
    uow = uow_factory()
    episode_id = _in_workup(uow)
    key = _task_key(uow, episode_id, "WU-MALIG")
    usecases.update_task(
        uow, DEFS, episode_id, key, "not_done", note="patient declined",
        at=day(1), now=day(1), actor="c",
    )  # fmt: skip
    with uow:
        task = next(t for t in uow.get_episode(episode_id).tasks if t.key == key)
    assert task.status == "not_done"


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("WU-MRI@2", "finished", "status: got 'finished', expected one of done, not_done"),
        ("NOPE@9", "done", "task: got 'NOPE@9', expected the key of an open task"),
    ],
)
def test_a_bad_task_update_is_refused_and_changes_nothing(
    uow_factory: Callable[[], UnitOfWork], key: str, status: str, message: str
) -> None:
    uow = uow_factory()
    episode_id = _in_workup(uow)
    with uow:
        before = uow.get_episode(episode_id)
    with pytest.raises(InvalidRequest, match=message):
        usecases.update_task(
            uow, DEFS, episode_id, key, status, note=None, at=day(1), now=day(1), actor="c"
        )
    with uow:
        assert uow.get_episode(episode_id) == before


def test_a_task_already_done_cannot_be_marked_again(uow_factory: Callable[[], UnitOfWork]) -> None:
    uow = uow_factory()
    episode_id = _in_workup(uow)
    key = _task_key(uow, episode_id, "WU-NEURO")
    usecases.update_task(
        uow, DEFS, episode_id, key, "done", note=None, at=day(1), now=day(1), actor="c"
    )
    with pytest.raises(InvalidRequest, match="expected the key of an open task"):
        usecases.update_task(
            uow, DEFS, episode_id, key, "done", note=None, at=day(1), now=day(1), actor="c"
        )


def test_tasks_of_a_closed_episode_are_refused(uow_factory: Callable[[], UnitOfWork]) -> None:
    uow = uow_factory()
    episode_id = _in_workup(uow)
    key = _task_key(uow, episode_id, "WU-NEURO")
    usecases.close(uow, DEFS, episode_id, "declined", at=day(1), now=day(1), actor="c")
    with pytest.raises(EpisodeClosed):
        usecases.update_task(
            uow, DEFS, episode_id, key, "done", note=None, at=day(2), now=day(2), actor="c"
        )
