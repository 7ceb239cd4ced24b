"""``/api/episodes``: the worklist, one episode, and the commands on it. Thin: parse, call one
use case (through ``commands.Command``) or one query, render."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from carepath import inputs
from carepath.api import episode_schemas as s
from carepath.api.auth import ASSIGN, READ, WRITE, GuardedRoute, bearer, caller, roles
from carepath.api.commands import Command, EpisodeCommand
from carepath.api.episode_view import episode_view, etag
from carepath.api.openapi_docs import AUTH_PROBLEMS, COMMAND_RESPONSES, ETAG_HEADER, problems
from carepath.api.services import Services, services, utc
from pathway.errors import InvalidRequest
from pathway.model import Assign, Close, Observe, Open, Request, UpdateTask
from storage.access import Token
from storage.worklist import UNASSIGNED, WorklistQuery

router = APIRouter(
    prefix="/api/episodes",
    tags=["episodes"],
    route_class=GuardedRoute,
    dependencies=[Depends(bearer)],
    responses=AUTH_PROBLEMS,
)

EpisodeId = Annotated[str, Path(min_length=1, max_length=200, pattern=s.PRINTABLE)]
Svc = Annotated[Services, Depends(services)]
Written = Annotated[EpisodeCommand, Depends()]
COMMAND: dict[str, Any] = {
    "status_code": 201,
    "response_model": s.CommandResult,
    "openapi_extra": roles(*WRITE),
    "responses": {
        **problems(404, 409, 412, 422),
        **{k: {**v, "model": s.CommandResult} for k, v in COMMAND_RESPONSES.items()},
    },
}


@router.get(
    "",
    response_model=s.WorklistPage,
    openapi_extra=roles(*READ),
    responses=problems(422),
    summary="The worklist: overdue first, then due soonest",
)
def worklist(
    svc: Svc,
    token: Annotated[Token, Depends(caller)],
    state: Annotated[
        list[str] | None, Query(description="Only these states (default: every live state).")
    ] = None,
    due_before: Annotated[datetime | None, Query(description="Next due before this time.")] = None,
    overdue: Annotated[bool, Query(description="Only episodes with a timer past due.")] = False,
    escalated: Annotated[bool, Query(description="Only episodes with an open escalation.")] = False,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            pattern=s.PRINTABLE,
            description="Patient ref or label starts with this (case-insensitive).",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=inputs.CURSOR_MAX,
            pattern=inputs.CURSOR_PATTERN,
            description="The next_cursor of the previous page, as it was returned (url-safe "
            "base64 without padding); anything else is a 422.",
        ),
    ] = None,
    pathway: Annotated[
        list[str] | None,
        Query(max_length=200, description="Only episodes of these pathways (default: every one)."),
    ] = None,
    assigned: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=inputs.ACTOR_MAX,
            pattern=s.PRINTABLE,
            description='Only episodes owned by "me" (the calling token\'s name), by this '
            'name, or by nobody ("none").',
        ),
    ] = None,
    sort: Annotated[
        Literal["due", "appointment"],
        Query(description="due: overdue first, then due soonest; appointment: by booked day."),
    ] = "due",
) -> s.WorklistPage:
    now = svc.clock()
    for name in pathway or ():
        svc.definitions.current_for(name)  # an unknown pathway is a 422 naming the known ones
    definitions = [svc.definitions.get(v) for v in svc.definitions.versions()]
    if pathway:
        definitions = [d for d in definitions if d.id in pathway]
    known = {name for d in definitions for name in d.states}
    for name in state or ():
        if name not in known:
            raise InvalidRequest("state", name, "one of " + ", ".join(sorted(known)))
    live = sorted({n for d in definitions for n, st in d.states.items() if not st.terminal})
    try:
        after = None if cursor is None else inputs.cursor(cursor)
    except inputs.InputError as exc:
        raise InvalidRequest(exc.field, exc.value, exc.expected) from None
    page = svc.worklist.page(
        WorklistQuery(
            states=tuple(dict.fromkeys(state)) if state else tuple(live),
            now=now,
            pathways=tuple(dict.fromkeys(pathway or ())),
            due_before=utc(due_before, "due_before", now) if due_before else None,
            overdue=overdue,
            escalated=escalated,
            search=q,
            assigned=assigned_filter(assigned, token.name),
            sort=sort,
            limit=limit,
            after=after,
        )
    )
    return s.WorklistPage(
        items=[
            s.WorklistItem(
                **asdict(item),
                pathway=item.definition_version.partition("@")[0],
                overdue=item.next_due_at is not None and item.next_due_at <= now,
            )
            for item in page.items
        ],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


def assigned_filter(assigned: str | None, me: str) -> str | None:
    """``assigned=me|NAME|none`` as ``WorklistQuery.assigned``; a bad name is a 422."""
    if assigned is None:
        return None
    if assigned == "me":
        return me
    if assigned == "none":
        return UNASSIGNED
    try:
        return inputs.owner(assigned, "assigned")
    except inputs.InputError as exc:
        raise InvalidRequest(exc.field, exc.value, exc.expected) from None


@router.get(
    "/{episode_id}",
    response_model=s.EpisodeView,
    openapi_extra=roles(*READ),
    responses={**problems(404, 422), 200: {"headers": ETAG_HEADER}},
)
def get_episode(episode_id: EpisodeId, svc: Svc, response: Response) -> s.EpisodeView:
    with svc.uow_factory() as uow:
        episode = uow.get_episode(episode_id)
        records = uow.audit_records(episode_id)
    response.headers["ETag"] = etag(episode.id, episode.version)
    return episode_view(episode, records, svc.definitions, svc.clock())


@router.post("", summary="Open an episode", **COMMAND)
def open_episode(body: s.OpenEpisode, command: Annotated[Command, Depends()]) -> s.CommandResult:
    result = command.run(
        None,
        body.at,
        partial(
            Open,
            facts=body.facts,
            patient_ref=body.patient_ref,
            label=body.label,
            pathway=body.pathway,
        ),  # fmt: skip
    )
    command.response.headers["Location"] = f"{router.prefix}/{result.outcome.episode_id}"
    return result


@router.post("/{episode_id}/observations", summary="Record facts", **COMMAND)
def observe(episode_id: EpisodeId, body: s.Observe, command: Written) -> s.CommandResult:
    return command.run(episode_id, body.at, partial(Observe, facts=body.facts))


@router.post("/{episode_id}/requests", summary="Request an action the pathway defines", **COMMAND)
def request_action(
    episode_id: EpisodeId, body: s.RequestAction, command: Written
) -> s.CommandResult:
    return command.run(episode_id, body.at, partial(Request, action=body.action))


@router.post("/{episode_id}/close", summary="Close for an administrative reason", **COMMAND)
def close(episode_id: EpisodeId, body: s.Close, command: Written) -> s.CommandResult:
    return command.run(episode_id, body.at, partial(Close, reason=body.reason))


@router.post(
    "/{episode_id}/tasks/{task_key}", summary="Mark a task done or not done, with a note", **COMMAND
)
def update_task(
    episode_id: EpisodeId,
    task_key: Annotated[str, Path(min_length=1, max_length=200, pattern=s.PRINTABLE)],
    body: s.UpdateTask,
    command: Written,
) -> s.CommandResult:
    return command.run(
        episode_id,
        body.at,
        partial(UpdateTask, task_key=task_key, status=body.status, note=body.note),
    )


@router.post(
    "/{episode_id}/assignment",
    summary="Assign the episode to a coordinator, or unassign it",
    **{**COMMAND, "openapi_extra": roles(*ASSIGN)},
)
def assign(episode_id: EpisodeId, body: s.Assign, command: Written) -> s.CommandResult:
    """An audited decision that changes only the owner: no transition, no timer."""
    owner = command.token.name if body.owner == "me" else body.owner
    return command.run(episode_id, body.at, partial(Assign, owner=owner))
