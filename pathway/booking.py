"""The scheduler's use case for appointments: record, once, that a booked day passed unkept.

Booking, moving and cancelling are ordinary commands (a ``Booking`` event through
``usecases.handle``); a missed appointment is recorded by the scheduler under the event id
``appointments.missed_event_id`` derived from the appointment, which every entry point refuses
(``usecases.refuse_reserved``), so it is recorded once however many workers sweep.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pathway.appointments import is_missed, missed_event_id
from pathway.model import BOOKED, Booking
from pathway.registry import DefinitionRegistry
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import Applied, _apply


def record_missed(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    *,
    now: datetime,
    actor: str = "scheduler",
) -> Applied | None:
    """Record the episode's appointment missed if its day has passed with no review recorded;
    None when there is nothing to record (kept, moved, cancelled, or not yet past)."""
    with uow:
        episode = uow.get_episode(episode_id)
    appointment = episode.appointment
    today = now.astimezone(UTC).date()
    if appointment is None or appointment.status != BOOKED or not is_missed(appointment, today):
        return None
    event = Booking(
        missed_event_id(episode_id, appointment), now, actor, "missed", appointment.window,
        appointment.on, None,
    )  # fmt: skip
    return _apply(uow, definitions, episode_id, event, now)
