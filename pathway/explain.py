"""What an episode is waiting for: every way out of its state, and every pending timer.

``explain_episode(definition, episode, at)`` answers "why not?" from the same compiled criteria
trees the engine tests (``pathway.criteria``) and the same context it builds (facts in force,
``derived_values``): never a second copy of the rules. The candidates follow the engine's
evaluation order of an observation (``DecisionInProgress._settle``): the immediate-transfer
routes (``on_every_event``) first, then the state's routes in order, one candidate per rule of
each route (a rule on two routes appears twice, each with its route's guard). The first
candidate that holds is the one the next observation takes; ``to`` is None for a route that
moves nothing (its rule fires and evaluation stops there).

For a candidate that does not hold, ``failing`` lists the criterion leaves (of the route's
``when`` guard, then of the rule) that decide the failure, each with the value observed and what
it needs; ``missing`` lists the facts whose being unknown blocks it. Conventions:

- ``needs.op`` is the criterion's operator (``is``, ``==``, ``>=``, ``in`` …), ``known`` for a
  ``known`` test and ``in`` for a state test (``fact`` is then ``"state"``); a leaf under an odd
  number of ``not`` has ``not <op>`` (``not is`` true: anything but true, unknown included).
- ``needs.value`` is the criterion's literal; for a comparison against another value it is
  ``{"var": name, "value": its value now}``.
- a ``count`` leaf's ``observed`` is the number of items of the list fact.
- a leaf that reads "this very observation" (``scope: event``) has, at rest, no observation to
  read: it is unknown, so listed in ``missing`` — the next observation must record it.

A timer's ``fires_if`` is None when its rule is unconditional, else an object: ``criterion``
(the rule's tree in the definition's own JSON form, references inlined), ``text`` (the same in
words), and ``holds``/``failing``/``missing`` as above, evaluated with the facts in force at
the timer's due time: what the timer would do if nothing is observed before then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pathway.criteria import Always, Context
from pathway.definition import Definition, Route
from pathway.explain_leaves import Leaf, criterion_text, criterion_tree, failing_leaves
from pathway.model import Episode, FactValue
from pathway.work import derived_values

if TYPE_CHECKING:
    from pathway.registry import DefinitionRegistry
    from pathway.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Candidate:
    """One rule of one route out of the state (or of the immediate-transfer check)."""

    rule: str
    to: str | None
    holds: bool
    failing: tuple[Leaf, ...]
    missing: tuple[str, ...]
    transfer: bool  # an immediate-transfer rule (``on_every_event``)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "to": self.to,
            "holds": self.holds,
            "failing": [leaf.to_dict() for leaf in self.failing],
            "missing": list(self.missing),
        }


@dataclass(frozen=True, slots=True)
class FiresIf:
    criterion: Any
    text: str
    holds: bool
    failing: tuple[Leaf, ...]
    missing: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "text": self.text,
            "holds": self.holds,
            "failing": [leaf.to_dict() for leaf in self.failing],
            "missing": list(self.missing),
        }


@dataclass(frozen=True, slots=True)
class TimerWait:
    rule: str
    due_at: datetime
    fires_if: FiresIf | None
    moves_to: str | None  # the state it moves the episode to when it fires, if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "due_at": self.due_at.isoformat(),
            "fires_if": self.fires_if.to_dict() if self.fires_if else None,
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    episode: str
    pathway: str
    state: str
    candidates: tuple[Candidate, ...]
    timers: tuple[TimerWait, ...]
    version: str = ""  # the definition version it was explained on (not in the JSON)

    @property
    def next_move(self) -> Candidate | None:
        """The candidate the next observation takes: the first that holds."""
        return next((c for c in self.candidates if c.holds), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode,
            "pathway": self.pathway,
            "state": self.state,
            "candidates": [c.to_dict() for c in self.candidates],
            "timers": [t.to_dict() for t in self.timers],
        }


def context_at(
    definition: Definition,
    episode: Episode,
    at: datetime,
    event: dict[str, Any] | None = None,
) -> Context:
    """The context the engine would evaluate routes in at ``at``: facts in force, the derived
    values at ``at``, and (for a what-if) the facts of an observation not yet recorded."""
    facts = dict(episode.facts)
    for name, value in (event or {}).items():
        facts[name] = FactValue(value, "(this observation)", at)
    derived = derived_values(definition, replace(episode, facts=facts), at)
    return Context(facts, dict(event or {}), "(this observation)", derived, episode.state)


def explain_episode(
    definition: Definition,
    episode: Episode,
    at: datetime,
    event: dict[str, Any] | None = None,
) -> Explanation:
    """The episode's candidates and pending timers at clinical time ``at`` (``event``: the
    facts of a hypothetical next observation, validated by the caller)."""
    terminal = definition.is_terminal(episode.state)
    ctx = context_at(definition, episode, at, event)
    candidates: list[Candidate] = []
    if not terminal:
        for route in definition.global_routes:
            candidates += _route_candidates(definition, route, ctx, transfer=True)
        for route in definition.states[episode.state].routes:
            candidates += _route_candidates(definition, route, ctx, transfer=False)
    timers = [] if terminal else [_timer(definition, episode, t) for t in episode.pending_timers()]
    return Explanation(
        episode.id,
        definition.id,
        episode.state,
        tuple(candidates),
        tuple(timers),
        definition.version,
    )


def explain_stored(
    uow: UnitOfWork, definitions: DefinitionRegistry, episode_id: str, at: datetime
) -> Explanation:
    """The explanation of a stored episode at ``at`` (never before it entered its state: an
    event cannot be earlier); EpisodeNotFound when there is none."""
    with uow:
        episode = uow.get_episode(episode_id)
    definition = definitions.get(episode.definition_version)
    return explain_episode(definition, episode, max(at, episode.state_entered_at))


def _route_candidates(
    definition: Definition, route: Route, ctx: Context, *, transfer: bool
) -> Iterator[Candidate]:
    guard_holds = route.when is None or route.when.test(ctx)
    guard = [] if guard_holds or route.when is None else list(failing_leaves(route.when, ctx))
    for rid in route.rules:
        node = definition.rules[rid].criterion
        rule_holds = node.test(ctx)
        leaves = guard + ([] if rule_holds else list(failing_leaves(node, ctx)))
        yield Candidate(
            rid, route.to, guard_holds and rule_holds, tuple(leaves), _missing(leaves), transfer
        )


def _timer(definition: Definition, episode: Episode, timer: Any) -> TimerWait:
    spec = definition.timers[timer.rule_id]
    node = definition.rules[timer.rule_id].criterion
    moves = spec.moves_to if spec.moves_to and episode.state in spec.moves_from else None
    if isinstance(node, Always):
        return TimerWait(timer.rule_id, timer.due_at, None, moves)
    ctx = context_at(definition, episode, max(timer.due_at, episode.state_entered_at))
    holds = node.test(ctx)
    leaves = () if holds else tuple(failing_leaves(node, ctx))
    fires = FiresIf(criterion_tree(node), criterion_text(node), holds, leaves, _missing(leaves))
    return TimerWait(timer.rule_id, timer.due_at, fires, moves)


def _missing(leaves: Any) -> tuple[str, ...]:
    names: list[str] = []
    for leaf in leaves:
        if leaf.unknown and leaf.fact not in names:
            names.append(leaf.fact)
    return tuple(names)
