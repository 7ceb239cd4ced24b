"""The engine: what one event does to one episode, with the evidence for every part of it.

``decide(definition, episode, event, now)`` is pure: it reads the snapshot, never changes it,
and returns a ``Decision`` holding the new snapshot and everything that happened on the way
(rules fired with evidence and citations, transitions, refusals, timers set and cancelled,
tasks opened and closed). Same input, same output. ``now`` is only used to say how late a
timer fired; clinical time is the event's ``at``.

Evaluation order (PROTOCOL.md): facts are updated, the TX check runs, then the state's routes in
order (first that applies decides); evaluation goes on while a transition applies.
"""

from __future__ import annotations

from datetime import datetime

from pathway.appointments import decide_booking, end_appointment, note_review
from pathway.criteria import Always, Evidence
from pathway.definition import Definition
from pathway.errors import EpisodeClosed, InvalidRequest
from pathway.model import (
    DONE,
    FIRED,
    NOT_DONE,
    OPEN,
    PENDING,
    Assign,
    Booking,
    Close,
    Decision,
    Episode,
    Event,
    FireTimer,
    LinkEpisode,
    Observe,
    Open,
    Request,
    UpdateTask,
)
from pathway.work import DecisionInProgress


def open_episode(definition: Definition, event: Open, episode_id: str, now: datetime) -> Decision:
    """Start an episode in the initial state; facts given at opening are evaluated like an observation."""
    facts, at = event.facts, event.at
    facts = (
        definition.vocabulary.validate(facts, at) if not isinstance(facts, dict) or facts else {}
    )
    episode = Episode(
        id=episode_id,
        definition_version=definition.version,
        state=definition.initial_state,
        opened_at=at,
        state_entered_at=at,
        patient_ref=event.patient_ref,
        label=event.label,
        version=1,
    )
    work = DecisionInProgress(definition, episode, Decision(event, None, episode), 1)
    work.enter(definition.initial_state)
    if facts:
        work.observe(facts, event, source="open")
    return work.finish()


def decide(definition: Definition, episode: Episode, event: Event, now: datetime) -> Decision:
    """Decide what ``event`` does to ``episode``. Raises a PathwayError (and changes nothing) on bad input."""
    decision = _decide(definition, episode, event, now)
    if not decision.skipped:
        end_appointment(definition, decision.episode)
    return decision


def _decide(definition: Definition, episode: Episode, event: Event, now: datetime) -> Decision:
    if isinstance(event, FireTimer):
        return _fire_timer(definition, episode, event, now)
    if definition.is_terminal(episode.state):
        raise EpisodeClosed(episode.id, episode.state, f"{event.kind} event")
    if event.at < episode.state_entered_at:
        raise InvalidRequest(
            "at",
            event.at.isoformat(),
            f"a time at or after {episode.state_entered_at.isoformat()}, when the episode "
            f"entered {episode.state!r} (clinical time does not go backwards)",
            episode_id=episode.id,
        )
    if isinstance(event, Observe):
        facts = definition.vocabulary.validate(event.facts, event.at)
        work = DecisionInProgress.start(definition, episode, event)
        work.observe(facts, event, source=event.source)
        note_review(definition, episode, work)
        return work.finish()
    if isinstance(event, Request):
        return _request(definition, episode, event)
    if isinstance(event, UpdateTask):
        return _update_task(definition, episode, event)
    if isinstance(event, Assign):
        work = DecisionInProgress.start(definition, episode, event)
        work.episode.owner = event.owner
        return work.finish()
    if isinstance(event, Booking):
        return decide_booking(definition, episode, event)
    if isinstance(event, LinkEpisode):
        work = DecisionInProgress.start(definition, episode, event)
        work.episode.links = (*episode.links, event.link)
        work.decision.links_added.append(event.link)
        return work.finish()
    if isinstance(event, Close):
        close = definition.close
        if event.reason not in close.reasons:
            raise InvalidRequest(
                "reason", event.reason, "one of " + ", ".join(close.reasons), episode_id=episode.id
            )
        work = DecisionInProgress.start(definition, episode, event)
        work.episode.closed_reason = event.reason
        work.fire(definition.rules[close.rule], [])
        work.move(close.to, close.rule, (close.rule,))
        return work.finish()
    raise InvalidRequest(
        "event", type(event).__name__, "observe, request, close, task, assign, booking or timer"
    )


