"""The use cases: open, observe, request, close, fire timers — each one transaction — and
``handle``, the one way a command from outside (CLI, API, pages) runs.

Each use case takes a unit of work, runs the engine on the stored snapshot and saves the
decision, its audit entry and its outcome together. An event id seen before returns the first
outcome and writes nothing; a timer's event id is derived from the timer (``timer_event_id``,
the one place its format is written), so firing it twice is a no-op, and every use case
refuses that prefix to every other event, and the prefix of enrolments' derived event ids
(``pathway.enrolment.ENROL_EVENT_PREFIX``) to every event (``refuse_reserved``).

``handle`` is the policy every entry point shares, so that none writes it again: the event ids
reserved for timers and enrolments refused, a caller's key scoped to that caller and bound to its
request (``pathway.idempotency``), a repeated event id answered with its first outcome (nothing
fired, nothing written; a caller's key reused for a different request refused), then the
episode's timers that are due by ``now`` fired (each its own transaction, as a running scheduler
would have fired them, so a command never acts on a state the clock has already left), then the
event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pathway.appointments import APPOINTMENT_EVENT_PREFIX
from pathway.audit import entry_for
from pathway.engine import decide
from pathway.engine import open_episode as _open
from pathway.enrolment import ENROL_EVENT_PREFIX, close_enrolled, enrol
from pathway.errors import InvalidRequest
from pathway.idempotency import Keyed, check_replay, keyed, stamp, with_scoped_id
from pathway.ids import new_event_id, time_ordered_id  # here: patchable in a compiled core
from pathway.model import (
    Booking,
    Close,
    Decision,
    Event,
    FireTimer,
    Observe,
    Open,
    Request,
    UpdateTask,
)
from pathway.notifications import Notice, notices_for
from pathway.registry import DefinitionRegistry
from pathway.unit_of_work import Change, Outcome, UnitOfWork

__all__ = ["DefinitionRegistry"]  # re-exported: where entry points have always found it


@dataclass(frozen=True, slots=True)
class Applied:
    """A command's result: its outcome, and the full decision when it was decided just now."""

    outcome: Outcome
    decision: Decision | None
    enrolled: tuple[tuple[str, str], ...] = ()  # (pathway, rule) of episodes it opened


@dataclass(frozen=True, slots=True)
class Handled:
    """What ``handle`` did: the command's result, and the due timers it fired first."""

    applied: Applied
    timers_fired: list[Applied]


TIMER_EVENT_PREFIX = "timer:"


def timer_event_id(episode_id: str, timer_key: str) -> str:
    """The event id of a timer's firing: derived, so that firing it twice is a no-op."""
    return f"{TIMER_EVENT_PREFIX}{episode_id}:{timer_key}"


def timer_event_episode(event_id: str) -> str | None:
    """The episode of a timer firing's event id; None for any other event id."""
    if not event_id.startswith(TIMER_EVENT_PREFIX):
        return None
    return event_id[len(TIMER_EVENT_PREFIX) :].split(":", 1)[0]


def refuse_reserved(event: Event) -> None:
    """Refuse an event id reserved for timer firings (unless it is one) or enrolments: a client
    id ``timer:<episode>:<key>`` would take the timer's outcome and block it for good. Every
    use case calls this first, so every entry point (CLI, API, pages, replay) inherits it."""
    if not event.event_id.startswith(_RESERVED) and not isinstance(event, Booking):
        return  # nearly every event: one test
    if (
        event.event_id.startswith(ENROL_EVENT_PREFIX)
        or (event.event_id.startswith(TIMER_EVENT_PREFIX) and not isinstance(event, FireTimer))
        or (event.event_id.startswith(APPOINTMENT_EVENT_PREFIX) and not _is_missed_event(event))
    ):
        raise InvalidRequest(
            "event_id",
            event.event_id,
            f"an event id starting neither {TIMER_EVENT_PREFIX!r}, {ENROL_EVENT_PREFIX!r} "
            f"nor {APPOINTMENT_EVENT_PREFIX!r}",
        )
    if isinstance(event, Booking) and event.action == "missed" and not _is_missed_event(event):
        raise InvalidRequest(
            "action", "missed", "book, move or cancel (the scheduler records a missed one)"
        )


