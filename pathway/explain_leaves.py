"""Walking a compiled criterion (``pathway.criteria``) for ``pathway.explain``: the leaves
that make it fail, with what each observed and needs, and the tree itself in the definition's
JSON form and in words. Reads the compiled nodes; never a second copy of any rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from pathway.criteria import (
    All,
    Always,
    AnyOf,
    Compare,
    Context,
    InState,
    Known,
    Node,
    Not,
    RuleRef,
)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One criterion leaf that fails: the fact, what was observed, what it needs."""

    fact: str
    observed: Any
    op: str
    value: Any
    unknown: bool  # it fails because the fact (or the value it is compared with) is unknown
    in_event: bool = False  # it reads the observation itself (scope event)
    count: bool = False  # it compares a list fact's number of items
    group: int | None = None  # leaves of one group are alternatives: any one would do

    def to_dict(self) -> dict[str, Any]:
        return {
            "fact": self.fact,
            "observed": _plain(self.observed),
            "needs": {"op": self.op, "value": _plain(self.value)},
        }


def failing_leaves(
    node: Node, ctx: Context, negated: bool = False, group: int | None = None
) -> Iterator[Leaf]:
    """The leaves that make ``node`` (negated when ``negated``) fail in ``ctx``: for an ``all``
    the parts that fail, for an ``any`` every part (alternatives: one ``group``), through
    ``not`` with the sense flipped."""
    if isinstance(node, RuleRef):
        yield from failing_leaves(node.target, ctx, negated, group)  # type: ignore[arg-type]
    elif isinstance(node, Not):
        yield from failing_leaves(node.child, ctx, not negated, group)
    elif isinstance(node, All | AnyOf):
        conjunctive = isinstance(node, All) != negated  # not(any) fails like all(not)
        inner = group if conjunctive else id(node)
        for child in node.children:
            child_fails = child.test(ctx) == negated
            if child_fails or not conjunctive:
                yield from failing_leaves(child, ctx, negated, inner)
    elif isinstance(node, Compare | Known | InState):
        yield replace(_leaf(node, ctx, negated), group=group)


def _leaf(node: Node, ctx: Context, negated: bool) -> Leaf:
    prefix = "not " if negated else ""
    if isinstance(node, InState):
        return Leaf("state", ctx.state, prefix + "in", sorted(node.states), False)
    if isinstance(node, Known):
        value, _ = ctx.lookup(node.name)
        return Leaf(node.name, value, prefix + "known", None, value is None)
    assert isinstance(node, Compare)
    value, _ = node._observed(ctx)
    target: Any = node.value
    unknown_target = False
    if node.var is not None:
        current = ctx.values.get(node.var)
        target = {"var": node.var, "value": current}
        unknown_target = current is None
    unknown = not negated and (value is None or unknown_target)
    in_event = node.scope == "event"
    return Leaf(node.name, value, prefix + node.op, target, unknown, in_event, node.count)


def criterion_tree(node: Node) -> Any:
    """The compiled tree in the definition's own JSON form, rule and condition refs inlined."""
    if isinstance(node, RuleRef):
        return criterion_tree(node.target)  # type: ignore[arg-type]
    if isinstance(node, Always):
        return True
    if isinstance(node, Not):
        return {"not": criterion_tree(node.child)}
    if isinstance(node, All | AnyOf):
        return {
            "all" if isinstance(node, All) else "any": [criterion_tree(c) for c in node.children]
        }
    if isinstance(node, InState):
        return {"in_state": sorted(node.states)}
    if isinstance(node, Known):
        return {"known": node.name}
    assert isinstance(node, Compare)
    out: dict[str, Any] = {"fact": node.name}
    if node.count:
        out["measure"] = "count"
    if node.scope:
        out["scope"] = node.scope
    out[node.op] = {"var": node.var} if node.var else _plain(node.value)
    return out


def criterion_text(node: Node) -> str:
    """The tree in words, with the criteria's own labels for the leaves."""
    if isinstance(node, RuleRef):
        return criterion_text(node.target)  # type: ignore[arg-type]
    if isinstance(node, Always):
        return "always"
    if isinstance(node, Not):
        return "not (" + criterion_text(node.child) + ")"
    if isinstance(node, All | AnyOf):
        word = " and " if isinstance(node, All) else " or "
        parts = [criterion_text(c) for c in node.children]
        return "(" + word.join(parts) + ")" if len(parts) > 1 else parts[0]
    if isinstance(node, InState):
        return "state in " + ", ".join(sorted(node.states))
    if isinstance(node, Known):
        return f"{node.name} is known"
    assert isinstance(node, Compare)
    return node.label


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
