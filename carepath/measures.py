"""Each pathway's quality measures, read back from its episodes' histories (issue 10).

``pathway_reports`` is the JSON contract that ``carepath measures --json``, ``GET
/api/measures`` and the dashboard share: per pathway its measures (numerator, denominator,
ratio, band, by month), outcomes by terminal state and rule, time in each state (completed
stays, median and 90th percentile, nearest rank, in days) and refusals by rule.
``measure_episodes`` lists the episodes behind one measure's numbers, each with its reason.

One streaming pass over the pathway's audit log (``storage.measures``), one episode in memory
at a time; the declarations are the definition's (``pathway.measures``), evaluated by
``pathway.measure_eval``. Months are each measure's anchor month ("YYYY-MM"); without a range,
every month that has episodes is reported. The definitions are each pathway's current one.
"""

from __future__ import annotations

import gc
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pathway.definition import Definition
from pathway.errors import InvalidMeasureQuery
from pathway.measure_count import counter
from pathway.measure_eval import DAY, Course, course_of, evaluate, month_of, review_states
from pathway.measures import MeasureDef, rules_named, timers_named
from storage.measures import WHOLE, IdRange, histories

if TYPE_CHECKING:
    from carepath.bootstrap import Wiring
    from storage.unit_of_work import ReadyConnections

Progress = Callable[[int, int], None]  # (done, total): carepath.progress draws it

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def parse_month(field: str, value: str | None) -> str | None:
    """A YYYY-MM month, or None; InvalidMeasureQuery naming the field otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or not _MONTH.fullmatch(value):
        raise InvalidMeasureQuery(field, value, "a month as YYYY-MM (e.g. 2026-03)")
    return value


def parse_as_of(value: str | None, now: datetime) -> datetime:
    """``--as-of DATE``: the end of that UTC day (its last microsecond); default ``now``."""
    if value is None:
        return now
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidMeasureQuery("as_of", value, "a date as YYYY-MM-DD") from None
    return datetime.combine(day, time(), UTC) + timedelta(days=1, microseconds=-1)


def _definitions(wiring: Wiring, pathway: str | None) -> list[Definition]:
    currents = wiring.definitions.currents()
    if pathway is None:
        return currents
    for d in currents:
        if d.id == pathway:
            return [d]
    raise InvalidMeasureQuery(
        "pathway", pathway, f"one of {', '.join(sorted(d.id for d in currents))}"
    )


def _range(month_from: str | None, month_to: str | None) -> tuple[str | None, str | None]:
    lo, hi = parse_month("from", month_from), parse_month("to", month_to)
    if lo and hi and lo > hi:
        raise InvalidMeasureQuery("from", lo, f"a month not after to ({hi})")
    return lo, hi


def _courses(
    wiring: Wiring, definition: Definition, as_of: datetime, ids: IdRange = WHOLE
) -> Iterator[Course]:
    yield from courses_on(wiring.uow_factory.connections, definition, as_of, ids)


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


class _Report:
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


def pathway_reports(
    wiring: Wiring,
    *,
    pathway: str | None,
    month_from: str | None,
    month_to: str | None,
    as_of: datetime,
    workers: int = 1,
    progress: Callable[[str], Progress] | None = None,
) -> list[dict[str, Any]]:
    """The JSON-contract report of each pathway (or of ``pathway`` alone). ``workers`` > 1
    splits a large pathway's episodes over that many processes (the command line's choice;
    the API keeps one); ``progress(pathway id)`` gives the ticker of that pathway's pass."""
    lo, hi = _range(month_from, month_to)
    from storage.appointments import outside_window

    connections = wiring.uow_factory.connections
    out = []
    for definition in _definitions(wiring, pathway):
        outside = outside_window(connections, definition.id)
        if workers <= 1 and progress is None:
            courses = _courses(wiring, definition, as_of)
            out.append(report_of(definition, courses, lo, hi, as_of, outside_window=outside))
            continue
        from carepath.measures_parallel import add_every_course

        report = _Report(definition, lo, hi)
        tick = progress(definition.id) if progress is not None else None
        add_every_course(report, wiring, as_of, workers, tick)
        out.append({**report.as_json(as_of), "appointments_outside_window": outside})
    return out


def report_of(
    definition: Definition,
    courses: Iterable[Course],
    lo: str | None,
    hi: str | None,
    as_of: datetime,
    *,
    outside_window: int = 0,
) -> dict[str, Any]:
    """One pathway's JSON-contract report from its episodes' courses (any source of them:
    the database's stream, or an in-memory store in tests). ``outside_window``: the bookings
    recorded outside their window (``storage.appointments``), over the whole log."""
    report = _Report(definition, lo, hi)
    for course in courses:
        report.add(course)
    return {**report.as_json(as_of), "appointments_outside_window": outside_window}


def measure_episodes(
    wiring: Wiring,
    *,
    pathway: str,
    measure_id: str,
    failing: bool,
    month_from: str | None,
    month_to: str | None,
    as_of: datetime,
) -> list[dict[str, Any]]:
    """The episodes in ``measure_id``'s denominator (only those missing its numerator with
    ``failing``), each with why it is in the numerator or not."""
    lo, hi = _range(month_from, month_to)
    (definition,) = _definitions(wiring, pathway)
    measure = next((m for m in definition.measures if m.id == measure_id), None)
    if measure is None:
        ids = ", ".join(m.id for m in definition.measures) or "none declared"
        raise InvalidMeasureQuery("measure", measure_id, f"a measure of {pathway}: {ids}")
    return episodes_of(definition, measure, _courses(wiring, definition, as_of), failing, lo, hi)


def episodes_of(
    definition: Definition,
    measure: MeasureDef,
    courses: Iterable[Course],
    failing: bool,
    lo: str | None,
    hi: str | None,
) -> list[dict[str, Any]]:
    """The denominator's episodes of ``measure`` among ``courses``, each with its reason."""
    report = _Report(definition, lo, hi)
    out = []
    for course in courses:
        v = evaluate(measure, course, definition, report.review)
        if v.counted and report.within(v.month) and not (failing and v.met):
            out.append(
                {
                    "episode": course.history.episode_id,
                    "patient_ref": course.history.patient_ref,
                    "month": v.month,
                    "in_numerator": v.met,
                    "reason": v.reason,
                }
            )
    return out