_RESERVED = (ENROL_EVENT_PREFIX, TIMER_EVENT_PREFIX, APPOINTMENT_EVENT_PREFIX)


def _is_missed_event(event: Event) -> bool:
    """The scheduler's record of a missed appointment, under its own derived event id."""
    return (
        isinstance(event, Booking)
        and event.action == "missed"
        and event.event_id.startswith(APPOINTMENT_EVENT_PREFIX)
    )


def handle(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str | None,
    event: Event,
    now: datetime,
    *,
    precondition: Callable[[UnitOfWork], UnitOfWork] | None = None,
    caller: str | None = None,
    at_given: bool = True,
) -> Handled:
    """Run one command from outside as the module docstring says: reserved id refused, a
    repeat answered, due timers first, then the event.

    ``episode_id`` is the episode the event is for; for an ``Open`` it is the new episode's id
    (None: one is made). ``precondition``, if given, runs after the timers fired and before the
    event, and returns the unit of work the event runs on (the API checks ``If-Match`` there
    and pins the episode's version). ``caller``, if given (``token:<id>``, ``cli:<actor>``), says
    whose idempotency key the event's id is: it is then scoped to that caller and bound to the
    request (``at_given``: whether the caller gave the clinical time, which is then part of it).
    """
    refuse_reserved(event)
    request: Keyed | None = None
    if caller is not None:
        request = keyed(event, episode_id, caller, at_given=at_given)
        event = with_scoped_id(event, caller)
    with uow:
        prior = uow.find_outcome(event.event_id)
    if prior is not None:
        check_replay(prior, request, event.kind, episode_id)
        return Handled(Applied(_repeated(prior), None), [])
    if isinstance(event, Open):
        return Handled(_open_event(uow, definitions, event, now, episode_id, request), [])
    if episode_id is None:
        raise InvalidRequest("episode_id", None, f"the episode a {event.kind} event is for")
    fired = fire_due_timers(uow, definitions, now, episode_id=episode_id)
    target = uow if precondition is None else precondition(uow)
    return Handled(_apply(target, definitions, episode_id, event, now, request), fired)


def open_episode(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    facts: Mapping[str, Any],  # as sent: the engine validates it (a clear error naming it)
    *,
    at: datetime,
    now: datetime,
    actor: str,
    event_id: str | None = None,
    episode_id: str | None = None,
    patient_ref: str | None = None,
    label: str | None = None,
    pathway: str | None = None,
) -> Applied:
    event = Open(event_id or new_event_id(now), at, actor, facts, patient_ref, label, pathway)
    return _open_event(uow, definitions, event, now, episode_id)


def _open_event(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    event: Open,
    now: datetime,
    episode_id: str | None,
    request: Keyed | None = None,
) -> Applied:
    refuse_reserved(event)
    with uow:
        prior = uow.find_outcome(event.event_id)
        if prior is not None:
            check_replay(prior, request, event.kind, episode_id)
            return Applied(_repeated(prior), None)
        _check_not_future(event, now)
        definition = definitions.current_for(event.pathway)
        decision = _open(definition, event, episode_id or time_ordered_id(now), now)
        return _save(uow, definitions, decision, now, request)


def observe(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    facts: Mapping[str, Any],  # as sent: the engine validates it (a clear error naming it)
    *,
    at: datetime,
    now: datetime,
    actor: str,
    event_id: str | None = None,
    source: str = "user",
) -> Applied:
    return _apply(
        uow,
        definitions,
        episode_id,
        Observe(event_id or new_event_id(now), at, actor, facts, source),
        now,
    )


def request(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    action: str,
    *,
    at: datetime,
    now: datetime,
    actor: str,
    event_id: str | None = None,
) -> Applied:
    return _apply(
        uow, definitions, episode_id, Request(event_id or new_event_id(now), at, actor, action), now
    )


def close(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    reason: str,
    *,
    at: datetime,
    now: datetime,
    actor: str,
    event_id: str | None = None,
) -> Applied:
    return _apply(
        uow, definitions, episode_id, Close(event_id or new_event_id(now), at, actor, reason), now
    )


def update_task(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    task_key: str,
    status: str,
    *,
    note: str | None,
    at: datetime,
    now: datetime,
    actor: str,
    event_id: str | None = None,
) -> Applied:
    """Mark an open task done or not done, with a note: an audited event like any other."""
    event = UpdateTask(event_id or new_event_id(now), at, actor, task_key, status, note)
    return _apply(uow, definitions, episode_id, event, now)


