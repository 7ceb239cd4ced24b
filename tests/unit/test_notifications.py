"""Which decisions raise which webhook notices (``pathway.notifications``): read off the
definition's marks — escalation tasks, immediate-transfer routes, terminal states, enrolment
links, booking events — on both shipped pathways; payloads carry no clinical facts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from pathway.model import Decision, Episode, Event, Link
from pathway.notifications import EVENT_TYPES, notices_for
from tests.support.episode_driver import PRESENTATION
from tests.support.pathway_runs import FlsRun, Run, in_care


def types(run: Run, decision: Decision | None) -> list[str]:
    assert decision is not None
    return [n.type for n in notices_for(run.definition, decision)]


def test_an_overdue_timer_opening_an_escalation_raises_escalation_opened() -> None:
    run = Run.open({"age": 60})
    (fired,) = run.advance(1)
    (notice,) = notices_for(run.definition, fired.decision)
    assert notice.type == "escalation.opened"
    assert notice.data["rule"] == "FU-INTAKE-OVERDUE" and notice.data["state"] == "intake"
    assert notice.data["citation"]  # the rule's citations, joined
    assert notice.data["episode"] == run.episode_id
    assert notice.data["pathway"] == run.definition.id


def test_leaving_the_state_closes_its_escalation_and_raises_escalation_closed() -> None:
    run = Run.open({"age": 60})
    run.advance(1)
    applied = run.observe(PRESENTATION, day=1.5)
    assert "escalation.closed" in types(run, applied.decision)
    (closed,) = [
        n for n in notices_for(run.definition, applied.decision) if n.type.endswith("closed")
    ]
    assert closed.data["rule"] == "FU-INTAKE-OVERDUE"


def test_an_immediate_transfer_raises_transferred_and_ended() -> None:
    run = in_care()
    applied = run.observe({"vertebral_collapse_pct": 51}, day=2)
    got = notices_for(run.definition, applied.decision)
    assert [n.type for n in got if n.type.startswith("episode.")] == [
        "episode.transferred",
        "episode.ended",
    ]
    transferred = got[[n.type for n in got].index("episode.transferred")]
    assert transferred.data["rule"] == "TX-INSTAB"
    assert transferred.data["from"] == "conservative_care"


def test_an_ordinary_transition_raises_no_episode_notice() -> None:
    run = Run.open({"age": 60})
    applied = run.observe(PRESENTATION, day=0.5)
    assert types(run, applied.decision) == []


def test_closing_an_episode_raises_ended_once_and_only_then() -> None:
    run = in_care()
    applied = run.close("declined", day=3)
    assert types(run, applied.decision).count("episode.ended") == 1
    (ended,) = [
        n for n in notices_for(run.definition, applied.decision) if n.type == "episode.ended"
    ]
    assert ended.data["reason"] == "declined" and ended.data["from"] == "conservative_care"


def test_every_terminal_state_of_the_fls_pathway_is_an_ending_too() -> None:
    run = FlsRun.open({"fracture_site": "wrist", "fracture_date": "2026-03-01", "age": 30})
    ended = [a for a in run.history if "episode.ended" in types(run, a.decision)]
    if run.definition.states[run.state].terminal:
        assert len(ended) == 1
    else:  # still running: close it
        applied = run.close("declined", day=1)
        assert types(run, applied.decision).count("episode.ended") == 1


def test_the_decision_that_opens_an_enrolled_episode_raises_episode_enrolled() -> None:
    run = Run.open({"age": 60})
    opening = run.history[0].decision
    assert opening is not None and "episode.enrolled" not in types(run, opening)
    link = Link("ep-source", "other-pathway", "ENROL-RULE", "enrolled_from")
    enrolled = replace(opening, links_added=[link])
    (notice,) = [n for n in notices_for(run.definition, enrolled) if n.type == "episode.enrolled"]
    assert notice.data["enrolled_from"] == "ep-source" and notice.data["rule"] == "ENROL-RULE"


@dataclass(slots=True)
class Booking(Event):
    """The appointments engineer's event, as its notice mapping expects it (kind "booking")."""

    payload: dict[str, Any] = field(default_factory=dict)

    kind = "booking"


def test_a_missed_booking_raises_appointment_missed_with_its_window() -> None:
    run = in_care()
    episode: Episode = run.episode
    at = datetime(2026, 4, 1, tzinfo=UTC)
    for action, expected in (("missed", ["appointment.missed"]), ("book", []), ("cancel", [])):
        event = Booking(f"b-{action}", at, "t", {"action": action, "window": "FU-REASSESS"})
        decision = Decision(event, episode, episode)
        assert types(run, decision) == expected
    event = Booking("b-m", at, "t", {"action": "missed", "window": "FU-REASSESS"})
    (notice,) = notices_for(run.definition, Decision(event, episode, episode))
    assert notice.data["rule"] == "FU-REASSESS" and notice.data["window"] == "FU-REASSESS"


def test_notices_carry_no_clinical_fact_and_the_patient_ref_only_when_asked() -> None:
    run = Run.open({"age": 60})
    run.episode.patient_ref  # noqa: B018
    (fired,) = run.advance(1)
    (notice,) = notices_for(run.definition, replace(fired.decision, episode=replace(
        fired.decision.episode, patient_ref="MRN-9")))  # fmt: skip
    body = orjson.dumps(notice.payload()).decode()
    assert "MRN-9" not in body and "60" not in body.replace(notice.timestamp, "")
    assert set(notice.payload()) == {"type", "timestamp", "data"}
    assert notice.payload(patient_ref=True)["data"]["patient_ref"] == "MRN-9"


def test_notice_ids_are_derived_from_the_event_so_a_retry_keeps_them() -> None:
    run = Run.open({"age": 60})
    (fired,) = run.advance(1)
    first = notices_for(run.definition, fired.decision)
    again = notices_for(run.definition, fired.decision)
    assert [n.id for n in first] == [n.id for n in again]
    assert all(n.type in EVENT_TYPES for n in first)
