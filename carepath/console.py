"""How the command line ends on a user error: one line on stderr, a non-zero exit."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``carepath: error: <message>`` on stderr and exit (2: bad input, nothing changed)."""
    typer.echo(f"carepath: error: {message}", err=True)
    raise typer.Exit(code)
