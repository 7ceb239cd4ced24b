"""The use cases on every unit of work: in memory, SQLite and PostgreSQL must agree exactly.

Each test runs three times through the ``uow_factory`` fixture. The in-memory unit of work is
the reference: the SQL ones must hold snapshots, audit entries, observations and outcomes equal
to what it holds after the same commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from pathway import usecases
from pathway.audit import entry_for
from pathway.engine import decide
from pathway.errors import (
    ConcurrencyConflict,
    EpisodeClosed,
    EpisodeNotFound,
    InvalidObservation,
    InvalidRequest,
)
from pathway.model import Observe
from pathway.unit_of_work import Change, InMemoryUnitOfWork, Outcome, UnitOfWork
from tests.support.episode_driver import (
    DEFS,
    PRESENTATION,
    PROFILE,
    Course,
    check_stored_episode,
    day,
    in_care,
    standard_course,
)

Factory = Callable[[], UnitOfWork]


def stored(make_uow: Factory, episode_id: str) -> tuple[object, ...]:
    """Everything stored about one episode, read through a fresh unit of work."""
    uow = make_uow()
    with uow:
        return (
            uow.get_episode(episode_id),
            uow.audit_records(episode_id),
            uow.observations(episode_id),
        )


def test_open_and_observe_move_the_episode_and_keep_every_value(uow_factory: Factory) -> None:
    course = Course(uow_factory)
    opened = course.open(PROFILE)
    assert (opened.outcome.state, opened.outcome.version) == ("intake", 1)
    course.observe(PRESENTATION, 0)
    course.observe({"pain_score": 7}, 0.5)

    episode, audit, observations = stored(uow_factory, "ep-1")
    assert episode.state == "workup"
    assert episode.version == 3 and len(audit) == 3
    assert episode.fact("pain_score") == 7
    assert episode.facts["pain_score"].observation_id == "ep-1/ev-3"
    assert episode.fact("fracture_levels") == ("L1",)
    assert [o.facts.get("pain_score") for o in observations] == [None, 8, 7]
    assert episode.opened_at.tzinfo is not None and episode.patient_ref == "MRN-1"
    check_stored_episode(uow_factory(), "ep-1")


def test_a_whole_course_stores_exactly_what_memory_stores(uow_factory: Factory) -> None:
    reference = InMemoryUnitOfWork()
    expected_course = standard_course(lambda: reference)
    course = standard_course(uow_factory)

    assert [a.outcome for a in course.applied] == [a.outcome for a in expected_course.applied]
    assert stored(uow_factory, "ep-1") == stored(lambda: reference, "ep-1")
    episode = check_stored_episode(uow_factory(), "ep-1")
    assert episode.state == "closed"
    assert {t.status for t in episode.timers} == {"fired", "cancelled"}


def test_the_same_event_id_twice_returns_the_first_outcome_and_writes_nothing(
    uow_factory: Factory,
) -> None:
    course = in_care(uow_factory, "ep-1")
    first = course.observe({"pain_score": 5}, 2, event_id="same")
    before = stored(uow_factory, "ep-1")
    again = course.observe({"pain_score": 9}, 3, event_id="same")

    assert again.decision is None and again.outcome.repeated
    assert replace(again.outcome, repeated=False) == first.outcome
    assert stored(uow_factory, "ep-1") == before


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (lambda c: c.observe({"pain_score": 11}), InvalidObservation),
        (lambda c: c.observe({"no_such_fact": 1}), InvalidObservation),
        (lambda c: c.request("cement_everything"), InvalidRequest),
        (lambda c: c.close("bored"), InvalidRequest),
    ],
    ids=["out-of-range", "unknown-fact", "unknown-action", "unknown-close-reason"],
)
def test_bad_input_changes_nothing(uow_factory: Factory, command: Callable, error: type) -> None:
    course = in_care(uow_factory, "ep-1")
    before = stored(uow_factory, "ep-1")
    with pytest.raises(error):
        command(course)
    assert stored(uow_factory, "ep-1") == before
    with course.uow:
        assert course.uow.find_outcome(f"ep-1/ev-{course._n}") is None


def test_a_closed_episode_refuses_events_and_stays_closed(uow_factory: Factory) -> None:
    course = in_care(uow_factory, "ep-1")
    course.close("declined", 3)
    before = stored(uow_factory, "ep-1")
    with pytest.raises(EpisodeClosed):
        course.observe({"pain_score": 2}, 4)
    assert course.advance(200) == []
    assert stored(uow_factory, "ep-1") == before
    episode = before[0]
    assert episode.state == "closed" and episode.closed_reason == "declined"
    assert all(t.status != "pending" for t in episode.timers)


def test_a_refused_request_is_audited_with_its_rule(uow_factory: Factory) -> None:
    course = in_care(uow_factory, "ep-1")
    refused = course.request("vertebroplasty", 5)
    assert refused.outcome.refused == ("AUG-NO-VERTEBROPLASTY",)
    _, audit, _ = stored(uow_factory, "ep-1")
    assert audit[-1].kind == "request"
    assert audit[-1].body()["refused"][0]["firing"]["rule_id"] == "AUG-NO-VERTEBROPLASTY"


def test_due_timers_fire_in_due_order_once(uow_factory: Factory) -> None:
    course = in_care(uow_factory, "ep-1")
    fired = course.advance(28)
    assert [a.decision.timer_fired.rule_id for a in fired] == ["T-CALCITONIN-END", "FU-REASSESS"]
    assert course.episode().state == "reassessment"
    assert course.advance(28) == []  # nothing left due: firing again is a no-op
    timer = fired[0].decision.timer_fired
    again = usecases.fire_timer(course.uow, DEFS, "ep-1", timer.key, timer.due_at, now=day(28))
    assert again.decision is None and again.outcome.repeated


def test_due_timers_across_episodes_in_due_then_episode_order(uow_factory: Factory) -> None:
    for episode_id in ("ep-b", "ep-a", "ep-c"):
        in_care(uow_factory, episode_id)
    uow = uow_factory()
    with uow:
        due = uow.due_timers(day(28), 100)
        assert sorted(uow.episode_ids()) == ["ep-a", "ep-b", "ep-c"]
        assert uow.due_timers(day(28), 2) == due[:2]
        assert uow.due_timers(day(28), 100, "ep-c") == [d for d in due if d.episode_id == "ep-c"]
    assert [(d.episode_id, d.timer.rule_id) for d in due] == [  # all due on day 28
        ("ep-a", "T-CALCITONIN-END"),
        ("ep-a", "FU-REASSESS"),
        ("ep-b", "T-CALCITONIN-END"),
        ("ep-b", "FU-REASSESS"),
        ("ep-c", "T-CALCITONIN-END"),
        ("ep-c", "FU-REASSESS"),
    ]


def test_an_unknown_episode_is_not_found(uow_factory: Factory) -> None:
    uow = uow_factory()
    with uow, pytest.raises(EpisodeNotFound):
        uow.get_episode("nobody")
    with uow, pytest.raises(EpisodeNotFound):
        uow.due_timers(day(1), 10, "nobody")
    with pytest.raises(EpisodeNotFound):
        usecases.observe(uow, DEFS, "nobody", {"pain_score": 1}, at=day(0), now=day(0), actor="x")


def _stale_change(uow: UnitOfWork, pain: int, event_id: str) -> Change:
    episode = uow.get_episode("ep-1")
    event = Observe(event_id, day(2), "doctor", {"pain_score": pain})
    decision = decide(DEFS.current, episode, event, day(2))
    record = entry_for(decision, day(2), key=uow.audit_key)
    decision.episode.audit_hash = record.hash
    return Change(decision, record, Outcome.of(decision))


def test_leaving_without_commit_writes_nothing(uow_factory: Factory) -> None:
    in_care(uow_factory, "ep-1")
    before = stored(uow_factory, "ep-1")
    uow = uow_factory()
    with uow:
        change = _stale_change(uow, 3, "uncommitted")
        uow.save(change)
        assert uow.get_episode("ep-1") is change.decision.episode  # its own staged write
        assert uow.find_outcome("uncommitted") == change.outcome
    assert stored(uow_factory, "ep-1") == before
    with uow:
        assert uow.find_outcome("uncommitted") is None


def test_a_stale_write_is_a_conflict_and_loses_nothing(uow_factory: Factory) -> None:
    in_care(uow_factory, "ep-1")
    first, second = uow_factory(), uow_factory()
    with first, second:
        a = _stale_change(first, 3, "writer-a")
        b = _stale_change(second, 9, "writer-b")  # both read the same version
        first.save(a)
        first.commit()
        second.save(b)
        with pytest.raises(ConcurrencyConflict) as raised:
            second.commit()
    assert (raised.value.expected_version, raised.value.found) == (2, 3)
    episode = check_stored_episode(uow_factory(), "ep-1")
    assert episode == a.decision.episode and episode.fact("pain_score") == 3
    with first:
        assert first.find_outcome("writer-b") is None


def test_reopening_an_existing_episode_id_is_a_conflict(uow_factory: Factory) -> None:
    Course(uow_factory).open(PROFILE)
    with pytest.raises(ConcurrencyConflict):
        usecases.open_episode(
            uow_factory(), DEFS, {}, at=day(0), now=day(0), actor="x", episode_id="ep-1"
        )
    check_stored_episode(uow_factory(), "ep-1")
