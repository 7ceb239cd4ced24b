"""An episode's timeline for the page: the audit entries, read back into what a person reads.

The audit log is the record of what happened and why, so the timeline is built from it and
nothing else: each entry's clinical time, who acted, the facts recorded, the move between
states, every rule fired with the evidence that decided it (each leaf, the value observed) and
its citations, refusals, and the tasks opened and closed. Refusals are also gathered apart,
because a refused request is something a coordinator must be able to find at a glance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pathway.audit import AuditRecord
from pathway.definition import Definition
from pathway.vocabulary import FactSpec

KIND_LABELS = {
    "open": "Episode opened",
    "observe": "Observation recorded",
    "timer": "Timer fired",
    "request": "Request",
    "close": "Episode closed",
    "task": "Task updated",
    "assign": "Owner changed",
    "booking": "Appointment",
}
BOOKING_WORDS = {"book": "Booked", "move": "Moved to", "cancel": "Cancelled", "missed": "Missed"}
TASK_STATUS_LABELS = {"done": "done", "not_done": "not done", "open": "open"}


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    test: str
    observed: str
    held: bool


@dataclass(frozen=True, slots=True)
class RuleLine:
    rule_id: str
    title: str
    refs: tuple[str, ...]
    citations: tuple[str, ...]
    evidence: tuple[EvidenceLine, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    at: datetime
    actor: str
    action: str
    rule: RuleLine


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: datetime
    recorded_at: datetime
    kind: str
    actor: str
    state_from: str | None
    state_to: str
    facts: tuple[tuple[str, str], ...]
    rules: tuple[RuleLine, ...]
    refused: tuple[Refused, ...]
    opened: tuple[tuple[str, str, str], ...]  # (kind, text, rule id)
    closed: tuple[tuple[str, str, str | None], ...]  # (text, status, note)
    detail: str | None  # close reason, requested action, timer lateness

    @property
    def moved(self) -> bool:
        return self.state_from is not None and self.state_from != self.state_to


def timeline(definition: Definition, records: Iterable[AuditRecord]) -> list[Entry]:
    """Entries newest first, as a clinical record is read."""
    entries: list[Entry] = []
    task_text: dict[str, str] = {}
    for record in records:
        body = record.body()
        for task in body.get("tasks_opened", ()):
            task_text[task["key"]] = task["text"]
        entry = _entry(definition, record, body, task_text)
        if entries and _same_round(entries[-1], entry):
            entry = _merged(entries.pop(), entry)
        entries.append(entry)
    entries.reverse()
    return entries


def _same_round(a: Entry, b: Entry) -> bool:
    """Tasks one person marked at the same moment read as one entry, not one line each."""
    return (
        a.kind == b.kind == KIND_LABELS["task"]
        and a.actor == b.actor
        and a.at == b.at
        and not a.moved
        and not b.moved
    )


def _merged(a: Entry, b: Entry) -> Entry:
    return replace(
        b, rules=a.rules + b.rules, closed=a.closed + b.closed, opened=a.opened + b.opened
    )


def refusals(entries: Iterable[Entry]) -> list[Refused]:
    return [r for e in entries for r in e.refused]


def visited_states(records: Iterable[AuditRecord]) -> set[str]:
    seen: set[str] = set()
    for r in records:
        seen.add(r.state_to)
        if r.state_from:
            seen.add(r.state_from)
    return seen


def show_value(value: Any, spec: FactSpec | None = None) -> str:
    """A fact value as a person writes it: yes/no, lists joined, units after numbers."""
    if value is True or value is False:
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if value is None:
        return "—"
    unit = f" {spec.unit}" if spec is not None and spec.unit and spec.kind != "enum" else ""
    return f"{value}{unit}"


def _entry(
    definition: Definition, record: AuditRecord, body: dict[str, Any], task_text: dict[str, str]
) -> Entry:
    facts = definition.vocabulary.facts
    shown_facts = tuple(
        (facts[n].label if n in facts else n, show_value(v, facts.get(n)))
        for n, v in (body.get("facts") or {}).items()
    )
    rules = tuple(_rule(r) for r in body.get("rules", ()))
    refused = tuple(
        Refused(record.at, record.actor, r["action"], _rule(r["firing"]))
        for r in body.get("refused", ())
    )
    opened = tuple((t["kind"], t["text"], t["rule_id"]) for t in body.get("tasks_opened", ()))
    closed = tuple(
        (
            task_text.get(t["key"], t["key"]),
            TASK_STATUS_LABELS.get(t["status"], t["status"]),
            t.get("note"),
        )
        for t in body.get("tasks_closed", ())
    )
    return Entry(
        seq=record.seq,
        at=record.at,
        recorded_at=record.recorded_at,
        kind=KIND_LABELS.get(record.kind, record.kind),
        actor=record.actor,
        state_from=record.state_from,
        state_to=record.state_to,
        facts=shown_facts,
        rules=rules,
        refused=refused,
        opened=opened,
        closed=closed,
        detail=_detail(record.kind, body),
    )


def _rule(raw: dict[str, Any]) -> RuleLine:
    return RuleLine(
        rule_id=raw["rule_id"],
        title=raw["title"],
        refs=tuple(raw.get("refs", ())),
        citations=tuple(raw.get("citations", ())),
        evidence=tuple(
            EvidenceLine(e["test"], show_value(e["observed"]), bool(e["held"]))
            for e in raw.get("evidence", ())
        ),
    )


def _detail(kind: str, body: dict[str, Any]) -> str | None:
    if kind == "close" and body.get("reason"):
        return "Reason: " + str(body["reason"]).replace("_", " ")
    if kind == "assign":
        return f"Assigned to {body['owner']}" if body.get("owner") else "Unassigned"
    if kind == "booking":  # pathway.appointments: action, window, day, reason
        day = f" {body['on']}" if body.get("on") and body.get("action") != "cancel" else ""
        outside = (body.get("appointment") or {}).get("deviation")
        why = f" (outside the window: {body.get('reason')})" if outside else ""
        words = BOOKING_WORDS.get(str(body.get("action")), str(body.get("action")))
        return f"{words}{day}, window {body.get('window')}{why}"
    if kind == "request" and body.get("reason"):
        return "Requested: " + str(body["reason"])
    lateness = body.get("lateness_seconds")
    if kind == "timer" and lateness and lateness >= 3600:
        hours = lateness / 3600
        return f"Fired {hours / 24:.0f} days late" if hours >= 48 else f"Fired {hours:.0f} h late"
    return None
