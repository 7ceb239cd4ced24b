"""``POST /api/episodes/{id}/appointment`` books, moves or cancels the episode's review
appointment; ``GET`` shows it with the windows it may be booked in. The POST is a command
like every other (If-Match, Idempotency-Key, audited: ``carepath.api.commands``); a day outside
the window without a reason is a 422 naming the window, the day and the window's days."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, model_validator

from carepath import inputs
from carepath.api import episode_schemas as s
from carepath.api.appointment_schemas import AppointmentOut, AppointmentView, WindowOut
from carepath.api.auth import READ, GuardedRoute, bearer, roles
from carepath.api.episodes import COMMAND, EpisodeId, Svc, Written
from carepath.api.openapi_docs import AUTH_PROBLEMS, problems
from pathway.appointments import appointment_body
from pathway.model import Booking
from pathway.windows import episode_windows

router = APIRouter(
    prefix="/api/episodes",
    tags=["episodes"],
    route_class=GuardedRoute,
    dependencies=[Depends(bearer)],
    responses=AUTH_PROBLEMS,
)


def _day(value: str, field: str) -> str:
    return inputs.booking_day(value, field).isoformat()


class BookingBody(s.Body):
    action: Literal["book", "move", "cancel"] = Field(
        "book", description="book a day, move the booked one, or cancel it."
    )
    window: Annotated[
        str,
        *s._rule(
            inputs.identifier, min_length=1, max_length=200, pattern=s.PRINTABLE,
            description="The window: the rule id of the timer that opens it (GET lists them).",
        ),
    ]  # fmt: skip
    on: Annotated[
        str | None,
        *s._rule(
            _day, pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-04-06"],
            description="The day, YYYY-MM-DD (not for cancel).",
        ),
    ] = None  # fmt: skip
    reason: Annotated[
        str | None,
        *s._rule(
            inputs.booking_reason, max_length=inputs.NOTE_MAX, pattern=inputs.PRINTABLE_LINES,
            description="Why, for a day outside the window (required then).",
        ),
    ] = None  # fmt: skip
    at: s.ClinicalTime = None

    @model_validator(mode="after")
    def _on_unless_cancel(self) -> BookingBody:
        if (self.on is None) != (self.action == "cancel"):
            raise ValueError("on: a day YYYY-MM-DD to book or move for; none to cancel")
        return self


@router.post(
    "/{episode_id}/appointment",
    summary="Book, move or cancel the episode's review appointment inside a protocol window",
    **COMMAND,
)
def book(episode_id: EpisodeId, body: BookingBody, command: Written) -> s.CommandResult:
    """An audited decision that changes only the appointment: never a timer or a deadline."""
    from datetime import date

    on = None if body.on is None else date.fromisoformat(body.on)
    make = partial(Booking, action=body.action, window=body.window, on=on, reason=body.reason)
    return command.run(episode_id, body.at, make)


@router.get(
    "/{episode_id}/appointment",
    response_model=AppointmentView,
    openapi_extra=roles(*READ),
    responses=problems(404, 422),
    summary="The episode's appointment and the windows it may be booked in",
)
def appointment(episode_id: EpisodeId, svc: Svc) -> AppointmentView:
    with svc.uow_factory() as uow:
        episode = uow.get_episode(episode_id)
    definition = svc.definitions.get(episode.definition_version)
    found = episode_windows(definition, episode, svc.clock())
    booked = appointment_body(episode.appointment)
    return AppointmentView(
        appointment=None if booked is None else AppointmentOut(**booked),
        windows=[WindowOut(**w.to_dict()) for w in found],
    )
