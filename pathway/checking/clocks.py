"""The clocks of a definition: the day counts that move by themselves while an episode waits.

Why apart: the explorer lets time run only to the next day where something can change, and keys
cases on each clock's region; which clocks exist and where their regions begin is read off the
definition (its declared day counts, its date facts, the thresholds criteria test them
against and the timers' anchors), so no clock is known by name.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pathway.criteria import Compare
from pathway.definition import Definition
from pathway.model import Episode
from pathway.work import clock_start

_DAY = 86400


def sides(op: str, t: Any) -> tuple[Any, ...]:
    """Values just either side of a threshold: ``> 50`` → (50, 51), ``>= 90`` → (89, 90)."""
    if op in (">", "<="):
        return (t, t + 1)
    return (t - 1, t) if op in (">=", "<") else (t - 1, t, t + 1)


@dataclass(frozen=True, slots=True)
class Clock:
    """A day count that moves by itself: ``since`` a clock of the episode, or a ``date_fact``;
    ``starts`` are the values where its regions begin."""

    name: str
    since: str | None
    date_fact: str | None
    starts: tuple[int, ...]

    def value(self, ep: Episode, at: datetime) -> int | None:
        """Whole days on this clock at ``at`` (as ``pathway.work.derived_values`` counts them)."""
        if self.date_fact is not None:
            fv = ep.facts.get(self.date_fact)
            return None if fv is None else (at.date() - date.fromisoformat(fv.value)).days
        start = clock_start(ep, self.since)  # type: ignore[arg-type]
        return None if start is None else int((at - start).total_seconds() // _DAY)

    def region(self, ep: Episode, at: datetime) -> int | None:
        """How many of the regions' starts the clock has reached (``starts`` is sorted)."""
        v = self.value(ep, at)
        return None if v is None else bisect_right(self.starts, v)


def thresholds(tests: Mapping[str, Sequence[Any]], names: list[str]) -> set[int]:
    """Where regions of these day counts begin: ``days >= 90`` and ``days < 90`` → 90."""
    cmp = [
        lf for n in names for lf in tests.get(n, ())
        if isinstance(lf, Compare) and not lf.var and not lf.count
    ]  # fmt: skip
    return {s for lf in cmp for s in sides(lf.op, lf.value)[1:]}


def clocks_of(d: Definition, tests: Mapping[str, Sequence[Any]]) -> tuple[Clock, ...]:
    """A clock per declared day count, and one per date fact that a derived value counts from
    or a timer is anchored on (its regions begin at the thresholds ``tests`` hold and at the
    anchors)."""
    out = []
    for name, dv in d.derived.items():
        if dv.days_since is not None:
            out.append(Clock(name, dv.days_since, None, tuple(sorted(thresholds(tests, [name])))))
    for f in sorted(d.vocabulary.dates()):
        names = [n for n, dv in d.derived.items() if dv.date_fact == f]
        anchors = {p.days for t in d.timers.values() for p in t.due if p.date_fact == f}
        if names or anchors:
            out.append(Clock(f, None, f, tuple(sorted(thresholds(tests, names) | anchors))))
    return tuple(out)
