"""Exhaustive safety check of a definition: the real engine, driven through every abstract case.

Why: a definition is data that clinicians change. A dropped condition or a shifted threshold must
not silently break the safety properties of PROTOCOL.md, so ``check_definition`` drives the real
``open_episode``/``decide`` breadth-first from opening and checks every decision it sees.

The abstraction that keeps the space small:

- *Witnesses.* Each fact's thresholds are read off the compiled criteria and become values on
  both sides (``> 50`` → 50 and 51; booleans → true and false; ``count > 1`` → 1 and 2 items).
  Facts no criterion reads are pruned. The clock moves only to the next timer due or care-day
  threshold, so every event lands on a whole day (as in a scenario file).
- *Profiles.* Facts that no transition depends on (they only personalise orders) are given at
  opening, in a few profiles chosen so that each rule reading only them fires in one of them.
- *Alphabet.* In each state only the facts that the criteria run by that state's events read are
  observed (one witness per region); every request and one close are tried everywhere.
- *Key.* Episodes are merged when they share the state, the care-day region, the pending timers
  (in firing order), the open escalations, and the region of every fact some criterion can still
  read (a value compared with another value is kept exactly, like the last review's pain).

Every case explored is a real episode, so every counterexample is real and, BFS being breadth
first, shortest; ``counterexample`` holds it as a scenario file (SCENARIOS.md) for ``replay``.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from pathway.criteria import All, AnyOf, Compare, Compiler, Context, Known, Node, Not, RuleRef
from pathway.definition import DERIVED, Definition, Route, StateDef
from pathway.engine import decide, open_episode
from pathway.errors import PathwayError
from pathway.model import Close, Decision, Episode, FactValue, FireTimer, Observe, Open, Request
from pathway.vocabulary import FactSpec

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ACTOR = "explore"
Leaf = Compare | Known
_NO = frozenset[str]()


@dataclass(frozen=True)
class SafetySpec:
    """The five properties of PROTOCOL.md as data: states, rule ids and entry criteria."""

    transfer_state: str = "immediate_transfer"
    transfer_rules: tuple[str, ...] = ("TX-NEURO", "TX-INSTAB", "TX-MALIG", "TX-MULTI")
    refused_action: str = "vertebroplasty"
    refused_rule: str = "AUG-NO-VERTEBROPLASTY"
    guarded: tuple[tuple[str, str, Any], ...] = (
        ("P3", "discharged", {"all": [{"fact": "dxa_done", "is": True}, {"any": [
            {"fact": "osteoporosis_treatment_started", "is": True},
            {"fact": "osteoporosis_referral_placed", "is": True}]}]}),
        ("P4", "augmentation_consideration", {"all": [{"fact": "care_day", ">=": 90}, {"not": {"any": [
            {"fact": f, "is": True} for f in ("neuro_deficit_motor", "neuro_deficit_sensory",
                                              "bowel_bladder_dysfunction", "radicular_symptoms")]}}]}),
    )


@dataclass
class Violation:
    property: str
    message: str
    path: list[str] = field(default_factory=list)
    scenario: dict[str, Any] | None = None


@dataclass
class CheckReport:
    version: str
    states_explored: int
    events_run: int
    seconds: float
    violations: list[Violation]
    witnesses: dict[str, list[Any]]
    profiles: list[dict[str, Any]]
    pruned_facts: list[str]
    tx_by_witness: dict[str, dict[str, list[str]]]

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "violations"}, "ok": self.ok,
                "violations": [v.__dict__ for v in self.violations]}


def leaves(node: Node) -> Iterator[Leaf]:
    """Every comparison and ``known`` test under a criterion, through rule references."""
    if isinstance(node, Compare | Known):
        yield node
    for child in (*getattr(node, "children", ()), *([node.child] if isinstance(node, Not) else [])):
        yield from leaves(child)
    if isinstance(node, RuleRef):
        yield from leaves(node.target)  # type: ignore[arg-type]


def _holds(leaf: Leaf, value: Any) -> bool:
    if isinstance(leaf, Known):
        return value is not None
    if value is None or leaf.var is not None:
        return False
    return bool(leaf.fn(len(value) if leaf.count else value, leaf.value))


def _sides(op: str, t: Any) -> tuple[Any, ...]:
    if op in (">", "<="):
        return (t, t + 1)
    return (t - 1, t) if op in (">=", "<") else (t - 1, t, t + 1)


def witnesses(spec: FactSpec, tests: list[Leaf], relational: bool) -> list[Any]:
    """Concrete values on both sides of every threshold the criteria test this fact against."""
    cmp = [t for t in tests if isinstance(t, Compare) and t.var is None]
    if spec.kind == "boolean":
        return [True, False]
    if spec.kind == "enum":
        named = [v for v in spec.values if any(v == t.value or v in (t.value or ()) for t in cmp)]
        return named + [v for v in spec.values if v not in named][:1]
    if spec.kind == "list":
        low, high = spec.min_items or 1, spec.max_items or len(spec.values)
        counts = {n for t in cmp for n in _sides(t.op, t.value)} | {low}
        return [list(spec.values[:n]) for n in sorted(counts) if low <= n <= high]
    vals = sorted({v for t in cmp for v in _sides(t.op, t.value)} or {spec.minimum})
    if relational:
        vals.append(vals[-1] + 1)
    return [v for v in vals if spec.minimum <= v <= spec.maximum]  # type: ignore[operator]


class _Model:
    """What the definition's criteria read, by state: the alphabet, the key, the boundaries."""

    def __init__(self, defn: Definition) -> None:
        self.d, rules = defn, defn.rules
        self.reach = {s: defn.graph.successors(s) for s in defn.states}
        for s in defn.states:  # close the successor relation transitively
            todo = list(self.reach[s])
            while todo:
                new = self.reach[todo.pop()] - self.reach[s]
                self.reach[s] |= new
                todo += new
        routes = [*defn.global_routes, *(r for s in defn.states.values() for r in s.routes)]
        control = {x for r in routes for x in r.rules} | {q.rule for q in defn.requests.values()
                                                           if not q.refused_always}
        control |= {r.id for r in rules.values() if r.resolves_when_false or (
            r.action is not None and r.action.kind == "escalation")}
        self.control = frozenset(control)
        ctl_nodes = [rules[x].criterion for x in control] + [r.when for r in routes if r.when]
        self.control_facts = {lf.name for n in ctl_nodes for lf in leaves(n)} - DERIVED
        self.tests: dict[str, list[Leaf]] = {}
        for n in [r.criterion for r in rules.values()] + [r.when for r in routes if r.when]:
            for lf in leaves(n):
                self.tests.setdefault(lf.name, []).append(lf)
                if isinstance(lf, Compare) and lf.var:
                    self.tests.setdefault(lf.var, [])
        self.relational = {n for lfs in self.tests.values() for lf in lfs
                           if isinstance(lf, Compare) and lf.var for n in (lf.name, lf.var)}
        vocab = defn.vocabulary.facts
        self.witnesses = {f: witnesses(vocab[f], self.tests[f], f in self.relational)
                          for f in sorted(self.tests) if f in vocab}
        self.profile_facts = [f for f in self.witnesses if f not in self.control_facts]
        self.care_starts = sorted({s for lf in self.tests.get("care_day", ())
                                   if isinstance(lf, Compare) and lf.var is None
                                   for s in _sides(lf.op, lf.value)[1:]})

    def _state_nodes(self, s: StateDef, enter: bool, only_control: bool) -> list[Node]:
        """Criteria an event in ``s`` runs (and, with ``enter``, entering it); timers it sets
        count only for what may still be read (``only_control`` is for this event's alphabet)."""
        rules = self.d.rules
        ids = [x for r in s.routes for x in (*r.rules, *(() if only_control else r.also))]
        ids += [] if only_control else [*s.checks, *(x for r in s.routes for x in r.timers)]
        if enter:
            ids += [*s.on_enter, *(() if only_control else s.timers)]
        ids = [x for x in ids if not only_control or x in self.control]
        return [rules[x].criterion for x in ids] + [r.when for r in s.routes if r.when]

    def _common(self, states: set[str], pending: tuple[str, ...], only_control: bool) -> list[Node]:
        """Criteria any event may run: the global routes, requests, pending timers, escalations."""
        d = self.d
        ids = [x for r in d.global_routes for x in (*r.rules, *(() if only_control else r.also))]
        ids += [q.rule for q in d.requests.values() if q.allowed_from & states and not q.refused_always]
        ids += list(pending)  # the timers pending and the escalations open (resolved when false)
        ids = [x for x in ids if not only_control or x in self.control]
        return [d.rules[x].criterion for x in ids] + [r.when for r in d.global_routes if r.when]

    @cache  # noqa: B019 - one model per check, a handful of distinct arguments
    def future(self, state: str, started: bool, pending: tuple[str, ...]) -> tuple[Any, ...]:
        """The facts some criterion can still read, each with the tests that read it."""
        reach = self.reach[state]
        nodes = self._common(reach | {state}, pending, False)
        nodes += self._state_nodes(self.d.states[state], False, False)
        for t in reach:
            sd = self.d.states[t]
            nodes += self._state_nodes(sd, not (started and sd.starts_care), False)
        by_fact: dict[str, list[Leaf]] = {}
        for lf in {id(lf): lf for n in nodes for lf in leaves(n)}.values():
            if lf.name not in DERIVED and not (isinstance(lf, Compare) and lf.scope == "event"):
                by_fact.setdefault(lf.name, []).append(lf)
        prev = any(isinstance(lf, Compare) and lf.var == "previous_review_pain"
                   for lfs in by_fact.values() for lf in lfs)
        return tuple((f, tuple(by_fact[f])) for f in sorted(by_fact)), prev

    @cache  # noqa: B019
    def alphabet(self, state: str, started: bool, pending: tuple[str, ...]) -> tuple[Any, ...]:
        """The observations worth trying in this state: one witness per region of what is read."""
        chain, todo = {state}, [state]
        while todo:  # states one event can pass through (routes are followed while they apply)
            for r in (*self.d.states[todo.pop()].routes, *self.d.global_routes):
                if r.to and r.to not in chain:
                    chain.add(r.to)
                    todo.append(r.to)
        nodes = self._common({state}, pending, True)
        for t in chain:
            sd = self.d.states[t]
            nodes += self._state_nodes(sd, t != state and not (started and sd.starts_care), True)
        read: dict[str, list[Leaf]] = {}
        for lf in (lf for n in nodes for lf in leaves(n)):
            read.setdefault(lf.name, []).append(lf)
        out = []
        for f in sorted(read.keys() & self.control_facts):
            seen: set[Any] = set()
            lfs = tuple(read[f])
            exact = any(isinstance(lf, Compare) and (lf.var or lf.scope) for lf in lfs)
            for w in self.witnesses[f]:
                region = w if exact else tuple(_holds(lf, w) for lf in lfs)
                if region not in seen:
                    seen.add(region)
                    out.append((f, w, None if exact else lfs))
        return tuple(out)

    def profiles(self) -> list[dict[str, Any]]:
        """The opening facts: none, then per rule reading only profile facts one that fires it."""
        out: list[tuple[dict[str, Any], list[Node]]] = []
        for rule in self.d.rules.values():
            names = list(dict.fromkeys(lf.name for lf in leaves(rule.criterion)))
            fires = rule.criterion.test
            if not names or not set(names) <= set(self.profile_facts) or fires(_ctx({})):
                continue
            hit = next((p for k in range(1, len(names) + 1) for c in itertools.combinations(names, k)
                        for p in (dict(zip(c, vs, strict=True)) for vs in
                                  itertools.product(*(self.witnesses[n] for n in c)))
                        if fires(_ctx(p))), None)
            for p, covered in out if hit is not None else ():  # pack into a profile if compatible
                both = {**p, **hit}
                if all(p.get(k, v) == v for k, v in hit.items()) and all(
                    n.test(_ctx(both)) for n in (*covered, rule.criterion)
                ):
                    p.update(hit)
                    covered.append(rule.criterion)
                    break
            else:
                out += [(dict(hit), [rule.criterion])] if hit is not None else []
        return [{}, *(p for p, _ in out)]


