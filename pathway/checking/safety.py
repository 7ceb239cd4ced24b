"""PROTOCOL.md's five safety properties, checked on one engine decision at a time.

Why a module of its own: the exhaustive check (``pathway.checking.explore``) runs it on every decision it
explores, and any other driver of the engine (a property-based test, a simulation) can run the
same monitor. The properties are data (``SafetySpec``) judged against the definition's own rules,
so a definition that moves a TX rule or drops a condition is judged, not trusted:

    P1  an observation after which a TX rule holds ends in the transfer state, every such rule fired
    P2  a vertebroplasty request is refused by its rule and changes nothing; that rule never fires
    P3  ``discharged`` is entered only with osteoporosis evaluation done and care in place
    P4  ``augmentation_consideration`` only at care day ≥ 90 and without a neurological deficit
    P5  a non-terminal episode has a pending timer or an open escalation: it cannot sit unseen
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pathway.criteria import Compiler, Context, Node
from pathway.definition import Definition
from pathway.model import Decision, Episode, Observe, Open, Request
from pathway.work import derived_values

_DEFICITS = (
    "neuro_deficit_motor",
    "neuro_deficit_sensory",
    "bowel_bladder_dysfunction",
    "radicular_symptoms",
)
_OSTEO_CARE = {"all": [{"fact": "dxa_done", "is": True}, {"any": [
    {"fact": "osteoporosis_treatment_started", "is": True},
    {"fact": "osteoporosis_referral_placed", "is": True}]}]}  # fmt: skip
_AUGMENT_OK = {"all": [{"fact": "care_day", ">=": 90},
                       {"not": {"any": [{"fact": f, "is": True} for f in _DEFICITS]}}]}  # fmt: skip


@dataclass(frozen=True)
class SafetySpec:
    """The properties as data: P1's transfer state and TX rules, P2's always-refused request and
    its rule, and (P3, P4) states whose entry a criterion in the definition language guards."""

    transfer_state: str = "immediate_transfer"
    transfer_rules: tuple[str, ...] = ("TX-NEURO", "TX-INSTAB", "TX-MALIG", "TX-MULTI")
    refused_action: str = "vertebroplasty"
    refused_rule: str = "AUG-NO-VERTEBROPLASTY"
    guarded: tuple[tuple[str, str, Any], ...] = (
        ("P3", "discharged", _OSTEO_CARE),
        ("P4", "augmentation_consideration", _AUGMENT_OK),
    )


def context_after(
    definition: Definition, ep: Episode, at: datetime, event_facts: dict[str, Any]
) -> Context:
    """What criteria read after a decision, the derived values computed as the engine does."""
    derived = derived_values(definition, ep, at)
    return Context(ep.facts, event_facts, None, derived, ep.state)


class SafetyMonitor:
    """The spec compiled against one definition; ``violations`` judges one decision."""

    def __init__(self, definition: Definition, spec: SafetySpec | None = None) -> None:
        self.d, self.spec = definition, spec or SafetySpec()
        compiler = Compiler(definition.names, [], frozenset(definition.states))
        self.guards: list[tuple[str, str, Node]] = [
            (prop, state, compiler.compile(raw, f"safety.{prop}"))
            for prop, state, raw in self.spec.guarded
        ]

    def violations(self, decision: Decision) -> Iterator[tuple[str, str]]:
        """The properties this decision breaks, each as (property id, why)."""
        d, spec, ep, event = self.d, self.spec, decision.episode, decision.event
        before = decision.episode_before
        live_before = before is None or not d.is_terminal(before.state)
        if isinstance(event, Observe | Open) and live_before:
            ctx = context_after(d, ep, event.at, dict(event.facts))
            rules = [d.rules[r] for r in spec.transfer_rules if r in d.rules]
            held = [r.id for r in rules if r.criterion.test(ctx)]
            missing = sorted(set(held) - set(decision.rule_ids))
            if held and (ep.state != spec.transfer_state or missing):
                why = f" and {missing} did not fire" if missing else ""
                yield (
                    "P1",
                    (
                        f"{', '.join(held)} held after observing {dict(event.facts)} "
                        f"but the episode is in {ep.state!r}{why}"
                    ),
                )
        if isinstance(event, Request) and event.action == spec.refused_action:
            changed = decision.transitions or decision.tasks_opened
            if spec.refused_rule not in decision.refused_ids or changed:
                yield "P2", f"a {event.action} request was not refused (by {spec.refused_rule})"
        if spec.refused_rule in decision.rule_ids:
            yield "P2", f"{spec.refused_rule} fired: {spec.refused_action} was recommended"
        for prop, state, criterion in self.guards:
            if any(t.dest == state for t in decision.transitions):
                ctx = context_after(d, ep, event.at, {})
                if not criterion.test(ctx):
                    failed = [e for e in criterion.explain(ctx) if not e.held]
                    why = "; ".join(f"{e.test} (is {e.observed})" for e in failed)
                    yield prop, f"entered {state!r} although not {why}"
        if not d.is_terminal(ep.state) and not ep.pending_timers() and not ep.open_escalations():
            yield "P5", f"in {ep.state!r} with no pending timer and no open escalation: unseen"
