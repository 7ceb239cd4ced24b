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
from datetime import UTC
from typing import Any

from pathway.criteria import Context
from pathway.definition import Definition, EnrolmentDef
from pathway.model import Decision, Episode, Link, Open
from pathway.registry import DefinitionRegistry
from pathway.work import derived_values

ENROLLED, ENROLLED_FROM, LINKED, LINKED_FROM = "enrolled", "enrolled_from", "linked", "linked_from"


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
    ep = decision.episode
    done = {link.rule for link in ep.links if link.relation in (ENROLLED, LINKED)}
    entered = {t.dest for t in decision.transitions}
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
            clock = how["date_of"]
            start = source.opened_at if clock == "opening" else source.state_entered_at
            if clock == "care_start":
                start = source.care_started_at or source.opened_at
            facts[name] = start.astimezone(UTC).date().isoformat()
    event = decision.event
    return Open(
        f"enrol:{source.id}:{e.declared.rule}", event.at, event.actor, facts,
        source.patient_ref, source.label,
    )  # fmt: skip


def links(source: Episode, target_id: str, e: Enrolment, opened: bool) -> tuple[Link, Link]:
    """The link on the source side and the one on the enrolled (or linked) side."""
    rule = e.declared.rule
    return (
        Link(target_id, e.target.id, rule, ENROLLED if opened else LINKED),
        Link(source.id, source.pathway, rule, ENROLLED_FROM if opened else LINKED_FROM),
    )
