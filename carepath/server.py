"""The whole web application in one process: the JSON API, the coordinator pages, the scheduler.

``build_app`` is what ``carepath serve`` runs: the API (``carepath.api.app.create_api``) with
the pages and their static files mounted on it, and a lifespan that starts an embedded
scheduler when the server starts and stops it (finishing the timer in hand, releasing its
claims) when the server stops. Several server processes may each embed one: timers fire
exactly once because claims and row versions live in the database.

``app_from_env`` is the same for uvicorn's worker processes, which can only be given an import
string: they read the settings, and ``CAREPATH_SERVE_SCHEDULER=0`` (set by ``--no-scheduler``),
from the environment they inherit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from carepath.api.app import create_api
from carepath.bootstrap import current_definitions, wire
from carepath.settings import Settings
from carepath.web.pages import install_pages
from pathway.definition import Definition
from pathway.usecases import DefinitionRegistry

if TYPE_CHECKING:
    from scheduler.service import SchedulerService

SCHEDULER_ENV = "CAREPATH_SERVE_SCHEDULER"
log = logging.getLogger("carepath.server")


def build_app(settings: Settings, *, scheduler: bool = True) -> FastAPI:
    """The API, the pages and (unless ``scheduler=False``) an embedded timer scheduler."""
    current = current_definitions(settings)
    app = create_api(database_url=settings.database_url, definitions=DefinitionRegistry(current))
    install_pages(app, settings)
    app.state.scheduler = None
    api_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        async with api_lifespan(running):
            handle = None
            if scheduler:
                handle = await run_in_threadpool(start_scheduler, settings, current)
            running.state.scheduler = handle
            try:
                yield
            finally:
                if handle is not None:
                    await run_in_threadpool(handle.stop)
                running.state.scheduler = None

    app.router.lifespan_context = lifespan
    return app


def start_scheduler(settings: Settings, current: list[Definition]) -> SchedulerService:
    """The embedded scheduler (``stop()`` ends it), on a wiring of its own: its own connection
    pool, which it disposes of when it stops."""
    from carepath.audit_verify import checkpoint_writer
    from carepath.settings import checkpoint_seconds
    from carepath.webhooks import delivery_worker, poll_seconds
    from scheduler.embedded import start_embedded_scheduler

    wiring = wire(settings, current=current)
    tolerance = timedelta(seconds=settings.clock_tolerance_seconds)
    return start_embedded_scheduler(
        wiring.uow_factory,
        wiring.definitions,
        checkpoint=checkpoint_writer(settings, wiring.uow_factory),
        checkpoint_every=checkpoint_seconds(settings),
        clock_tolerance=tolerance,
        deliveries=delivery_worker(wiring.uow_factory),
        deliver_every=poll_seconds(),
    )


def app_from_env() -> FastAPI:
    """``build_app`` from the environment: the factory uvicorn's worker processes call."""
    return build_app(Settings.from_env(), scheduler=os.environ.get(SCHEDULER_ENV, "1") != "0")
