"""``/api/definitions``: the loaded pathway versions, one as JSON, and the state diagram; plus
an episode's diagram with its current state highlighted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from carepath.api.audit_schemas import DefinitionDocument, DefinitionSummary, Diagram, StateSummary
from carepath.api.auth import READ, GuardedRoute, bearer, roles
from carepath.api.episode_schemas import PRINTABLE
from carepath.api.episodes import EpisodeId
from carepath.api.openapi_docs import AUTH_PROBLEMS, problems
from carepath.api.problems import ProblemError
from carepath.api.services import Services, services
from pathway.definition import Definition
from pathway.diagram import mermaid
from pathway.errors import InvalidDefinition

router = APIRouter(
    tags=["definitions"],
    route_class=GuardedRoute,
    dependencies=[Depends(bearer)],
    responses=AUTH_PROBLEMS,
)
Svc = Annotated[Services, Depends(services)]
Version = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=PRINTABLE,
        examples=["l1-l2-compression-fracture@c618e6a492e3"],
    ),
]


def _definition(svc: Services, version: str) -> Definition:
    try:
        return svc.definitions.get(version)
    except InvalidDefinition as exc:
        raise ProblemError(404, "definition-not-found", str(exc)) from None


@router.get(
    "/api/definitions",
    response_model=list[DefinitionSummary],
    openapi_extra=roles(*READ),
    summary="The loaded definition versions",
)
def list_definitions(svc: Svc) -> list[DefinitionSummary]:
    current = svc.definitions.current.version
    out = []
    for version in svc.definitions.versions():
        d = svc.definitions.get(version)
        out.append(
            DefinitionSummary(
                version=d.version,
                id=d.id,
                title=d.title,
                content_hash=d.content_hash,
                current=d.version == current,
                initial_state=d.initial_state,
                states=[
                    StateSummary(name=st.name, label=st.label, terminal=st.terminal)
                    for st in d.states.values()
                ],
                rules=len(d.rules),
            )
        )
    return out


@router.get(
    "/api/definitions/{version}",
    response_model=DefinitionDocument,
    openapi_extra=roles(*READ),
    responses=problems(404, 422),
    summary="One definition version, as its file says it",
)
def get_definition(version: Version, svc: Svc) -> DefinitionDocument:
    d = _definition(svc, version)
    return DefinitionDocument(
        version=d.version,
        current=d.version == svc.definitions.current.version,
        document=dict(d.document),
    )


@router.get(
    "/api/definitions/{version}/diagram",
    response_model=Diagram,
    openapi_extra=roles(*READ),
    responses=problems(404, 422),
    summary="The state diagram (mermaid), optionally with a state highlighted",
)
def definition_diagram(
    version: Version,
    svc: Svc,
    state: Annotated[str | None, Query(max_length=100, pattern=PRINTABLE)] = None,
) -> Diagram:
    d = _definition(svc, version)
    return Diagram(version=d.version, current_state=state, source=mermaid(d, current_state=state))


@router.get(
    "/api/episodes/{episode_id}/diagram",
    response_model=Diagram,
    openapi_extra=roles(*READ),
    responses=problems(404, 422),
    summary="The episode's pathway diagram, its current state highlighted",
)
def episode_diagram(episode_id: EpisodeId, svc: Svc) -> Diagram:
    with svc.uow_factory() as uow:
        episode = uow.get_episode(episode_id)
    d = svc.definitions.get(episode.definition_version)
    return Diagram(
        version=d.version,
        current_state=episode.state,
        source=mermaid(d, current_state=episode.state),
    )
