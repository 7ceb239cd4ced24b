"""Who may call what: bearer tokens, checked before anything else of the request is read.

Each route names the roles allowed to call it (``roles(...)``, published in the OpenAPI schema
as ``x-roles``). ``GuardedRoute`` authenticates the token and checks the role *before* the
body is parsed, so a caller without a valid token learns nothing from validation errors:
no token, or an unknown or revoked one, is 401; a valid token of another role is 403.

Roles: ``coordinator`` reads and writes episodes; ``auditor`` reads, and reads the audit log
(history, verify, export); ``admin`` manages tokens and reads everything; ``scheduler`` tokens
are for the background worker and open no endpoint of this API.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from carepath.api.problems import ProblemError
from storage.access import Token

COORDINATOR, AUDITOR, ADMIN = "coordinator", "auditor", "admin"
READ = (COORDINATOR, AUDITOR, ADMIN)
WRITE = (COORDINATOR,)
ASSIGN = (COORDINATOR, ADMIN)  # who may give an episode an owner
AUDIT = (AUDITOR, ADMIN)
TOKENS = (ADMIN,)

# Declared on the routers so that the OpenAPI schema says "bearer"; the check is GuardedRoute's.
bearer = HTTPBearer(auto_error=False, description="A carepath API token (`carepath token create`).")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="carepath"'}


def roles(*allowed: str) -> dict[str, Any]:
    """A route's ``openapi_extra``: the roles allowed to call it."""
    return {"x-roles": list(allowed)}


class GuardedRoute(APIRoute):
    """An API route that authenticates its caller and checks their role before parsing the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        allowed = frozenset((self.openapi_extra or {}).get("x-roles", ()))

        async def guarded(request: Request) -> Response:
            token = await run_in_threadpool(authenticate, request)
            if token.role not in allowed:
                raise ProblemError(
                    403,
                    "forbidden",
                    f"role {token.role!r} may not call this endpoint; "
                    f"expected one of {', '.join(sorted(allowed)) or 'no role'}",
                )
            request.state.token = token
            return await handler(request)

        return guarded


def authenticate(request: Request) -> Token:
    """The live token of the ``Authorization: Bearer`` header; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ProblemError(
            401,
            "unauthorized",
            "expected an Authorization: Bearer <token> header",
            headers=_CHALLENGE,
        )
    state = request.app.state
    token = state.tokens.authenticate(secret.strip(), state.clock())
    if token is None:
        raise ProblemError(
            401,
            "unauthorized",
            "the bearer token is unknown or revoked",
            headers=_CHALLENGE,
        )
    return token


def caller(request: Request) -> Token:
    """Dependency: the token that authenticated this request (set by GuardedRoute)."""
    return request.state.token  # type: ignore[no-any-return]
