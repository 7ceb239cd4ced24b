"""The measures computed from the database (one streaming pass, SQL cutting the payloads) equal
the measures evaluated from the full in-memory histories of the same cohort, on SQLite and on
PostgreSQL; and the JSON contract of ``carepath.measures``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from carepath.bootstrap import Wiring, current_definitions, wire
from carepath.measures import (
    episodes_of,
    measure_episodes,
    parse_as_of,
    pathway_reports,
    report_of,
)
from pathway.errors import InvalidMeasureQuery
from pathway.unit_of_work import InMemoryUnitOfWork
from storage.unit_of_work import uow_factory
from tests.support.measure_cohort import (
    ASSESSED_HIGH,
    FLS,
    L1L2,
    Patient,
    definition_of,
    fls,
    l1,
    memory_courses,
)

AS_OF = parse_as_of("2027-06-30", datetime.now(UTC))
FEB = datetime(2026, 2, 2, 9, tzinfo=UTC)
FEB_FRACTURE = datetime(2026, 2, 2, tzinfo=UTC)


def build(uow: Any) -> None:
    """A small cohort on both pathways over two months, with every kind of entry."""
    l1(uow, "l1-a").observe(
        {"pain_score": 2, "dxa_done": True, "osteoporosis_treatment_started": True}, 30
    )
    l1(uow, "l1-b").request("vertebroplasty", 3).observe({"pain_score": 6}, 44).observe(
        {"mri_done": True}, 60
    )
    l1(uow, "l1-c").close("deceased", 10)
    l1(uow, "l1-d").observe({"dxa_done": True}, 20).close("entered_in_error", 25)
    l1(uow, "l1-e", start=FEB).observe({"pain_score": 5, "dxa_done": True}, 40).advance(90)
    l1(uow, "l1-f", start=FEB).observe({"pain_score": 7}, 30).observe({"pain_score": 8}, 95)
    Patient(uow, "l1-g", L1L2).open({"age": 45}).observe(
        {"fracture_levels": ["L1", "L2"], "pain_score": 5}, 0
    )
    fls(uow, "f-a").observe({**ASSESSED_HIGH, "dxa_done": True}, 20).observe(
        {"aom_started": True}, 100
    )
    fls(uow, "f-b").observe({"dxa_done": True}, 97)
    fls(uow, "f-c").close("deceased", 40)
    fls(uow, "f-f").observe({"dxa_done": True}, 30, entered=45)  # documented late
    fls(uow, "f-d", start=FEB_FRACTURE, fracture_date="2026-02-02").observe(
        {**ASSESSED_HIGH, "risk_category": "low"}, 30
    )
    fls(uow, "f-e", start=FEB_FRACTURE, fracture_date="2026-02-02").observe(
        {**ASSESSED_HIGH, "falls_risk_high": True}, 10
    ).observe({"aom_started": False}, 90)


def memory_reports(lo: str | None = None, hi: str | None = None) -> list[dict[str, Any]]:
    uow = InMemoryUnitOfWork()
    build(uow)
    out = []
    for pathway in (FLS, L1L2):  # the registry's order: the shipped files by name
        d = definition_of(pathway)
        out.append(report_of(d, memory_courses(uow, d, AS_OF), lo, hi, AS_OF))
    return out


@pytest.fixture
def wiring(database_url: str) -> Iterator[Wiring]:
    factory = uow_factory(database_url)
    w = wire(current=current_definitions(), factory=factory)
    build(factory)
    yield w
    factory.dispose()


def test_the_database_gives_the_numbers_of_the_full_histories(wiring: Wiring) -> None:
    reports = pathway_reports(wiring, pathway=None, month_from=None, month_to=None, as_of=AS_OF)
    assert reports == memory_reports()
    by_id = {r["pathway"]: {m["id"]: m for m in r["measures"]} for r in reports}
    l1m, flsm = by_id[L1L2], by_id[FLS]
    assert (l1m["M-REVIEW-6W"]["numerator"], l1m["M-REVIEW-6W"]["denominator"]) == (3, 4)
    assert (flsm["FLS-KPI-DXA-12W"]["numerator"], flsm["FLS-KPI-DXA-12W"]["denominator"]) == (2, 5)
    assert flsm["FLS-KPI-DXA-12W"]["band"] == "red"
    assert flsm["FLS-KPI-RECOMMENDED"]["band"] == "green"  # 2 of 3: green from 50 %
    l1r = next(r for r in reports if r["pathway"] == L1L2)
    assert {"state": "immediate_transfer", "rule": "TX-MULTI", "episodes": 1} in l1r["outcomes"]
    assert l1r["refusals"] == [{"rule": "AUG-NO-VERTEBROPLASTY", "count": 1}]


def test_a_month_range_and_the_episode_lists_agree_on_both_backends(wiring: Wiring) -> None:
    feb = pathway_reports(
        wiring, pathway=L1L2, month_from="2026-02", month_to="2026-02", as_of=AS_OF
    )
    assert feb == [memory_reports("2026-02", "2026-02")[1]]
    assert {m["month"] for r in feb for x in r["measures"] for m in x["by_month"]} <= {"2026-02"}
    rows = measure_episodes(
        wiring, pathway=FLS, measure_id="FLS-KPI-DXA-12W", failing=True,
        month_from=None, month_to=None, as_of=AS_OF,
    )  # fmt: skip
    reasons = {r["patient_ref"]: r["reason"] for r in rows}
    assert reasons["MRN-f-b"] == "DXA recorded on fracture day 97"
    assert reasons["MRN-f-d"] == "no DXA recorded by fracture day 84"
    assert all(not r["in_numerator"] for r in rows) and "MRN-f-a" not in reasons
    every = measure_episodes(
        wiring, pathway=FLS, measure_id="FLS-KPI-DXA-12W", failing=False,
        month_from=None, month_to=None, as_of=AS_OF,
    )  # fmt: skip
    late = next(r for r in every if r["patient_ref"] == "MRN-f-f")
    assert (
        late["reason"]
        == "DXA recorded on fracture day 30 (entered 15 days after its clinical time)"
    )
    uow = InMemoryUnitOfWork()
    build(uow)
    d = definition_of(FLS)
    (m,) = [m for m in d.measures if m.id == "FLS-KPI-DXA-12W"]
    memory = episodes_of(d, m, memory_courses(uow, d, AS_OF), True, None, None)
    assert [(r["patient_ref"], r["reason"]) for r in rows] == [
        (r["patient_ref"], r["reason"]) for r in memory
    ]


def test_the_json_contract(wiring: Wiring) -> None:
    (report,) = pathway_reports(wiring, pathway=FLS, month_from=None, month_to=None, as_of=AS_OF)
    assert {"pathway", "version", "from", "to", "as_of", "measures", "outcomes",
            "time_in_state", "refusals"} <= set(report)  # fmt: skip
    assert (report["pathway"], report["from"], report["to"]) == (FLS, "2026-01", "2026-02")
    assert report["version"] == definition_of(FLS).version
    assert report["as_of"] == "2027-06-30T23:59:59.999999Z"
    for m in report["measures"]:
        assert {"id", "title", "numerator", "denominator", "ratio", "band", "by_month"} <= set(m)
        if m["denominator"] == 0:
            assert m["ratio"] is None and m["band"] is None
        else:
            assert m["ratio"] == m["numerator"] / m["denominator"]
            assert m["band"] in ("red", "amber", "green")
        assert sum(x["denominator"] for x in m["by_month"]) == m["denominator"]
        assert sum(x["numerator"] for x in m["by_month"]) == m["numerator"]
    persisting = next(m for m in report["measures"] if m["id"] == "FLS-KPI-PERSISTING-52W")
    assert (persisting["denominator"], persisting["ratio"], persisting["band"]) == (1, 0.0, "red")
    for t in report["time_in_state"]:
        assert set(t) >= {"state", "episodes", "median_days", "p90_days"}
        assert 0 <= t["median_days"] <= t["p90_days"]
    assert all(set(o) == {"state", "rule", "episodes"} for o in report["outcomes"])


def test_unknown_pathway_measure_and_bad_months_are_clear_errors(wiring: Wiring) -> None:
    with pytest.raises(InvalidMeasureQuery, match="pathway: got 'nope', expected one of"):
        pathway_reports(wiring, pathway="nope", month_from=None, month_to=None, as_of=AS_OF)
    with pytest.raises(InvalidMeasureQuery, match="from: got '2026-1'"):
        pathway_reports(wiring, pathway=None, month_from="2026-1", month_to=None, as_of=AS_OF)
    with pytest.raises(InvalidMeasureQuery, match="measure: got 'M-NOPE'"):
        measure_episodes(
            wiring, pathway=L1L2, measure_id="M-NOPE", failing=False,
            month_from=None, month_to=None, as_of=AS_OF,
        )  # fmt: skip
