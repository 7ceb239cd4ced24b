"""``carepath serve``: the API, the coordinator pages and the timer scheduler, in one command.

The lead registers it with ``app.command("serve")(serve_command)``. With ``--workers N`` uvicorn
runs N processes, each with its own embedded scheduler: safe, because a timer is claimed and
fired exactly once in the database whoever sweeps it. ``--demo`` first loads the demo cohort
(``carepath.demo``) into the configured database and prints two fresh tokens to sign in with.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from carepath.cli.console import run_reporting

if TYPE_CHECKING:
    from carepath.demo import DemoLoad
    from carepath.settings import Settings

T = TypeVar("T")


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler",
            help="Do not fire timers in this server (run a separate `carepath scheduler run`).",
        ),
    ] = False,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Load the demo cohort into the database first and print sign-in tokens."
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Web worker processes (each embeds a scheduler).")
    ] = 1,
) -> None:
    """Serve the coordinator pages and the JSON API (with an embedded timer scheduler)."""
    import uvicorn

    from carepath.settings import Settings

    settings = Settings.from_env()
    if demo:
        _load_demo(settings)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    typer.echo(f"carepath: serving {url}  (API under {url}api/, docs {url}api/docs)")
    typer.echo(f"carepath: database {_display(settings.database_url)}")
    typer.echo(
        f"carepath: timers {'not fired here (--no-scheduler)' if no_scheduler else 'fired by the embedded scheduler'}"
    )
    if workers == 1:
        from carepath.server import build_app

        app = run_reporting(lambda: build_app(settings, scheduler=not no_scheduler))
        uvicorn.run(app, host=host, port=port, log_level="info")
        return
    from carepath.server import SCHEDULER_ENV

    os.environ[SCHEDULER_ENV] = "0" if no_scheduler else "1"
    uvicorn.run(
        "carepath.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _load_demo(settings: Settings) -> None:
    from carepath.bootstrap import current_definitions
    from carepath.demo import load_demo
    from carepath.progress import Bars
    from pathway.usecases import DefinitionRegistry

    def body() -> DemoLoad:
        definitions = DefinitionRegistry(current_definitions(settings))
        now = datetime.now(UTC)
        return load_demo(settings.database_url, definitions, now, progress=bars("demo history"))

    with Bars(unit="patients") as bars:  # stderr, a terminal only
        result = run_reporting(body)
    loaded = result.loaded
    typer.echo(
        f"carepath: demo cohort: {loaded.created} episode(s) created, {loaded.present} already present"
    )
    typer.echo(
        "carepath: sign in with one of these tokens (shown once; earlier demo tokens revoked):"
    )
    typer.echo(f"  coordinator  {result.tokens['coordinator']}")
    typer.echo(f"  admin        {result.tokens['admin']}")


def _display(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
