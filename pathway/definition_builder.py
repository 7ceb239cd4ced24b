"""Compiling a definition document: every section checked, criteria compiled, graph built.

``DefinitionBuilder(document).build()`` is what ``pathway.definition.compile_definition``
runs. It raises ``InvalidDefinition`` naming the first problem: unknown facts or rules, rules
without citation or never used, states unreachable or with no way out of their own, timers
naming no rule or set by nothing, cyclic criteria. The sections of the engine's general
features (derived values, timer anchors, enrolments, safety properties) are parsed by
``pathway.definition_sections``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pathway.criteria import Node
from pathway.criteria_compiler import Compiler, resolve_rule_refs
from pathway.definition import (
    ACTION_KINDS,
    Action,
    CloseDef,
    Definition,
    RequestDef,
    Route,
    Rule,
    StateDef,
    TimerDef,
    content_hash,
)
from pathway.definition_sections import (
    derived_section,
    due_parts,
    enrolments_section,
    safety_section,
)
from pathway.errors import InvalidDefinition
from pathway.graph import Edge, StateGraph
from pathway.legacy_format import upgrade_derived
from pathway.measures import measures_section
from pathway.vocabulary import Vocabulary
from pathway.windows import windows_section

TONES = ("start", "diagnostic", "care", "review", "transfer", "referral", "done", "closed", "other")


class DefinitionBuilder:
    """Turns the document into a Definition, validating as it goes."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.vocabulary = Vocabulary.from_data(doc["facts"])
        self.derived = derived_section(upgrade_derived(doc.get("derived", {})), self.vocabulary)
        states = doc["states"]
        if not isinstance(states, dict):
            raise InvalidDefinition("states: expected an object of state name → state")
        self.compiler = Compiler(
            frozenset(self.vocabulary.facts) | frozenset(self.derived), [], frozenset(states)
        )
        self.used_rules: set[str] = set()

    def build(self) -> Definition:
        doc = self.doc
        references = {str(k): str(v) for k, v in doc["references"].items()}
        rules = {rid: self._rule(rid, raw, references) for rid, raw in doc["rules"].items()}
        criteria: dict[str, Node] = {rid: r.criterion for rid, r in rules.items()}
        for name, raw in doc.get("conditions", {}).items():
            criteria["condition:" + name] = self.compiler.compile(raw, f"conditions.{name}")
        timers = self._timers(rules)
        states = {name: self._state(name, raw) for name, raw in doc["states"].items()}
        global_routes = tuple(
            self._route(raw, f"on_every_event[{i}]")
            for i, raw in enumerate(doc.get("on_every_event", ()))
        )
        requests = self._requests()
        close = self._close()
        enrolments = enrolments_section(doc, self.vocabulary, self._use)
        safety = safety_section(doc, rules, set(states), requests, self.compiler)
        resolve_rule_refs(self.compiler.rule_refs, criteria)
        self._check_references(rules, states, timers)
        graph = self._graph(states, timers, requests, close, global_routes)
        measures = measures_section(
            doc, self.vocabulary, states, rules, timers, self.derived, references
        )
        chash = content_hash(doc)
        dated: dict[str, list[str]] = {}
        for t in timers.values():
            for fact in t.anchor_facts:
                dated.setdefault(fact, []).append(t.id)
        return Definition(
            id=str(doc["id"]),
            title=str(doc.get("title", doc["id"])),
            version=f"{doc['id']}@{chash[:12]}",
            content_hash=chash,
            references=references,
            vocabulary=self.vocabulary,
            initial_state=doc["initial_state"],
            states=states,
            rules=rules,
            timers=timers,
            requests=requests,
            close=close,
            global_routes=global_routes,
            graph=graph,
            document=doc,
            superseded_by={
                rid: frozenset(r.id for r in rules.values() if rid in r.supersedes)
                for rid in rules
                if any(rid in r.supersedes for r in rules.values())
            },
            derived=self.derived,
            enrolments=enrolments,
            safety=safety,
            remembered=frozenset(
                d.previous_review for d in self.derived.values() if d.previous_review
            ),
            dated_timers={f: tuple(ts) for f, ts in dated.items()},
            derived_plan=tuple(
                (d.name, d.days_since, None)
                if d.days_since
                else (d.name, "date", d.date_fact)
                if d.date_fact
                else (d.name, "review", d.previous_review)
                for d in self.derived.values()
            ),
            measures=measures,
            windows=windows_section(doc, states, timers),
        )

    def _rule(self, rid: str, raw: dict[str, Any], references: Mapping[str, str]) -> Rule:
        refs = tuple(str(r) for r in raw.get("refs", ()))
        if not refs:
            raise InvalidDefinition(f"rules.{rid}: no citation, expected refs naming a reference")
        for ref in refs:
            if ref not in references:
                raise InvalidDefinition(
                    f"rules.{rid}.refs: {ref!r} is not one of the references {sorted(references)}"
                )
        action = raw.get("action")
        if action is not None and action.get("kind") not in ACTION_KINDS:
            raise InvalidDefinition(
                f"rules.{rid}.action.kind: got {action.get('kind')!r}, expected one of {ACTION_KINDS}"
            )
        return Rule(
            id=rid,
            title=str(raw.get("title", rid)),
            refs=refs,
            citations=tuple(references[r] for r in refs),
            criterion=self.compiler.compile(raw.get("when", True), f"rules.{rid}.when"),
            action=Action(action["kind"], action["text"]) if action else None,
            supersedes=tuple(raw.get("supersedes", ())),
            resolves_when_false=bool(raw.get("resolves_when_false", False)),
            once=self._once(rid, raw, action),
        )

    @staticmethod
    def _once(rid: str, raw: dict[str, Any], action: Any) -> bool:
        once = bool(raw.get("once", False))
        if once and not action:
            raise InvalidDefinition(f"rules.{rid}.once: only a rule with an action fires once")
        return once

    def _use(self, ids: Any, where: str) -> tuple[str, ...]:
        ids = tuple(ids or ())
        for rid in ids:
            if rid not in self.doc["rules"]:
                raise InvalidDefinition(f"{where}: unknown rule {rid!r}")
        self.used_rules.update(ids)
        return ids

    def _route(self, raw: dict[str, Any], where: str) -> Route:
        rules = self._use(raw.get("rules"), f"{where}.rules")
        if not rules:
            raise InvalidDefinition(f"{where}: a route needs at least one rule")
        when = raw.get("when")
        return Route(
            rules=rules,
            also=self._use(raw.get("also"), f"{where}.also"),
            when=self.compiler.compile(when, f"{where}.when") if when is not None else None,
            to=raw.get("to"),
            timers=tuple(raw.get("timers", ())),
        )

    def _state(self, name: str, raw: dict[str, Any]) -> StateDef:
        routes = tuple(
            self._route(r, f"states.{name}.routes[{i}]")
            for i, r in enumerate(raw.get("routes", ()))
        )
        return StateDef(
            name=name,
            label=str(raw.get("label", name)),
            terminal=bool(raw.get("terminal", False)),
            routes=routes,
            on_enter=self._use(raw.get("on_enter"), f"states.{name}.on_enter"),
            timers=tuple(raw.get("timers", ())),
            checks=self._use(raw.get("checks"), f"states.{name}.checks"),
            review=bool(raw.get("review", False)),
            starts_care=bool(raw.get("starts_care", False)),
            tone=self._tone(name, raw),
        )

    def _tone(self, name: str, raw: dict[str, Any]) -> str:
        tone = raw.get("tone")
        if tone is None:
            terminal, review = raw.get("terminal"), raw.get("review")
            return "done" if terminal else "review" if review else "other"
        if tone not in TONES:
            raise InvalidDefinition(f"states.{name}.tone: got {tone!r}, expected one of {TONES}")
        return str(tone)

    def _timers(self, rules: Mapping[str, Rule]) -> dict[str, TimerDef]:
        timers: dict[str, TimerDef] = {}
        for order, (tid, raw) in enumerate(self.doc.get("timers", {}).items()):
            if tid not in rules:
                raise InvalidDefinition(f"timers.{tid}: names no rule; a timer fires its rule")
            due = due_parts(tid, raw, self.vocabulary)
            moves = raw.get("moves") or {}
            self.used_rules.add(tid)
            timers[tid] = TimerDef(
                id=tid,
                due=due,
                state_bound=bool(raw.get("state_bound", False)),
                moves_from=frozenset(moves.get("from", ())),
                moves_to=moves.get("to"),
                order=order,
                once=bool(raw.get("once", False)),
                set_on_known=bool(raw.get("set_on_known", False)),
            )
            if timers[tid].set_on_known and not timers[tid].anchor_facts:
                raise InvalidDefinition(
                    f"timers.{tid}.set_on_known: the timer is anchored on no date fact"
                )
        return timers

    def _requests(self) -> dict[str, RequestDef]:
        out: dict[str, RequestDef] = {}
        for action, raw in self.doc.get("requests", {}).items():
            refused = raw.get("refused_by")
            rule = refused or raw.get("rule")
            self._use([rule], f"requests.{action}")
            out[action] = RequestDef(
                action=action,
                rule=rule,
                refused_always=refused is not None,
                allowed_from=frozenset(raw.get("from", ())),
                to=raw.get("to"),
            )
        return out

    def _close(self) -> CloseDef:
        raw = self.doc.get("close")
        if not raw:
            raise InvalidDefinition("close: missing; every pathway needs a way to close an episode")
        self._use([raw["rule"]], "close.rule")
        return CloseDef(raw["rule"], raw["to"], tuple(raw["reasons"]))

    def _check_references(
        self,
        rules: Mapping[str, Rule],
        states: Mapping[str, StateDef],
        timers: Mapping[str, TimerDef],
    ) -> None:
        names = set(states)
        if self.doc["initial_state"] not in names:
            raise InvalidDefinition(f"initial_state: {self.doc['initial_state']!r} is not a state")
        set_timers: set[str] = set()
        for s in states.values():
            for tid in s.timers:
                if tid not in timers:
                    raise InvalidDefinition(f"states.{s.name}.timers: unknown timer {tid!r}")
            set_timers.update(s.timers)
            for route in s.routes:
                if route.to is not None and route.to not in names:
                    raise InvalidDefinition(f"states.{s.name}: route to unknown state {route.to!r}")
                for tid in route.timers:
                    if tid not in timers:
                        raise InvalidDefinition(
                            f"states.{s.name}: route sets unknown timer {tid!r}"
                        )
                set_timers.update(route.timers)
            if s.terminal and (s.routes or s.timers or s.on_enter or s.checks):
                raise InvalidDefinition(
                    f"states.{s.name}: a terminal state has no routes, timers or rules"
                )
        set_timers.update(t.id for t in timers.values() if t.set_on_known)
        for t in timers.values():
            if t.id not in set_timers:
                raise InvalidDefinition(f"timers.{t.id}: no state or route ever sets it")
            if t.moves_to is not None and t.moves_to not in names:
                raise InvalidDefinition(f"timers.{t.id}.moves.to: unknown state {t.moves_to!r}")
            if not t.moves_from <= names:
                raise InvalidDefinition(
                    f"timers.{t.id}.moves.from: unknown states {sorted(t.moves_from - names)}"
                )
        unused = set(rules) - self.used_rules
        if unused:
            raise InvalidDefinition(
                f"rules {sorted(unused)}: never used by a state, route, timer or request"
            )
        for rule in rules.values():
            for other in rule.supersedes:
                if other not in rules:
                    raise InvalidDefinition(f"rules.{rule.id}.supersedes: unknown rule {other!r}")

    def _graph(
        self,
        states: Mapping[str, StateDef],
        timers: Mapping[str, TimerDef],
        requests: Mapping[str, RequestDef],
        close: CloseDef,
        global_routes: tuple[Route, ...],
    ) -> StateGraph:
        live = [s.name for s in states.values() if not s.terminal]
        edges: list[Edge] = []
        for s in states.values():
            edges += [Edge(r.trigger, s.name, r.to) for r in s.routes if r.to]
        for r in global_routes:
            edges += [Edge(r.trigger, s, r.to) for s in live if r.to and s != r.to]
        for t in timers.values():
            edges += [Edge(t.id, s, t.moves_to) for s in t.moves_from if t.moves_to]
        for q in requests.values():
            edges += [Edge(q.rule, s, q.to) for s in q.allowed_from if q.to]
        edges += [Edge(close.rule, s, close.to) for s in live]
        graph = StateGraph.build(list(states), self.doc["initial_state"], edges)
        exceptional = {close.rule, *(r.trigger for r in global_routes)}
        for s in live:  # a way out of its own: not only transfer (on every event) or close
            clinical = {d for trig, src, d in graph.edges if src == s and trig not in exceptional}
            if not clinical - {s}:
                raise InvalidDefinition(
                    f"states.{s}: a non-terminal state with no way out (dead end)"
                )
        unreachable = set(states) - graph.reachable()
        if unreachable:
            raise InvalidDefinition(
                f"states {sorted(unreachable)}: unreachable from {graph.initial!r}"
            )
        return graph
