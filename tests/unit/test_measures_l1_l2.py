"""The six L1–L2 measures (PROTOCOL.md, "Measures") on hand-built episodes: numerator,
denominator, each exclusion and each window boundary, evaluated from the real histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pathway.unit_of_work import InMemoryUnitOfWork
from tests.support.measure_cohort import L1_START, PRESENT, WORKUP, Patient, l1, verdict

L1L2 = "l1-l2-compression-fracture"
LATER = datetime(2028, 1, 1, tzinfo=UTC)
MINUTE = 1 / 1440


@pytest.fixture
def uow() -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork()


def counted(uow: InMemoryUnitOfWork, eid: str, measure: str, as_of: datetime = LATER) -> tuple:
    v = verdict(uow, eid, measure, as_of)
    return v.counted, v.met


def in_workup(uow: InMemoryUnitOfWork, eid: str) -> Patient:
    return Patient(uow, eid, L1L2).open({"age": 45}).observe(PRESENT, 0)


# -- M-WORKUP-3D: within 3 days (72 h, that instant included) of entering workup -------------


@pytest.mark.parametrize(("day", "met"), [(3.0, True), (3.0 + MINUTE, False)])
def test_workup_left_within_exactly_72_hours_counts(uow, day: float, met: bool) -> None:
    in_workup(uow, "a").observe(WORKUP, day)
    assert counted(uow, "a", "M-WORKUP-3D") == (True, met)
    if not met:
        assert verdict(uow, "a", "M-WORKUP-3D", LATER).reason == (
            "left workup for conservative_care/immediate_transfer 3.0 days after entering workup"
        )


def test_workup_left_for_immediate_transfer_counts_and_one_step_through_workup_too(uow) -> None:
    in_workup(uow, "a").observe({"neuro_deficit_motor": True}, 1)
    l1(uow, "b")  # intake → workup → conservative_care in one observation
    assert counted(uow, "a", "M-WORKUP-3D") == (True, True)
    assert counted(uow, "b", "M-WORKUP-3D") == (True, True)


def test_workup_exclusions_ended_before_the_window_and_window_open_at_as_of(uow) -> None:
    in_workup(uow, "ended").close("declined", 1)
    in_workup(uow, "open")
    Patient(uow, "intake", L1L2).open({"age": 45})  # never entered workup
    assert counted(uow, "ended", "M-WORKUP-3D") == (False, False)
    assert "ended (closed)" in verdict(uow, "ended", "M-WORKUP-3D", LATER).reason
    as_of = L1_START + timedelta(days=2)
    assert verdict(uow, "open", "M-WORKUP-3D", as_of).reason == (
        "excluded: window not closed at as-of"
    )
    assert counted(uow, "open", "M-WORKUP-3D") == (True, False)  # closed by LATER: counts
    assert counted(uow, "intake", "M-WORKUP-3D") == (False, False)


# -- M-REVIEW-6W, M-DXA-6W, M-OSTEO-6W: by care day 42 (its end) -----------------------------


@pytest.mark.parametrize(("day", "met"), [(42.99, True), (43.0, False)])
def test_first_review_by_care_day_42_counts_43_does_not(uow, day: float, met: bool) -> None:
    l1(uow, "a").observe({"pain_score": 5}, day)
    assert counted(uow, "a", "M-REVIEW-6W") == (True, met)
    if not met:
        assert verdict(uow, "a", "M-REVIEW-6W", LATER).reason == "review recorded on care day 43"


@pytest.mark.parametrize(("day", "met"), [(42.5, True), (43.5, False)])
def test_dxa_recorded_by_care_day_42_counts_43_does_not(uow, day: float, met: bool) -> None:
    l1(uow, "a").observe({"dxa_done": True}, day)
    v = verdict(uow, "a", "M-DXA-6W", LATER)
    assert (v.counted, v.met) == (True, met)
    assert v.reason == ("DXA recorded on care day 42" if met else "DXA recorded on care day 43")


def test_no_dxa_at_all_is_in_the_denominator_with_its_reason(uow) -> None:
    l1(uow, "a").advance(60)
    v = verdict(uow, "a", "M-DXA-6W", LATER)
    assert (v.counted, v.met, v.reason) == (True, False, "no DXA recorded by care day 42")


def test_osteo_needs_both_treatment_and_referral_by_care_day_42(uow) -> None:
    l1(uow, "both").observe({"osteoporosis_treatment_started": True}, 30).observe(
        {"osteoporosis_referral_placed": True}, 40
    )
    l1(uow, "one").observe({"osteoporosis_treatment_started": True}, 30).advance(60)
    assert counted(uow, "both", "M-OSTEO-6W") == (True, True)
    assert counted(uow, "one", "M-OSTEO-6W") == (True, False)
    assert verdict(uow, "one", "M-OSTEO-6W", LATER).reason == (
        "no osteoporosis referral recorded by care day 42"
    )


def test_care_window_exclusions(uow) -> None:
    l1(uow, "died").close("deceased", 35)  # ended before care day 42, no review
    l1(uow, "met-then-died").observe({"pain_score": 5, "dxa_done": True}, 30).close("deceased", 35)
    l1(uow, "error").observe({"pain_score": 5, "dxa_done": True}, 30).close("entered_in_error", 50)
    l1(uow, "live")
    for measure in ("M-REVIEW-6W", "M-DXA-6W"):
        assert counted(uow, "died", measure) == (False, False)
        assert counted(uow, "met-then-died", measure) == (True, True)  # numerator met first
        assert counted(uow, "error", measure) == (False, False)
        assert (
            verdict(uow, "error", measure, LATER).reason == "excluded: closed as entered_in_error"
        )
    as_of = L1_START + timedelta(days=40)
    assert verdict(uow, "live", "M-DXA-6W", as_of).reason == "excluded: window not closed at as-of"
    assert counted(uow, "met-then-died", "M-DXA-6W", as_of) == (True, True)


def test_discharged_before_care_day_42_without_referral_is_left_out(uow) -> None:
    """PROTOCOL.md: any terminal state before the window closed excludes, unless met first."""
    l1(uow, "a").observe(
        {"pain_score": 2, "dxa_done": True, "osteoporosis_treatment_started": True}, 30
    )
    assert Patient.state(Patient(uow, "a", L1L2)) == "discharged"
    assert counted(uow, "a", "M-OSTEO-6W") == (False, False)
    assert counted(uow, "a", "M-DXA-6W") == (True, True)


# -- M-DECISION-3M: a review after FU-3MONTH, by care day 104 ---------------------------------


def at_three_months(uow: InMemoryUnitOfWork, eid: str) -> Patient:
    p = l1(uow, eid).observe({"pain_score": 5}, 30)  # RA-CONTINUE → conservative_care
    return p.advance(90)  # FU-3MONTH → reassessment


@pytest.mark.parametrize(("day", "met"), [(104.99, True), (105.0, False)])
def test_three_month_review_by_care_day_104(uow, day: float, met: bool) -> None:
    at_three_months(uow, "a").observe({"pain_score": 5}, day)
    assert counted(uow, "a", "M-DECISION-3M") == (True, met)


def test_decision_denominator_is_episodes_in_care_when_fu_3month_fires(uow) -> None:
    l1(uow, "gone").observe(
        {"pain_score": 2, "dxa_done": True, "osteoporosis_treatment_started": True}, 30
    )
    at_three_months(uow, "open")
    assert counted(uow, "gone", "M-DECISION-3M") == (False, False)
    as_of = L1_START + timedelta(days=100)
    assert verdict(uow, "open", "M-DECISION-3M", as_of).reason == (
        "excluded: window not closed at as-of"
    )
    assert verdict(uow, "open", "M-DECISION-3M", LATER).reason == (
        "no 3-month review recorded by care day 104"
    )


# -- M-REIMAGE-8W: mri_done or ct_done within 14 days after FU-REIMAGE's due time -------------


@pytest.mark.parametrize(("day", "met"), [(70.0, True), (70.0 + MINUTE, False)])
def test_reimaging_within_14_days_of_fu_reimage(uow, day: float, met: bool) -> None:
    l1(uow, "a").observe({"pain_score": 6}, 30).observe({"ct_done": True}, day)
    assert counted(uow, "a", "M-REIMAGE-8W") == (True, met)


def test_reimage_denominator_is_episodes_for_which_the_rule_fired(uow) -> None:
    l1(uow, "fired").observe({"pain_score": 6}, 30).advance(80)
    l1(uow, "quiet").observe({"pain_score": 3}, 30).advance(80)  # pain < 4 at day 56
    assert counted(uow, "fired", "M-REIMAGE-8W") == (True, False)
    assert verdict(uow, "fired", "M-REIMAGE-8W", LATER).reason == (
        "no repeat imaging (mri_done or ct_done) recorded within 14 days of FU-REIMAGE's due time"
    )
    assert counted(uow, "quiet", "M-REIMAGE-8W") == (False, False)
