"""Exhaustive safety check of a definition: the real engine, driven through every abstract case.

Why: a definition is data that clinicians change. A dropped condition or a shifted threshold must
not silently break the safety properties the definition declares (its ``safety`` section, judged
by ``pathway.checking.safety``), so ``check_definition`` drives the real ``open_episode``/
``decide`` breadth-first from opening, over the finite picture that
``pathway.checking.abstraction`` reads off the criteria, and checks every decision it sees.

Episodes are opened with each profile, alone and with each date fact recorded at each of its
day counts (a patient found on the day, or late). From each case it tries every observation of
the state's alphabet (an observation that moves no test only once, except in the first case of
each state, where every witness is tried so that the report shows both sides of every boundary
of an ``observation_leads_to`` property), every request, one close, and letting time run to the
next timer due or clock region (so every event lands on a whole day, as in a scenario file). A
decision that breaks a property is reported and not explored further. Cases are merged on a
key: state, the region of every clock, pending timers in firing order, open escalations, the
region of every fact a criterion can still read, and the remembered review values when a
criterion can still read them. Every case is a real episode, so a counterexample is real and,
the walk being breadth first, shortest; it comes as lines to print and as a scenario file
(SCENARIOS.md) that ``replay`` runs.
"""

from __future__ import annotations

import math
import time
from collections import deque
from datetime import timedelta
from typing import Any

from pathway.checking.abstraction import START, Abstraction, holds, watched
from pathway.checking.report import CheckReport, Edge, Violation, counterexample
from pathway.checking.safety import SafetyMonitor, leads_to_rules, leads_to_states
from pathway.definition import Definition
from pathway.engine import decide, open_episode
from pathway.errors import PathwayError
from pathway.model import Close, Decision, Episode, FireTimer, Observe, Open, Request

__all__ = ["CheckReport", "Violation", "check_definition", "enrolment_only_rules"]
ACTOR = "explore"


def check_definition(
    definition: Definition, limit: int = 500_000, *, first: bool = False
) -> CheckReport:
    """Explore ``definition`` (up to ``limit`` abstract cases) and report what it breaks.

    ``first``: stop once a case has broken a property (that case's events all tried), with
    the shortest counterexample of each property broken so far, and without the whole-walk
    checks (reachability, rule coverage, dead ends), which need every case: a mistake is
    mostly found within the first few hundred cases of thousands. With no violation on the
    way, the walk is the whole one."""
    began = time.perf_counter()
    walk = _Walk(definition)
    walk.run(limit, first)
    stopped = first and bool(walk.found) and bool(walk.queue)  # cut short by ``first``
    if not walk.queue:
        walk.finish()
    elif not stopped:
        walk.found["limit"] = Violation("incomplete", f"stopped after {limit} abstract cases")
    return CheckReport(
        version=definition.version,
        complete=not walk.queue,
        stopped_at_first=stopped,
        states_explored=len(walk.parent),
        events_run=walk.events,
        seconds=round(time.perf_counter() - began, 3),
        violations=list(walk.found.values()),
        witnesses=walk.abstraction.witnesses,
        profiles=walk.abstraction.profiles,
        pruned_facts=sorted(set(definition.vocabulary.facts) - set(walk.abstraction.witnesses)),
        tx_by_witness=walk.tx,
        enrolment_rules=sorted(enrolment_only_rules(definition)),
    )


def enrolment_only_rules(d: Definition) -> set[str]:
    """Rules used only by ``enrolments``: fired by another pathway's transition, never by an
    event of this one, so no walk of this definition can fire them."""
    used = {x for s in d.states.values() for r in s.routes for x in (*r.rules, *r.also)}
    used |= {x for s in d.states.values() for x in (*s.on_enter, *s.checks)}
    used |= {x for r in d.global_routes for x in (*r.rules, *r.also)} | set(d.timers)
    used |= {q.rule for q in d.requests.values()} | {d.close.rule}
    return {e.rule for e in d.enrolments} - used


