"""Counting every measure of a definition on one episode, compiled once: pure.

``measure_eval.evaluate`` is the straightforward reading of a declaration, with the reasons
the episode lists need; the report only counts, once per measure per episode, and on 100,000
episodes that reading's interpretation of each ``Condition`` (its kind dispatched, its fields
looked up, the same state-entry denominator tested again for every measure that
shares it) is most of the time. ``counter`` turns a definition's measures into closures once:
each distinct condition is compiled once and, when tested outside a window, held once per
episode for all the measures that name it. The verdicts are ``evaluate``'s, without the
reason (a test checks both on generated cohorts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pathway.definition import Definition
from pathway.measure_eval import Course, _bounds, _left_out, _month, review_states
from pathway.measures import Condition, MeasureDef

Held = Callable[[Course, Any, Any], datetime | None]  # (course, lo, hi) → earliest time
Count = tuple[str | None, bool, bool]  # (month, in the denominator, in the numerator)
_UNSET: Any = object()


def compile_condition(c: Condition, review: frozenset[str]) -> Held:
    """``measure_eval.held`` for ``c`` alone, its fields bound once."""
    k = c.kind
    if k == "any":
        parts = [compile_condition(p, review) for p in c.parts]

        def held_any(course: Course, lo: Any, hi: Any) -> datetime | None:
            times = [t for p in parts if (t := p(course, lo, hi)) is not None]
            return min(times) if times else None

        return held_any
    if k == "recorded" or k == "review":
        fact, value, has_value, in_states = c.fact, c.value, c.has_value, c.in_states
        is_review = k == "review"

        def held_observed(course: Course, lo: Any, hi: Any) -> datetime | None:
            for at, state, facts in course.observations:
                if (lo is not None and at < lo) or (hi is not None and at > hi):
                    continue
                if in_states and state not in in_states:
                    continue
                if is_review:
                    if state in review:
                        return at
                elif fact in facts and (not has_value or facts[fact] == value):
                    return at
            return None

        return held_observed
    if k == "entered" or k == "left":
        states, source, left = c.states, c.state, k == "left"

        def held_moved(course: Course, lo: Any, hi: Any) -> datetime | None:
            for src, dest, at in course.entered:
                if (
                    dest in states
                    and (not left or src == source)
                    and (lo is None or at >= lo)
                    and (hi is None or at <= hi)
                ):
                    return at
            return None

        return held_moved
    rule, in_states, fired = c.rule, c.in_states, k == "rule_fired"

    def held_entry(course: Course, lo: Any, hi: Any) -> datetime | None:
        for e in course.entries:
            at = e.at
            if (lo is not None and at < lo) or (hi is not None and at > hi):
                continue
            if fired:
                if rule in e.rules:
                    return at
            elif e.timer == rule and (not in_states or e.state_from in in_states):
                return at
        return None

    return held_entry


def counter(definition: Definition) -> Callable[[Course], list[Count]]:
    """A function giving, for one course, (month, counted, met) of each declared measure in
    order: what ``evaluate(m, course, definition, reasons=False)`` says of each."""
    review = review_states(definition)
    index: dict[Condition, int] = {}  # each distinct condition once
    helds: list[Held] = []

    def slot(c: Condition) -> int:
        if c not in index:
            index[c] = len(helds)
            helds.append(compile_condition(c, review))
        return index[c]

    windows: dict[int, int] = {}  # id of each distinct window (parsing shares equal ones)
    anchors: dict[str, int] = {}  # each month anchor (a clock or a date fact)
    plans = []
    for m in definition.measures:
        w = m.window
        wi = -1 if w is None else windows.setdefault(id(w), len(windows))
        ki = anchors.setdefault(m.month_clock or m.month_fact or "", len(anchors))
        den = [(c.in_window, slot(c)) for c in m.denominator]
        plans.append((m, w, wi, ki, den, [slot(c) for c in m.numerator]))
    n, nw, nk = len(helds), len(windows), len(anchors)

    def count(course: Course) -> list[Count]:
        unbounded = [_UNSET] * n  # each condition held outside any window, once per episode
        bounds: list[Any] = [None] * nw
        months: list[Any] = [_UNSET] * nk
        out: list[Count] = []
        for m, w, wi, ki, den, num in plans:
            month = months[ki]
            if month is _UNSET:
                month = months[ki] = _month(course, m)
            if w is None:
                opens = closes = None
                known = True
            else:
                b = bounds[wi]
                if b is None:
                    b = bounds[wi] = _bounds(w, course)
                opens, closes, known = b
            verdict: Count | None = None
            for in_window, i in den:
                if in_window:
                    if not known or helds[i](course, opens, closes) is None:
                        verdict = (month, False, False)
                        break
                else:
                    t = unbounded[i]
                    if t is _UNSET:
                        t = unbounded[i] = helds[i](course, None, None)
                    if t is None:
                        verdict = (month, False, False)
                        break
            if verdict is None:
                verdict = _tail(m, w, month, opens, closes, known, num, course, helds, unbounded)
            out.append(verdict)
        return out

    return count


def _tail(
    m: MeasureDef,
    w: Any,
    month: str | None,
    opens: Any,
    closes: Any,
    known: bool,
    num: list[int],
    course: Course,
    helds: list[Held],
    unbounded: list[Any],
) -> Count:
    """After the denominator held: the exclusions, then the numerator (``evaluate``'s order)."""
    if course.history.closed_reason in m.exclude_closed:
        return month, False, False
    if w is None:
        for i in num:
            t = unbounded[i]
            if t is _UNSET:
                t = unbounded[i] = helds[i](course, None, None)
            if t is None:
                return month, True, False
        return month, True, True
    if known and all(helds[i](course, opens, closes) is not None for i in num):
        return month, True, True
    if not num and not known:
        return month, True, True  # evaluate: all() of no numerator conditions holds
    if not known or closes is None or _left_out(m, course, closes):
        return month, False, False
    return month, True, False
