"""The audit log over HTTP: an episode's history, chain verification, and export (JSON lines or
FHIR).

One episode's history is for every reading role, coordinators too: it is the timeline the
episode page shows them (who recorded what, when, and by which rule), and a coordinator acting
on an episode needs it to know what colleagues did. Verifying the chains and exporting the
whole log (every patient at once, in bulk) stay with auditors and admins: least privilege
for what a coordinator's work does not need."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from carepath.api.audit_schemas import ChainCheckOut, HistoryEntry, RowDifferenceOut, VerifyReport
from carepath.api.audit_xes import xes_export
from carepath.api.auth import AUDIT, READ, GuardedRoute, bearer, roles
from carepath.api.episode_schemas import PRINTABLE
from carepath.api.episode_view import firing
from carepath.api.episodes import EpisodeId
from carepath.api.openapi_docs import AUTH_PROBLEMS, problems
from carepath.api.services import Services, services
from carepath.fhir.audit_bundle import FHIR_JSON, episode_bundle
from carepath.xes import XES_MEDIA_TYPE
from pathway.audit import AuditRecord, verify_chain
from pathway.unit_of_work import UnitOfWork

router = APIRouter(
    tags=["audit"],
    route_class=GuardedRoute,
    dependencies=[Depends(bearer)],
    responses=AUTH_PROBLEMS,
)
Svc = Annotated[Services, Depends(services)]
OneEpisode = Annotated[
    str | None,
    Query(min_length=1, max_length=200, pattern=PRINTABLE, description="Only this episode."),
]
OnePathway = Annotated[
    str | None,
    Query(min_length=1, max_length=200, pattern=PRINTABLE, description="Only this pathway (xes)."),
]
NDJSON = "application/x-ndjson"
FHIR_NDJSON = "application/fhir+ndjson"


@router.get(
    "/api/episodes/{episode_id}/history",
    response_model=list[HistoryEntry],
    openapi_extra=roles(*READ),
    responses=problems(404, 422),
    summary="Every decision on the episode, oldest first",
)
def history(episode_id: EpisodeId, svc: Svc) -> list[HistoryEntry]:
    with svc.uow_factory() as uow:
        uow.get_episode(episode_id)
        records = uow.audit_records(episode_id)
    return [history_entry(r) for r in records]


def history_entry(record: AuditRecord) -> HistoryEntry:
    body = record.body()
    body["rules"] = [firing(f) for f in body["rules"]]
    body["refused"] = [
        {"action": r["action"], "refused_by": firing(r["firing"])} for r in body["refused"]
    ]
    return HistoryEntry(**body, prev_hash=record.prev_hash, hash=record.hash)


@router.get(
    "/api/audit/verify",
    response_model=VerifyReport,
    openapi_extra=roles(*AUDIT),
    responses=problems(404, 422),
    summary="Recompute the hash chains; name the first bad entry of each broken one",
)
def verify(
    svc: Svc,
    episode: OneEpisode = None,
    chain_only: Annotated[bool, Query(description="Only the hash chains (skip the rows).")] = False,
) -> VerifyReport:
    checks = []
    with svc.uow_factory() as uow:
        for episode_id in [episode] if episode else uow.episode_ids():
            head = uow.get_episode(episode_id)
            records = uow.audit_records(episode_id)
            checks.append(
                verify_chain(
                    episode_id, records, (head.version, head.audit_hash), key=uow.audit_key
                )
            )
    broken = [
        ChainCheckOut(**{k: v for k, v in asdict(c).items() if k != "head_hash"})
        for c in checks
        if not c.ok
    ]
    rows = None
    if not chain_only:  # step 2: the rows equal a rebuild from each episode's own log
        from storage.audit_rows import verify_uow_rows

        with svc.uow_factory() as uow:
            rows = verify_uow_rows(uow, svc.definitions.get, episode=episode)
    rows_broken = [RowDifferenceOut(**d.to_dict()) for d in rows.differences] if rows else []
    return VerifyReport(
        episodes=len(checks),
        entries=sum(c.entries for c in checks),
        intact=not broken and (rows is None or rows.ok),
        broken=broken,
        rows_checked=rows is not None,
        rows_broken=rows_broken,
    )


@router.get(
    "/api/audit/export",
    response_class=Response,
    openapi_extra=roles(*AUDIT),
    responses={
        **problems(404, 422),
        200: {
            "description": "jsonl: one canonical entry a line, with its chain hashes. fhir: "
            "one episode's FHIR R4B Bundle, or without `episode` one Bundle a line. xes: an "
            "IEEE 1849 event log, a trace per episode (of `pathway`, if given), streamed.",
            "content": {
                XES_MEDIA_TYPE: {"schema": {"type": "string"}},
                NDJSON: {"schema": {"type": "string"}},
                FHIR_JSON: {"schema": {"type": "object"}},
                FHIR_NDJSON: {"schema": {"type": "string"}},
            },
        },
    },
    summary="Export the audit log",
)
def export(
    svc: Svc,
    format: Literal["jsonl", "fhir", "xes"] = "jsonl",
    episode: OneEpisode = None,
    pathway: OnePathway = None,
) -> Response:
    if format == "xes" or pathway is not None:
        return xes_export(svc, format, episode, pathway)
    uow = svc.uow_factory()
    if episode is not None:
        with uow:
            if format == "fhir":
                return Response(orjson.dumps(_bundle(svc, uow, episode)), media_type=FHIR_JSON)
            uow.get_episode(episode)  # a missing episode is a 404 now, not a broken stream later

    def lines() -> Iterator[bytes]:
        with uow:
            for episode_id in [episode] if episode else uow.episode_ids():
                if format == "fhir":
                    yield orjson.dumps(_bundle(svc, uow, episode_id)) + b"\n"
                    continue
                for record in uow.audit_records(episode_id):
                    yield jsonl_line(record)

    return StreamingResponse(lines(), media_type=NDJSON if format == "jsonl" else FHIR_NDJSON)


def _bundle(svc: Services, uow: UnitOfWork, episode_id: str) -> dict[str, Any]:
    episode = uow.get_episode(episode_id)
    definition = svc.definitions.get(episode.definition_version)
    return episode_bundle(episode, uow.audit_records(episode_id), definition)


def jsonl_line(record: AuditRecord) -> bytes:
    """One line of the JSON-lines export (the CLI's ``audit export --format jsonl`` format)."""
    line: dict[str, Any] = {
        "entry": orjson.loads(record.payload),
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }
    return orjson.dumps(line) + b"\n"
