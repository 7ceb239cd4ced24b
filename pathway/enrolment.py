"""Enrolment: a decision on one pathway that opens (or links) an episode of another.

Pure planning, used by the use cases inside the source decision's transaction: which of the
enrolments other definitions declare on this pathway the decision triggers (an entered state
whose criterion holds on the source episode after the decision), and what the enrolled
episode's opening looks like (its facts copied or set, its id and event id derived from the
source episode and the rule, so that however the command is retried, replayed or raced there is
at most one enrolled episode per source episode and rule).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pathway.criteria import Context
from pathway.definition import Definition, EnrolmentDef
from pathway.engine import decide, open_episode
from pathway.errors import EpisodeNotFound
from pathway.model import Close, Decision, Episode, Link, LinkEpisode, Open
from pathway.registry import DefinitionRegistry
from pathway.unit_of_work import UnitOfWork
from pathway.work import clock_start, derived_values

ENROLLED, ENROLLED_FROM, LINKED, LINKED_FROM = "enrolled", "enrolled_from", "linked", "linked_from"
ENROL_EVENT_PREFIX = "enrol:"  # event ids of enrolments and their cascades: reserved


@dataclass(frozen=True, slots=True)
class Enrolment:
    """One enrolment a decision triggers: the target definition and its declaration."""

    target: Definition
    declared: EnrolmentDef


def triggered(
    registry: DefinitionRegistry, source: Definition, decision: Decision
) -> list[Enrolment]:
    """The enrolments this decision triggers (none already made from this episode)."""
    if not decision.transitions:
        return []
    entered = {t.dest for t in decision.transitions}
    if not entered & registry.trigger_states(source):
        return []  # no enrolment watches the states this decision entered
    ep = decision.episode
    done = {link.rule for link in ep.links if link.relation in (ENROLLED, LINKED)}
    out: list[Enrolment] = []
    ctx: Context | None = None
    for target, declared in registry.enrolments_into(source):
        if declared.rule in done:
            continue
        for state, criterion in registry.triggers(source, target, declared):
            if state not in entered:
                continue
            if ctx is None:
                at = decision.event.at
                ctx = Context(ep.facts, {}, None, derived_values(source, ep, at), ep.state)
            if criterion.test(ctx):
                out.append(Enrolment(target, declared))
                break
    return out


def enrolled_episode_id(source_id: str, rule: str) -> str:
    """The id of the episode an enrolment opens: the same however often it is attempted."""
    return hashlib.sha256(f"enrol:{source_id}:{rule}".encode()).hexdigest()[:32]


def opening(source: Episode, e: Enrolment, decision: Decision) -> Open:
    """The opening event of the enrolled episode: facts copied or set as declared."""
    facts: dict[str, Any] = {}
    for name, how in e.declared.facts.items():
        if "value" in how:
            facts[name] = how["value"]
        elif "copy" in how:
            value = source.fact(how["copy"])
            if value is not None:
                facts[name] = value
        else:
            start = clock_start(source, how["date_of"]) or source.opened_at
            facts[name] = start.astimezone(UTC).date().isoformat()
    event = decision.event
    return Open(
        f"{ENROL_EVENT_PREFIX}{source.id}:{e.declared.rule}", event.at, event.actor, facts,
        source.patient_ref, source.label, e.target.id,
    )  # fmt: skip


def links(source: Episode, target_id: str, e: Enrolment, opened: bool) -> tuple[Link, Link]:
    """The link on the source side and the one on the enrolled (or linked) side."""
    rule = e.declared.rule
    return (
        Link(target_id, e.target.id, rule, ENROLLED if opened else LINKED),
        Link(source.id, source.pathway, rule, ENROLLED_FROM if opened else LINKED_FROM),
    )


# -- inside the source decision's transaction ---------------------------------------------------


def enrol(
    uow: UnitOfWork, registry: DefinitionRegistry, decision: Decision, now: datetime
) -> list[Decision]:
    """Open or link the episodes this decision enrols, adding the links to its own episode (and
    its audit entry, which the caller builds after this). Returns the other episodes' decisions,
    to be saved in the same transaction."""
    if not decision.transitions:
        return []  # only an entered state enrols (most decisions: a fact, a timer, a task)
    source_def = registry.get(decision.episode.definition_version)
    out: list[Decision] = []
    for e in triggered(registry, source_def, decision):
        source = decision.episode
        live = _live_episode(uow, registry, e.target, source) if e.declared.link_live else None
        if live is not None:
            mine, theirs = links(source, live.id, e, opened=False)
            event = LinkEpisode(
                f"{ENROL_EVENT_PREFIX}{source.id}:{e.declared.rule}",
                _not_before(decision.event.at, live), decision.event.actor, theirs,
            )  # fmt: skip
            out.append(decide(registry.get(live.definition_version), live, event, now))
        else:
            target_id = enrolled_episode_id(source.id, e.declared.rule)
            mine, theirs = links(source, target_id, e, opened=True)
            opened = open_episode(e.target, opening(source, e, decision), target_id, now)
            opened.episode.links = (theirs,)
            opened.links_added.append(theirs)
            out.append(opened)
        source.links = (*source.links, mine)
        decision.links_added.append(mine)
    return out


def close_enrolled(
    uow: UnitOfWork, registry: DefinitionRegistry, decision: Decision, now: datetime
) -> list[Decision]:
    """A source episode closed for a reason its enrolments name closes the episodes it opened
    for the same reason (FLS-ENROL-SPINE: entered in error), each naming the source."""
    event = decision.event
    if not isinstance(event, Close):
        return []
    out: list[Decision] = []
    for link in decision.episode.links:
        if link.relation != ENROLLED:
            continue
        try:
            target = uow.get_episode(link.episode_id)
        except EpisodeNotFound:
            continue
        definition = registry.get(target.definition_version)
        declared = next((x for x in definition.enrolments if x.rule == link.rule), None)
        if declared is None or event.reason not in declared.close_with_source:
            continue
        if definition.is_terminal(target.state) or event.reason not in definition.close.reasons:
            continue
        cascade = Close(
            f"{ENROL_EVENT_PREFIX}{target.id}:close:{event.event_id}",
            _not_before(event.at, target), event.actor, event.reason, decision.episode.id,
        )  # fmt: skip
        out.append(decide(definition, target, cascade, now))
    return out


def _not_before(at: datetime, other: Episode) -> datetime:
    """The clinical time of an event caused on another episode: the source event's, unless the
    other episode entered its state later (its clock does not go backwards; the engine would
    refuse the event, and with it the source decision)."""
    return max(at, other.state_entered_at)


def _live_episode(
    uow: UnitOfWork, registry: DefinitionRegistry, target: Definition, source: Episode
) -> Episode | None:
    if not source.patient_ref:
        return None
    for episode in uow.episodes_of_patient(source.patient_ref, target.id):
        if episode.id != source.id and not registry.get(episode.definition_version).is_terminal(
            episode.state
        ):
            return episode
    return None
