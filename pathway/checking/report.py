"""What ``check_definition`` hands back: the report, its violations and their counterexamples.

Why apart from the walk: the report's shape is what ``carepath definition check`` prints and
writes (``--json``, ``--out``), and a counterexample must be a scenario file (SCENARIOS.md) that
``carepath replay`` runs as it is; keeping that format here keeps the walk about exploring.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pathway.definition import DEFAULT_PATHWAY, Definition

# One explored step: (day, kind, value, state after, rules fired, rules refused)
Edge = tuple[int, str, Any, str, tuple[str, ...], tuple[str, ...]]


@dataclass
class Violation:
    """A property broken, why, and (when a path leads there) its shortest counterexample."""

    property: str
    message: str
    path: list[str] = field(default_factory=list)
    scenario: dict[str, Any] | None = None


@dataclass
class CheckReport:
    version: str
    complete: bool
    # stopped at the first violation (``first``): no whole-walk check was run
    stopped_at_first: bool
    states_explored: int
    events_run: int
    seconds: float
    violations: list[Violation]
    witnesses: dict[str, list[Any]]
    profiles: list[dict[str, Any]]
    pruned_facts: list[str]
    # fact → witness → the rules of the definition's observation_leads_to properties it fired
    tx_by_witness: dict[str, dict[str, list[str]]]
    # rules no walk can fire: used only to enrol from another pathway (``enrolments``)
    enrolment_rules: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def counterexample(
    definition: Definition, start: datetime, edges: list[Edge], why: str
) -> tuple[list[str], dict[str, Any]]:
    """The path ``edges`` (opening first): lines to print, and a scenario file whose
    ``expect`` holds the state (and rules) of the last step, the one that breaks the property.
    A pathway other than the default one is named in the file, as SCENARIOS.md asks."""
    lines = [
        f"day {day:>4}  {kind} {'' if value is True else value} → {state}"
        + (f"  [{', '.join(rules + refused)}]" if rules or refused else "")
        for day, kind, value, state, rules, refused in edges
    ]
    last = edges[-1]
    events = [{"day": e[0], e[1]: e[2]} for e in edges[1:]] or [{"day": 0, "advance": True}]
    expect: dict[str, Any] = {"step": len(events) - 1, "state": last[3]}
    if len(edges) > 1:
        expect["rules"] = list(dict.fromkeys(last[4]))
        expect["refused"] = list(dict.fromkeys(last[5]))
    scenario: dict[str, Any] = {
        "name": f"counterexample {why}"[:160],
        "description": f"Found by `carepath definition check` on {definition.version}. {why}",
    }
    if definition.id != DEFAULT_PATHWAY:
        scenario["pathway"] = definition.id
    scenario |= {
        "start": start.isoformat().replace("+00:00", "Z"),
        "patient": edges[0][2],
        "events": events,
        "expect": [expect],
    }
    return lines, scenario
