"""A criterion's evidence, told its result or not: ``explain(ctx, held)`` (the engine passes
the result it has just tested, so that no level of the tree is tested again) gives exactly
the evidence ``explain(ctx)`` gives — an ``all`` that held every part, one that failed only
the failing parts; an ``any`` that held only the parts that held, one that failed every part;
a ``not`` the inverse of its child's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pathway.criteria import Context, Evidence, Node, RuleRef
from pathway.criteria_compiler import Compiler, resolve_rule_refs
from pathway.model import FactValue

AT = datetime(2026, 1, 5, tzinfo=UTC)
NAMES = frozenset({"a", "b", "c"})


def compile_(raw: Any) -> Node:
    return Compiler(NAMES, []).compile(raw, "test")


def context(**values: Any) -> Context:
    facts = {k: FactValue(v, f"obs-{k}", AT) for k, v in values.items() if v is not None}
    return Context(facts, {}, None, {})


def shown(evidence: list[Evidence]) -> list[tuple[str, bool]]:
    return [(e.test, e.held) for e in evidence]


NESTED = {
    "any": [
        {"all": [{"fact": "a", ">": 1}, {"fact": "b", "is": True}]},
        {"not": {"any": [{"fact": "c", "<": 3}, {"known": "b"}]}},
        {"fact": "c", ">=": 5},
    ]
}


def test_an_any_that_held_lists_only_the_parts_that_held() -> None:
    node = compile_({"any": [{"fact": "a", ">": 1}, {"fact": "b", "is": True}]})
    ctx = context(a=2, b=False)
    assert shown(node.explain(ctx, True)) == [("a > 1", True)]
    assert shown(node.explain(ctx)) == [("a > 1", True)]


def test_an_all_that_failed_lists_only_the_failing_parts() -> None:
    node = compile_({"all": [{"fact": "a", ">": 1}, {"fact": "b", "is": True}]})
    ctx = context(a=2, b=False)
    assert shown(node.explain(ctx, False)) == [("b is true", False)]
    assert shown(node.explain(ctx)) == [("b is true", False)]


def test_a_not_over_an_any_that_held_shows_its_held_parts_inverted() -> None:
    node = compile_({"not": {"any": [{"fact": "a", ">": 1}, {"fact": "b", "is": True}]}})
    ctx = context(a=2, b=False)
    assert not node.test(ctx)
    assert shown(node.explain(ctx, False)) == [("not a > 1", False)]


@pytest.mark.parametrize("raw", [NESTED, {"all": [NESTED, {"not": NESTED}]}, {"not": NESTED}])
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded CI stalls
@given(
    a=st.none() | st.integers(0, 3),
    b=st.none() | st.booleans(),
    c=st.none() | st.integers(0, 6),
)
def test_evidence_told_the_result_is_the_evidence_found_by_testing(
    raw: Any, a: int | None, b: bool | None, c: int | None
) -> None:
    node = compile_(raw)
    ctx = context(a=a, b=b, c=c)
    assert node.explain(ctx, node.test(ctx)) == node.explain(ctx)


def test_a_not_leaves_the_evidence_of_the_criterion_it_negates_unchanged() -> None:
    # ``not`` rewords its child's evidence in place: that is safe only while every leaf gives
    # new Evidence on each call, also through a rule reference shared with another rule.
    refs: list[RuleRef] = []
    compiler = Compiler(NAMES, refs)
    inner = compiler.compile({"all": [{"fact": "a", ">": 1}, {"known": "b"}]}, "inner")
    negated = compiler.compile({"not": {"rule": "INNER"}}, "negated")
    resolve_rule_refs(refs, {"INNER": inner})
    ctx = context(a=2, b=True)
    before = inner.explain(ctx, True)
    assert shown(negated.explain(ctx, False)) == [("not a > 1", False), ("not b is known", False)]
    assert shown(negated.explain(ctx)) == [("not a > 1", False), ("not b is known", False)]
    assert shown(before) == [("a > 1", True), ("b is known", True)]
    assert shown(inner.explain(ctx)) == shown(before)
    assert not {id(e) for e in before} & {id(e) for e in negated.explain(ctx)}
