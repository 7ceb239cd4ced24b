"""The ``carepath`` command line. Thin: parse, call one use case, render.

One module per command group: ``replay``, ``definition``, ``episode``, ``audit``, ``db``,
``scheduler``, ``serve``, ``token``, ``measures``, ``webhook``; ``console`` is how a command ends on a user error, and
``carepath.bootstrap`` gives every command its wiring. Heavy modules (engine, storage, web) are
imported inside the commands that need them, so that ``carepath --help`` starts fast.
"""

from __future__ import annotations

import typer

from carepath.cli.console import PLAIN_HELP
from carepath.cli.replay import replay_command

app = typer.Typer(
    help="carepath: clinical care pathways as explainable, versioned state machines.",
    no_args_is_help=True,
    add_completion=False,
    **PLAIN_HELP,
)


@app.callback()
def _root() -> None:
    """carepath: clinical care pathways as explainable, versioned state machines."""


app.command("replay")(replay_command)  # light: its heavy imports are inside the command

# command groups, each in its own module, imported when the group is registered


def _register_groups() -> None:
    """Add the command groups to ``app``, once: a second call (the tests invoke the CLI in
    process thousands of times) would add every group again, and each invocation rebuilds
    the whole command tree."""
    if app.registered_groups:
        return
    from carepath.cli.audit import audit_app
    from carepath.cli.db import db_app
    from carepath.cli.definition import definition_app
    from carepath.cli.episode import episode_app
    from carepath.cli.episode_book import book  # noqa: F401  (registers `episode book`)
    from carepath.cli.measures import measures_command
    from carepath.cli.scheduler import scheduler_app
    from carepath.cli.serve import serve_command
    from carepath.cli.token import token_app
    from carepath.cli.webhook import webhook_app

    app.add_typer(definition_app, name="definition")
    app.add_typer(episode_app, name="episode")
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")
    app.add_typer(scheduler_app, name="scheduler")
    app.command("serve")(serve_command)
    app.add_typer(token_app, name="token")
    app.command("measures")(measures_command)
    app.add_typer(webhook_app, name="webhook")


def main() -> None:
    from carepath.settings import SettingsError

    try:
        _register_groups()
    except KeyboardInterrupt:  # Ctrl-C while the commands load: an interruption, not a trace
        raise SystemExit(130) from None
    try:
        app()
    except SettingsError as exc:  # a bad environment variable: one line, not a traceback
        typer.echo(f"carepath: error: {exc}", err=True)
        raise SystemExit(2) from None
