"""The definition's state graph, compiled once per definition version with ``transitions``.

One ``Machine`` per definition version is shared by every episode; no episode is ever attached
to it (attaching models is slow and holds memory). The engine asks the graph directly whether an
edge exists, through a set of (trigger, source, destination) triples read off the Machine once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from transitions import Machine


@dataclass(frozen=True, slots=True)
class Edge:
    """A transition of the graph: the trigger is named after the rules that cause it."""

    trigger: str
    source: str
    dest: str


@dataclass(slots=True)
class StateGraph:
    """States and edges of a definition, backed by one compiled ``transitions.Machine``."""

    states: tuple[str, ...]
    initial: str
    machine: Machine
    edges: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)

    @classmethod
    def build(cls, states: list[str], initial: str, edges: list[Edge]) -> StateGraph:
        machine = Machine(
            model=None,
            states=states,
            initial=initial,
            auto_transitions=False,
            send_event=False,
        )
        for edge in edges:
            machine.add_transition(edge.trigger, edge.source, edge.dest)
        triples = frozenset(
            (name, source, t.dest)
            for name, event in machine.events.items()
            for source, ts in event.transitions.items()
            for t in ts
        )
        return cls(tuple(states), initial, machine, triples)

    def allows(self, trigger: str, source: str, dest: str) -> bool:
        """True when the definition has this edge (the engine's last check before moving)."""
        return (trigger, source, dest) in self.edges

    def successors(self, state: str) -> set[str]:
        return {dest for _, source, dest in self.edges if source == state}

    def reachable(self) -> set[str]:
        """Every state some sequence of events can lead to from the initial state."""
        seen, todo = {self.initial}, deque([self.initial])
        while todo:
            for nxt in self.successors(todo.popleft()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
