"""What the audit dashboard shows: its query, read and checked, and the panels built from the
measures' reports (``carepath.measures``, the JSON contract of ``carepath measures --json``).

The page's query parameters are the command's options: ``pathway``, ``from`` and ``to``
(``YYYY-MM``, the anchor's month) and ``as_of`` (``YYYY-MM-DD``: the end of that UTC day; now
without it). A bad one is named with the value and what was expected, and nothing is computed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode

from carepath.web.dashboard_charts import bar_chart, run_chart
from pathway.usecases import DefinitionRegistry

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
BAND_WORDS = {"green": "Green", "amber": "Amber", "red": "Red", None: "No data"}


class BadQuery(ValueError):
    """A query parameter the dashboard cannot use: which, the value given, what was expected."""

    def __init__(self, field: str, value: str, expected: str) -> None:
        super().__init__(f"{field}: got {value!r}, expected {expected}")
        self.field, self.value, self.expected = field, value, expected


@dataclass(frozen=True, slots=True)
class DashboardQuery:
    pathway: str | None
    month_from: str | None
    month_to: str | None
    as_of: datetime
    as_of_given: str  # as typed (empty: now), to carry into the links

    def params(self) -> dict[str, str]:
        """The query as URL parameters, for the links that keep it."""
        out = {
            "pathway": self.pathway or "",
            "from": self.month_from or "",
            "to": self.month_to or "",
            "as_of": self.as_of_given,
        }
        return {k: v for k, v in out.items() if v}

    def link(self, pathway: str | None, measure: str | None) -> str:
        """This query as a URL query string, for one pathway and measure when given."""
        params = self.params() | {
            "pathway": pathway or self.pathway or "",
            "measure": measure or "",
        }
        return "?" + urlencode({k: v for k, v in params.items() if v})


def _month(field: str, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not _MONTH.fullmatch(value):
        raise BadQuery(field, value, "a month as YYYY-MM, e.g. 2026-01")
    return value


def end_of_day(day: date) -> datetime:
    """``--as-of DATE``: the end of that UTC day."""
    return datetime.combine(day, time.max, tzinfo=UTC)


def read_query(
    definitions: DefinitionRegistry,
    now: datetime,
    pathway: str = "",
    month_from: str = "",
    month_to: str = "",
    as_of: str = "",
) -> DashboardQuery:
    ids = [d.id for d in definitions.currents()]
    chosen = pathway.strip() or None
    if chosen is not None and chosen not in ids:
        raise BadQuery("pathway", chosen, "one of " + ", ".join(ids))
    start, end = _month("from", month_from), _month("to", month_to)
    if start and end and start > end:
        raise BadQuery("to", end, f"a month not before from ({start})")
    moment = now
    text = as_of.strip()
    if text:
        try:
            moment = end_of_day(date.fromisoformat(text))
        except ValueError:
            raise BadQuery("as_of", text, "a date as YYYY-MM-DD, e.g. 2026-03-01") from None
        if len(text) != 10:
            raise BadQuery("as_of", text, "a date as YYYY-MM-DD, e.g. 2026-03-01")
    return DashboardQuery(chosen, start, end, moment, text)


def percent(numerator: int, denominator: int) -> str:
    return "—" if denominator == 0 else f"{100 * numerator / denominator:.0f} %"


@dataclass(frozen=True, slots=True)
class MonthRow:
    month: str
    numerator: int
    denominator: int

    @property
    def percent(self) -> str:
        return percent(self.numerator, self.denominator)


@dataclass(frozen=True, slots=True)
class MeasurePanel:
    id: str
    title: str
    description: str
    numerator: int
    denominator: int
    band: str | None
    months: tuple[MonthRow, ...]
    chart: str  # a data: URL of the run chart
    thresholds: str = ""  # the declared bands in words, when the definition declares them

    @property
    def band_words(self) -> str:
        return BAND_WORDS.get(self.band, str(self.band).title())

    @property
    def band_class(self) -> str:
        return self.band if self.band in ("red", "amber", "green") else "none"

    @property
    def percent(self) -> str:
        return percent(self.numerator, self.denominator)


@dataclass(frozen=True, slots=True)
class PathwayPanel:
    id: str
    title: str
    version: str
    month_from: str | None
    month_to: str | None
    as_of: str
    measures: tuple[MeasurePanel, ...]
    outcomes: tuple[dict[str, Any], ...]
    outcome_chart: str | None
    stays: tuple[dict[str, Any], ...]
    stay_chart: str | None
    refusals: tuple[dict[str, Any], ...]
    labels: dict[str, str]  # state name → label


def _current(definitions: DefinitionRegistry, pathway: str) -> Any:
    return next((d for d in definitions.currents() if d.id == pathway), None)


def thresholds(declared: Any) -> str:
    """A measure's bands in words, from its declaration (``red_below``, ``amber_up_to``)."""
    red, amber = getattr(declared, "red_below", None), getattr(declared, "amber_up_to", None)
    if red is None:
        return ""
    if amber is None:
        return f"red below {100 * red:g} %, green from {100 * red:g} %"
    return f"red below {100 * red:g} %, amber {100 * red:g}–{100 * amber:g} %, green above"


