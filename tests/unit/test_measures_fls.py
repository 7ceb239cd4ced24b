"""The eight FLS measures (FLS.md, "Measures") on hand-built episodes: numerator, denominator,
the exclusions (entered_in_error; deceased before the window, other endings stay in; window not
closed at as-of) and the fracture-day boundaries, from the real histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pathway.unit_of_work import InMemoryUnitOfWork
from tests.support.measure_cohort import FLS_START, Patient, fls, verdict

LATER = datetime(2028, 1, 1, tzinfo=UTC)
ASSESSED = {"risk_category": "high", "falls_assessment_done": True, "falls_risk_high": False}


@pytest.fixture
def uow() -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork()


def counted(uow: InMemoryUnitOfWork, eid: str, measure: str, as_of: datetime = LATER) -> tuple:
    v = verdict(uow, eid, measure, as_of)
    return v.counted, v.met


def on_treatment(uow: InMemoryUnitOfWork, eid: str, **first: object) -> Patient:
    """Assessed high on fracture day 20 (→ treatment), first follow-up contact on day 100."""
    p = fls(uow, eid).observe({**ASSESSED, "dxa_done": True}, 20)
    return p.observe({"aom_started": True, **first}, 100)


@pytest.mark.parametrize(("day", "met"), [(84.99, True), (85.0, False)])
def test_dxa_by_fracture_day_84_counts_85_does_not(uow, day: float, met: bool) -> None:
    fls(uow, "a").observe({"dxa_done": True}, day)
    v = verdict(uow, "a", "FLS-KPI-DXA-12W", LATER)
    assert (v.counted, v.met) == (True, met)
    assert v.reason == (
        "DXA recorded on fracture day 84" if met else "DXA recorded on fracture day 85"
    )


def test_late_dxa_on_day_97_and_none_at_all_say_why(uow) -> None:
    fls(uow, "late").observe({"dxa_done": True}, 97)
    fls(uow, "none").advance(100)
    assert (
        verdict(uow, "late", "FLS-KPI-DXA-12W", LATER).reason == "DXA recorded on fracture day 97"
    )
    assert (
        verdict(uow, "none", "FLS-KPI-DXA-12W", LATER).reason
        == "no DXA recorded by fracture day 84"
    )


@pytest.mark.parametrize(("day", "met"), [(84.5, True), (85.5, False)])
def test_risk_category_by_fracture_day_84(uow, day: float, met: bool) -> None:
    fls(uow, "a").observe({"risk_category": "intermediate"}, day)
    assert counted(uow, "a", "FLS-KPI-ASSESSED-12W") == (True, met)


def test_deceased_before_the_window_is_left_out_other_endings_stay_in(uow) -> None:
    fls(uow, "died").close("deceased", 50)
    fls(uow, "declined").close("declined", 50)
    fls(uow, "dxa-then-died").observe({"dxa_done": True}, 20).close("deceased", 50)
    fls(uow, "died-late").close("deceased", 90)  # lived past fracture day 84: stays in
    assert counted(uow, "died", "FLS-KPI-DXA-12W") == (False, False)
    assert counted(uow, "declined", "FLS-KPI-DXA-12W") == (True, False)
    assert counted(uow, "dxa-then-died", "FLS-KPI-DXA-12W") == (True, True)
    assert counted(uow, "died-late", "FLS-KPI-DXA-12W") == (True, False)
    assert counted(uow, "died", "FLS-KPI-FALLS") == (True, False)  # no window: every episode


def test_entered_in_error_is_excluded_even_when_met(uow) -> None:
    fls(uow, "a").observe({"dxa_done": True, **ASSESSED}, 20).close("entered_in_error", 30)
    for measure in ("FLS-KPI-DXA-12W", "FLS-KPI-FALLS", "FLS-KPI-RECOMMENDED"):
        assert counted(uow, "a", measure) == (False, False)


def test_a_window_not_closed_at_as_of_is_left_out_unless_met(uow) -> None:
    fls(uow, "waiting").advance(30)
    fls(uow, "done").observe({"dxa_done": True}, 20)
    as_of = FLS_START + timedelta(days=60)
    assert verdict(uow, "waiting", "FLS-KPI-DXA-12W", as_of).reason == (
        "excluded: window not closed at as-of"
    )
    assert counted(uow, "done", "FLS-KPI-DXA-12W", as_of) == (True, True)


def test_falls_assessed_has_no_window(uow) -> None:
    fls(uow, "a").observe({"falls_assessment_done": True}, 300)
    fls(uow, "b").observe({"falls_assessment_done": False}, 10)
    assert counted(uow, "a", "FLS-KPI-FALLS") == (True, True)
    assert counted(uow, "b", "FLS-KPI-FALLS") == (True, False)


def test_recommended_counts_eligible_episodes_with_a_risk_category(uow) -> None:
    fls(uow, "high").observe(ASSESSED, 20)
    fls(uow, "low").observe({**ASSESSED, "risk_category": "low"}, 20)
    fls(uow, "unknown").advance(20)
    assert counted(uow, "high", "FLS-KPI-RECOMMENDED") == (True, True)
    assert counted(uow, "low", "FLS-KPI-RECOMMENDED") == (True, False)
    assert counted(uow, "unknown", "FLS-KPI-RECOMMENDED") == (False, False)


def test_not_eligible_is_in_no_denominator(uow) -> None:
    Patient(uow, "young", "fracture-liaison").open(
        {"age": 45, "fracture_date": "2026-01-05", "fracture_site": "hip"}
    )
    for measure in ("FLS-KPI-DXA-12W", "FLS-KPI-FALLS", "FLS-KPI-ASSESSED-12W"):
        assert counted(uow, "young", measure) == (False, False)


@pytest.mark.parametrize(("day", "met"), [(112.5, True), (113.0, False)])
def test_first_follow_up_and_medication_started_by_fracture_day_112(
    uow, day: float, met: bool
) -> None:
    fls(uow, "a").observe({**ASSESSED, "dxa_done": True}, 20).observe({"aom_started": True}, day)
    assert counted(uow, "a", "FLS-KPI-MONITORED-16W") == (True, met)
    assert counted(uow, "a", "FLS-KPI-STARTED-16W") == (True, met)


def test_medication_not_started_at_the_contact_is_monitored_but_not_started(uow) -> None:
    fls(uow, "a").observe(ASSESSED, 20).observe({"aom_started": False}, 100).advance(140)
    assert counted(uow, "a", "FLS-KPI-MONITORED-16W") == (True, True)
    assert counted(uow, "a", "FLS-KPI-STARTED-16W") == (True, False)


def test_exercise_denominator_is_high_falls_risk_by_fracture_day_112(uow) -> None:
    fls(uow, "ex").observe({**ASSESSED, "falls_risk_high": True}, 20).observe(
        {"aom_started": True, "exercise_started": True}, 100
    )
    fls(uow, "no-ex").observe({**ASSESSED, "falls_risk_high": True}, 20).observe(
        {"aom_started": True}, 100
    )
    fls(uow, "low-risk").observe(ASSESSED, 20).observe({"aom_started": True}, 100)
    assert counted(uow, "ex", "FLS-KPI-EXERCISE-16W") == (True, True)
    assert counted(uow, "no-ex", "FLS-KPI-EXERCISE-16W") == (True, False)
    assert counted(uow, "low-risk", "FLS-KPI-EXERCISE-16W") == (False, False)


@pytest.mark.parametrize(("day", "met"), [(392.5, True), (393.0, False)])
def test_persisting_at_the_annual_follow_up_by_fracture_day_392(uow, day: float, met: bool) -> None:
    on_treatment(uow, "a").observe({"aom_still_prescribed": True}, day)
    assert counted(uow, "a", "FLS-KPI-PERSISTING-52W") == (True, met)


def test_persisting_denominator_is_episodes_that_entered_monitoring(uow) -> None:
    on_treatment(uow, "mon").advance(200)
    fls(uow, "never").observe(ASSESSED, 20).close("declined", 50)
    as_of = FLS_START + timedelta(days=300)
    assert verdict(uow, "mon", "FLS-KPI-PERSISTING-52W", as_of).reason == (
        "excluded: window not closed at as-of"
    )
    assert counted(uow, "never", "FLS-KPI-PERSISTING-52W") == (False, False)


def test_late_documentation_counts_by_clinical_time_and_is_marked(uow) -> None:
    """FLS.md: an observation whose clinical time is on or before the day counts; the measures
    list marks entries recorded more than 7 days after their clinical time."""
    fls(uow, "late").observe({"dxa_done": True}, 80, entered=95)
    fls(uow, "prompt").observe({"dxa_done": True}, 80, entered=84)
    v = verdict(uow, "late", "FLS-KPI-DXA-12W", LATER)
    assert (v.counted, v.met) == (True, True)
    assert v.reason == "DXA recorded on fracture day 80 (entered 15 days after its clinical time)"
    assert verdict(uow, "prompt", "FLS-KPI-DXA-12W", LATER).reason == (
        "DXA recorded on fracture day 80"
    )
