"""How the command line ends on a user error: one line on stderr, a non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

# Help and usage errors as plain text: typer (which depends on rich) formats them with rich by
# default, and importing typer.rich_utils (rich.markdown, markdown_it, rich.traceback) more
# than doubled ``carepath --help``: 0.44 s against 0.26 s on a 2-core machine whose bare
# interpreter starts in 0.05 s.
PLAIN_HELP: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False}


def command_group(help_text: str) -> typer.Typer:
    """A command group (``carepath definition`` …): help on no arguments, plain text."""
    return typer.Typer(help=help_text, no_args_is_help=True, **PLAIN_HELP)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``carepath: error: <message>`` on stderr and exit (2: bad input, nothing changed)."""
    typer.echo(f"carepath: error: {message}", err=True)
    raise typer.Exit(code)


def database_problem(exc: BaseException) -> str | None:
    """One line for an error raised by the database layer (bad URL, server down, locked file);
    None for anything else, which is a bug and keeps its traceback."""
    database = sys.modules.get("storage.database")  # loaded if it is what raised
    if database is not None and isinstance(exc, database.SchemaNotCurrent):
        return f"database: {exc}"
    files = sys.modules.get("storage.file_modes")
    if files is not None and isinstance(exc, files.OrphanedJournal):
        return f"database: {exc}"
    module = type(exc).__module__.split(".")[0]
    if module not in ("sqlalchemy", "psycopg", "sqlite3", "alembic"):
        return None
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"database: {type(exc).__name__}: {detail[0] if detail else 'failed'}"


T = TypeVar("T")


def checked(rule: Callable[[T, str], T], value: T | None, flag: str) -> T | None:
    """``value`` (None passes) through one of ``carepath.inputs``' rules, the flag named in
    the one-line error a refusal prints (exit 2, nothing changed)."""
    from carepath.inputs import InputError

    if value is None:
        return None
    try:
        return rule(value, flag)
    except InputError as exc:
        fail(str(exc))


def run_reporting(action: Callable[[], T]) -> T:
    """Run a command's body: a PathwayError or a database problem becomes one line on stderr
    and exit 2 (nothing was written: the use cases raise before writing)."""
    from carepath.audit_keys import AuditKeyError
    from pathway.errors import PathwayError

    try:
        return action()
    except (PathwayError, AuditKeyError) as exc:
        fail(str(exc))
    except Exception as exc:
        # loaded if it is what raised: importing it here would load SQLAlchemy and Alembic
        # (~0.3 s) into every command, an in-memory replay's too
        clock = sys.modules.get("scheduler.clock")
        if clock is not None and isinstance(exc, clock.ClockSkewed):
            fail(f"{exc.reading.explain('commands on this host are refused')}; fix its clock")
        problem = database_problem(exc)
        if problem is None:
            raise
        fail(problem)
