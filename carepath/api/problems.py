"""Every error the API returns is a problem document (RFC 9457, ``application/problem+json``).

``type``, ``title``, ``status`` and ``detail`` always; ``field``, ``value`` and ``expected`` when
the error knows them (a PathwayError's fact or field, a request-validation error's location).
Status codes: 422 for a value the pathway or the schema refuses, 404 for an unknown episode,
409 for a conflict (stale write, closed episode, token name taken), 412 for a stale
``If-Match``, 401/403 for authentication and role.

An unexpected exception becomes a bare 500 problem: no stack trace and no exception message in
the response or in the log (a driver's message may quote the values of the row it was
writing, and those are patient data); the log gets the exception's type and the code
locations of its traceback.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pathway.errors import (
    ConcurrencyConflict,
    EpisodeClosed,
    EpisodeNotFound,
    InvalidDefinition,
    InvalidObservation,
    InvalidRequest,
    PathwayError,
)
from storage.access import TokenNameTaken, TokenNotFound

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:carepath:problem:"
log = logging.getLogger("carepath.api")


class FieldProblem(BaseModel):
    """One invalid part of a request, as FastAPI's validation found it."""

    field: str
    expected: str


class Problem(BaseModel):
    """An RFC 9457 problem document, with carepath's extension members."""

    type: str = Field(examples=["urn:carepath:problem:invalid-observation"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = Field(None, description="The fact, field, parameter or header at fault.")
    value: Any = Field(None, description="The value given, when there was one.")
    expected: str | None = Field(None, description="What would have been accepted.")
    errors: list[FieldProblem] | None = None


class ProblemError(Exception):
    """Raised by the API itself (auth, If-Match, idempotency key) to answer with a problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **members: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.headers, self.members = headers, members


def problem(
    request: Request,
    status: int,
    slug: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": slug.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    for name, value in members.items():
        body[name] = _json_safe(value) if name == "value" else value
    body = _encodable(body)
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _json_safe(value: Any) -> Any:
    """The value as given if JSON can say it (not NaN, not a 10⁴⁰-digit integer), else its repr."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError):  # UnicodeEncodeError (a lone surrogate) is a ValueError
        return repr(value)
    return value


def _encodable(value: Any) -> Any:
    """The body with every string UTF-8 can encode: a lone surrogate echoed from the request
    (in a detail, a field name or an error list) is written as its escape, not a 500."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode()
        return value
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


_PATHWAY_STATUS: list[tuple[type[PathwayError], int, str]] = [
    (InvalidObservation, 422, "invalid-observation"),
    (InvalidRequest, 422, "invalid-request"),
    (EpisodeNotFound, 404, "episode-not-found"),
    (EpisodeClosed, 409, "episode-closed"),
    (ConcurrencyConflict, 409, "concurrency-conflict"),
    (InvalidDefinition, 409, "definition-not-loaded"),
]


async def _pathway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PathwayError)
    status, slug = next(
        ((s, t) for cls, s, t in _PATHWAY_STATUS if isinstance(exc, cls)), (409, "refused")
    )
    members: dict[str, Any] = {}
    if isinstance(exc, InvalidObservation):
        field = exc.fact if exc.fact == "facts" else f"facts.{exc.fact}"
        members = {"field": field, "value": exc.value, "expected": exc.expected}
    elif isinstance(exc, InvalidRequest):
        members = {"field": exc.field, "value": exc.value, "expected": exc.expected}
    return problem(request, status, slug, exc.message, **members)


async def _problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem(request, exc.status, exc.slug, exc.detail, headers=exc.headers, **exc.members)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors()) or [{"loc": (), "msg": "a valid request"}]
    errors = [_field_problem(e) for e in raw]
    members: dict[str, Any] = dict(errors[0])
    if "input" in raw[0] and raw[0].get("type") not in ("missing", "json_invalid"):
        members["value"] = raw[0]["input"]
    detail = "; ".join(f"{e['field']}: {e['expected']}" for e in errors)
    return problem(request, 422, "invalid-request", detail, errors=errors, **members)


def _field_problem(error: Any) -> dict[str, str]:
    if error.get("type") == "json_invalid":
        return {"field": "body", "expected": "a JSON document"}
    return {"field": _location(error.get("loc", ())), "expected": str(error.get("msg", ""))}


def _location(loc: Any) -> str:
    """``("body", "facts", "name")`` → ``facts.name``; a header or query parameter by its name."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8): as invalid JSON
        return problem(
            request,
            422,
            "invalid-request",
            "the body is not a UTF-8 JSON document",
            field="body",
            expected="a JSON document",
        )
    slug = {404: "not-found", 405: "method-not-allowed", 413: "request-too-large"}.get(
        exc.status_code, "http-error"
    )
    detail = exc.detail if isinstance(exc.detail, str) else slug.replace("-", " ")
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:  # every route of the path, not only the first that matched
        from carepath.api.methods import allowed_methods

        allow = allowed_methods(request.app, request.scope)
        headers = {**(headers or {}), "Allow": ", ".join(allow)} if allow else headers
    return problem(request, exc.status_code, slug, detail, headers=headers)


async def _token_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, TokenNameTaken):
        return problem(
            request,
            409,
            "token-name-taken",
            str(exc),
            field="name",
            value=exc.name,
            expected="a name no other token has had",
        )
    assert isinstance(exc, TokenNotFound)
    return problem(request, 404, "token-not-found", str(exc))


async def _clock_skewed(request: Request, exc: Exception) -> JSONResponse:
    """This host's clock is off the database's: a command now would fire timers at the wrong
    time, so nothing runs until an operator fixes the clock."""
    reading = exc.reading  # type: ignore[attr-defined]
    return problem(
        request,
        503,
        "clock-skewed",
        f"{reading.explain('commands on this host are refused')}; fix its clock",
        headers={"Retry-After": "60"},
    )


def install_problem_handlers(app: FastAPI) -> None:
    from scheduler.clock import ClockSkewed

    app.add_exception_handler(ClockSkewed, _clock_skewed)
    app.add_exception_handler(PathwayError, _pathway_error)
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(TokenNameTaken, _token_error)
    app.add_exception_handler(TokenNotFound, _token_error)
    app.add_middleware(UnexpectedErrors)


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is a 413 problem, whether its Content-Length
    says so before it is read or it grows past the limit while being read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise StarletteHTTPException(413, self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"the request body is over {self.limit} bytes"

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        await problem(request, 413, "request-too-large", self._detail())(scope, receive, send)


class UnexpectedErrors:
    """ASGI middleware: an exception no handler took becomes a 500 problem, logged without its
    message, and is not raised further (Starlette's own 500 handler re-raises it, and the server
    then logs its message, which may quote row values or, from pydantic, the input)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            where = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
            log.error(
                "unexpected %s on %s %s\n%s",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                where,
            )
            if started:  # mid-stream: the server closes the connection, the client sees it cut
                return
            body = {
                "type": TYPE_BASE + "internal-error",
                "title": "Internal error",
                "status": 500,
                "detail": "the server failed to answer; the error is logged (without patient data)",
                "instance": scope.get("path"),
            }
            response = JSONResponse(body, status_code=500, media_type=MEDIA_TYPE)
            await response(scope, receive, send)