def fire_timer(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    timer_key: str,
    due_at: datetime,
    *,
    now: datetime,
    actor: str = "scheduler",
) -> Applied:
    """Fire one timer at its due (clinical) time; a timer no longer pending changes nothing."""
    event = FireTimer(timer_event_id(episode_id, timer_key), due_at, actor, timer_key)
    return _apply(uow, definitions, episode_id, event, now)


def fire_due_timers(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    now: datetime,
    *,
    episode_id: str | None = None,
    batch: int = 100,
    actor: str = "scheduler",
) -> list[Applied]:
    """Fire every timer due by ``now`` in due order, including timers that firing sets and that
    are themselves already due; each firing is its own transaction."""
    fired: list[Applied] = []
    while True:
        with uow:
            due = uow.due_timers(now, batch, episode_id)
        progressed = False
        for item in due:
            applied = fire_timer(
                uow,
                definitions,
                item.episode_id,
                item.timer.key,
                item.timer.due_at,
                now=now,
                actor=actor,
            )
            if applied.decision is None:
                continue
            fired.append(applied)
            progressed = True
            if any(t.due_at <= now for t in applied.decision.timers_set):
                break  # it set a timer already due, maybe before the rest of this batch: look again
        if not progressed:
            return fired


FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of different machines disagree a little


def _check_not_future(event: Event, now: datetime) -> None:
    if event.at > now + FUTURE_TOLERANCE:
        raise InvalidRequest(
            "at", event.at.isoformat(), f"a time not after now ({now.isoformat()})"
        )


def _apply(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    event: Event,
    now: datetime,
    request: Keyed | None = None,
) -> Applied:
    refuse_reserved(event)
    with uow:
        prior = uow.find_outcome(event.event_id)
        if prior is not None:
            check_replay(prior, request, event.kind, episode_id)
            return Applied(_repeated(prior), None)
        if not isinstance(event, FireTimer):
            _check_not_future(event, now)
        episode = uow.get_episode(episode_id)
        decision = decide(definitions.get(episode.definition_version), episode, event, now)
        if decision.skipped:
            return Applied(Outcome.of(decision), None)
        return _save(uow, definitions, decision, now, request)


def _save(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    decision: Decision,
    now: datetime,
    request: Keyed | None = None,
) -> Applied:
    """Write the decision and what it causes on other pathways' episodes (enrolments and their
    links, an enrolled episode closed with its source) in one transaction, each with its own
    audit entry."""
    others = enrol(uow, definitions, decision, now) if decision.transitions else []
    if isinstance(decision.event, Close):  # only a close closes the episodes it enrolled
        others += close_enrolled(uow, definitions, decision, now)
    key, keeps = uow.audit_key, uow.keeps_notices
    record = entry_for(decision, now, key=key)
    decision.episode.audit_hash = record.hash
    outcome = Outcome.of(decision)
    if request is not None:
        stamp(outcome, request)
    notices = decision_notices(uow, definitions, decision) if keeps else ()
    uow.save(Change(decision, record, outcome, notices))
    for other in others:
        other_record = entry_for(other, now, key=key)
        other.episode.audit_hash = other_record.hash
        notices = decision_notices(uow, definitions, other) if keeps else ()
        uow.save(Change(other, other_record, Outcome.of(other), notices))
    uow.commit()
    enrolled = (
        tuple(
            (o.episode.pathway, link.rule)
            for o in others
            if o.episode_before is None
            for link in o.links_added
        )
        if others
        else ()
    )
    return Applied(outcome, decision, enrolled)


def decision_notices(
    uow: UnitOfWork, definitions: DefinitionRegistry, decision: Decision
) -> tuple[Notice, ...]:
    """The webhook notices of a decision, written in its transaction (``pathway.notifications``);
    none for a unit of work without an outbox (a replay in memory: ~6 % of its time)."""
    if not uow.keeps_notices:
        return ()
    return tuple(notices_for(definitions.get(decision.episode.definition_version), decision))


def _repeated(outcome: Outcome) -> Outcome:
    return replace(outcome, repeated=True)
