"""Criteria as declarative trees that explain themselves.

A criterion in the definition file is JSON::

    {"all": [c, ...]}   {"any": [c, ...]}   {"not": c}   true
    {"fact": "score", ">": 50}
    {"fact": "sites", "measure": "count", ">": 1}         (a list fact's number of items)
    {"fact": "score", ">=": {"var": "score_at_last_review"}}   (against another value)
    {"fact": "finding", "scope": "event", "is": true}     (as recorded by this very event)
    {"known": "score_at_last_review"}
    {"in_state": ["first_state", "second_state"]}   (the episode's state after the event so far)
    {"rule": "RULE-ID"}           (the criterion of another rule)
    {"condition": "name"}         (a named criterion of the definition's ``conditions``)

Compiling (``pathway.criteria_compiler``) turns the tree into nodes with two methods: ``test``
(a fast bool, used on every event) and ``explain`` (the evidence: the leaves that decided the
result, with the values observed and the observation they came from; computed only for rules
that fired or refused).
A comparison with an unknown fact is false: a criterion never fires on missing data.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "is": operator.is_,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
}


@dataclass  # no __slots__: orjson serialises plain dataclasses 3x faster (pathway.model)
class Evidence:
    """One leaf of a criterion as evaluated: what was tested, what was seen, where from."""

    test: str
    observed: Any
    observation_id: str | None
    held: bool

    def to_dict(self) -> dict[str, Any]:
        observed = list(self.observed) if isinstance(self.observed, tuple) else self.observed
        return {
            "test": self.test,
            "observed": observed,
            "observation_id": self.observation_id,
            "held": self.held,
        }


class Context:
    """What criteria read: sticky facts, this event's facts, and engine-derived values.

    ``values`` is one flat name → value map (facts and derived values never share a name),
    built once per evaluation so that the hot ``test`` path is a dict lookup.
    """

    __slots__ = ("values", "facts", "event", "event_observation_id", "state")

    def __init__(
        self,
        facts: Mapping[str, Any],
        event: Mapping[str, Any],
        event_observation_id: str | None,
        derived: Mapping[str, Any],
        state: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        if values is None:  # given: already flattened (Context.of)
            values = {name: fv.value for name, fv in facts.items()}
            values.update(derived)
        self.values = values
        self.facts = facts  # name -> FactValue (value, observation_id), for evidence
        self.event = event
        self.event_observation_id = event_observation_id
        self.state = state

    @classmethod
    def of(
        cls,
        values: dict[str, Any],
        facts: Mapping[str, Any],
        event: Mapping[str, Any],
        event_observation_id: str | None,
        state: str | None,
    ) -> Context:
        """A context over ``values`` already flattened (facts' values and derived values): the
        engine keeps them up to date through a decision instead of rebuilding them."""
        return cls(facts, event, event_observation_id, {}, state, values)  # mypyc: no __new__

    def lookup(self, name: str, scope: str | None = None) -> tuple[Any, str | None]:
        """Return (value, observation id); value None when the name is unknown."""
        if scope == "event":
            return self.event.get(name), self.event_observation_id
        fv = self.facts.get(name)
        if fv is not None:
            return fv.value, fv.observation_id
        return self.values.get(name), None


Test = Callable[[Context], bool]


class Node:
    """A compiled criterion: ``test`` is a closure built once (the hot path); ``explain``
    recomputes the leaves with their sources (only for rules that fired or refused).

    ``held``, when the caller already knows the node's result (a rule that fired held), saves
    ``explain`` testing each level of the tree again; None: it tests."""

    __slots__ = ("test",)
    test: Test

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        raise NotImplementedError


class Always(Node):
    __slots__ = ()

    def __init__(self) -> None:
        self.test = _always

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        return []


def _always(ctx: Context) -> bool:
    return True


class All(Node):
    __slots__ = ("children",)

    def __init__(self, children: list[Node]) -> None:
        self.children = children
        self.test = _all_of([c.test for c in children])

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        if held is None:
            held = self.test(ctx)
        out: list[Evidence] = []
        if held:  # every part counts (and each held)
            for c in self.children:
                out.extend(c.explain(ctx, True))
        else:  # the failing parts
            for c in self.children:
                if not c.test(ctx):
                    out.extend(c.explain(ctx, False))
        return out


class AnyOf(Node):
    __slots__ = ("children",)

    def __init__(self, children: list[Node]) -> None:
        self.children = children
        pairs = _identity_leaves(children)
        if pairs:
            self.test = _any_is(pairs)
        else:
            pairs = _identity_leaves(children, "event")
            self.test = _any_event_is(pairs) if pairs else _any_of([c.test for c in children])

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        if held is None:
            held = self.test(ctx)
        out: list[Evidence] = []
        if held:  # the parts that held
            for c in self.children:
                if c.test(ctx):
                    out.extend(c.explain(ctx, True))
        else:  # every part (each failed)
            for c in self.children:
                out.extend(c.explain(ctx, False))
        return out


def _all_of(tests: list[Test]) -> Test:
    """The conjunction of tests (each a bool), unrolled for the common short ones."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda ctx: a(ctx) and b(ctx)
    if len(tests) == 3:
        a, b, c = tests
        return lambda ctx: a(ctx) and b(ctx) and c(ctx)

    def test(ctx: Context) -> bool:
        for t in tests:
            if not t(ctx):
                return False
        return True

    return test


def _identity_leaves(
    children: list[Node], scope: str | None = None
) -> tuple[tuple[str, Any], ...] | None:
    """(name, target) of each child when every one is a plain ``is`` leaf of ``scope`` (an
    any-of of flags, as transfer checks and this-observation checks are written), else None."""
    pairs = []
    for c in children:
        if not isinstance(c, Compare) or c.op != "is" or c.scope != scope or c.count or c.var:
            return None
        if scope is not None and c.value is None:  # an unknown event fact never holds
            return None
        pairs.append((c.name, c.value))
    return tuple(pairs)


def _any_is(pairs: tuple[tuple[str, Any], ...]) -> Test:
    """Whether any of the named values is its target: the any-of of ``is`` leaves, one call."""

    def test(ctx: Context) -> bool:
        get = ctx.values.get
        for name, target in pairs:
            if get(name) is target:
                return True
        return False

    return test


def _any_event_is(pairs: tuple[tuple[str, Any], ...]) -> Test:
    """``_any_is`` over this event's own facts (``scope: event`` leaves), one call."""

    def test(ctx: Context) -> bool:
        get = ctx.event.get
        for name, target in pairs:
            if get(name) is target:
                return True
        return False

    return test


def _any_of(tests: list[Test]) -> Test:
    """The disjunction of tests (each a bool), unrolled for the common short ones."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda ctx: a(ctx) or b(ctx)
    if len(tests) == 3:
        a, b, c = tests
        return lambda ctx: a(ctx) or b(ctx) or c(ctx)

    def test(ctx: Context) -> bool:
        for t in tests:
            if t(ctx):
                return True
        return False

    return test


class Not(Node):
    __slots__ = ("child",)

    def __init__(self, child: Node) -> None:
        self.child = child
        inner = child.test
        self.test = lambda ctx: not inner(ctx)

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        # Every leaf makes a new Evidence on each call (none is kept or shared), so the child's
        # are this call's own to reword and flip: no second Evidence per leaf.
        out = self.child.explain(ctx, None if held is None else not held)
        for e in out:
            e.test = "not " + e.test
            e.held = not e.held
        return out


class Compare(Node):
    __slots__ = ("name", "op", "fn", "value", "var", "count", "scope", "label")

    def __init__(
        self,
        name: str,
        op: str,
        value: Any,
        var: str | None,
        count: bool,
        scope: str | None,
    ) -> None:
        self.name, self.op, self.fn = name, op, OPERATORS[op]
        self.value, self.var, self.count, self.scope = value, var, count, scope
        subject = f"count({name})" if count else name
        if scope == "event":
            subject = f"this observation's {subject}"
        self.label = f"{subject} {op} {var if var else _show(value)}"
        self.test = self._compile()

    def _compile(self) -> Test:
        name, fn, target, var = self.name, self.fn, self.value, self.var
        if self.scope == "event":
            if var is None and not self.count:  # _observed and _holds, inlined
                if self.op == "is" and target is not None:  # (None: unknown never holds)
                    return lambda ctx: ctx.event.get(name) is target
                return lambda ctx: (v := ctx.event.get(name)) is not None and fn(v, target)
            return lambda ctx: self._holds(ctx, self._observed(ctx)[0])
        if self.count:
            return lambda ctx: (v := ctx.values.get(name)) is not None and fn(len(v), target)
        if var is not None:
            return lambda ctx: self._holds(ctx, ctx.values.get(name))
        op = self.op
        if op == "is":
            return lambda ctx: ctx.values.get(name) is target
        # the common operators written out: the same comparison, one call fewer per test
        if op == ">":
            return lambda ctx: (v := ctx.values.get(name)) is not None and v > target
        if op == ">=":
            return lambda ctx: (v := ctx.values.get(name)) is not None and v >= target
        if op == "<":
            return lambda ctx: (v := ctx.values.get(name)) is not None and v < target
        if op == "<=":
            return lambda ctx: (v := ctx.values.get(name)) is not None and v <= target
        if op == "==":
            return lambda ctx: (v := ctx.values.get(name)) is not None and v == target
        return lambda ctx: (v := ctx.values.get(name)) is not None and fn(v, target)

    def _observed(self, ctx: Context) -> tuple[Any, str | None]:
        value, source = ctx.lookup(self.name, self.scope)
        if value is not None and self.count:
            value = len(value)
        return value, source

    def _holds(self, ctx: Context, value: Any) -> bool:
        if value is None:
            return False
        target = self.value
        if self.var is not None:
            target = ctx.values.get(self.var)
            if target is None:
                return False
        return self.fn(value, target)

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        if self.scope == "event" or self.var is not None:
            value, source = self._observed(ctx)
            label = self.label
            if self.var is not None:
                label = f"{label} (= {_show(ctx.values.get(self.var))})"
            return [Evidence(label, value, source, self._holds(ctx, value))]
        fv = ctx.facts.get(self.name)  # _observed and _holds, inlined: the common case
        if fv is not None:
            value, source = fv.value, fv.observation_id
        else:
            value, source = ctx.values.get(self.name), None
        if value is None:
            return [Evidence(self.label, None, source, False)]
        if self.count:
            value = len(value)
        if held is None:  # told: the test just made on this same value
            held = self.fn(value, self.value)
        return [Evidence(self.label, value, source, held)]


class Known(Node):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name
        self.test = lambda ctx: ctx.values.get(name) is not None

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        value, source = ctx.lookup(self.name)
        return [Evidence(f"{self.name} is known", value, source, value is not None)]


class InState(Node):
    __slots__ = ("states",)

    def __init__(self, states: frozenset[str]) -> None:
        self.states = states
        self.test = lambda ctx: ctx.state in states

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        label = "state in " + ", ".join(sorted(self.states))
        return [Evidence(label, ctx.state, None, ctx.state in self.states)]


class RuleRef(Node):
    """Another rule's (or a named condition's) criterion; resolved once all are compiled."""

    __slots__ = ("rule_id", "target")

    def __init__(self, rule_id: str) -> None:
        self.rule_id = rule_id
        self.target: Node | None = None
        self.test = lambda ctx: self.target.test(ctx)  # type: ignore[union-attr]

    def explain(self, ctx: Context, held: bool | None = None) -> list[Evidence]:
        return self.target.explain(ctx, held)  # type: ignore[union-attr]


def _show(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return repr(value) if isinstance(value, str) else str(value)
