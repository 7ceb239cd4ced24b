"""Reading a definition's criteria (JSON) into the nodes of ``pathway.criteria``.

Apart from the nodes because it runs once, when a definition is loaded, and checks what the
nodes then take for granted: every name is a fact or derived value, every operator known,
every reference resolved, and no criteria refer to each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pathway.criteria import (
    OPERATORS,
    All,
    Always,
    AnyOf,
    Compare,
    InState,
    Known,
    Node,
    Not,
    RuleRef,
)
from pathway.errors import InvalidDefinition


@dataclass(slots=True)
class Compiler:
    """Compiles criteria, checking every name against the facts and derived values allowed."""

    names: frozenset[str]
    rule_refs: list[RuleRef]
    states: frozenset[str] = frozenset()

    def compile(self, raw: Any, where: str) -> Node:
        if raw is True or raw is None:
            return Always()
        if not isinstance(raw, dict):
            raise InvalidDefinition(f"{where}: got {raw!r}, expected a criterion object")
        if "all" in raw or "any" in raw:
            key = "all" if "all" in raw else "any"
            items = raw[key]
            if not isinstance(items, list) or not items:
                raise InvalidDefinition(f"{where}.{key}: expected a non-empty list")
            children = [self.compile(c, f"{where}.{key}[{i}]") for i, c in enumerate(items)]
            return All(children) if key == "all" else AnyOf(children)
        if "not" in raw:
            return Not(self.compile(raw["not"], f"{where}.not"))
        if "rule" in raw or "condition" in raw:
            ref = RuleRef(raw["rule"] if "rule" in raw else "condition:" + raw["condition"])
            self.rule_refs.append(ref)
            return ref
        if "in_state" in raw:
            states = raw["in_state"]
            if not isinstance(states, list) or not states or not set(states) <= self.states:
                raise InvalidDefinition(
                    f"{where}.in_state: got {states!r}, expected a list of states of the pathway"
                )
            return InState(frozenset(states))
        if "known" in raw:
            self._check_name(raw["known"], where)
            return Known(raw["known"])
        if "fact" in raw:
            return self._compare(raw, where)
        raise InvalidDefinition(
            f"{where}: got {raw!r}, expected all/any/not/fact/known/in_state/rule"
        )

    def _compare(self, raw: dict[str, Any], where: str) -> Node:
        name = raw["fact"]
        self._check_name(name, where)
        ops = [k for k in raw if k in OPERATORS]
        if len(ops) != 1:
            raise InvalidDefinition(
                f"{where}: expected exactly one operator of {', '.join(OPERATORS)}"
            )
        op = ops[0]
        value, var = raw[op], None
        if isinstance(value, dict):
            var = value.get("var")
            self._check_name(var, where)
            value = None
        scope = raw.get("scope")
        if scope not in (None, "event"):
            raise InvalidDefinition(f"{where}.scope: got {scope!r}, expected 'event'")
        measure = raw.get("measure")
        if measure not in (None, "count"):
            raise InvalidDefinition(f"{where}.measure: got {measure!r}, expected 'count'")
        return Compare(name, op, value, var, measure == "count", scope)

    def _check_name(self, name: Any, where: str) -> None:
        if name not in self.names:
            raise InvalidDefinition(
                f"{where}: unknown fact {name!r}, expected a fact of the vocabulary "
                "or a derived value"
            )


def resolve_rule_refs(refs: list[RuleRef], criteria: Mapping[str, Node]) -> None:
    """Point each reference at its compiled criterion; reject unknown ids and cycles."""
    for ref in refs:
        target = criteria.get(ref.rule_id)
        if target is None:
            raise InvalidDefinition(
                f"criterion refers to {ref.rule_id!r}, which is not a rule with a criterion "
                "nor a condition"
            )
        ref.target = target
    for ref in refs:
        _check_acyclic(ref, ())
    for ref in refs:  # resolved: its test is its target's (one call fewer wherever read now)
        ref.test = ref.target.test  # type: ignore[union-attr]


def _check_acyclic(node: Node, path: tuple[str, ...]) -> None:
    if isinstance(node, RuleRef):
        if node.rule_id in path:
            raise InvalidDefinition(
                "criteria refer to each other in a cycle: " + " → ".join((*path, node.rule_id))
            )
        _check_acyclic(node.target, (*path, node.rule_id))  # type: ignore[arg-type]
        return
    for child in getattr(node, "children", ()):
        _check_acyclic(child, path)
    if isinstance(node, Not):
        _check_acyclic(node.child, path)
