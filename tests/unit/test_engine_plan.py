"""The engine's per-definition plan (``pathway.engine_plan``) and the criteria's fast tests.

A plan is built once per definition object and reused; a changed definition is a new object
with a plan of its own (never the old one's), two definitions never share one, and a plan goes
with its definition. The unrolled ``all``/``any`` tests and the one-call any-of of ``is``
leaves give exactly the result of the tree they stand for.
"""

from __future__ import annotations

import copy
import gc
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pathway import engine_plan
from pathway.criteria import Context
from pathway.criteria_compiler import Compiler
from pathway.definition import DEFAULT_DEFINITION, Definition, compile_definition
from pathway.engine import decide, open_episode
from pathway.engine_plan import build_plan, cached_plans, plan_of
from pathway.model import FactValue, Observe, Open

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def document() -> dict[str, Any]:
    return orjson.loads(DEFAULT_DEFINITION.read_bytes())


def with_intake_timer_days(days: int) -> Definition:
    doc = document()
    doc["timers"]["FU-INTAKE-OVERDUE"]["days"] = days
    return compile_definition(doc)


def opened_timer_due(definition: Definition) -> datetime:
    decision = open_episode(definition, Open("ev-1", AT, "test"), "ep-1", AT)
    (timer,) = decision.timers_set
    return timer.due_at


def test_a_definition_keeps_one_plan() -> None:
    definition = with_intake_timer_days(1)
    assert plan_of(definition) is plan_of(definition)


def test_a_changed_definition_gets_its_own_plan_and_decides_by_it() -> None:
    one, five = with_intake_timer_days(1), with_intake_timer_days(5)
    assert plan_of(one) is not plan_of(five)
    assert plan_of(one).timers["FU-INTAKE-OVERDUE"][1] == timedelta(days=1)
    assert plan_of(five).timers["FU-INTAKE-OVERDUE"][1] == timedelta(days=5)
    assert opened_timer_due(one) == AT + timedelta(days=1)
    assert opened_timer_due(five) == AT + timedelta(days=5)
    assert opened_timer_due(one) == AT + timedelta(days=1)  # the first one's plan is intact


def test_equal_documents_compiled_twice_do_not_share_a_plan() -> None:
    doc = document()
    first, second = compile_definition(doc), compile_definition(copy.deepcopy(doc))
    assert first.version == second.version and first is not second
    assert plan_of(first) is not plan_of(second)


def test_a_plan_goes_with_its_definition() -> None:
    definition = with_intake_timer_days(2)
    plan_of(definition)
    key, kept = id(definition), cached_plans()
    assert key in engine_plan._PLANS
    del definition
    gc.collect()
    assert key not in engine_plan._PLANS  # (other dropped definitions may go with it)
    assert cached_plans() <= kept - 1


def test_a_plan_resolves_every_route_and_on_entry_rule_in_the_definitions_order() -> None:
    definition = compile_definition(document())
    plan = build_plan(definition)
    assert [r.trigger for r in plan.global_routes] == [r.trigger for r in definition.global_routes]
    for name, sdef in definition.states.items():
        splan = plan.states[name]
        assert [[x.id for x in r.rules] for r in splan.routes] == [
            list(r.rules) for r in sdef.routes
        ]
        assert [[x.id for x in r.also] for r in splan.routes] == [list(r.also) for r in sdef.routes]
        assert [rule.id for rule, _ in splan.on_enter] == list(sdef.on_enter)
        assert [rule.id for rule in splan.checks] == list(sdef.checks)
        assert splan.timers == sdef.timers and splan.terminal == sdef.terminal


def test_a_decision_on_a_recompiled_definition_is_the_same() -> None:
    """The plan is a lookup, never a behaviour: the same events on two compilations of the same
    document give equal decisions."""
    facts = {"fracture_levels": ["L1"], "pain_score": 6, "high_energy_trauma": False}
    results = []
    for definition in (compile_definition(document()), compile_definition(document())):
        opened = open_episode(definition, Open("ev-1", AT, "test"), "ep-1", AT)
        later = AT + timedelta(hours=2)
        observed = decide(definition, opened.episode, Observe("ev-2", later, "t", facts), later)
        results.append((opened.fired, observed.fired, observed.transitions, observed.timers_set))
    assert results[0] == results[1]


