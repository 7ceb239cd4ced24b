"""The episode page's appointment form: book, move or cancel the review appointment inside a
window the definition declares (``pathway.windows``), with a reason for a day outside it.

POST → redirect → GET like the other forms (``page_commands``), through the same handler, CSRF
checked and the form's event id the signed-in token's idempotency key. Writing roles only; the
windows shown come from the same module the engine checks against, so the page never offers a
window the engine would refuse.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from carepath import inputs
from carepath.web import session
from carepath.web.page_commands import MakeEvent, simple_command
from carepath.web.page_inputs import page_inputs
from carepath.web.pages import PREFIX
from pathway.model import Booking

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(page_inputs)])
ACTIONS = ("book", "move", "cancel")


def _booking(form: Any) -> dict[str, Any]:
    """The booking the form asks for; InputError for a field the rules refuse."""
    action = str(form.get("action", "book"))
    if action not in ACTIONS:
        raise inputs.InputError("action", action, "book, move or cancel")
    window = inputs.identifier(str(form.get("window", "")).strip(), "window")
    if not window:
        raise inputs.InputError("window", window, "a window to book in")
    on = None if action == "cancel" else inputs.booking_day(str(form.get("on", "")), "on")
    reason = str(form.get("reason", "")).strip() or None
    if reason is not None:
        inputs.booking_reason(reason, "reason")
    return {"action": action, "window": window, "on": on, "reason": reason}


@router.post("/episodes/{episode_id}/appointment")
async def book(request: Request, episode_id: str) -> Response:
    def call(form: Any, _: session.Viewer) -> MakeEvent:
        return partial(Booking, **_booking(form))

    return await simple_command(request, episode_id, call)
