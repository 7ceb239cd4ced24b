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

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from carepath.measure_tally import Progress, Tally, courses_on
from pathway.definition import Definition
from pathway.errors import InvalidMeasureQuery
from pathway.measure_eval import Course, evaluate
from pathway.measures import MeasureDef
from storage.measures import WHOLE, IdRange

if TYPE_CHECKING:
    from carepath.bootstrap import Wiring

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

        report = Tally(definition, lo, hi)
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
    report = Tally(definition, lo, hi)
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
    report = Tally(definition, lo, hi)
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
