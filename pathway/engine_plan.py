"""What the engine's hot path reads of a definition, looked up once per definition.

A decision reads the same parts of a definition on every event: a route's rule objects, a
state's on-entry rules (and whether each has a criterion to test), a route's trigger. A
``Definition`` is immutable, so these are resolved by id once and kept in a ``Plan`` for every
later decision of every episode on that definition, instead of being looked up (and joined,
for a trigger) again on each one. Plans are kept per definition *object*: a changed definition
is a new object (a new version) and gets a plan of its own; a plan is dropped with its
definition.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from pathway.criteria import All, Always, AnyOf, Compare, Context, Known, Node, Not, RuleRef, Test
from pathway.definition import Definition, Route, Rule, StateDef, TimerDef


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """One route with its rules resolved: ``rules`` in the route's order, ``also`` likewise."""

    when: Node | None
    rules: tuple[Rule, ...]
    also: tuple[Rule, ...]
    to: str | None
    trigger: str
    timers: tuple[str, ...]
    ids: tuple[str, ...]  # the ids of ``rules``: what a transition records when all held
    # whether it applies (``when`` holds and one of ``rules`` does), one call: most do not
    applies: Test


@dataclass(frozen=True, slots=True)
class StatePlan:
    """One state with its routes, on-entry rules and review checks resolved."""

    sdef: StateDef
    terminal: bool
    routes: tuple[RoutePlan, ...]
    # (rule, whether it has a criterion to test): most on-entry rules have none
    on_enter: tuple[tuple[Rule, bool], ...]
    timers: tuple[str, ...]
    checks: tuple[Rule, ...]
    # (check, facts of which an observation must carry one for it to hold: its criterion
    # needs one of them as this event's own; None when it can hold without), per check
    checks_need: tuple[tuple[Rule, frozenset[str] | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """A definition's routes, states and timers as the engine reads them on every event."""

    global_routes: tuple[RoutePlan, ...]
    states: dict[str, StatePlan]
    # timer → (its definition, its delay when that is all its due time is: no date anchor)
    timers: dict[str, tuple[TimerDef, timedelta | None]]
    # rule → the rules whose task replaces its own (the definition's, read on every firing)
    superseded_by: Mapping[str, frozenset[str]]
    # (trigger, source, dest) of every edge of the graph: the check before each move
    edges: frozenset[tuple[str, str, str]]
    # the facts the TX check (``global_routes``) reads, when it reads nothing else (no derived
    # value, state or this event's own facts): its result is then a function of those facts
    # alone, and an observation of none of them cannot change it (``work.DecisionInProgress``)
    global_reads: frozenset[str] | None = None


def route_plan(definition: Definition, route: Route) -> RoutePlan:
    rules = tuple(definition.rules[r] for r in route.rules)
    return RoutePlan(
        route.when,
        rules,
        tuple(definition.rules[r] for r in route.also),
        route.to,
        route.trigger,
        route.timers,
        route.rules,
        _applies(route.when, [r.criterion.test for r in rules]),
    )


def _applies(when: Node | None, tests: list[Test]) -> Test:
    """The route's guard and the disjunction of its rules' tests as one test."""
    if len(tests) == 1:
        any_rule = tests[0]
    elif len(tests) == 2:
        a, b = tests
        any_rule = lambda ctx: a(ctx) or b(ctx)  # noqa: E731
    else:

        def any_rule(ctx: Context) -> bool:
            for t in tests:
                if t(ctx):
                    return True
            return False

    if when is None:
        return any_rule
    guard = when.test
    return lambda ctx: guard(ctx) and any_rule(ctx)


def build_plan(definition: Definition) -> Plan:
    """The plan of one definition (``plan_of`` keeps it; this builds it afresh)."""
    rules = definition.rules
    states: dict[str, StatePlan] = {}
    for name, sdef in definition.states.items():
        states[name] = StatePlan(
            sdef,
            sdef.terminal,
            tuple(route_plan(definition, r) for r in sdef.routes),
            tuple((rules[r], type(rules[r].criterion) is not Always) for r in sdef.on_enter),
            sdef.timers,
            tuple(rules[r] for r in sdef.checks),
            tuple((rules[r], event_needs(rules[r].criterion)) for r in sdef.checks),
        )
    return Plan(
        tuple(route_plan(definition, r) for r in definition.global_routes),
        states,
        {tid: (spec, _plain_delay(spec)) for tid, spec in definition.timers.items()},
        definition.superseded_by,
        definition.graph.edges,
        _routes_reads(definition, definition.global_routes),
    )


def _routes_reads(definition: Definition, routes: tuple[Route, ...]) -> frozenset[str] | None:
    """The facts whether any of ``routes`` applies depends on (guards and rules), or None when
    it reads anything else too (a derived value, the state, this event's facts)."""
    facts = definition.vocabulary.facts
    names: set[str] = set()
    nodes: list[Node] = [r.when for r in routes if r.when is not None]
    nodes += [definition.rules[rule].criterion for r in routes for rule in r.rules]
    return frozenset(names) if all(_reads(n, facts, names, set()) for n in nodes) else None


def event_needs(node: Node, seen: frozenset[int] = frozenset()) -> frozenset[str] | None:
    """Facts of which the event must carry one for ``node`` to hold (a ``scope: event`` leaf
    holds only on a fact this very observation recorded), or None when it can hold without."""
    if isinstance(node, Compare):
        return frozenset([node.name]) if node.scope == "event" else None
    if isinstance(node, All):  # every part holds: any part's need is the whole's
        needs = [n for c in node.children if (n := event_needs(c, seen)) is not None]
        return min(needs, key=len) if needs else None
    if isinstance(node, AnyOf):  # one part holds: the whole needs one of the parts' needs
        out: set[str] = set()
        for c in node.children:
            need = event_needs(c, seen)
            if need is None:
                return None
            out |= need
        return frozenset(out)
    if isinstance(node, RuleRef) and node.target is not None and id(node) not in seen:
        return event_needs(node.target, seen | {id(node)})
    return None  # Not, Known, InState, Always: may hold whatever the event carries


def _reads(node: Node, facts: Mapping[str, object], out: set[str], seen: set[int]) -> bool:
    """Add the facts ``node`` reads to ``out``; False when it reads anything but sticky facts."""
    if isinstance(node, Always):
        return True
    if isinstance(node, (All, AnyOf)):
        return all(_reads(c, facts, out, seen) for c in node.children)
    if isinstance(node, Not):
        return _reads(node.child, facts, out, seen)
    if isinstance(node, RuleRef):
        if node.target is None or id(node) in seen:
            return False
        seen.add(id(node))
        return _reads(node.target, facts, out, seen)
    if isinstance(node, Compare):
        read = [node.name] if node.var is None else [node.name, node.var]
        if node.scope is not None or any(name not in facts for name in read):
            return False
        out.update(read)
        return True
    if isinstance(node, Known):
        if node.name not in facts:
            return False
        out.add(node.name)
        return True
    return False  # InState, or a node kind this does not know: assume it reads anything


def _plain_delay(spec: TimerDef) -> timedelta | None:
    """A timer due a fixed delay after what sets it (one part, no date fact): that delay."""
    if len(spec.due) == 1 and spec.due[0].date_fact is None:
        return timedelta(days=spec.due[0].days)
    return None


# id(definition) → (a weak reference to it, its plan); an entry goes when its definition does
_PLANS: dict[int, tuple[weakref.ref[Definition], Plan]] = {}


def plan_of(definition: Definition) -> Plan:
    """The definition's plan, built on first use and kept while the definition lives."""
    key = id(definition)
    entry = _PLANS.get(key)
    if entry is not None and entry[0]() is definition:
        return entry[1]
    plan = build_plan(definition)
    _PLANS[key] = (weakref.ref(definition, _forget(key)), plan)
    return plan


def _forget(key: int) -> Callable[[weakref.ref[Definition]], None]:
    def forget(ref: weakref.ref[Definition]) -> None:
        entry = _PLANS.get(key)
        if entry is not None and entry[0] is ref:
            del _PLANS[key]

    return forget


def cached_plans() -> int:
    """How many plans are kept (for tests: one per live definition that decided something)."""
    return len(_PLANS)
