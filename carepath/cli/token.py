"""``carepath token …``: API tokens on the configured database (create, list, revoke).

``create`` prints the token once, alone on the last line (``tail -1`` gets it); only its sha256
is stored, so a lost token is revoked and replaced, never recovered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from carepath.cli.console import command_group, database_problem, fail

if TYPE_CHECKING:
    from storage.access import Token, TokenStore

token_app = command_group("API tokens: create (shown once), list, revoke.")


def _store() -> TokenStore:
    """The token store of CAREPATH_DATABASE_URL (schema upgraded if new)."""
    from carepath.bootstrap import open_database
    from storage.access import TokenStore

    try:
        return TokenStore(open_database().connections)
    except Exception as exc:
        problem = database_problem(exc)
        if problem is None:
            raise
        fail(problem)


def _line(token: Token) -> str:
    revoked = f"revoked {token.revoked_at.isoformat()}" if token.revoked_at else "live"
    used = token.last_used_at.isoformat() if token.last_used_at else "never"
    return f"{token.id}  {token.name:<24} {token.role:<12} {revoked:<36} last used {used}"


@token_app.command()
def create(
    role: Annotated[str, typer.Option(help="coordinator, auditor, admin or scheduler")],
    name: Annotated[str, typer.Option(help="Unique; the audit log names it as token:<name>.")],
) -> None:
    """Create a token; it is printed once, alone on the last line."""
    store = _store()
    try:
        token, secret = store.create(name, role, datetime.now(UTC))
    except ValueError as exc:  # a bad name or role, or a name already taken
        fail(str(exc))
    typer.echo(f"token {token.id} ({token.role}) for {token.actor}; store it now, it is not kept:")
    typer.echo(secret)


@token_app.command("list")
def list_() -> None:
    """Every token, live and revoked (never the secrets)."""
    for token in _store().list():
        typer.echo(_line(token))


@token_app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see token list).")],
) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from storage.access import TokenNotFound

    try:
        token = _store().revoke(token_id, datetime.now(UTC))
    except TokenNotFound as exc:
        fail(str(exc))
    typer.echo(_line(token))
