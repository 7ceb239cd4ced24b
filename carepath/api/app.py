"""The HTTP API's application factory: one app per database, definitions and clock.

``create_api`` builds a FastAPI app that holds nothing of its own but wiring: the SQL
unit-of-work factory (built once per app by ``carepath.bootstrap``; its engine also serves
tokens and the worklist), the definition registry, and the clock (``app.state.clock``, a zero-argument function returning an
aware UTC datetime; tests replace it to move time). Routes are thin: parse, call one use case
or one query, render (see ``episodes.py``, ``audit.py``, ``definitions.py``, ``tokens.py``).

The HTML pages and ``carepath serve`` are built on top of this app by mounting their own router
and static files on it; nothing here knows about pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial

from fastapi import FastAPI

from carepath.api import appointments, audit, episodes, measures, tokens, webhooks
from carepath.api import definitions as definition_routes
from carepath.api import explain as explain_routes
from carepath.api.logs import redact_access_log
from carepath.api.methods import AnswerOptions
from carepath.api.openapi_docs import problem_media_types
from carepath.api.problems import BodyLimit, install_problem_handlers
from carepath.api.swagger_docs import install_docs
from carepath.bootstrap import current_definitions, open_database, wire
from pathway.usecases import DefinitionRegistry
from storage.access import TokenStore
from storage.unit_of_work import SqlUnitOfWorkFactory
from storage.worklist import Worklist

MAX_BODY = 1 << 20  # 1 MiB: far more than any command needs


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_api(
    *,
    database_url: str | None = None,
    definitions: DefinitionRegistry | None = None,
    uow_factory: SqlUnitOfWorkFactory | None = None,
) -> FastAPI:
    """The carepath JSON API, ready to serve or to mount more on.

    - ``database_url``: where episodes live (default: ``CAREPATH_DATABASE_URL``, see
      ``carepath.settings``); migrated to the latest schema if needed. Ignored when
      ``uow_factory`` is given.
    - ``definitions``: the definition registry (default: ``CAREPATH_DEFINITION`` or the shipped
      pathway, as the only and current version).
    - ``uow_factory``: an existing ``storage.unit_of_work.SqlUnitOfWorkFactory`` to share (its
      engine also serves tokens and the worklist); the caller then owns its disposal. Without
      it the app builds one and disposes of it at shutdown.

    ``app.state`` holds ``uow_factory``, ``definitions``, ``clock``, ``tokens`` (a
    ``storage.access.TokenStore``) and ``worklist``. Every endpoint is under ``/api/`` and needs
    ``Authorization: Bearer <token>``; the OpenAPI schema is at ``/openapi.json`` and its
    interactive docs at ``/api/docs``.
    """
    current = definitions.currents() if definitions is not None else current_definitions()
    owned = uow_factory is None
    factory = uow_factory or open_database(database_url)
    if hasattr(factory, "engine"):  # SQL: every version the database has seen, not only the file
        definitions = wire(current=current, factory=factory).definitions
    elif definitions is None:
        definitions = DefinitionRegistry(current)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            factory.dispose()

    app = FastAPI(
        title="carepath",
        version="1",
        description="Clinical care pathways as explainable, versioned state machines: "
        "episodes, their worklist, commands with evidence and citations, and the audit log.",
        openapi_url="/openapi.json",
        docs_url=None,  # carepath.api.swagger_docs: vendored assets and a CSP
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.uow_factory = factory
    app.state.definitions = definitions
    app.state.clock = utcnow
    app.state.tokens = TokenStore(factory.connections)
    app.state.worklist = Worklist(factory.connections)
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.add_middleware(AnswerOptions)
    for module in (
        episodes,
        audit,
        definition_routes,
        tokens,
        measures,
        explain_routes,
        appointments,
        webhooks,
    ):
        app.include_router(module.router)
    install_docs(app)
    app.openapi = partial(problem_media_types, app)  # type: ignore[method-assign]
    redact_access_log()
    return app
