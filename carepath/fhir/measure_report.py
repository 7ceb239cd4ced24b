"""The measures as FHIR: a Bundle of R4B MeasureReports, one per measure of each pathway.

Why: national audits and quality dashboards take measure results as FHIR ``MeasureReport``
resources; carepath computes the numbers (``carepath.measures``) and this module only says them
in FHIR. Each report is a *summary* (counts, no patient list): ``initial-population``,
``denominator`` and ``numerator`` counts, ``measureScore`` the ratio as a decimal (absent when
the denominator is zero: no score, rather than a made-up 0), the period from the first day of
the report's first month to the last day of its last, ``date`` the ``as_of`` time the numbers
were computed at, and one stratum per month (the run chart's numbers). ``measure`` is the
canonical URL of the ``Measure`` the definition exports (``carepath.fhir.plan_definition``),
with its version.

R4B (4.3.0), validated by ``fhir.resources.R4B`` as the PlanDefinition export is.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
MONTH_STRATIFIER = {"text": "month (of the anchor: episode opening or fracture date)"}


def measure_url(pathway: str, measure_id: str) -> str:
    """The canonical URL of one pathway's measure (``Measure.url``)."""
    return f"urn:carepath:measure:{pathway}:{measure_id}"


def population(code: str, count: int) -> dict[str, Any]:
    return {"code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]}, "count": count}


def _month_start(month: str) -> date:
    year, mon = (int(p) for p in month.split("-"))
    return date(year, mon, 1)


def _month_end(month: str) -> date:
    year, mon = (int(p) for p in month.split("-"))
    return date(year, mon, calendar.monthrange(year, mon)[1])


def _period(report: dict[str, Any], as_of: str) -> dict[str, str]:
    """First day of ``from`` to last day of ``to``; the ``as_of`` day when the report has no
    months (no episodes yet)."""
    start, end = report.get("from"), report.get("to")
    if not start or not end:
        day = datetime.fromisoformat(as_of).date().isoformat()
        return {"start": day, "end": day}
    return {"start": _month_start(start).isoformat(), "end": _month_end(end).isoformat()}


def _populations(numerator: int, denominator: int, initial: int | None) -> list[dict[str, Any]]:
    return [
        population("initial-population", denominator if initial is None else initial),
        population("denominator", denominator),
        population("numerator", numerator),
    ]


def _score(numerator: int, denominator: int) -> dict[str, Any] | None:
    return None if denominator == 0 else {"value": round(numerator / denominator, 6)}


def measure_report(report: dict[str, Any], measure: dict[str, Any]) -> dict[str, Any]:
    """One measure of one pathway's report (``carepath.measures`` JSON contract) as a
    validated R4B MeasureReport, as JSON-ready data."""
    from fhir.resources.R4B.measurereport import MeasureReport

    pathway, version, as_of = report["pathway"], report["version"], report["as_of"]
    num, den = int(measure["numerator"]), int(measure["denominator"])
    strata = [
        {
            "value": {"text": m["month"]},
            "population": _populations(int(m["numerator"]), int(m["denominator"]), None),
            "measureScore": _score(int(m["numerator"]), int(m["denominator"])),
        }
        for m in measure.get("by_month", ())
    ]
    group = {
        "code": {"text": measure.get("title") or measure["id"]},
        "population": _populations(num, den, measure.get("initial_population")),
        "measureScore": _score(num, den),
        "stratifier": [{"code": [MONTH_STRATIFIER], "stratum": strata}] if strata else None,
    }
    resource = {
        "resourceType": "MeasureReport",
        "id": f"{pathway}-{measure['id']}"[:64],
        "status": "complete",
        "type": "summary",
        "measure": f"{measure_url(pathway, measure['id'])}|{version}",
        "date": as_of,
        "period": _period(report, as_of),
        "improvementNotation": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                    "code": "increase",
                }
            ]
        },
        "group": [_drop_none(group)],
    }
    if measure.get("band"):
        resource["extension"] = [
            {"url": "urn:carepath:measure-band", "valueCode": str(measure["band"])}
        ]
    validated = MeasureReport.model_validate(_drop_none(resource))
    return validated.model_dump(mode="json", exclude_none=True)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def measure_report_bundle(
    reports: Iterable[dict[str, Any]], definitions: Any = None
) -> dict[str, Any]:
    """A validated R4B Bundle (type collection) of one MeasureReport per measure of each
    pathway report. ``definitions`` is accepted for the caller's convenience and not needed:
    the reports carry pathway, version and titles."""
    from fhir.resources.R4B.bundle import Bundle

    reports = list(reports)
    entries = [
        {
            "fullUrl": f"urn:carepath:measure-report:{r['pathway']}:{m['id']}",
            "resource": measure_report(r, m),
        }
        for r in reports
        for m in r["measures"]
    ]
    stamps = sorted(r["as_of"] for r in reports)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": stamps[-1] if stamps else None,
        "entry": entries or None,
    }
    validated = Bundle.model_validate(_drop_none(bundle))
    return validated.model_dump(mode="json", exclude_none=True)
