"""Appointments in the pure core: the windows the definitions declare (both pathways), booking
inside and outside them, moving, cancelling, missed and reviewed, the audit entry's contract and
its rebuild, and that a booking never touches a timer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pathway.audit_rebuild import rebuild
from pathway.booking import record_missed
from pathway.errors import InvalidRequest
from pathway.model import BOOKED, MISSED, REVIEWED, Booking, Close
from pathway.unit_of_work import InMemoryUnitOfWork
from pathway.usecases import handle
from pathway.windows import episode_windows
from tests.support.appointment_world import (
    DEFS,
    FLS_TREATED,
    advance,
    book,
    care_day,
    day,
    episode,
    fls_in_treatment,
    fracture_day,
    l1_in_care,
    observe,
)


def _windows(uow: InMemoryUnitOfWork, eid: str, at: object) -> dict[str, tuple]:
    ep = episode(uow, eid)
    found = episode_windows(DEFS.get(ep.definition_version), ep, at)  # type: ignore[arg-type]
    return {w.rule: (w.status, w.first_day, w.last_day) for w in found}


def test_l1_windows_are_care_days_28_42_and_90_104_then_28_42_after_a_late_continue() -> None:
    uow = InMemoryUnitOfWork()
    eid = l1_in_care(uow)
    assert _windows(uow, eid, day(1)) == {
        "FU-REASSESS": ("upcoming", care_day(28), care_day(42)),
        "FU-3MONTH": ("upcoming", care_day(90), care_day(104)),
    }
    advance(uow, day(29), eid)
    assert _windows(uow, eid, day(29))["FU-REASSESS"] == ("open", care_day(28), care_day(42))
    observe(uow, eid, {"pain_score": 5}, day(30))  # RA-CONTINUE before care day 90
    assert set(_windows(uow, eid, day(31))) == {"FU-3MONTH"}
    advance(uow, day(91), eid)
    assert _windows(uow, eid, day(91)) == {"FU-3MONTH": ("open", care_day(90), care_day(104))}
    observe(uow, eid, {"pain_score": 5}, day(100))  # at or after day 90: RA-CONTINUE + next review
    assert _windows(uow, eid, day(100)) == {
        "FU-NEXT-REVIEW": ("upcoming", care_day(128), care_day(142))
    }


def test_fls_windows_are_fracture_days_84_112_its_28_days_after_recontact_and_364_392() -> None:
    uow = InMemoryUnitOfWork()
    eid = fls_in_treatment(uow)
    assert _windows(uow, eid, FLS_TREATED) == {
        "FLS-FOLLOWUP-16": ("upcoming", fracture_day(84), fracture_day(112))
    }
    contact = day(80)
    observe(uow, eid, {"aom_started": False}, contact)  # FLS-NOT-STARTED: recontact in 28 days
    recontact = (contact + timedelta(days=28)).date()
    assert _windows(uow, eid, contact) == {
        "FLS-RECONTACT": ("upcoming", recontact, recontact + timedelta(days=28))
    }
    advance(uow, contact + timedelta(days=29), eid)
    observe(uow, eid, {"aom_started": True, "exercise_started": False}, day(110))
    assert _windows(uow, eid, day(110)) == {
        "FLS-FOLLOWUP-52": ("upcoming", fracture_day(364), fracture_day(392))
    }


def test_a_day_inside_the_window_is_booked_without_a_deviation_and_no_timer_moves() -> None:
    uow = InMemoryUnitOfWork()
    eid = l1_in_care(uow)
    before = episode(uow, eid)
    applied = book(uow, eid, "FU-REASSESS", care_day(35), at=day(10))
    after = episode(uow, eid)
    assert after.appointment is not None
    assert (after.appointment.window, after.appointment.on) == ("FU-REASSESS", care_day(35))
    assert after.appointment.status == BOOKED and not after.appointment.deviation
    assert after.timers == before.timers and after.tasks == before.tasks
    assert after.state == before.state and applied.decision is not None
    assert not (applied.decision.timers_set or applied.decision.timers_cancelled)


@pytest.mark.parametrize("on", [27, 43])
def test_a_day_outside_the_window_needs_a_reason_and_is_a_deviation(on: int) -> None:
    uow = InMemoryUnitOfWork()
    eid = l1_in_care(uow)
    version = episode(uow, eid).version
    with pytest.raises(InvalidRequest) as refused:
        book(uow, eid, "FU-REASSESS", care_day(on), at=day(10))
    message = str(refused.value)
    assert "FU-REASSESS" in message and care_day(on).isoformat() in message
    assert care_day(28).isoformat() in message and care_day(42).isoformat() in message
    assert episode(uow, eid).version == version and episode(uow, eid).appointment is None
    book(uow, eid, "FU-REASSESS", care_day(on), at=day(10), reason="patient away")
    appointment = episode(uow, eid).appointment
    assert appointment is not None and appointment.deviation
    assert appointment.reason == "patient away"


def test_move_and_cancel_change_only_the_appointment_of_that_window() -> None:
    uow = InMemoryUnitOfWork()
    eid = l1_in_care(uow)
    with pytest.raises(InvalidRequest, match="no appointment"):
        book(uow, eid, "FU-REASSESS", care_day(30), at=day(10), action="move")
    book(uow, eid, "FU-REASSESS", care_day(30), at=day(10))
    with pytest.raises(InvalidRequest, match="move or cancel"):
        book(uow, eid, "FU-3MONTH", care_day(95), at=day(10))
    book(uow, eid, "FU-REASSESS", care_day(40), at=day(11), action="move")
    assert episode(uow, eid).appointment.on == care_day(40)  # type: ignore[union-attr]
    with pytest.raises(InvalidRequest, match="cancel"):
        book(uow, eid, "FU-3MONTH", None, at=day(11), action="cancel")
    book(uow, eid, "FU-REASSESS", None, at=day(12), action="cancel")
    assert episode(uow, eid).appointment is None
    book(uow, eid, "FU-3MONTH", care_day(95), at=day(12))


def test_a_window_not_upcoming_or_open_and_a_past_day_are_refused() -> None:
    uow = InMemoryUnitOfWork()
    eid = l1_in_care(uow)
    with pytest.raises(InvalidRequest) as refused:
        book(uow, eid, "FU-NEXT-REVIEW", care_day(130), at=day(10))
    assert refused.value.field == "window" and "FU-REASSESS" in str(refused.value)
    with pytest.raises(InvalidRequest) as past:
        book(uow, eid, "FU-REASSESS", care_day(9), at=day(10), reason="x")
    assert past.value.field == "on"
    advance(uow, day(43), eid)  # the overdue escalation closed the first window
    assert "FU-REASSESS" not in _windows(uow, eid, day(43))
    with pytest.raises(InvalidRequest):
        book(uow, eid, "FU-REASSESS", care_day(43), at=day(43), reason="late")


def test_a_missed_appointment_is_recorded_once_and_a_reviewed_one_never() -> None:
    uow = InMemoryUnitOfWork()
    eid = l1_in_care(uow)
    book(uow, eid, "FU-REASSESS", care_day(30), at=day(10))
    assert record_missed(uow, DEFS, eid, now=day(30.5)) is None  # its day has not passed
    applied = record_missed(uow, DEFS, eid, now=day(31.1))
    assert applied is not None and applied.decision is not None
    assert episode(uow, eid).appointment.status == MISSED  # type: ignore[union-attr]
    assert record_missed(uow, DEFS, eid, now=day(32)) is None
    kinds = [r.body().get("action") for r in uow.audit_records(eid) if r.kind == "booking"]
    assert kinds == ["book", "missed"]
    observe(uow, eid, {"pain_score": 3}, day(33))  # the review, late: no longer missed
    assert episode(uow, eid).appointment.status == REVIEWED  # type: ignore[union-attr]

    other = l1_in_care(uow, "l1-2")
    book(uow, other, "FU-REASSESS", care_day(30), at=day(10))
    observe(uow, other, {"pain_score": 5}, day(30))  # reviewed on the day
    assert episode(uow, other).appointment.status == REVIEWED  # type: ignore[union-attr]
    assert record_missed(uow, DEFS, other, now=day(35)) is None


def test_the_reserved_event_id_and_the_missed_action_are_refused_to_clients() -> None:
    uow = InMemoryUnitOfWork()
    eid = l1_in_care(uow)
    with pytest.raises(InvalidRequest) as refused:
        book(uow, eid, "FU-REASSESS", care_day(30), at=day(10), event_id="appointment:x")
    assert refused.value.field == "event_id"
    with pytest.raises(InvalidRequest) as missed:
        event = Booking("m-1", day(10), "coord", "missed", "FU-REASSESS", care_day(30), None)
        handle(uow, DEFS, eid, event, day(10))
    assert missed.value.field == "action"


def test_the_audit_entry_carries_the_booking_contract_and_rebuilds_the_appointment() -> None:
    uow = InMemoryUnitOfWork()
    eid = fls_in_treatment(uow)
    book(uow, eid, "FLS-FOLLOWUP-16", fracture_day(120), at=day(20), reason="holiday")
    body = uow.audit_records(eid)[-1].body()
    assert body["kind"] == "booking"
    assert {k: body[k] for k in ("action", "window", "on", "reason")} == {
        "action": "book", "window": "FLS-FOLLOWUP-16", "on": fracture_day(120).isoformat(),
        "reason": "holiday",
    }  # fmt: skip
    assert body["appointment"]["deviation"] is True
    rows = rebuild(eid, [(r.payload, r.hash) for r in uow.audit_records(eid)], DEFS.get)
    assert rows is not None
    assert rows.episode["appointment_window"] == "FLS-FOLLOWUP-16"
    assert rows.episode["appointment_on"] == fracture_day(120).isoformat()
    assert rows.episode["appointment_deviation"] is True
    book(uow, eid, "FLS-FOLLOWUP-16", None, at=day(21), action="cancel")
    rows = rebuild(eid, [(r.payload, r.hash) for r in uow.audit_records(eid)], DEFS.get)
    assert rows is not None and rows.episode["appointment_window"] is None


def test_an_episode_that_ends_drops_its_appointment() -> None:
    uow = InMemoryUnitOfWork()
    eid = l1_in_care(uow)
    book(uow, eid, "FU-REASSESS", care_day(30), at=day(10))
    handle(uow, DEFS, eid, Close("c", day(11), "d", "deceased"), day(11))
    assert episode(uow, eid).appointment is None
