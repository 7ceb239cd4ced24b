"""What a definition's criteria can tell apart: the finite picture the safety check explores.

Why: facts take numbers and lists, and time runs on, so the episodes a definition can produce are
infinite; but its criteria only ever compare facts against a few thresholds. Reading those
thresholds off the compiled criteria gives a finite set of witness values per fact, regions
(two values in one region pass and fail the same tests), and the facts that matter in a state.
``pathway.checking.explore`` walks the real engine over this picture.

- *Witnesses*: values on both sides of each threshold (``> 50`` → 50 and 51; booleans → true and
  false; ``count > 1`` → 1 and 2 items). A fact that is compared with another value
  (``score >= {"var": "score_at_last_review"}``) keeps its exact value instead of a region.
- *Control facts*: read by a criterion that decides a transition, a request or an escalation.
  The others only personalise orders; they are given at opening, in a few ``profiles``.
- *Alphabet*: the control facts read by the criteria an event in a state runs (following the
  routes one event can pass through), one witness per region; and the facts a safety property
  guarding a state ahead reads, as corrections that would break it (a value corrected
  under a threshold after the state that tests it). The properties' thresholds split regions.
- *Future*: the facts some criterion can still read from a state; the explorer's key keeps their
  regions and forgets the rest (a ``starts_care`` state runs its ``on_enter`` only once).
- *Clocks*: every day count the definition declares (days since opening, state entry, care
  start) and every date fact a derived value counts from or a timer is anchored on. A clock's
  regions begin at the thresholds criteria test its derived values against and at the timers'
  anchor days; the explorer lets time run to the next region start and keys cases on the region.
  A date fact's witnesses are day counts at the observation that records it (0, and each region
  start: a patient found late), turned into a date when observed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

from pathway.checking.clocks import clocks_of, sides
from pathway.criteria import Compare, Context, Known, Node, Not, RuleRef
from pathway.definition import Definition, StateDef
from pathway.model import Episode, FactValue
from pathway.vocabulary import FactSpec

Leaf = Compare | Known
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def leaves(node: Node) -> Iterator[Leaf]:
    """Every comparison and ``known`` test under a criterion, through rule references."""
    if isinstance(node, Compare | Known):
        yield node
    for child in getattr(node, "children", ()):
        yield from leaves(child)
    if isinstance(node, Not):
        yield from leaves(node.child)
    if isinstance(node, RuleRef):
        yield from leaves(node.target)  # type: ignore[arg-type]


def signed(node: Node, positive: bool = True) -> Iterator[tuple[Leaf, bool]]:
    """Every leaf under a criterion with its sign: True where the leaf holding helps the
    criterion hold, False under an odd number of ``not``."""
    if isinstance(node, Compare | Known):
        yield node, positive
    for child in getattr(node, "children", ()):
        yield from signed(child, positive)
    if isinstance(node, Not):
        yield from signed(node.child, not positive)
    if isinstance(node, RuleRef):
        yield from signed(node.target, positive)  # type: ignore[arg-type]


def holds(leaf: Leaf, value: Any) -> bool:
    """The leaf's answer for ``value`` (None: unknown); relational tests are kept exact instead."""
    if isinstance(leaf, Known):
        return value is not None
    if value is None or leaf.var is not None:
        return False
    return bool(leaf.fn(len(value) if leaf.count else value, leaf.value))


def witnesses(
    spec: FactSpec, tests: list[Leaf], relational: bool, days: tuple[int, ...] = (0,)
) -> list[Any]:
    """Values on both sides of every threshold the criteria test this fact against (for a
    date fact: the day counts ``days`` it is recorded at, given as a date when observed)."""
    cmp = [t for t in tests if isinstance(t, Compare) and t.var is None]
    if spec.kind == "boolean":
        return [True, False]
    if spec.kind == "date":
        return list(days)
    if spec.kind == "enum":
        named = [v for v in spec.values if any(v == t.value or v in (t.value or ()) for t in cmp)]
        return named + [v for v in spec.values if v not in named][:1]
    if spec.kind == "list":
        low, high = spec.min_items or 1, spec.max_items or len(spec.values)
        counts = {n for t in cmp for n in sides(t.op, t.value)} | {low}
        return [list(spec.values[:n]) for n in sorted(counts) if low <= n <= high]
    values = sorted({v for t in cmp for v in sides(t.op, t.value)} or {spec.minimum or 0})
    if relational:  # room to be lower or not lower than another value in the top region
        values.append(values[-1] + 1)
    low, high = spec.minimum, spec.maximum
    return [v for v in values if (low is None or low <= v) and (high is None or v <= high)]


