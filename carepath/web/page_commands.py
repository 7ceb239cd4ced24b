"""The episode page's forms: record an observation, mark a task, request, close.

Each is POST → redirect → GET: a command that applied redirects to the episode page with its
event id, and the page shows that event's stored outcome. A command the pathway refuses
re-renders the page (422) with the message where it belongs (next to the field, for an
observation) and the input kept. Each is parse → ``pathway.usecases.handle`` → render: the
handler fires the episode's due timers first, so a command never acts on a state the clock has
already left.

Each form carries its own event id, made when the form was rendered: an idempotency key of the
signed-in token (``token:<id>``, as the API's ``Idempotency-Key``): sending it twice (a double
click, a retried request) applies once; sending it again with other values (an old form, brought
back) is refused with a message on the page and nothing is recorded. Every form also carries
the session's CSRF token, checked before anything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carepath import inputs
from carepath.api.services import Services, services
from carepath.web import session
from carepath.web.episode_page import load_episode_page
from carepath.web.observation_form import (
    FORM_ERROR,
    build_form,
    field_of,
    read_clinical_time,
    read_form,
)
from carepath.web.page_inputs import check_form, page_inputs
from carepath.web.pages import PREFIX, not_found, page, redirect
from pathway.errors import (
    ConcurrencyConflict,
    EpisodeClosed,
    EpisodeNotFound,
    IdempotencyKeyReused,
    InvalidObservation,
    InvalidRequest,
    PathwayError,
)
from pathway.model import Close, Event, Observe, UpdateTask
from pathway.model import Request as ActionRequest
from pathway.usecases import Applied, handle, new_event_id

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(page_inputs)])
EVENT_ID = re.compile(r"[0-9a-f]{32}")
MakeEvent = Callable[[str, datetime, str], Event]
"""A form's event, given its event id, time and actor (the time is ``now`` unless the form
says when)."""


def run_command(
    svc: Services,
    episode_id: str,
    who: session.Viewer,
    event_id: str,
    make_event: MakeEvent,
    *,
    at_given: bool = False,
) -> Applied:
    """The one command handler: the episode's due timers, then the event; the form's event id
    is the signed-in token's idempotency key."""
    now = svc.clock()
    event = make_event(event_id, now, who.actor)
    uow = svc.uow_factory()
    caller = f"token:{who.token_id}"
    return handle(
        uow, svc.definitions, episode_id, event, now, caller=caller, at_given=at_given
    ).applied


def _event_id(form: Any) -> str:
    given = str(form.get("event_id", ""))
    return given if EVENT_ID.fullmatch(given) else new_event_id()


def _done(episode_id: str, applied: Applied) -> Response:
    again = "&again=1" if applied.outcome.repeated else ""
    return redirect(f"{PREFIX}/episodes/{episode_id}?event={applied.outcome.event_id}{again}")


def _problem(exc: PathwayError) -> str:
    """A refusal in words a coordinator reads; the engine's message carries the detail."""
    if isinstance(exc, EpisodeClosed):
        return "This episode has ended: nothing more can be recorded on it."
    if isinstance(exc, IdempotencyKeyReused):
        return (
            f"This form was already sent, with other values ({exc.part} differs): "
            "nothing was recorded. Reload the episode and enter it again."
        )
    if isinstance(exc, ConcurrencyConflict):
        return (
            "The episode changed while this was being saved (another user or a timer). "
            "Nothing was recorded: check the page and send it again."
        )
    return exc.message


@router.post("/episodes/{episode_id}/observations")
async def observe(request: Request, episode_id: str) -> Response:
    svc = services(request)
    form = await request.form()
    check_form(form)

    def body() -> Response:
        who = session.writer(request, str(form.get("csrf", "")))
        now = svc.clock()
        uow = svc.uow_factory()
        try:
            with uow:
                episode = uow.get_episode(episode_id)
        except EpisodeNotFound:
            return not_found(request, who)
        vocabulary = svc.definitions.get(episode.definition_version).vocabulary
        facts, raw, errors = read_form(vocabulary, form, form.getlist)
        raw["at"] = at_text = str(form.get("at", ""))
        try:
            at = read_clinical_time(at_text, now)
        except ValueError:
            errors["at"] = f"got {at_text!r}, expected a date and time such as 2026-03-02T09:30"
        if not errors:
            try:
                applied = run_command(
                    svc,
                    episode_id,
                    who,
                    _event_id(form),
                    lambda eid, _now, actor: Observe(eid, at, actor, facts),
                    at_given=bool(at_text.strip()),
                )
                return _done(episode_id, applied)
            except IdempotencyKeyReused as exc:
                errors[FORM_ERROR] = _problem(exc)
            except InvalidObservation as exc:
                field_of(exc, errors, vocabulary)
            except InvalidRequest as exc:
                key = "at" if exc.field == "at" else FORM_ERROR
                errors[key] = f"got {exc.value!r}, expected {exc.expected}"
            except PathwayError as exc:
                errors[FORM_ERROR] = _problem(exc)
        kept = build_form(vocabulary, episode)
        kept.raw, kept.errors = raw, errors
        content = load_episode_page(svc, episode_id, now, form=kept)
        response = page(request, "episode.html", 422, viewer=who, p=content, now=now, csrf=who.csrf)
        response.headers["HX-Reswap"] = "outerHTML show:#observe:top"  # htmx: show the errors
        return response

    return await run_in_threadpool(body)


async def simple_command(
    request: Request,
    episode_id: str,
    call: Callable[[Any, session.Viewer], MakeEvent],
    role: Callable[[Request, str], session.Viewer] = session.writer,
) -> Response:
    """One command from one form (tasks, requests, closing, owner, appointment): ``role``
    checks who may send it and the CSRF token, ``call(form, who)`` reads the form (an
    ``InputError`` for a field the rules refuse), and a refusal is shown on the page."""
    svc = services(request)
    form = await request.form()
    check_form(form)

    def body() -> Response:
        who = role(request, str(form.get("csrf", "")))
        try:
            applied = run_command(svc, episode_id, who, _event_id(form), call(form, who))
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
            request,
            "episode.html",
            422,
            viewer=who,
            p=content,
            now=now,
            csrf=who.csrf,
            action_error=message,
        )

    return await run_in_threadpool(body)


@router.post("/episodes/{episode_id}/tasks")
async def update_task(request: Request, episode_id: str) -> Response:
    def call(form: Any, _: session.Viewer) -> MakeEvent:
        key, status = str(form.get("task_key", "")), str(form.get("status", ""))
        note = str(form.get("note", "")).strip()[:2000] or None
        return partial(UpdateTask, task_key=key, status=status, note=note)

    return await simple_command(request, episode_id, call)


@router.post("/episodes/{episode_id}/requests")
async def request_action(request: Request, episode_id: str) -> Response:
    def call(form: Any, _: session.Viewer) -> MakeEvent:
        return partial(ActionRequest, action=str(form.get("action", "")))

    return await simple_command(request, episode_id, call)


@router.post("/episodes/{episode_id}/close")
async def close(request: Request, episode_id: str) -> Response:
    def call(form: Any, _: session.Viewer) -> MakeEvent:
        return partial(Close, reason=str(form.get("reason", "")))

    return await simple_command(request, episode_id, call)
