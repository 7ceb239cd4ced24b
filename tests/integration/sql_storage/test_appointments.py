"""Appointments on every backend: bookings stored and rebuilt from the log, the worklist's
booked day, its sort and "missed", and the scheduler's sweep recording a missed one once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta

import pytest

from pathway.errors import InvalidRequest
from pathway.model import MISSED
from pathway.unit_of_work import UnitOfWork
from scheduler.missed import sweep_missed
from storage.audit_rows import verify_uow_rows
from storage.unit_of_work import uow_factory as sql_factory
from storage.worklist import Worklist, WorklistQuery
from tests.support.appointment_world import (
    DEFS,
    book,
    care_day,
    day,
    episode,
    fls_in_treatment,
    fracture_day,
    l1_in_care,
)


def _live() -> tuple[str, ...]:
    defs = [DEFS.get(v) for v in DEFS.versions()]
    return tuple(sorted({n for d in defs for n, s in d.states.items() if not s.terminal}))


def test_bookings_on_both_pathways_are_stored_as_decided_and_touch_no_timer(
    uow_factory: Callable[[], UnitOfWork],
) -> None:
    uow = uow_factory()
    l1, fls = l1_in_care(uow), fls_in_treatment(uow)
    before = {e: episode(uow, e) for e in (l1, fls)}
    book(uow, l1, "FU-REASSESS", care_day(35), at=day(20))
    book(uow, fls, "FLS-FOLLOWUP-16", fracture_day(120), at=day(20), reason="away in May")
    with pytest.raises(InvalidRequest):
        book(uow, fls, "FLS-FOLLOWUP-16", fracture_day(120), at=day(20), action="move")
    book(uow, fls, "FLS-FOLLOWUP-16", fracture_day(100), at=day(21), action="move")
    for e in (l1, fls):
        after = episode(uow, e)
        assert after.timers == before[e].timers and after.state == before[e].state
        assert {**asdict(after), "appointment": None, "version": 0, "audit_hash": ""} == {
            **asdict(before[e]), "version": 0, "audit_hash": "",
        }  # fmt: skip
    a = episode(uow, fls).appointment
    assert a is not None and a.on == fracture_day(100) and not a.deviation
    assert a.reason is None  # the reason was the outside booking's, not the move's
    book(uow, l1, "FU-REASSESS", None, at=day(22), action="cancel")
    assert episode(uow, l1).appointment is None


@pytest.fixture
def factory(database_url: str):  # type: ignore[no-untyped-def]
    made = sql_factory(database_url)
    yield made
    made.dispose()


def test_the_worklist_shows_the_booked_day_sorts_by_it_and_flags_missed(factory) -> None:  # type: ignore[no-untyped-def]
    uow = factory()
    for n, on in ((1, 40), (2, 30), (3, None), (4, 35)):
        eid = l1_in_care(uow, f"l1-{n}")
        if on is not None:
            book(uow, eid, "FU-REASSESS", care_day(on), at=day(10))
    worklist = Worklist(factory.connections)
    query = WorklistQuery(states=_live(), now=day(31.5), pathways=("l1-l2-compression-fracture",))
    by_day = worklist.page(WorklistQuery(**{**asdict(query), "sort": "appointment"}))
    assert [i.id for i in by_day.items] == ["l1-2", "l1-4", "l1-1", "l1-3"]
    assert [i.booked_on for i in by_day.items] == [care_day(30), care_day(35), care_day(40), None]
    assert [i.missed for i in by_day.items] == [True, False, False, False]
    paged, seen = WorklistQuery(**{**asdict(query), "sort": "appointment", "limit": 1}), []
    while True:
        page = worklist.page(paged)
        seen += [i.id for i in page.items]
        if page.next_cursor is None:
            break
        paged = WorklistQuery(**{**asdict(paged), "after": page.next_cursor})
    assert seen == ["l1-2", "l1-4", "l1-1", "l1-3"]
    assert {i.id for i in worklist.page(query).items} == {"l1-1", "l1-2", "l1-3", "l1-4"}


def test_the_sweep_records_a_missed_appointment_once_and_verify_rebuilds_it(factory) -> None:  # type: ignore[no-untyped-def]
    uow = factory()
    missed, kept, later = l1_in_care(uow, "l1-m"), l1_in_care(uow, "l1-k"), l1_in_care(uow, "l1-l")
    for eid, on in ((missed, 30), (kept, 30), (later, 40)):
        book(uow, eid, "FU-REASSESS", care_day(on), at=day(10))
    from tests.support.appointment_world import observe

    observe(uow, kept, {"pain_score": 5}, day(30.1))  # FU-REASSESS fired first: reviewed
    now = day(31.2)
    assert sweep_missed(factory, DEFS, now) == 1
    assert sweep_missed(factory, DEFS, now + timedelta(hours=1)) == 0  # once
    assert episode(uow, missed).appointment.status == MISSED  # type: ignore[union-attr]
    assert episode(uow, later).appointment.status == "booked"  # type: ignore[union-attr]
    with uow:
        records = uow.audit_records(missed)
    body = records[-1].body()
    assert (body["kind"], body["action"], body["window"]) == ("booking", "missed", "FU-REASSESS")
    assert records[-1].event_id == f"appointment:{missed}:FU-REASSESS:{care_day(30)}"
    with uow:
        report = verify_uow_rows(uow, DEFS.get)
    assert report is not None and report.ok and report.differences == []


def test_measures_list_the_appointments_outside_the_window_per_pathway(database_url: str) -> None:
    from carepath.bootstrap import current_definitions, wire
    from carepath.measures import pathway_reports

    made = sql_factory(database_url)
    try:
        wiring = wire(current=current_definitions(), factory=made)
        uow = made()
        l1, other, fls = l1_in_care(uow), l1_in_care(uow, "l1-2"), fls_in_treatment(uow)
        book(uow, l1, "FU-REASSESS", care_day(45), at=day(10), reason="away")  # outside
        book(uow, l1, "FU-REASSESS", care_day(50), at=day(11), reason="still", action="move")
        book(uow, other, "FU-REASSESS", care_day(30), at=day(10))  # inside: not counted
        book(uow, fls, "FLS-FOLLOWUP-16", fracture_day(90), at=day(20))
        reports = pathway_reports(
            wiring, pathway=None, month_from=None, month_to=None, as_of=day(60)
        )
        counts = {r["pathway"]: r["appointments_outside_window"] for r in reports}
        assert counts == {"l1-l2-compression-fracture": 2, "fracture-liaison": 0}
        from carepath.cli.measures import report_table

        l1_report = next(r for r in reports if r["pathway"] == "l1-l2-compression-fracture")
        assert "appointments outside the window: 2" in report_table(l1_report)
    finally:
        made.dispose()


def test_a_missed_appointment_raises_appointment_missed_for_its_subscribers(factory) -> None:  # type: ignore[no-untyped-def]
    """The sweep's decision goes through the ordinary save, so the webhook outbox gets one
    ``appointment.missed`` message per subscription that wants it, and none for the others."""
    from carepath import webhooks
    from pathway.audit import process_key
    from storage.webhooks import WebhookStore

    key = process_key()
    store = WebhookStore(factory)
    wanted, _ = webhooks.add(
        store, key, "https://h.example.org/m", "appointment.missed", "t", day(1)
    )
    webhooks.add(store, key, "https://h.example.org/e", "escalation.closed", "t", day(1))
    uow = factory()
    missed = l1_in_care(uow, "l1-w")
    book(uow, missed, "FU-REASSESS", care_day(30), at=day(10))
    assert sweep_missed(factory, DEFS, day(31.2)) == 1
    with factory.engine.connect() as db:
        rows = db.exec_driver_sql(
            "SELECT subscription_id, event_type, episode_id, payload FROM webhook_messages"
            " WHERE event_type = 'appointment.missed'"
        ).fetchall()
    assert [(r[0], r[2]) for r in rows] == [(wanted.id, missed)]
    assert '"window":"FU-REASSESS"' in rows[0][3] or '"rule":"FU-REASSESS"' in rows[0][3]
