"""What the OpenAPI schema says beyond what FastAPI derives: problem responses and headers.

Routes list the error statuses they can answer (``problems(404, 422)``); every guarded route
also answers 401 and 403. FastAPI documents a response model as ``application/json``; the
error responses are ``application/problem+json``, which ``problem_media_types`` rewrites
after generation so that the schema says exactly what is sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from carepath.api.openapi_pathways import describe_pathways
from carepath.api.problems import MEDIA_TYPE, Problem

_WHY = {
    401: "No bearer token, or an unknown or revoked one.",
    403: "The token's role may not call this endpoint.",
    404: "No such episode (or token, or definition version).",
    409: "A conflict: the episode changed meanwhile, is closed, or the name is taken.",
    412: "If-Match names a version the episode is no longer at.",
    422: "A value the schema or the pathway refuses: the problem names it.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": Problem, "description": _WHY[status]} for status in statuses}


AUTH_PROBLEMS = problems(401, 403)
ETAG_HEADER = {
    "ETag": {
        "description": 'The episode\'s version: "<id>:<version>".',
        "schema": {"type": "string"},
    }
}
COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Replayed: this Idempotency-Key was applied before; its first outcome.",
        "headers": {"Idempotent-Replayed": {"description": "true", "schema": {"type": "string"}}},
    },
    201: {"description": "Applied now.", "headers": ETAG_HEADER},
}


def problem_media_types(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI schema, with error responses as ``application/problem+json``."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        content[MEDIA_TYPE] = content.pop("application/json")
        describe_pathways(schema, app.state.definitions)
        app.openapi_schema = schema
    return app.openapi_schema
