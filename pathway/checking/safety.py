"""A definition's declared safety properties, judged on one engine decision at a time.

Why a module of its own: the exhaustive check (``pathway.checking.explore``) runs it on every
decision it explores, and any other driver of the engine (a property-based test, a simulation)
can run the same monitor. The properties are the definition's own ``safety`` section
(``Definition.safety``), so no pathway's names live here: a definition that moves a rule the
properties name or drops a condition is judged against what it declares, not trusted. The kinds:

    observation_leads_to  an observation after which one of ``rules`` holds ends in ``state``,
                          every such rule fired
    request_refused       a request for ``action`` is refused by ``rule`` and changes nothing;
                          that rule never fires
    enters_only_when      ``state`` is entered only when the criterion ``when`` holds (with
                          ``rules``: entered through one of those rules)
    transition_keeps_task after a transition caused by the rule, the episode has its task open
    never_unseen          a live episode has a pending timer or an open escalation
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from pathway.criteria import Context
from pathway.definition import Definition, SafetyProperty
from pathway.model import OPEN, Decision, Episode, Observe, Open, Request
from pathway.work import derived_values

Found = Iterator[tuple[str, str]]  # (property id, why)


def context_after(
    definition: Definition, ep: Episode, at: datetime, event_facts: dict[str, Any]
) -> Context:
    """What criteria read after a decision, the derived values computed as the engine does."""
    derived = derived_values(definition, ep, at)
    return Context(ep.facts, event_facts, None, derived, ep.state)


def leads_to_rules(definition: Definition) -> frozenset[str]:
    """The rules of every ``observation_leads_to`` property (the report's boundary table)."""
    return frozenset(
        r for p in definition.safety if p.kind == "observation_leads_to" for r in p.rules
    )


def leads_to_states(definition: Definition) -> frozenset[str]:
    """The states those properties lead to: a safe way out, but not a clinical outcome."""
    return frozenset(
        p.state for p in definition.safety if p.kind == "observation_leads_to" and p.state
    )


class SafetyMonitor:
    """One definition's declared properties; ``violations`` judges one decision."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self.judges: list[tuple[SafetyProperty, Callable[[SafetyProperty, Decision], Found]]] = [
            (p, getattr(self, f"_{p.kind}")) for p in definition.safety
        ]

    def violations(self, decision: Decision) -> Found:
        """The properties this decision breaks, each as (property id, why)."""
        for prop, judge in self.judges:
            yield from judge(prop, decision)

    def _observation_leads_to(self, p: SafetyProperty, decision: Decision) -> Found:
        d, ep, event, before = (
            self.definition,
            decision.episode,
            decision.event,
            decision.episode_before,
        )
        if not isinstance(event, Observe | Open) or (before and d.is_terminal(before.state)):
            return
        ctx = context_after(d, ep, event.at, dict(event.facts))
        held = [r for r in p.rules if d.rules[r].criterion.test(ctx)]
        missing = sorted(set(held) - set(decision.rule_ids))
        if held and (ep.state != p.state or missing):
            why = f" and {missing} did not fire" if missing else ""
            yield (
                p.id,
                (
                    f"{', '.join(held)} held after observing {dict(event.facts)} "
                    f"but the episode is in {ep.state!r}{why}"
                ),
            )

    def _request_refused(self, p: SafetyProperty, decision: Decision) -> Found:
        (rule,) = p.rules
        event = decision.event
        if isinstance(event, Request) and event.action == p.action:
            changed = decision.transitions or decision.tasks_opened
            if rule not in decision.refused_ids or changed:
                yield p.id, f"a {event.action} request was not refused (by {rule})"
        if rule in decision.rule_ids:
            yield p.id, f"{rule} fired: {p.action} was recommended"

    def _enters_only_when(self, p: SafetyProperty, decision: Decision) -> Found:
        entries = [t for t in decision.transitions if t.dest == p.state]
        if p.rules:
            entries = [t for t in entries if set(t.rules) & set(p.rules)]
        if p.when is None or not entries:
            return
        ctx = context_after(self.definition, decision.episode, decision.event.at, {})
        if not p.when.test(ctx):
            failed = [e for e in p.when.explain(ctx) if not e.held]
            why = "; ".join(f"{e.test} (is {e.observed})" for e in failed)
            yield p.id, f"entered {p.state!r} although not {why}"

    def _transition_keeps_task(self, p: SafetyProperty, decision: Decision) -> Found:
        (rule,) = p.rules
        moved = [t for t in decision.transitions if rule in t.rules]
        has_task = any(t.rule_id == rule and t.status == OPEN for t in decision.episode.tasks)
        if moved and not has_task:
            yield p.id, f"entered {moved[-1].dest!r} through {rule} without an open {rule} task"

    def _never_unseen(self, p: SafetyProperty, decision: Decision) -> Found:
        ep = decision.episode
        live = not self.definition.is_terminal(ep.state)
        if live and not ep.pending_timers() and not ep.open_escalations():
            yield p.id, f"in {ep.state!r} with no pending timer and no open escalation: unseen"