def watched(ep: Episode) -> tuple[str, ...]:
    """The rules time will still test: pending timers, and open escalations (resolved if false)."""
    return tuple(sorted({t.rule_id for t in (*ep.pending_timers(), *ep.open_escalations())}))


def facts_context(facts: dict[str, Any]) -> Context:
    return Context({k: FactValue(v, "x", START) for k, v in facts.items()}, {}, None, {})


class Abstraction:
    """The definition's criteria sorted by what reads what, by state; cached per argument."""

    def __init__(self, definition: Definition) -> None:
        self.definition, rules = definition, definition.rules
        self.reach = {s: definition.graph.successors(s) for s in definition.states}
        for s in definition.states:  # close the successor relation transitively
            todo = list(self.reach[s])
            while todo:
                new = self.reach[todo.pop()] - self.reach[s]
                self.reach[s] |= new
                todo += new
        routes = [
            *definition.global_routes,
            *(r for s in definition.states.values() for r in s.routes),
        ]
        control = {x for r in routes for x in r.rules}
        control |= {q.rule for q in definition.requests.values() if not q.refused_always}
        control |= {
            r.id for r in rules.values()
            if r.resolves_when_false or (r.action is not None and r.action.kind == "escalation")
        }  # fmt: skip
        self.control = frozenset(control)
        nodes = [rules[x].criterion for x in control] + [r.when for r in routes if r.when]
        self.control_facts = {lf.name for n in nodes for lf in leaves(n)} - set(definition.derived)
        # the safety properties' criteria count too: a case they judge differently is another case
        self.judged = [p.when for p in definition.safety if p.when is not None]
        self.guards = [  # (state, its criterion's leaves with their sign) of enters_only_when
            (p.state, tuple(signed(p.when))) for p in definition.safety if p.when and p.state
        ]
        self.tests: dict[str, list[Leaf]] = {}
        for n in [r.criterion for r in rules.values()] + [r.when for r in routes if r.when]:
            for lf in leaves(n):
                self.tests.setdefault(lf.name, []).append(lf)
        for lf in (lf for n in self.judged for lf in leaves(n)):
            self.tests.setdefault(lf.name, []).append(lf)
        self.relational = {
            n for lfs in self.tests.values() for lf in lfs
            if isinstance(lf, Compare) and lf.var for n in (lf.name, lf.var)
        }  # fmt: skip
        self.recalled = {n for n, dv in definition.derived.items() if dv.previous_review}
        self.clocks = clocks_of(definition, self.tests)
        days = {c.date_fact: (0, *c.starts) for c in self.clocks if c.date_fact}
        self.dates = definition.vocabulary.dates() & (set(self.tests) | set(days))
        vocab = definition.vocabulary.facts
        self.witnesses = {
            f: witnesses(vocab[f], self.tests.get(f, []), f in self.relational, days.get(f, (0,)))
            for f in sorted(set(self.tests) | self.dates) if f in vocab
        }  # fmt: skip
        self.profiles = self._profiles()
        self.openings = self.profiles + [  # each profile, alone and with each date recorded
            {**p, f: w} for f in sorted(self.dates) for w in self.witnesses[f]
            for p in self.profiles
        ]  # fmt: skip

    def _state(self, s: StateDef, enter: bool, alphabet: bool) -> list[Node]:
        """Criteria an event in ``s`` runs (with ``enter``: entering it runs). For the alphabet
        only control criteria count; for the future also the timers the state sets."""
        ids = [x for r in s.routes for x in (*r.rules, *(() if alphabet else r.also))]
        ids += [] if alphabet else [*s.checks, *(x for r in s.routes for x in r.timers)]
        if enter:
            ids += [*s.on_enter, *(() if alphabet else s.timers)]
        ids = [x for x in ids if not alphabet or x in self.control]
        return [self.definition.rules[x].criterion for x in ids] + [
            r.when for r in s.routes if r.when
        ]

    def _common(self, states: set[str], watch: tuple[str, ...], alphabet: bool) -> list[Node]:
        """Criteria any event may run: global routes, requests, watched timers and escalations."""
        d = self.definition
        ids = [x for r in d.global_routes for x in (*r.rules, *(() if alphabet else r.also))]
        ids += [
            q.rule for q in d.requests.values() if q.allowed_from & states and not q.refused_always
        ]
        ids = [x for x in (*ids, *watch) if not alphabet or x in self.control]
        return [d.rules[x].criterion for x in ids] + [r.when for r in d.global_routes if r.when]

    @cache  # noqa: B019 - one abstraction per check, a few dozen distinct arguments
    def future(self, state: str, started: bool, watch: tuple[str, ...]) -> tuple[Any, ...]:
        """The facts some criterion can still read, each with its tests; and whether a fact's
        value at the previous review can still be read."""
        reach = self.reach[state]
        nodes = self._common(reach | {state}, watch, False) + self._state(
            self.definition.states[state], False, False
        )
        nodes += self.judged
        for t in reach:
            sd = self.definition.states[t]
            nodes += self._state(sd, not (started and sd.starts_care), False)
        by_fact: dict[str, dict[int, Leaf]] = {}
        for lf in (lf for n in nodes for lf in leaves(n)):
            if lf.name not in self.definition.derived and getattr(lf, "scope", None) != "event":
                by_fact.setdefault(lf.name, {})[id(lf)] = lf
        prev = any(
            lf.name in self.recalled or getattr(lf, "var", None) in self.recalled
            for n in nodes for lf in leaves(n)
        )  # fmt: skip
        return tuple((f, tuple(by_fact[f].values())) for f in sorted(by_fact)), prev

    @cache  # noqa: B019
    def alphabet(self, state: str, started: bool, watch: tuple[str, ...]) -> tuple[Any, ...]:
        """Observations worth trying in ``state``: (fact, witness, tests or None when exact,
        and for a fact no criterion run here reads: the (state, criterion) of the properties
        guarding a state ahead that read it, since a correction on the way may break them)."""
        chain, todo = {state}, [state]
        while todo:  # the states one event passes through: routes are followed while they apply
            for r in (*self.definition.states[todo.pop()].routes, *self.definition.global_routes):
                if r.to and r.to not in chain:
                    chain.add(r.to)
                    todo.append(r.to)
        nodes = self._common({state}, watch, True)
        for t in chain:
            sd = self.definition.states[t]
            nodes += self._state(sd, t != state and not (started and sd.starts_care), True)
        read: dict[str, list[Leaf]] = {}
        for lf in (lf for n in nodes for lf in leaves(n)):
            read.setdefault(lf.name, []).append(lf)
        # a fact a property guarding a state ahead reads may be corrected on the way there
        ahead = self.reach[state] | chain
        own = read.keys() & self.control_facts
        guarded: dict[str, list[tuple[Leaf, bool]]] = {}
        for target, signed_leaves in self.guards:
            for lf, positive in signed_leaves if target in ahead else ():
                if lf.name in self.definition.vocabulary.facts and lf.name not in own:
                    guarded.setdefault(lf.name, []).append((lf, positive))
        for lf in (lf for n in self.judged for lf in leaves(n) if lf.name in read):
            read[lf.name].append(lf)  # both sides of a property's thresholds are tried
        for f, signed_leaves in guarded.items():
            read[f] = [lf for lf, _ in signed_leaves]
        out = []
        for f in sorted(own | guarded.keys()):
            tests = tuple(read[f])
            exact = f in self.dates or any(
                isinstance(lf, Compare) and (lf.var or lf.scope) for lf in tests
            )
            seen: set[Any] = set()
            for w in self.witnesses[f]:
                region = w if exact else tuple(holds(lf, w) for lf in tests)
                if region not in seen:
                    seen.add(region)
                    out.append((f, w, None if exact else tests, tuple(guarded.get(f, ()))))
        return tuple(out)

    def _profiles(self) -> list[dict[str, Any]]:
        """Opening facts: none, then profiles in which each rule that reads only non-control
        facts fires once (packed together where they agree)."""
        out: list[tuple[dict[str, Any], list[Node]]] = []
        for rule in self.definition.rules.values():
            names = list(dict.fromkeys(lf.name for lf in leaves(rule.criterion)))
            fires = rule.criterion.test
            skip = self.control_facts | set(self.definition.derived) | self.dates
            if not names or set(names) & skip or fires(facts_context({})):
                continue
            combos = (
                dict(zip(c, vs, strict=True))
                for k in range(1, len(names) + 1) for c in itertools.combinations(names, k)
                for vs in itertools.product(*(self.witnesses[n] for n in c))
            )  # fmt: skip
            hit = next((p for p in combos if fires(facts_context(p))), None)
            if hit is None:
                continue
            for profile, covered in out:
                both = {**profile, **hit}
                agree = all(profile.get(k, v) == v for k, v in hit.items())
                if agree and all(n.test(facts_context(both)) for n in (*covered, rule.criterion)):
                    profile.update(hit)
                    covered.append(rule.criterion)
                    break
            else:
                out.append((dict(hit), [rule.criterion]))
        return [{}, *(p for p, _ in out)]
