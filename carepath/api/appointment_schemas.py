"""What the API says of an appointment and of a review window (``pathway.appointments``,
``pathway.windows``): shown on the episode, the worklist and ``/appointment``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class AppointmentOut(BaseModel):
    window: str = Field(description="The window: the rule id of the timer that opens it.")
    on: date = Field(description="The day booked.")
    status: Literal["booked", "missed", "reviewed"] = Field(
        description="booked; missed (its day passed with no review recorded, recorded by the "
        "scheduler); reviewed (the review was recorded in its window)."
    )
    reason: str | None = Field(description="Why, for a day outside the window.")
    deviation: bool = Field(description="The day is outside the window.")


class WindowOut(BaseModel):
    window: str = Field(description="The rule id of the timer that opens it: book with this.")
    label: str
    state: str = Field(description="The review state the window is a stay in.")
    status: Literal["upcoming", "open"]
    opens_at: datetime
    closes_at: datetime = Field(description="When the overdue escalation takes over.")
    first_day: date = Field(description="The first day inside the window.")
    last_day: date = Field(description="The last day inside the window.")


class AppointmentView(BaseModel):
    appointment: AppointmentOut | None = Field(description="null: nothing booked.")
    windows: list[WindowOut] = Field(description="The upcoming and open windows, soonest first.")
