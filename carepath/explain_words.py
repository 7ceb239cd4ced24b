"""``pathway.explain`` in a coordinator's words, for the CLI's text and the episode page.

Each candidate becomes one line: "<rule> → <destination label>: holds now" or "…: needs <leaf>,
<leaf> …", each leaf said with the fact's label, what it needs and what was observed
("Neurological exam done (unknown)", "pain score ≥ 7 (is 5)"). The immediate-transfer
candidates are said apart (``transfer``): they are the exception, not what is awaited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pathway.definition import Definition
from pathway.explain import Candidate, Explanation, Leaf, TimerWait

OPS = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥", "in": "one of"}


@dataclass(frozen=True, slots=True)
class Line:
    """One candidate or timer, said: a heading and the needs (empty when it holds)."""

    rule: str
    title: str
    heading: str
    holds: bool
    needs: tuple[str, ...]
    transfer: bool = False
    condition: str = ""  # a timer's condition in words ("" when it has none)


def fact_label(definition: Definition, name: str) -> str:
    if name == "state":
        return "state"
    spec = definition.vocabulary.facts.get(name)
    if spec is not None and spec.label:
        return spec.label
    return name.replace("_", " ")


def _show(definition: Definition, name: str, value: Any) -> str:
    if value is True or value is False:
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_state_or(definition, name, v) for v in value)
    spec = definition.vocabulary.facts.get(name)
    unit = (
        f" {spec.unit}"
        if spec is not None and spec.unit and spec.kind in ("integer", "number")
        else ""
    )
    return f"{_state_or(definition, name, value)}{unit}"


def _state_or(definition: Definition, name: str, value: Any) -> str:
    if name == "state" and value in definition.states:
        return definition.states[value].label
    return str(value)


def leaf_words(definition: Definition, leaf: Leaf) -> str:
    """One failing leaf: what it needs, then what is known of it."""
    label = fact_label(definition, leaf.fact)
    negated = leaf.op.startswith("not ")
    op = leaf.op.removeprefix("not ")
    if op == "known":
        need = f"{label} {'not ' if negated else ''}recorded"
    elif op == "is":
        if negated:  # anything but the value, unknown included
            need = (
                f"not {label}"
                if leaf.value is True
                else f"{label} not {_show(definition, leaf.fact, leaf.value)}"
            )
        else:
            need = (
                label
                if leaf.value is True
                else f"{label}: {_show(definition, leaf.fact, leaf.value)}"
            )
    elif leaf.count:
        need = f"{'not ' if negated else ''}number of {label} {OPS.get(op, op)} {leaf.value}"
    else:
        value = leaf.value
        if isinstance(value, dict):  # compared with another value
            other = fact_label(definition, value["var"])
            shown = (
                _show(definition, value["var"], value["value"])
                if value["value"] is not None
                else "unknown"
            )
            target = f"{other} ({shown})"
        else:
            target = _show(definition, leaf.fact, value)
        need = f"{'not ' if negated else ''}{label} {OPS.get(op, op)} {target}"
    if leaf.in_event and leaf.observed is None:
        seen = "to be recorded in the observation itself"
    elif leaf.observed is None:
        seen = "unknown"
    elif leaf.count:
        seen = f"is {leaf.observed}"
    else:
        seen = "is " + _show(definition, leaf.fact, leaf.observed)
    return f"{need} ({seen})"


def needs_words(definition: Definition, leaves: tuple[Leaf, ...]) -> tuple[str, ...]:
    """Each failing leaf said; alternatives (leaves of one ``any``) said together, "either … or
    …", since any one of them would do."""
    out: list[str] = []
    i = 0
    while i < len(leaves):
        group = leaves[i].group
        j = i + 1
        while group is not None and j < len(leaves) and leaves[j].group == group:
            j += 1
        said = [leaf_words(definition, leaf) for leaf in leaves[i:j]]
        out.append(said[0] if len(said) == 1 else "either " + ", or ".join(said))
        i = j
    return tuple(out)


def candidate_line(definition: Definition, c: Candidate) -> Line:
    title = definition.rules[c.rule].title
    dest = definition.states[c.to].label if c.to else "stays here"
    heading = f"{c.rule} → {dest}"
    needs = needs_words(definition, c.failing)
    return Line(c.rule, title, heading, c.holds, needs, c.transfer)


def timer_line(definition: Definition, t: TimerWait) -> Line:
    title = definition.rules[t.rule].title
    moves = f" → {definition.states[t.moves_to].label}" if t.moves_to else ""
    heading = f"{t.rule}{moves} due {t.due_at:%Y-%m-%d %H:%M} UTC"
    if t.fires_if is None:
        return Line(t.rule, title, heading, True, ())
    needs = needs_words(definition, t.fires_if.failing)
    return Line(t.rule, title, heading, t.fires_if.holds, needs, condition=t.fires_if.text)


def lines(definition: Definition, e: Explanation) -> tuple[list[Line], list[Line]]:
    """(candidates, timers) said."""
    return (
        [candidate_line(definition, c) for c in e.candidates],
        [timer_line(definition, t) for t in e.timers],
    )


def text(definition: Definition, e: Explanation) -> list[str]:
    """The CLI's text: the state, what the next observation would do, each candidate, each
    timer."""
    state = definition.states[e.state]
    out = [f"episode {e.episode}  {e.state} ({state.label}, {e.pathway})"]
    if state.terminal:
        out.append("ended: nothing more is awaited")
        return out
    nxt = e.next_move
    if nxt is None:
        out.append("next observation: moves nothing as things stand")
    else:
        where = definition.states[nxt.to].label if nxt.to else "stays here"
        out.append(f"next observation: {nxt.rule} → {where}")
    cands, timers = lines(definition, e)
    out.append("transitions (in the order they are checked):")
    for line in cands:
        mark = "✓" if line.holds else "✗"
        tail = "holds now" if line.holds else "needs " + "; ".join(line.needs)
        kind = " [immediate transfer]" if line.transfer else ""
        out.append(f"  {mark} {line.heading}{kind}: {tail}")
    out.append("timers:" if timers else "timers: none pending")
    for line in timers:
        if not line.holds:
            tail = "fires only if " + "; ".join(line.needs)
        else:
            tail = f"fires ({line.condition} holds now)" if line.condition else "fires"
        out.append(f"  {line.heading}: {tail}")
    return out
