"""What a decision tells the outside world: the notices webhooks deliver (issue 11, item 4).

Pure: from a ``Decision`` and the definition it was made on to a list of ``Notice`` values,
read off the definition's own marks, never a pathway's state names —

- ``escalation.opened`` / ``escalation.closed``: a task of kind ``escalation`` the decision
  opened or closed (resolved, done, not done);
- ``episode.transferred``: a transition taken by an immediate-transfer route (the definition's
  ``on_every_event`` routes, ``Definition.global_routes``);
- ``episode.ended``: the decision left the episode in a terminal state it was not in before
  (a transfer into a terminal state sends both);
- ``episode.enrolled``: the decision that opened an episode from another pathway's episode
  (``pathway.enrolment``: a new episode whose link says ``enrolled_from``);
- ``appointment.missed``: an event of kind ``booking`` whose ``action`` is ``missed``; its
  ``window`` (a rule id) is the notice's rule.

A notice carries no clinical fact: episode id, pathway, state, rule, citation, and a few ids
(task key, the episode enrolled from). The patient reference travels beside it and reaches only
subscriptions that asked for it. Its ``id`` is derived from the event id, so a notice written
twice (a retried command finds its outcome and writes nothing anyway) keeps one id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pathway.definition import Definition
from pathway.model import Decision, Task

ESCALATION_OPENED = "escalation.opened"
ESCALATION_CLOSED = "escalation.closed"
EPISODE_TRANSFERRED = "episode.transferred"
EPISODE_ENDED = "episode.ended"
APPOINTMENT_MISSED = "appointment.missed"
EPISODE_ENROLLED = "episode.enrolled"
EVENT_TYPES = (
    ESCALATION_OPENED,
    ESCALATION_CLOSED,
    EPISODE_TRANSFERRED,
    EPISODE_ENDED,
    APPOINTMENT_MISSED,
    EPISODE_ENROLLED,
)
BOOKING_KIND, MISSED = "booking", "missed"
_ENROLLED_FROM = "enrolled_from"  # pathway.enrolment.ENROLLED_FROM (not imported: a cycle)


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell subscribers of ``type``; ``data`` holds no clinical facts."""

    id: str
    type: str
    timestamp: str  # ISO 8601, the event's clinical time
    data: dict[str, Any] = field(default_factory=dict)
    patient_ref: str | None = None  # only for subscriptions created with --include-patient-ref

    def payload(self, patient_ref: bool = False) -> dict[str, Any]:
        """The webhook body: ``{"type", "timestamp", "data"}``, with the patient reference in
        ``data`` only when asked for."""
        data = dict(self.data)
        if patient_ref and self.patient_ref is not None:
            data["patient_ref"] = self.patient_ref
        return {"type": self.type, "timestamp": self.timestamp, "data": data}


def notices_for(definition: Definition, decision: Decision) -> list[Notice]:
    """The notices ``decision`` raises, in a stable order (escalations, transitions, ending)."""
    if decision.skipped:
        return []
    out: list[tuple[str, str | None, dict[str, Any]]] = []
    for task in decision.tasks_opened:
        if task.kind == "escalation":
            out.append((ESCALATION_OPENED, task.rule_id, _task(task)))
    for task in decision.tasks_closed:
        if task.kind == "escalation":
            out.append((ESCALATION_CLOSED, task.rule_id, _task(task)))
    transfers = _transfer_routes(definition)
    for t in decision.transitions:
        if any(dest == t.dest and rules & set(t.rules) for rules, dest in transfers):
            out.append((EPISODE_TRANSFERRED, _first(t.rules), {"from": t.source}))
    before, ep = decision.episode_before, decision.episode
    was_ended = before is not None and _terminal(definition, before.state)
    if _terminal(definition, ep.state) and not was_ended:
        rule = _first(decision.transitions[-1].rules) if decision.transitions else None
        source = before.state if before is not None else None
        out.append((EPISODE_ENDED, rule, {"from": source, "reason": ep.closed_reason}))
    if before is None:
        for link in decision.links_added:
            if link.relation == _ENROLLED_FROM:
                data = {"enrolled_from": link.episode_id, "from_pathway": link.pathway}
                out.append((EPISODE_ENROLLED, link.rule, data))
    event = decision.event
    if getattr(event, "kind", None) == BOOKING_KIND and _booking(event, "action") == MISSED:
        window = _booking(event, "window")
        out.append((APPOINTMENT_MISSED, window, {"window": window}))
    return [_notice(definition, decision, i, *item) for i, item in enumerate(out)]


def _notice(
    definition: Definition,
    decision: Decision,
    index: int,
    kind: str,
    rule: str | None,
    extra: dict[str, Any],
) -> Notice:
    ep, event = decision.episode, decision.event
    found = definition.rules.get(rule) if rule else None
    data: dict[str, Any] = {
        "episode": ep.id,
        "pathway": ep.pathway,
        "state": ep.state,
        "rule": rule,
        "citation": "; ".join(found.citations) if found is not None else None,
        **extra,
    }
    digest = hashlib.sha256(f"{event.event_id}|{index}|{kind}".encode()).hexdigest()[:24]
    return Notice(f"msg_{digest}", kind, event.at.isoformat(), data, ep.patient_ref)


def _transfer_routes(definition: Definition) -> list[tuple[set[str], str | None]]:
    return [(set(r.rules), r.to) for r in definition.global_routes if r.to is not None]


def _terminal(definition: Definition, state: str) -> bool:
    found = definition.states.get(state)
    return found is not None and found.terminal


def _task(task: Task) -> dict[str, Any]:
    return {"task": task.key, "task_status": task.status}


def _first(rules: tuple[str, ...]) -> str | None:
    return rules[0] if rules else None


def _booking(event: object, name: str) -> Any:
    """A booking event's ``action`` or ``window``: an attribute, or a key of its ``payload``."""
    if hasattr(event, name):
        return getattr(event, name)
    payload = getattr(event, "payload", None)
    return payload.get(name) if isinstance(payload, dict) else None
