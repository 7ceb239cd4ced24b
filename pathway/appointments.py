"""Appointments: the episode's booked review, kept inside the protocol's windows.

A ``Booking`` event books, moves or cancels the appointment for an upcoming or open window
(``pathway.windows``), or records it missed (the scheduler's sweep, under the reserved event id
``missed_event_id``). A day inside the window is accepted; a day outside needs a reason and is
recorded as a deviation; without one it is refused and nothing is written. A booking changes
only the appointment: never a timer, a deadline or a state.

"Review recorded" is generic: an observation recorded while the appointment's window is open
(the episode in that window's review state). It marks the appointment ``reviewed``; a booked
appointment whose day has passed without it is missed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date
from typing import Any

from pathway.errors import InvalidRequest
from pathway.model import BOOKED, MISSED, REVIEWED, Appointment, Booking, Decision, Episode
from pathway.windows import Window, episode_windows, open_window
from pathway.work import DecisionInProgress

APPOINTMENT_EVENT_PREFIX = "appointment:"  # event ids of missed appointments: reserved
ACTIONS = ("book", "move", "cancel", "missed")
CLIENT_ACTIONS = ("book", "move", "cancel")
LIVE = (BOOKED, MISSED)  # an appointment that can still be moved or cancelled


def missed_event_id(episode_id: str, appointment: Appointment) -> str:
    """The event id of an appointment recorded missed: derived, so it is recorded once."""
    return f"{APPOINTMENT_EVENT_PREFIX}{episode_id}:{appointment.window}:{appointment.on}"


def appointment_body(appointment: Appointment | None) -> dict[str, Any] | None:
    """The appointment as the audit log and the views write it (None: no appointment)."""
    if appointment is None:
        return None
    return {
        "window": appointment.window,
        "on": appointment.on.isoformat(),
        "status": appointment.status,
        "reason": appointment.reason,
        "deviation": appointment.deviation,
    }


def is_missed(appointment: Appointment | None, today: date) -> bool:
    """Missed: recorded so, or still booked for a day before ``today``."""
    if appointment is None:
        return False
    return appointment.status == MISSED or (appointment.status == BOOKED and appointment.on < today)


def decide_booking(definition: Any, episode: Episode, event: Booking) -> Decision:
    """What a booking does to the episode's appointment; raises InvalidRequest (nothing
    changes) for an unknown action, a window not upcoming or open, or a day outside the
    window without a reason."""
    if event.action not in ACTIONS:
        raise InvalidRequest(
            "action", event.action, "one of " + ", ".join(ACTIONS), episode_id=episode.id
        )
    current = episode.appointment
    work = DecisionInProgress.start(definition, episode, event)
    if event.action == "missed":
        today = event.at.astimezone(UTC).date()
        if not (
            current is not None
            and current.window == event.window
            and current.on == event.on
            and current.status == BOOKED
            and current.on < today
        ):
            raise InvalidRequest(
                "action", "missed",
                f"an appointment booked for {event.window} on {event.on} and not kept "
                f"(the episode's: {_said(current)})", episode_id=episode.id,
            )  # fmt: skip
        work.episode.appointment = replace(current, status=MISSED)
        return work.finish()
    window = _window(definition, episode, event)
    ours = current is not None and current.window == event.window and current.status in LIVE
    if event.action == "cancel":
        if not ours:
            raise InvalidRequest(
                "window", event.window,
                f"the window of the episode's appointment to cancel ({_said(current)})",
                episode_id=episode.id,
            )  # fmt: skip
        work.episode.appointment = None
        return work.finish()
    if (
        event.action == "book"
        and current is not None
        and current.status == BOOKED
        and any(w.rule == current.window for w in episode_windows(definition, episode, event.at))
    ):
        raise InvalidRequest(
            "action", "book",
            f"move or cancel: the episode already has an appointment ({_said(current)})",
            episode_id=episode.id,
        )  # fmt: skip
    if event.action == "move" and not ours:
        raise InvalidRequest(
            "action", "move",
            f"book: the episode has no appointment for {event.window} to move "
            f"({_said(current)})", episode_id=episode.id,
        )  # fmt: skip
    day = _day(episode, event, window)
    inside = window.contains(day)
    work.episode.appointment = Appointment(
        event.window, day, BOOKED, event.reason or None, deviation=not inside
    )
    return work.finish()


def note_review(definition: Any, before: Episode, work: DecisionInProgress) -> None:
    """An observation recorded in the appointment's open window is its review: mark it."""
    appointment = before.appointment
    if appointment is None or appointment.status not in LIVE:
        return
    current = open_window(definition, before, work.decision.event.at)
    if current is not None and current.rule == appointment.window:
        work.episode.appointment = replace(appointment, status=REVIEWED)


def end_appointment(definition: Any, episode: Episode) -> None:
    """An episode that ended keeps no appointment to attend: the booking lapses with it."""
    appointment = episode.appointment
    live = appointment is not None and appointment.status in LIVE
    if live and definition.is_terminal(episode.state):
        episode.appointment = None


def _window(definition: Any, episode: Episode, event: Booking) -> Window:
    found = episode_windows(definition, episode, event.at)
    for window in found:
        if window.rule == event.window:
            return window
    listed = ", ".join(f"{w.rule} ({w.status}, {w.first_day} to {w.last_day})" for w in found)
    raise InvalidRequest(
        "window", event.window,
        f"an upcoming or open window of this episode ({listed or 'none now'})",
        episode_id=episode.id,
    )  # fmt: skip


def _day(episode: Episode, event: Booking, window: Window) -> date:
    day, today = event.on, event.at.astimezone(UTC).date()
    if not isinstance(day, date):
        raise InvalidRequest("on", day, "a day, YYYY-MM-DD", episode_id=episode.id)
    if day < today:
        raise InvalidRequest(
            "on", day.isoformat(), f"a day from {today} on (a booking is for a day to come)",
            episode_id=episode.id,
        )  # fmt: skip
    if not window.contains(day) and not (event.reason and event.reason.strip()):
        raise InvalidRequest(
            "on", day.isoformat(),
            f"a day inside window {window.rule} ({window.first_day} to {window.last_day}), "
            "or a reason for booking outside it",
            episode_id=episode.id,
        )  # fmt: skip
    return day


def _said(appointment: Appointment | None) -> str:
    if appointment is None:
        return "none"
    return f"{appointment.window} on {appointment.on}, {appointment.status}"