def month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (YYYY-MM), both included."""
    year, month = (int(p) for p in first.split("-"))
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def measure_panel(
    measure: dict[str, Any],
    declared: Any = None,
    span: tuple[str | None, str | None] = (None, None),
) -> MeasurePanel:
    """One measure's card. The months run without a gap from the report's first to its last
    (a month without episodes is shown as such), so that the run chart's axis is time."""
    given = {
        m["month"]: (int(m["numerator"]), int(m["denominator"]))
        for m in measure.get("by_month", ())
    }
    first = span[0] or min(given, default=None)
    last = span[1] or max(given, default=None)
    names = month_range(first, last) if first and last else sorted(given)
    names = sorted(set(names) | set(given))
    months = tuple(MonthRow(m, *given.get(m, (0, 0))) for m in names)
    chart = run_chart(
        tuple(m.month for m in months),
        tuple(None if m.denominator == 0 else m.numerator / m.denominator for m in months),
    )
    return MeasurePanel(
        id=measure["id"],
        title=measure.get("title") or measure["id"],
        description=str(getattr(declared, "description", "") or ""),
        numerator=int(measure["numerator"]),
        denominator=int(measure["denominator"]),
        band=measure.get("band"),
        months=months,
        chart=chart,
        thresholds=thresholds(declared),
    )


def pathway_panel(report: dict[str, Any], definitions: DefinitionRegistry) -> PathwayPanel:
    pathway = report["pathway"]
    definition = _current(definitions, pathway)
    declared = {m.id: m for m in getattr(definition, "measures", ())}
    labels = {s.name: s.label for s in definition.states.values()} if definition else {}
    outcomes = tuple(report.get("outcomes", ()))
    stays = tuple(report.get("time_in_state", ()))
    outcome_chart = (
        bar_chart(
            tuple(f"{o['state']} · {o['rule']}" for o in outcomes),
            (("episodes", tuple(float(o["episodes"]) for o in outcomes)),),
            "episodes",
        )
        if outcomes
        else None
    )
    stay_chart = (
        bar_chart(
            tuple(s["state"] for s in stays),
            (
                ("median", tuple(float(s["median_days"] or 0) for s in stays)),
                ("90th percentile", tuple(float(s["p90_days"] or 0) for s in stays)),
            ),
            "days in state (completed stays)",
        )
        if stays
        else None
    )
    return PathwayPanel(
        id=pathway,
        title=definition.title if definition else pathway,
        version=report["version"],
        month_from=report.get("from"),
        month_to=report.get("to"),
        as_of=report["as_of"],
        measures=tuple(
            measure_panel(m, declared.get(m["id"]), (report.get("from"), report.get("to")))
            for m in report["measures"]
        ),
        outcomes=outcomes,
        outcome_chart=outcome_chart,
        stays=stays,
        stay_chart=stay_chart,
        refusals=tuple(report.get("refusals", ())),
        labels=labels,
    )
