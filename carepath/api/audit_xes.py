"""``GET /api/audit/export?format=xes``: the XES event log (``carepath.xes``), streamed.

Kept apart from ``carepath.api.audit`` so that the JSON-lines and FHIR exports stay as they
were; the route there hands ``format=xes`` (and any ``pathway``) here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.responses import Response, StreamingResponse

from carepath.xes import XES_MEDIA_TYPE, xes_document
from pathway.errors import InvalidRequest
from storage.audit_stream import audit_entries


def xes_export(svc: Any, format: str, episode: str | None, pathway: str | None) -> Response:
    """The streamed XES document; a bad combination or an unknown pathway is a 422 first."""
    if format != "xes":
        raise InvalidRequest("pathway", pathway, "no pathway unless format is xes")
    if episode is not None:
        raise InvalidRequest("episode", episode, "no episode with format xes (use pathway)")
    if pathway is not None:
        svc.definitions.current_for(pathway)  # InvalidRequest naming the known pathways
    uow = svc.uow_factory()

    def pieces() -> Iterator[bytes]:
        with uow:
            yield from xes_document(audit_entries(uow, pathway))

    return StreamingResponse(
        pieces(),
        media_type=XES_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="carepath-audit.xes"'},
    )