def _request(definition: Definition, episode: Episode, event: Request) -> Decision:
    spec = definition.requests.get(event.action)
    if spec is None:
        raise InvalidRequest(
            "action",
            event.action,
            "one of " + ", ".join(definition.requests)
            if definition.requests
            else "no request: this pathway takes none",
            episode_id=episode.id,
        )
    work = DecisionInProgress.start(definition, episode, event)
    rule = definition.rules[spec.rule]
    if spec.refused_always:  # the evidence says why: no state or fact could allow it
        refused = Evidence(f"{event.action} is refused on every request", event.action, None, True)
        work.refuse(event.action, rule, [refused])
        return work.finish()
    ctx = work.context()
    allowed_state = episode.state in spec.allowed_from
    if allowed_state and rule.criterion.test(ctx):
        work.fire(rule, rule.criterion.explain(ctx, True))
        if spec.to:
            work.move(spec.to, rule.id, (rule.id,))
        return work.finish()
    evidence = rule.criterion.explain(ctx)
    if not allowed_state:
        allowed = ", ".join(sorted(spec.allowed_from))
        evidence.insert(0, Evidence(f"state in {allowed}", episode.state, None, False))
    work.refuse(event.action, rule, evidence)
    return work.finish()


TASK_OUTCOMES = (DONE, NOT_DONE)


def _update_task(definition: Definition, episode: Episode, event: UpdateTask) -> Decision:
    if event.status not in TASK_OUTCOMES:
        raise InvalidRequest(
            "status", event.status, "one of " + ", ".join(TASK_OUTCOMES), episode_id=episode.id
        )
    index = next((i for i, t in enumerate(episode.tasks) if t.key == event.task_key), None)
    if index is None or episode.tasks[index].status != OPEN:
        open_keys = ", ".join(t.key for t in episode.tasks if t.status == OPEN) or "none"
        raise InvalidRequest(
            "task", event.task_key, f"the key of an open task of this episode ({open_keys})",
            episode_id=episode.id,
        )  # fmt: skip
    work = DecisionInProgress.start(definition, episode, event)
    work.set_task_status(index, event.status, event.note)
    return work.finish()


def _fire_timer(
    definition: Definition, episode: Episode, event: FireTimer, now: datetime
) -> Decision:
    key, index, timer = event.timer_key, 0, None
    for t in episode.timers:
        if t.key == key:
            timer = t
            break
        index += 1
    if timer is None or timer.status != PENDING or definition.is_terminal(episode.state):
        return Decision(event, episode, episode, skipped=True)  # cancelled or already fired
    work = DecisionInProgress.start(definition, episode, event)
    spec, delay = work.plan.timers[timer.rule_id]
    nominal = timer.due_at
    if timer.set_at is not None:  # lateness counts from the anchor, not from a clamped due time
        if delay is not None:  # a plain delay: its nominal due time, without the parts' walk
            nominal = timer.set_at + delay
        else:
            nominal = spec.nominal_due(timer.set_at, episode.facts) or timer.due_at
    work.decision.lateness_seconds = max(0.0, (now - min(nominal, timer.due_at)).total_seconds())
    work.set_timer_status(index, FIRED)
    rule = definition.rules[timer.rule_id]
    if type(rule.criterion) is Always:  # no context to build for a rule without a criterion
        work.fire(rule, [], state=timer.state)
    else:
        ctx = work.context()
        if rule.criterion.test(ctx):
            work.fire(rule, rule.criterion.explain(ctx, True), state=timer.state)
    if spec.moves_to and episode.state in spec.moves_from:
        work.move(spec.moves_to, timer.rule_id, (timer.rule_id,))
    return work.finish()
