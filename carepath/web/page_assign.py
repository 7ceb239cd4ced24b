"""The episode page's owner form: assign the episode to a coordinator, to oneself, or to nobody.

POST → redirect → GET like the other forms (``page_commands``), through the same handler and
with the form's event id as the signed-in token's idempotency key. Coordinators and admins may
assign (``carepath.api.auth.ASSIGN``); an auditor's page shows the owner but no form.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carepath import inputs
from carepath.api.services import services
from carepath.web import session
from carepath.web.episode_page import load_episode_page
from carepath.web.page_commands import _done, _event_id, _problem, run_command
from carepath.web.page_inputs import check_form, page_inputs
from carepath.web.pages import PREFIX, not_found, page
from pathway.errors import EpisodeNotFound, PathwayError
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
    svc = services(request)
    form = await request.form()
    check_form(form)

    def body() -> Response:
        who = session.assigner(request, str(form.get("csrf", "")))
        try:
            owner = _owner(form, who.name)
            applied = run_command(
                svc, episode_id, who, _event_id(form), partial(Assign, owner=owner)
            )
            return _done(episode_id, applied)
        except EpisodeNotFound:
            return not_found(request, who)
        except inputs.InputError as exc:
            message = str(exc)
        except PathwayError as exc:
            message = _problem(exc)
        now = svc.clock()
        content = load_episode_page(svc, episode_id, now)
        return page(
            request, "episode.html", 422, viewer=who, p=content, now=now, csrf=who.csrf,
            action_error=message,
        )  # fmt: skip

    return await run_in_threadpool(body)
