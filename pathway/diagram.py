"""State diagrams of a definition, for the clinicians who review it and the engineers who change it.

Why mermaid: it renders in GitHub, GitLab and most wikis from plain text, and ``transitions``
(0.9.1 and later) writes it itself with its ``mermaid`` graph engine, so no graphviz binary is
needed. The diagram is built from the definition's compiled graph (the same edges the engine
checks before every move): every state, every edge labelled with the rule ids that cause it,
moving timers labelled with when they fire ("FU-REASSESS (care day 28)"), timers that only
escalate or ask as notes on their state, terminal states ending in ``[*]``, and optionally the
current state of an episode highlighted.

SVG would need graphviz's ``dot`` program, which is not installed here and not a dependency:
``carepath definition diagram --format svg`` says so (``SVG_UNAVAILABLE``) rather than drawing
something half-right.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pathway.definition import Definition
from pathway.errors import InvalidRequest

SVG_UNAVAILABLE = (
    "svg output needs the graphviz 'dot' program, which carepath does not install; "
    "use --format mermaid and render it with any mermaid viewer "
    "(GitHub and GitLab render it in Markdown, or mermaid-cli: mmdc -i pathway.mmd -o pathway.svg)"
)


def timer_timing(definition: Definition, timer_id: str) -> str:
    """When a timer fires, in the protocol's words: care days, days after what sets it, or a
    day counted from a date fact; "the later of" when it has several anchors."""
    spec = definition.timers[timer_id]
    parts = [_part_timing(definition, timer_id, p.days, p.date_fact) for p in spec.due]
    return parts[0] if len(parts) == 1 else "later of " + " and ".join(parts)


def _part_timing(definition: Definition, timer_id: str, days: int, date_fact: str | None) -> str:
    if date_fact is not None:
        counted = [n for n, d in definition.derived.items() if d.date_fact == date_fact]
        return f"{counted[0].replace('_', ' ')} {days}" if counted else f"day {days} of {date_fact}"
    span = f"{days} day{'s' if days != 1 else ''}"
    for s in definition.states.values():
        if timer_id in s.timers:
            return f"care day {days}" if s.starts_care else f"{span} in {s.name}"
        for route in s.routes:
            if timer_id in route.timers:
                return f"{span} after {', '.join(route.rules)}"
    return span


def edge_label(definition: Definition, trigger: str) -> str:
    """An edge's label: the rule ids of its trigger, a timer with its timing."""
    if trigger in definition.timers:
        return f"{trigger} ({timer_timing(definition, trigger)})"
    return ", ".join(trigger.split("|"))


def mermaid(definition: Definition, current_state: str | None = None) -> str:
    """A mermaid ``stateDiagram-v2`` of the definition; ``current_state`` is highlighted."""
    from transitions.extensions.diagrams import GraphMachine

    if current_state is not None and current_state not in definition.states:
        raise InvalidRequest("state", current_state, "one of " + ", ".join(definition.states))
    title = f"{definition.title} ({definition.version})"
    machine: Any = GraphMachine(
        model=None,
        states=list(definition.graph.states),
        initial=definition.graph.initial,
        auto_transitions=False,
        graph_engine="mermaid",
        title=title,
    )
    for trigger, source, dest in sorted(definition.graph.edges, key=lambda e: (e[1], e[2], e[0])):
        machine.add_transition(trigger, source, dest, label=edge_label(definition, trigger))
    graph = machine.graph_cls(machine)
    labels = {name: s.label for name, s in definition.states.items()}
    graph._convert_state_attributes = lambda state: labels.get(state["name"], state["name"])
    if current_state is not None:
        graph.set_node_style(current_state, "active")
    lines = graph.get_graph(title=title).source.splitlines()
    if lines[0] == "---" and lines[2] == "---":  # mermaid's front matter is YAML: title: "…"
        lines[1] = "title: " + json.dumps(title, ensure_ascii=False)
    # transitions writes "Class x style"; mermaid's keyword is lower case
    lines = [re.sub(r"^(\s*)Class ", r"\1class ", line.rstrip()) for line in lines]
    for name, s in definition.states.items():
        if s.terminal:
            lines.append(f"  {name} --> [*]")
        quiet = [t for t in s.timers if not definition.timers[t].moves_to]
        if name == definition.initial_state:  # set when their date fact is known, anywhere
            quiet += [t.id for t in definition.timers.values() if t.set_on_known]
        if quiet:
            notes = ", ".join(f"{t} ({timer_timing(definition, t)})" for t in quiet)
            lines.append(f"  note right of {name} : {notes}")
    return "\n".join(lines) + "\n"
