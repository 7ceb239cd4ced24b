"""The ``carepath`` command line. Thin: parse, call one use case, render.

One module per command or group: ``replay``, ``definition``, ``episode``, ``audit``, ``db``,
``scheduler``, ``serve``, ``token``, ``measures``, ``webhook``; ``console`` is how a command
ends on a user error, and ``carepath.bootstrap`` gives every command its wiring. A command's
module is imported only when it is the command run (``COMMANDS``), and heavy modules (engine,
storage, web) only inside the commands that need them, so that ``carepath --help`` and every
command start fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import NamedTuple

import typer

from carepath.cli.console import PLAIN_HELP, command_group
from carepath.cli.replay import replay_command


def _root() -> None:
    """carepath: clinical care pathways as explainable, versioned state machines."""


def _root_app() -> typer.Typer:
    """The root command with ``replay`` (light: its heavy imports are inside the command)."""
    root = typer.Typer(help=_root.__doc__, no_args_is_help=True, add_completion=False, **PLAIN_HELP)
    root.callback()(_root)
    root.command("replay")(replay_command)
    return root


app = _root_app()


class Entry(NamedTuple):
    """A command beside ``replay``: where it lives, and the line ``carepath --help`` shows."""

    module: str
    attribute: str
    group: bool  # a command group (``carepath definition …``), or one command
    summary: str  # its help's first line (tests/integration/test_cli_startup.py)
    also: tuple[str, ...] = ()  # modules that add commands to the group when imported


# Each in its own module, imported only when it is the command run: typer reads the signature
# of every registered command before it runs any (~0.1 s for all of them, as long again as
# their imports). In the order ``carepath --help`` lists them.
COMMANDS: dict[str, Entry] = {
    "definition": Entry(
        "carepath.cli.definition", "definition_app", True,
        "Check, draw, export and describe a pathway definition.",
    ),
    "episode": Entry(
        "carepath.cli.episode", "episode_app", True,
        "Open, advance, inspect and close episodes.", ("carepath.cli.episode_book",),
    ),
    "audit": Entry(
        "carepath.cli.audit", "audit_app", True, "Verify and export the tamper-evident audit log."
    ),
    "db": Entry("carepath.cli.db", "db_app", True, "Database schema."),
    "scheduler": Entry(
        "carepath.cli.scheduler", "scheduler_app", True,
        "Fire due timers exactly once, with any number of workers.",
    ),
    "serve": Entry(
        "carepath.cli.serve", "serve_command", False,
        "Serve the coordinator pages and the JSON API (with an embedded timer scheduler).",
    ),
    "token": Entry(
        "carepath.cli.token", "token_app", True, "API tokens: create (shown once), list, revoke."
    ),
    "measures": Entry(
        "carepath.cli.measures", "measures_command", False,
        "Quality measures of each pathway, computed from its episodes' histories: numerator, "
        "denominator, ratio and band, by month; outcomes, time in state and refusals.",
    ),
    "webhook": Entry(
        "carepath.cli.webhook", "webhook_app", True,
        "Webhook subscriptions: add (secret shown once), list, remove, rotate-secret.",
    ),
}  # fmt: skip
_registered: set[str] = set()


def _register(names: Iterable[str]) -> None:
    """Add these commands to ``app``, each once (the tests invoke the CLI in process
    thousands of times, and each invocation rebuilds the whole command tree)."""
    for name in names:
        if name in _registered:
            continue
        entry = COMMANDS[name]
        target = getattr(importlib.import_module(entry.module), entry.attribute)
        for module in entry.also:
            importlib.import_module(module)
        if entry.group:
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
        _registered.add(name)


def _register_groups() -> None:
    """Every command on ``app``: what the tests invoke."""
    _register(COMMANDS)


def _overview() -> typer.Typer:
    """The root's help, usage errors and unknown commands: every command's name and summary,
    none of their modules imported."""
    overview = _root_app()
    for name, entry in COMMANDS.items():
        if entry.group:
            overview.add_typer(command_group(entry.summary), name=name)
        else:
            overview.command(name, help=entry.summary)(_not_loaded)
    return overview


def _not_loaded() -> None:  # pragma: no cover - the overview never runs a command
    raise RuntimeError("the overview's commands are names only")


def main() -> None:
    from carepath.settings import SettingsError

    args = sys.argv[1:]
    name = args[0] if args else None  # the command: the root takes no option but --help
    if name in COMMANDS:
        _register([name])
    run = app if name in COMMANDS or name == "replay" else _overview()
    try:
        run()
    except SettingsError as exc:  # a bad environment variable: one line, not a traceback
        typer.echo(f"carepath: error: {exc}", err=True)
        raise SystemExit(2) from None
