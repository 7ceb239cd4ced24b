"""``GET /api/episodes/{id}/explain``: what the episode is waiting for (``pathway.explain``),
the same JSON as ``carepath episode explain --json``; for every reading role, like the episode
itself (it is the episode page's panel)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from carepath.api.auth import READ, GuardedRoute, bearer, roles
from carepath.api.episodes import EpisodeId
from carepath.api.openapi_docs import AUTH_PROBLEMS, problems
from carepath.api.services import Services, services, utc
from pathway.explain import explain_stored

router = APIRouter(
    tags=["episodes"],
    route_class=GuardedRoute,
    dependencies=[Depends(bearer)],
    responses=AUTH_PROBLEMS,
)
Svc = Annotated[Services, Depends(services)]


class Needs(BaseModel):
    op: str
    value: Any = None


class FailingLeaf(BaseModel):
    fact: str
    observed: Any = None
    needs: Needs


class Candidate(BaseModel):
    rule: str
    to: str | None
    holds: bool
    failing: list[FailingLeaf]
    missing: list[str]


class FiresIf(BaseModel):
    criterion: Any
    text: str
    holds: bool
    failing: list[FailingLeaf]
    missing: list[str]


class TimerWait(BaseModel):
    rule: str
    due_at: datetime
    fires_if: FiresIf | None


class Explanation(BaseModel):
    episode: str
    pathway: str
    state: str
    candidates: list[Candidate]
    timers: list[TimerWait]


@router.get(
    "/api/episodes/{episode_id}/explain",
    response_model=Explanation,
    openapi_extra=roles(*READ),
    responses=problems(404, 422),
    summary="What the episode is waiting for: each way out of its state, each pending timer",
)
def explain(
    episode_id: EpisodeId,
    svc: Svc,
    at: Annotated[
        datetime | None,
        Query(description="Clinical time to explain at (default now; no offset = UTC)."),
    ] = None,
) -> Response:
    """Rendered as the CLI renders it (times with ``+00:00``): one JSON for both; the model
    above documents it."""
    moment = utc(at, "at", svc.clock())
    e = explain_stored(svc.uow_factory(), svc.definitions, episode_id, moment)
    return Response(orjson.dumps(e.to_dict()), media_type="application/json")
