"""The pathway diagram on the episode page, drawn as an ordered list of states.

Why not mermaid in the browser: mermaid.min.js is about 3 MB of script to vendor for one
picture, and a rendered SVG of nine states with long rule labels is hard to read at page width
and silent to a screen reader. The list is the same graph (the definition's compiled edges,
labelled as ``pathway.diagram`` labels them): the main track in definition order, then the
outcomes, the current state marked in colour and in words, visited states ticked, and under
each state where it can go and which rules take it there. The mermaid text itself
(``pathway.diagram.mermaid`` with the current state highlighted) is on the page too, folded,
for anyone who wants to paste it into a mermaid viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

from pathway.definition import Definition
from pathway.diagram import edge_label


@dataclass(frozen=True, slots=True)
class Exit:
    dest_label: str
    labels: tuple[str, ...]  # the rules (or timer) of each edge to that state
    terminal: bool


@dataclass(frozen=True, slots=True)
class MapState:
    name: str
    label: str
    current: bool
    visited: bool
    terminal: bool
    exits: tuple[Exit, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PathwayMap:
    track: tuple[MapState, ...]
    outcomes: tuple[MapState, ...]


def pathway_map(definition: Definition, current: str, visited: set[str]) -> PathwayMap:
    from pathway.diagram import timer_timing

    states = definition.states
    edges: dict[str, list[tuple[str, str]]] = {}
    for trigger, source, dest in definition.graph.edges:
        edges.setdefault(source, []).append((dest, trigger))
    order = list(states)
    close_rule = definition.close.rule
    built: list[MapState] = []
    for name, s in states.items():
        by_dest: dict[str, list[str]] = {}
        for dest, trigger in sorted(edges.get(name, ()), key=lambda e: (order.index(e[0]), e[1])):
            if trigger != close_rule:  # every live state can be closed: no need to say so 9 times
                by_dest.setdefault(dest, []).append(edge_label(definition, trigger))
        exits = [
            Exit(states[dest].label, tuple(labels), states[dest].terminal)
            for dest, labels in by_dest.items()
        ]
        notes = tuple(
            f"{t} ({timer_timing(definition, t)})"
            for t in s.timers
            if not definition.timers[t].moves_to
        )
        built.append(
            MapState(
                name, s.label, name == current, name in visited, s.terminal, tuple(exits), notes
            )
        )
    return PathwayMap(
        track=tuple(m for m in built if not m.terminal),
        outcomes=tuple(m for m in built if m.terminal),
    )
