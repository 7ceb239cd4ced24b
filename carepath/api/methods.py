"""Which methods a path answers, for ``OPTIONS`` and for a 405's ``Allow``.

Starlette answers a method a path does not take with the ``Allow`` of the *first* route whose
path matched; where a path has a GET route and a POST route (``/api/episodes``), that lists
only one of them. Here every route of the app whose path matches is asked, so ``Allow`` lists
them all, and ``OPTIONS`` is answered (204, nothing else) for every path that exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send


def _routes(routes: Any) -> Iterator[Any]:
    """Every route, routers included with ``include_router`` opened up (FastAPI keeps them
    as one entry whose candidates are the routes)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            yield from contexts()
        else:
            yield route


def allowed_methods(app: Any, scope: Scope) -> list[str]:
    """The methods some route of ``app`` answers at the scope's path (empty: no such path)."""
    path = scope.get("path", "")
    methods: set[str] = set()
    for route in _routes(getattr(app, "routes", ())):
        if isinstance(route, Mount):
            if route.matches({**scope, "method": "GET"})[0] is not Match.NONE:
                methods |= {"GET", "HEAD"}
            continue
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    if not methods:
        return []
    return sorted(methods | {"OPTIONS"})


class AnswerOptions:
    """ASGI middleware: ``OPTIONS`` on a path that exists is a 204 with its full ``Allow``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            allow = allowed_methods(scope.get("app"), scope)
            if allow:
                headers = [(b"allow", ", ".join(allow).encode()), (b"content-length", b"0")]
                await send({"type": "http.response.start", "status": 204, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)
