"""What one pathway's measures pass adds up, and the pass itself (``carepath.measures``).

``Tally`` is bounded by months, states and rules, never by episodes: one process adds every
course to it, or several each add a share (``carepath.measures_parallel``) and one absorbs the
others' ``totals()``. ``courses_on`` is the streaming pass over one pathway's histories.
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pathway.definition import Definition
from pathway.measure_count import counter
from pathway.measure_eval import DAY, Course, course_of, month_of, review_states
from pathway.measures import MeasureDef, rules_named, timers_named
from storage.measures import WHOLE, IdRange, histories

if TYPE_CHECKING:
    from storage.unit_of_work import ReadyConnections

Progress = Callable[[int, int], None]  # (done, total): carepath.progress draws it


def courses_on(
    connections: ReadyConnections, definition: Definition, as_of: datetime, ids: IdRange = WHOLE
) -> Iterator[Course]:
    """The pass: one history at a time. The objects it makes hold no reference cycles (freed
    as soon as they are dropped), so the cyclic collector is paused meanwhile: on a large
    process heap its full sweeps, triggered by the allocations alone, cost more than the pass."""
    rules = rules_named(definition.measures)
    paused = gc.isenabled()
    gc.disable()
    try:
        timers = timers_named(definition.measures)
        for history in histories(connections, definition.id, rules, timers, ids):
            course = course_of(history, definition, as_of)
            if course is not None:
                yield course
    finally:
        if paused:
            gc.enable()


def _summary_month(definition: Definition, course: Course) -> str | None:
    if definition.measures:
        return month_of(course, definition.measures[0])
    return course.opened_at.strftime("%Y-%m")


class Tally:
    """What one pathway's pass adds up: bounded by months, states and rules, not episodes."""

    def __init__(self, definition: Definition, lo: str | None, hi: str | None) -> None:
        self.definition, self.lo, self.hi = definition, lo, hi
        self.review = review_states(definition)
        self.count = counter(definition)  # every measure compiled once (measure_count.py)
        self.months: set[str] = set()
        # measure id → month → [denominator, numerator]: plain lists, bumped in place
        self.by_month: dict[str, dict[str, list[int]]] = {m.id: {} for m in definition.measures}
        self._within: dict[str | None, bool] = {}  # month → in range: a few dozen months
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.stays: dict[str, Counter[int]] = {}  # state → minutes → stays
        self.stay_episodes: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()

    def totals(self) -> tuple[Any, ...]:
        """What this report added up (picklable): another process's share, to ``absorb``."""
        return (self.months, self.by_month, self.outcomes, self.stays, self.stay_episodes,
                self.refusals)  # fmt: skip

    def absorb(self, totals: tuple[Any, ...]) -> None:
        """Add another report's ``totals`` (the same pathway, range and as-of) to this one."""
        months, by_month, outcomes, stays, stay_episodes, refusals = totals
        self.months |= months
        for measure, cells in by_month.items():
            mine = self.by_month[measure]
            for month, (den, num) in cells.items():
                cell = mine.setdefault(month, [0, 0])
                cell[0] += den
                cell[1] += num
        self.outcomes.update(outcomes)
        for state, counts in stays.items():
            self.stays.setdefault(state, Counter()).update(counts)
        self.stay_episodes.update(stay_episodes)
        self.refusals.update(refusals)

    def within(self, month: str | None) -> bool:
        inside = self._within.get(month)
        if inside is None:
            inside = self._within[month] = month is not None and (
                (self.lo is None or month >= self.lo) and (self.hi is None or month <= self.hi)
            )
        return inside

    def add(self, course: Course) -> None:
        d, within, by_month, months = self.definition, self.within, self.by_month, self.months
        for m, (month, counted, met) in zip(d.measures, self.count(course), strict=True):
            if counted and within(month):
                months.add(month or "")
                cell = by_month[m.id].get(month or "")
                if cell is None:
                    cell = by_month[m.id][month or ""] = [0, 0]
                cell[0] += 1
                cell[1] += met
        month = _summary_month(d, course)
        if not within(month) or course.history.closed_reason == "entered_in_error":
            return
        self.months.add(month or "")
        if course.ended_at is not None:
            last = [t for t in course.transitions if d.states[t[1]].terminal][-1]
            self.outcomes[(last[1], "|".join(last[2]))] += 1
        entered: dict[str, datetime] = {d.initial_state: course.opened_at}
        seen: set[str] = set()
        stays, stay_episodes = self.stays, self.stay_episodes
        for src, dest, _rules, at in course.transitions:
            start = entered.pop(src, None)
            if start is not None:
                minutes = int((at - start).total_seconds() // 60)
                by_minutes = stays.get(src)
                if by_minutes is None:
                    by_minutes = stays[src] = Counter()
                by_minutes[minutes] += 1
                if src not in seen:
                    seen.add(src)
                    stay_episodes[src] += 1
            entered[dest] = at
        for e in course.entries:
            if e.refused:
                for rule in e.refused:
                    self.refusals[rule] += 1

    def as_json(self, as_of: datetime) -> dict[str, Any]:
        d = self.definition
        months = sorted(self.months)
        lo = self.lo or (months[0] if months else None)
        hi = self.hi or (months[-1] if months else None)
        return {
            "pathway": d.id,
            "version": d.version,
            "from": lo,
            "to": hi,
            "as_of": as_of.isoformat().replace("+00:00", "Z"),
            "measures": [self._measure(m) for m in d.measures],
            "outcomes": [
                {"state": s, "rule": r, "episodes": n}
                for (s, r), n in sorted(self.outcomes.items(), key=lambda x: (-x[1], x[0]))
            ],
            "time_in_state": [
                {
                    "state": s,
                    "episodes": self.stay_episodes[s],
                    "stays": sum(c.values()),
                    "median_days": _percentile(c, 50),
                    "p90_days": _percentile(c, 90),
                }
                for s, c in ((s, self.stays[s]) for s in d.states if s in self.stays)
            ],
            "refusals": [{"rule": r, "count": n} for r, n in sorted(self.refusals.items())],
        }

    def _measure(self, m: MeasureDef) -> dict[str, Any]:
        counts = self.by_month[m.id]
        months = sorted(counts)
        num = sum(cell[1] for cell in counts.values())
        den = sum(cell[0] for cell in counts.values())
        return {
            "id": m.id,
            "title": m.title,
            "description": m.description,
            "refs": list(m.refs),
            "numerator": num,
            "denominator": den,
            "ratio": None if den == 0 else num / den,
            "band": m.band(num, den),
            "bands": {"red_below": m.red_below, "amber_up_to": m.amber_up_to},
            "by_month": [
                {
                    "month": month,
                    "numerator": counts[month][1],
                    "denominator": counts[month][0],
                }
                for month in months
            ],
        }


def _percentile(counts: Counter[int], p: int) -> float | None:
    """Nearest-rank percentile of stays (minutes, with multiplicity), in days to 0.01."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for minutes in sorted(counts):
        seen += counts[minutes]
        if seen >= rank:
            return round(minutes / (DAY.total_seconds() / 60), 2)
    return None  # pragma: no cover - rank <= total
