"""The episode page's owner form: assign the episode to a coordinator, to oneself, or to nobody.

POST → redirect → GET like the other forms (``page_commands``), through the same handler and
with the form's event id as the signed-in token's idempotency key. Coordinators and admins may
assign (``carepath.api.auth.ASSIGN``); an auditor's page shows the owner but no form.
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
from pathway.model import Assign

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(page_inputs)])


def _owner(form: Any, me: str) -> str | None:
    """The owner the form asks for; InputError for a name the rules refuse."""
    choice = str(form.get("choice", "name"))
    if choice == "me":
        return me
    if choice == "none":
        return None
    name = str(form.get("owner", "")).strip()
    if not name:
        raise inputs.InputError("owner", name, "a coordinator's name")
    return inputs.owner(name, "owner")


@router.post("/episodes/{episode_id}/assignment")
async def assign(request: Request, episode_id: str) -> Response:
    def call(form: Any, who: session.Viewer) -> MakeEvent:
        return partial(Assign, owner=_owner(form, who.name))

    return await simple_command(request, episode_id, call, role=session.assigner)