def _watch(ep: Episode) -> tuple[str, ...]:
    """The rules whose criteria time will still test: pending timers and open escalations."""
    return tuple(sorted({t.rule_id for t in (*ep.pending_timers(), *ep.open_escalations())}))


def _ctx(facts: dict[str, Any]) -> Context:
    return Context({k: FactValue(v, "x", START) for k, v in facts.items()}, {}, None, {})


def _episode_ctx(ep: Episode, at: datetime, event_facts: dict[str, Any]) -> Context:
    derived: dict[str, Any] = {"episode_day": (at - ep.opened_at).days,
                               "previous_review_pain": ep.last_review_pain}
    if ep.care_started_at is not None:
        derived["care_day"] = (at - ep.care_started_at).days
    return Context(ep.facts, event_facts, None, derived)


class _Checker:
    """The breadth-first walk: nodes, their paths, and the properties checked on every decision."""

    def __init__(self, defn: Definition, spec: SafetySpec, limit: int) -> None:
        self.d, self.spec, self.m, self.limit = defn, spec, _Model(defn), limit
        compiler = Compiler(frozenset(defn.vocabulary.facts) | DERIVED, [])
        self.guards = [(p, s, compiler.compile(c, f"safety.{p}")) for p, s, c in spec.guarded]
        self.keys: dict[tuple[Any, ...], int] = {}
        self.parent: list[int] = []
        self.edge: list[tuple[Any, ...]] = []  # (day, kind, value, state after, rules, refused)
        self.succ: list[set[int]] = []
        self.queue: deque[tuple[int, Episode, int]] = deque()
        self.found: dict[str, Violation] = {}
        self.fired: set[str] = set()
        self.tx: dict[str, dict[str, list[str]]] = {}
        self.events = 0
        self.probed: set[str] = set()

    def run(self) -> None:
        for profile in self.m.profiles():
            opened = open_episode(self.d, Open("x0", START, ACTOR, dict(profile)), "ep", START)
            self.arrive(-1, 0, "open", profile, None, [opened], opened.episode)
        while self.queue and len(self.parent) < self.limit:
            nid, ep, day = self.queue.popleft()
            for kind, value in self.alphabet(ep, day):
                self.events += 1
                try:
                    new_day, decisions = self.apply(ep, day, kind, value)
                except PathwayError as exc:
                    self.report("E", f"the engine refused a well-formed event: {exc}", nid,
                                (day, kind, value, ep.state, (), ()))
                    continue
                after = decisions[-1].episode if decisions else ep
                self.arrive(nid, new_day, kind, value, ep, decisions, after)

    def alphabet(self, ep: Episode, day: int) -> list[tuple[str, Any]]:
        at = START + timedelta(days=day)
        if any(t.due_at <= at for t in ep.pending_timers()):
            return [("advance", True)]  # timers due now fire before anything else happens
        out: list[tuple[str, Any]] = []
        probe = ep.state not in self.probed  # the first case of a state tries every witness
        self.probed.add(ep.state)
        for f, w, lfs in self.m.alphabet(ep.state, ep.care_started_at is not None, _watch(ep)):
            now = ep.fact(f)  # an observation that moves no test is tried once per case
            if not probe and lfs is not None and all(_holds(lf, now) == _holds(lf, w) for lf in lfs):
                if ("noop",) in out:
                    continue
                out.append(("noop",))
            out.append(("observe", {f: w}))
        out = [e for e in out if e != ("noop",)]
        out += [("request", a) for a in self.d.requests] + [("close", self.d.close.reasons[0])]
        return out + ([("advance", True)] if self.next_day(ep, day) is not None else [])

    def next_day(self, ep: Episode, day: int) -> int | None:
        days = [(t.due_at - START).days for t in ep.pending_timers()]
        if ep.care_started_at is not None:
            days += [(ep.care_started_at - START).days + s for s in self.m.care_starts]
        return min((x for x in days if x > day), default=None)

    def apply(self, ep: Episode, day: int, kind: str, value: Any) -> tuple[int, list[Decision]]:
        at, eid = START + timedelta(days=day), f"x{self.events}"
        if kind == "observe":
            return day, [decide(self.d, ep, Observe(eid, at, ACTOR, dict(value)), at)]
        if kind in ("request", "close"):
            event = Request(eid, at, ACTOR, value) if kind == "request" else Close(eid, at, ACTOR, value)
            return day, [decide(self.d, ep, event, at)]
        if not any(t.due_at <= at for t in ep.pending_timers()):
            day = self.next_day(ep, day)  # type: ignore[assignment]
            at = START + timedelta(days=day)
        decisions = []
        while due := [t for t in ep.pending_timers() if t.due_at <= at]:
            decision = decide(self.d, ep, FireTimer(f"{eid}.{len(decisions)}", due[0].due_at, ACTOR,
                                                    due[0].key), at)
            if decision.skipped:
                break
            decisions.append(decision)
            ep = decision.episode
        return day, decisions

    def arrive(self, parent: int, day: int, kind: str, value: Any, before: Episode | None,
               decisions: list[Decision], ep: Episode) -> None:
        rules = tuple(r for d in decisions for r in d.rule_ids)
        refused = tuple(r for d in decisions for r in d.refused_ids)
        edge = (day, kind, value, ep.state, rules, refused)
        self.fired.update(rules, refused)
        if kind == "observe" and before is not None and not self.d.is_terminal(before.state):
            (fact, w), = value.items()
            seen = self.tx.setdefault(fact, {}).setdefault(repr(w), [])
            seen[:] = sorted(set(seen) | (set(rules) & set(self.spec.transfer_rules)))
        broken = [(p, m) for decision in decisions for p, m in self.violations(decision)]
        for prop, message in broken:
            self.report(prop, message, parent, edge)
        if broken:
            return  # past a violation the episode is out of specification: not explored further
        key = self.key(ep, day)
        nid = self.keys.get(key)
        if nid is None:
            nid = self.keys[key] = len(self.parent)
            self.parent.append(parent)
            self.edge.append(edge)
            self.succ.append(set())
            if not self.d.is_terminal(ep.state):
                self.queue.append((nid, ep, day))
        if parent >= 0:
            self.succ[parent].add(nid)

    def key(self, ep: Episode, day: int) -> tuple[Any, ...]:
        if self.d.is_terminal(ep.state):
            return (ep.state,)
        pending = tuple(t.rule_id for t in ep.pending_timers())
        started = ep.care_started_at is not None
        tests, prev = self.m.future(ep.state, started, _watch(ep))
        regions = tuple(ep.fact(f) if f in self.m.relational else
                        tuple(_holds(lf, ep.fact(f)) for lf in lfs) for f, lfs in tests)
        care = None
        if started:  # the care-day region: how many care-day thresholds lie behind
            care_day = day - (ep.care_started_at - START).days
            care = sum(care_day >= s for s in self.m.care_starts)
        escalations = tuple(sorted(t.rule_id for t in ep.open_escalations()))
        return (ep.state, care, pending, escalations, regions, ep.last_review_pain if prev else None)

    def violations(self, decision: Decision) -> Iterator[tuple[str, str]]:
        """The safety properties of PROTOCOL.md this one decision breaks, each with why."""
        d, spec, ep, event = self.d, self.spec, decision.episode, decision.event
        before = decision.episode_before
        if isinstance(event, Observe | Open) and (before is None or not d.is_terminal(before.state)):
            ctx = _episode_ctx(ep, event.at, dict(event.facts))
            held = [r for r in spec.transfer_rules if r in d.rules and d.rules[r].criterion.test(ctx)]
            missing = set(held) - set(decision.rule_ids)
            if held and (ep.state != spec.transfer_state or missing):
                yield "P1", (f"{', '.join(held)} held on {dict(event.facts)} but the episode went to "
                             f"{ep.state!r}" + (f" without firing {sorted(missing)}" if missing else ""))
        if isinstance(event, Request) and event.action == spec.refused_action and (
            spec.refused_rule not in decision.refused_ids or decision.transitions or decision.tasks_opened
        ):
            yield "P2", f"a {event.action} request was not refused by {spec.refused_rule}"
        if spec.refused_rule in decision.rule_ids:
            yield "P2", f"{spec.refused_rule} fired: {spec.refused_action} was recommended"
        for prop, state, criterion in self.guards:
            if any(t.dest == state for t in decision.transitions):
                ctx = _episode_ctx(ep, event.at, {})
                if not criterion.test(ctx):
                    why = "; ".join(f"{e.test} (is {e.observed})" for e in criterion.explain(ctx)
                                    if not e.held)
                    yield prop, f"entered {state!r} although not {why}"
        if not d.is_terminal(ep.state) and not ep.pending_timers() and not ep.open_escalations():
            yield "P5", f"{ep.state!r} with no pending timer and no open escalation: unseen"

    def report(self, prop: str, message: str, parent: int, edge: tuple[Any, ...]) -> None:
        if prop not in self.found:
            self.found[prop] = Violation(prop, message, *self.counterexample(parent, edge, message))

    def counterexample(self, parent: int, last: tuple[Any, ...], why: str) -> tuple[list[str], dict]:
        """The path to ``last`` as lines to print and as a scenario file that replays it."""
        edges, n = [last], parent
        while n >= 0:
            edges.append(self.edge[n])
            n = self.parent[n]
        edges.reverse()
        lines = [f"day {day:>4}  {kind} {'' if value is True else value} → {state}"
                 + (f"  [{', '.join(rules + refused)}]" if rules or refused else "")
                 for day, kind, value, state, rules, refused in edges]
        events = [{"day": e[0], e[1]: e[2]} for e in edges[1:]] or [{"day": 0, "advance": True}]
        expect = {"step": len(events) - 1, "state": last[3]}
        if len(edges) > 1:
            expect |= {"rules": list(dict.fromkeys(last[4]))} | (
                {"refused": list(last[5])} if last[5] else {})
        return lines, {"name": f"counterexample: {why}"[:200], "description": why,
                       "start": START.isoformat().replace("+00:00", "Z"), "patient": edges[0][2],
                       "events": events, "expect": [expect]}

    def finish(self) -> None:
        """Whole-graph checks: reachability, rule coverage, and no case that can never end."""
        d, states = self.d, [e[3] for e in self.edge]
        for s in d.states:
            if s not in states:
                self.found.setdefault(f"reach:{s}", Violation("reachability", f"state {s!r} never reached"))
        for r in sorted(set(d.rules) - self.fired):
            self.found.setdefault(f"rule:{r}", Violation("rule-coverage", f"rule {r} never fired or refused"))
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
        if dead and not self.queue:
            why = f"from {states[dead[0]]!r} no clinical outcome ({', '.join(sorted(exits))}) is reachable"
            self.found["dead-end"] = Violation(
                "dead-end", why, *self.counterexample(self.parent[dead[0]], self.edge[dead[0]], why))


def check_definition(definition: Definition, spec: SafetySpec | None = None,
                     limit: int = 500_000) -> CheckReport:
    """Explore ``definition`` exhaustively (up to ``limit`` abstract states) and report."""
    started = time.perf_counter()
    checker = _Checker(definition, spec or SafetySpec(), limit)
    checker.run()
    checker.finish()
    if checker.queue:
        checker.found["limit"] = Violation("incomplete", f"stopped after {limit} abstract states")
    return CheckReport(
        version=definition.version, states_explored=len(checker.parent), events_run=checker.events,
        seconds=round(time.perf_counter() - started, 3), violations=list(checker.found.values()),
        witnesses=checker.m.witnesses, profiles=checker.m.profiles(),
        pruned_facts=sorted(set(definition.vocabulary.facts) - set(checker.m.tests)),
        tx_by_witness=checker.tx)