def day_of(at: Any) -> int:
    """The first whole day (events are at START + n days) at or after clinical time ``at``."""
    return math.ceil((at - START).total_seconds() / 86400)


class _Walk:
    """The breadth-first walk: cases, how each was reached, and the checks on every decision."""

    def __init__(self, definition: Definition) -> None:
        self.definition, self.abstraction = definition, Abstraction(definition)
        self.monitor = SafetyMonitor(definition)
        self.tx_rules = leads_to_rules(definition)
        self.keys: dict[tuple[Any, ...], int] = {}
        self.parent: list[int] = []
        self.edge: list[Edge] = []
        self.succ: list[set[int]] = []
        self.queue: deque[tuple[int, Episode, int]] = deque()
        self.found: dict[str, Violation] = {}
        self.fired: set[str] = set()
        self.tx: dict[str, dict[str, list[str]]] = {}
        self.probed: set[str] = set()
        self.broken_from: set[int] = set()  # cases with a step that breaks a property
        self.events = 0
        # (id of a fact's tests, the value's type, the value) → their answers, for ``key``:
        # the tests come from the abstraction's cache, alive (and their ids theirs) all walk
        self.answers: dict[tuple[int, type, Any], tuple[bool, ...]] = {}

    def concrete(self, facts: dict[str, Any], day: int) -> dict[str, Any]:
        """Facts as recorded on ``day``: a date fact's witness (a day count) becomes its date."""
        today = (START + timedelta(days=day)).date()
        return {
            f: (today - timedelta(days=v)).isoformat() if f in self.abstraction.dates else v
            for f, v in facts.items()
        }

    def run(self, limit: int, first: bool = False) -> None:
        for profile in self.abstraction.openings:
            facts = self.concrete(profile, 0)
            opened = open_episode(
                self.definition, Open("x0", START, ACTOR, dict(facts)), "ep", START
            )
            self.arrive(-1, 0, "open", facts, None, [opened], opened.episode)
        while self.queue and len(self.parent) < limit and not (first and self.found):
            nid, ep, day = self.queue.popleft()
            for kind, value, witness in self.alphabet(ep, day):
                self.events += 1
                try:
                    new_day, decisions = self.apply(ep, day, kind, value)
                except PathwayError as exc:
                    why = f"the engine refused a well-formed event: {exc}"
                    self.report("E", why, nid, (day, kind, value, ep.state, (), ()))
                    continue
                after = decisions[-1].episode if decisions else ep
                self.arrive(nid, new_day, kind, value, ep, decisions, after, witness)

    def alphabet(self, ep: Episode, day: int) -> list[tuple[str, Any, Any]]:
        """(kind, value, abstract witness) of every event worth trying from this case."""
        at = START + timedelta(days=day)
        if any(t.due_at <= at for t in ep.pending_timers()):
            return [("advance", True, None)]  # timers due now fire before anything else happens
        probe = ep.state not in self.probed  # a state's first case tries every witness
        self.probed.add(ep.state)
        out: list[tuple[str, Any, Any]] = []
        noop = False
        cases = self.abstraction.alphabet(ep.state, ep.care_started_at is not None, watched(ep))
        for f, w, tests, guards in cases:
            now, value = ep.fact(f), self.concrete({f: w}, day)
            if guards:  # read by no criterion here but by a property guarding a state ahead:
                if any(holds(t, now) == sign != holds(t, w) for t, sign in guards):
                    out.append(("observe", value, w))  # a correction on the way that breaks it
                continue
            if not probe and tests is not None and all(holds(t, now) == holds(t, w) for t in tests):
                if noop:
                    continue  # an observation that moves no test is tried once per case
                noop = True
            out.append(("observe", value, w))
        out += [("request", action, None) for action in self.definition.requests]
        out.append(("close", self.definition.close.reasons[0], None))
        return out + ([("advance", True, None)] if self.next_day(ep, day) is not None else [])

    def next_day(self, ep: Episode, day: int) -> int | None:
        """The next day something can change by itself: a timer due or a clock region begins."""
        at = START + timedelta(days=day)
        days = [day_of(t.due_at) for t in ep.pending_timers()]
        for clock in self.abstraction.clocks:
            v = clock.value(ep, at)
            if v is not None:
                days += [day + s - v for s in clock.starts if s > v]
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
        self, parent: int, day: int, kind: str, value: Any, before: Episode | None,
        decisions: list[Decision], ep: Episode, witness: Any = None,
    ) -> None:  # fmt: skip
        rules = tuple(r for d in decisions for r in d.rule_ids)
        refused = tuple(r for d in decisions for r in d.refused_ids)
        edge = (day, kind, value, ep.state, rules, refused)
        self.fired.update(rules, refused)
        if (
            kind == "observe"
            and before is not None
            and not self.definition.is_terminal(before.state)
        ):
            ((fact, concrete),) = value.items()
            label = repr(
                concrete if witness is None or fact not in self.abstraction.dates else witness
            )
            seen = self.tx.setdefault(fact, {}).setdefault(label, [])
            seen[:] = sorted(set(seen) | (set(rules) & self.tx_rules))
        broken = [v for d in decisions for v in self.monitor.violations(d)]
        for prop, message in broken:
            self.report(prop, message, parent, edge)
        if broken:
            if parent >= 0:
                self.broken_from.add(parent)
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
        at = START + timedelta(days=day)
        tests, prev = self.abstraction.future(ep.state, ep.care_started_at is not None, watched(ep))
        relational, answers = self.abstraction.relational, self.answers
        regions = []
        for f, ts in tests:
            value = ep.fact(f)
            if f in relational:
                regions.append(value)
                continue
            try:  # the same tests of the same value: answered once per walk
                memo = (id(ts), type(value), value)
                answer = answers.get(memo)
            except TypeError:  # a list fact's value: answered again, unkept
                memo, answer = None, None
            if answer is None:
                answer = tuple([holds(t, value) for t in ts])
                if memo is not None:
                    answers[memo] = answer
            regions.append(answer)
        return (
            ep.state, tuple(c.region(ep, at) for c in self.abstraction.clocks),
            tuple(t.rule_id for t in ep.pending_timers()),
            tuple(sorted(t.rule_id for t in ep.open_escalations())),
            tuple(regions), tuple(sorted(ep.remembered.items())) if prev else None,
        )  # fmt: skip

    def report(self, prop: str, message: str, parent: int, edge: Edge) -> None:
        if prop not in self.found:  # breadth first: the first one found is a shortest one
            path, scenario = self.counterexample(parent, edge, f"{prop}: {message}")
            self.found[prop] = Violation(prop, message, path, scenario)

    def counterexample(self, parent: int, last: Edge, why: str) -> tuple[list[str], dict[str, Any]]:
        edges, n = [last], parent
        while n >= 0:
            edges.append(self.edge[n])
            n = self.parent[n]
        edges.reverse()
        return counterexample(self.definition, START, edges, why)

    def finish(self) -> None:
        """Whole-walk checks: every state reached, every rule fired or refused (but those only
        an enrolment from another pathway uses), and no case from which no clinical outcome (a
        terminal state other than close and the ``observation_leads_to`` states) is left."""
        d, states = self.definition, [e[3] for e in self.edge]
        for s in d.states:
            if s not in states:
                self.found[f"reach:{s}"] = Violation("reachability", f"state {s!r} never reached")
        for r in sorted(set(d.rules) - self.fired - enrolment_only_rules(d)):
            self.found[f"rule:{r}"] = Violation("rule-coverage", f"rule {r} never fired or refused")
        exits = {s for s in d.states if d.is_terminal(s)} - {d.close.to, *leads_to_states(d)}
        # a case that can break a property is reported as such, not as a dead end as well
        live = {i for i, s in enumerate(states) if s in exits} | self.broken_from
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