# -- the criteria's fast tests ----------------------------------------------------------------

NAMES = frozenset({"a", "b", "c", "d", "e"})
VALUES = (None, True, False, 0, 1, 3)  # 0 and 1 equal False and True, but are not them


def reference(raw: Any, values: dict[str, Any]) -> bool:
    """The meaning of a criterion, written out plainly."""
    if "all" in raw:
        return all(reference(c, values) for c in raw["all"])
    if "any" in raw:
        return any(reference(c, values) for c in raw["any"])
    if "not" in raw:
        return not reference(raw["not"], values)
    v = values.get(raw["fact"])
    if "is" in raw:
        return v is raw["is"]
    return v is not None and v > raw[">"]


def leaves(n: int) -> list[dict[str, Any]]:
    names = sorted(NAMES)
    return [
        {"fact": names[i], "is": True} if i % 2 == 0 else {"fact": names[i], ">": 1}
        for i in range(n)
    ]


def is_leaves(n: int) -> list[dict[str, Any]]:
    return [{"fact": name, "is": i % 2 == 0} for i, name in enumerate(sorted(NAMES)[:n])]


CRITERIA = [
    {key: make(n)} for key in ("all", "any") for make in (leaves, is_leaves) for n in range(1, 6)
] + [{"not": {"any": is_leaves(3)}}, {"all": [{"any": is_leaves(2)}, {"any": leaves(4)}]}]


@pytest.mark.parametrize("raw", CRITERIA, ids=lambda raw: orjson.dumps(raw).decode()[:60])
def test_unrolled_and_flattened_tests_mean_what_the_tree_says(raw: dict[str, Any]) -> None:
    node = Compiler(NAMES, []).compile(raw, "test")
    for combo in itertools.product(VALUES, repeat=len(NAMES)):
        values = dict(zip(sorted(NAMES), combo, strict=True))
        facts = {k: FactValue(v, "obs", AT) for k, v in values.items() if v is not None}
        ctx = Context(facts, {}, None, {})
        expected = reference(raw, values)
        assert node.test(ctx) is expected, values
        assert bool(node.explain(ctx)) or not expected  # a criterion that held has evidence


GUARDS = [None, {"fact": "e", "is": True}]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("guard", GUARDS, ids=["no when", "when"])
def test_a_route_applies_when_its_guard_and_one_of_its_rules_hold(
    n: int, guard: dict[str, Any] | None
) -> None:
    """``RoutePlan.applies`` is the one call that stands for ``when`` and any of the rules."""
    compiler = Compiler(NAMES, [])
    rules = [compiler.compile(raw, "rule") for raw in leaves(n)]
    when = None if guard is None else compiler.compile(guard, "when")
    applies = engine_plan._applies(when, [r.test for r in rules])
    for combo in itertools.product(VALUES, repeat=len(NAMES)):
        values = dict(zip(sorted(NAMES), combo, strict=True))
        facts = {k: FactValue(v, "obs", AT) for k, v in values.items() if v is not None}
        ctx = Context(facts, {}, None, {})
        expected = (when is None or when.test(ctx)) and any(r.test(ctx) for r in rules)
        assert applies(ctx) is expected, values


def test_a_plan_keeps_the_definitions_edges_and_superseded_rules() -> None:
    definition = compile_definition(document())
    plan = build_plan(definition)
    assert plan.edges == definition.graph.edges
    assert plan.superseded_by == definition.superseded_by and plan.superseded_by
    for route in (*plan.global_routes, *(r for s in plan.states.values() for r in s.routes)):
        assert route.ids == tuple(rule.id for rule in route.rules)
