"""Exhaustive safety check of a definition: the real engine, driven through every abstract case.

Why: a definition is data that clinicians change. A dropped condition or a shifted threshold must
not silently break the safety properties of PROTOCOL.md, so ``check_definition`` drives the real
``open_episode``/``decide`` breadth-first from opening, over the finite picture that
``pathway.checking.abstraction`` reads off the criteria, and checks every decision it sees.

From each case it tries every observation of the state's alphabet (an observation that moves no
test only once, except in the first case of each state, where every witness is tried so that the
report shows both sides of every TX threshold), every request, one close, and letting time run to
the next timer due or care-day threshold (so every event lands on a whole day, as in a scenario
file). A decision that breaks a property is reported and not explored further. Cases are merged
on a key: state, care-day region, pending timers in firing order, open escalations, the region of
every fact a criterion can still read, and the last review's pain when DR-PAIN can still read it.
Every case is a real episode, so a counterexample is real and, the walk being breadth first,
shortest; it comes as lines to print and as a scenario file (SCENARIOS.md) that ``replay`` runs.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

from pathway.checking.abstraction import START, Abstraction, holds, watched
from pathway.checking.safety import SafetyMonitor, SafetySpec
from pathway.definition import Definition
from pathway.engine import decide, open_episode
from pathway.errors import PathwayError
from pathway.model import Close, Decision, Episode, FireTimer, Observe, Open, Request

ACTOR = "explore"


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
    states_explored: int
    events_run: int
    seconds: float
    violations: list[Violation]
    witnesses: dict[str, list[Any]]
    profiles: list[dict[str, Any]]
    pruned_facts: list[str]
    tx_by_witness: dict[str, dict[str, list[str]]]  # fact → witness → TX rules it fired

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_definition(
    definition: Definition, spec: SafetySpec | None = None, limit: int = 500_000
) -> CheckReport:
    """Explore ``definition`` (up to ``limit`` abstract cases) and report what it breaks."""
    began = time.perf_counter()
    walk = _Walk(definition, spec or SafetySpec())
    walk.run(limit)
    if walk.queue:
        walk.found["limit"] = Violation("incomplete", f"stopped after {limit} abstract cases")
    else:
        walk.finish()
    return CheckReport(
        version=definition.version,
        complete=not walk.queue,
        states_explored=len(walk.parent),
        events_run=walk.events,
        seconds=round(time.perf_counter() - began, 3),
        violations=list(walk.found.values()),
        witnesses=walk.abstraction.witnesses,
        profiles=walk.abstraction.profiles,
        pruned_facts=sorted(set(definition.vocabulary.facts) - set(walk.abstraction.tests)),
        tx_by_witness=walk.tx,
    )


class Step(NamedTuple):
    """One event of the walk: what happened on which day, and where it left the episode."""

    day: int
    kind: str  # open, observe, request, close or advance
    value: Any  # the facts, action or reason (the profile, for the open)
    state: str  # the state after it
    rules: tuple[str, ...]
    refused: tuple[str, ...]


class _Walk:
    """The breadth-first walk: cases, how each was reached, and the checks on every decision."""

    def __init__(self, definition: Definition, spec: SafetySpec) -> None:
        self.definition, self.spec = definition, spec
        self.abstraction = Abstraction(definition)
        self.monitor = SafetyMonitor(definition, spec)
        self.keys: dict[tuple[Any, ...], int] = {}
        self.parent: list[int] = []
        self.edge: list[Step] = []  # how each case was reached from its parent
        self.succ: list[set[int]] = []
        self.queue: deque[tuple[int, Episode, int]] = deque()
        self.found: dict[str, Violation] = {}
        self.fired: set[str] = set()
        self.tx: dict[str, dict[str, list[str]]] = {}
        self.probed: set[str] = set()
        self.events = 0

    def run(self, limit: int) -> None:
        self.spec_gaps()
        for profile in self.abstraction.profiles:
            opened = open_episode(
                self.definition, Open("x0", START, ACTOR, dict(profile)), "ep", START
            )
            self.arrive(-1, 0, "open", profile, None, [opened], opened.episode)
        while self.queue and len(self.parent) < limit:
            nid, ep, day = self.queue.popleft()
            for kind, value in self.alphabet(ep, day):
                self.events += 1
                try:
                    new_day, decisions = self.apply(ep, day, kind, value)
                except PathwayError as exc:
                    why = f"the engine refused a well-formed event: {exc}"
                    self.report("E", why, nid, (day, kind, value, ep.state, (), ()))
                    continue
                after = decisions[-1].episode if decisions else ep
                self.arrive(nid, new_day, kind, value, ep, decisions, after)

    def spec_gaps(self) -> None:
        """A property naming what the definition lacks would pass vacuously: say so instead."""
        spec, d = self.spec, self.definition
        missing = [r for r in (*spec.transfer_rules, spec.refused_rule) if r not in d.rules]
        states = (spec.transfer_state, *(state for _, state, _ in spec.guarded))
        missing += [s for s in states if s not in d.states]
        if missing:
            self.found["spec"] = Violation("spec", f"the properties name {missing}: not defined")
        if spec.refused_action not in d.requests:
            why = f"no {spec.refused_action!r} request: rejected as unknown, not refused by a rule"
            self.found["P2-request"] = Violation("P2", why)

    def alphabet(self, ep: Episode, day: int) -> list[tuple[str, Any]]:
        at = START + timedelta(days=day)
        if any(t.due_at <= at for t in ep.pending_timers()):
            return [("advance", True)]  # timers due now fire before anything else happens
        probe = ep.state not in self.probed  # a state's first case tries every witness
        self.probed.add(ep.state)
        out: list[tuple[str, Any]] = []
        noop = False
        for f, w, tests in self.abstraction.alphabet(
            ep.state, ep.care_started_at is not None, watched(ep)
        ):
            now = ep.fact(f)
            if not probe and tests is not None and all(holds(t, now) == holds(t, w) for t in tests):
                if noop:
                    continue  # an observation that moves no test is tried once per case
                noop = True
            out.append(("observe", {f: w}))
        out += [("request", action) for action in self.definition.requests]
        out.append(("close", self.definition.close.reasons[0]))
        return out + ([("advance", True)] if self.next_day(ep, day) is not None else [])

    def next_day(self, ep: Episode, day: int) -> int | None:
        """The next day something can change by itself: a timer due or a clock threshold."""
        days = [(t.due_at - START).days for t in ep.pending_timers()]
        days += self.abstraction.starts["episode_day"]
        if ep.care_started_at is not None:
            days += [
                (ep.care_started_at - START).days + s for s in self.abstraction.starts["care_day"]
            ]
        return min((x for x in days if x > day), default=None)

    def apply(self, ep: Episode, day: int, kind: str, value: Any) -> tuple[int, list[Decision]]:
        at, eid = START + timedelta(days=day), f"x{self.events}"
        if kind == "observe":
            return day, [decide(self.definition, ep, Observe(eid, at, ACTOR, dict(value)), at)]
        if kind == "request":
            return day, [decide(self.definition, ep, Request(eid, at, ACTOR, value), at)]
        if kind == "close":
            return day, [decide(self.definition, ep, Close(eid, at, ACTOR, value), at)]
        if not any(t.due_at <= at for t in ep.pending_timers()):
            day = self.next_day(ep, day)  # type: ignore[assignment]
            at = START + timedelta(days=day)
        decisions: list[Decision] = []
        while due := [t for t in ep.pending_timers() if t.due_at <= at]:  # in firing order
            fire = FireTimer(f"{eid}.{len(decisions)}", due[0].due_at, ACTOR, due[0].key)
            decision = decide(self.definition, ep, fire, at)
            if decision.skipped:
                break
            decisions.append(decision)
            ep = decision.episode
        return day, decisions

    def arrive(
        self,
        parent: int,
        day: int,
        kind: str,
        value: Any,
        before: Episode | None,
        decisions: list[Decision],
        ep: Episode,
    ) -> None:
        rules = tuple(r for d in decisions for r in d.rule_ids)
        refused = tuple(r for d in decisions for r in d.refused_ids)
        edge = Step(day, kind, value, ep.state, rules, refused)
        self.fired.update(rules, refused)
        if (
            kind == "observe"
            and before is not None
            and not self.definition.is_terminal(before.state)
        ):
            ((fact, w),) = value.items()
            seen = self.tx.setdefault(fact, {}).setdefault(repr(w), [])
            seen[:] = sorted(set(seen) | (set(rules) & set(self.spec.transfer_rules)))
        broken = [v for d in decisions for v in self.monitor.violations(d)]
        for prop, message in broken:
            self.report(prop, message, parent, edge)
        if broken:
            return  # past a violation the episode is out of specification: explored no further
        key = self.key(ep, day)
        nid = self.keys.get(key)
        if nid is None:
            nid = self.keys[key] = len(self.parent)
            self.parent.append(parent)
            self.edge.append(edge)
            self.succ.append(set())
            if not self.definition.is_terminal(ep.state):
                self.queue.append((nid, ep, day))
        if parent >= 0:
            self.succ[parent].add(nid)

    def key(self, ep: Episode, day: int) -> tuple[Any, ...]:
        if self.definition.is_terminal(ep.state):
            return (ep.state,)
        started = ep.care_started_at is not None
        tests, prev = self.abstraction.future(ep.state, started, watched(ep))
        regions = tuple(
            ep.fact(f)
            if f in self.abstraction.relational
            else tuple(holds(t, ep.fact(f)) for t in ts)
            for f, ts in tests
        )
        care = None
        if started:  # the care-day region: how many care-day thresholds lie behind
            care_day = day - (ep.care_started_at - START).days  # type: ignore[operator]
            care = sum(care_day >= s for s in self.abstraction.starts["care_day"])
        return (
            ep.state,
            care,
            sum(day >= s for s in self.abstraction.starts["episode_day"]),
            tuple(t.rule_id for t in ep.pending_timers()),
            tuple(sorted(t.rule_id for t in ep.open_escalations())),
            regions,
            tuple(sorted(ep.remembered.items())) if prev else None,
        )

    def report(self, prop: str, message: str, parent: int, edge: Step) -> None:
        if prop not in self.found:  # breadth first: the first one found is a shortest one
            path, scenario = self.counterexample(parent, edge, f"{prop}: {message}")
            self.found[prop] = Violation(prop, message, path, scenario)

    def counterexample(self, parent: int, last: Step, why: str) -> tuple[list[str], dict[str, Any]]:
        """The path to ``last``: lines to print, and a scenario file whose ``expect`` holds
        the state (and rules) of the step that breaks the property."""
        edges, n = [last], parent
        while n >= 0:
            edges.append(self.edge[n])
            n = self.parent[n]
        edges.reverse()
        lines = [
            f"day {day:>4}  {kind} {'' if value is True else value} → {state}"
            + (f"  [{', '.join(rules + refused)}]" if rules or refused else "")
            for day, kind, value, state, rules, refused in edges
        ]
        events = [{"day": e.day, e.kind: e.value} for e in edges[1:]] or [
            {"day": 0, "advance": True}
        ]
        expect: dict[str, Any] = {"step": len(events) - 1, "state": last.state}
        if len(edges) > 1:
            expect["rules"] = list(dict.fromkeys(last.rules))
            expect["refused"] = list(dict.fromkeys(last.refused))
        scenario = {
            "name": f"counterexample {why}"[:160],
            "description": f"Found by `carepath definition check` on {self.definition.version}. {why}",
            "start": START.isoformat().replace("+00:00", "Z"),
            "patient": edges[0].value,
            "events": events,
            "expect": [expect],
        }
        return lines, scenario

    def finish(self) -> None:
        """Whole-walk checks: every state reached, every rule fired or refused, and no case
        from which no clinical outcome (a terminal state other than close and transfer) is left."""
        d, states = self.definition, [e.state for e in self.edge]
        for s in d.states:
            if s not in states:
                self.found[f"reach:{s}"] = Violation("reachability", f"state {s!r} never reached")
        for r in sorted(set(d.rules) - self.fired):
            self.found[f"rule:{r}"] = Violation("rule-coverage", f"rule {r} never fired or refused")
        exits = {s for s in d.states if d.is_terminal(s)} - {d.close.to, self.spec.transfer_state}
        live = {i for i, s in enumerate(states) if s in exits}
        preds: list[list[int]] = [[] for _ in states]
        for i, succ in enumerate(self.succ):
            for j in succ:
                preds[j].append(i)
        todo = list(live)
        while todo:
            for i in preds[todo.pop()]:
                if i not in live:
                    live.add(i)
                    todo.append(i)
        dead = [i for i, s in enumerate(states) if not d.is_terminal(s) and i not in live]
        if dead:
            why = f"from {states[dead[0]]!r} no outcome of {sorted(exits)} can be reached"
            path, scenario = self.counterexample(self.parent[dead[0]], self.edge[dead[0]], why)
            self.found["dead-end"] = Violation("dead-end", why, path, scenario)
