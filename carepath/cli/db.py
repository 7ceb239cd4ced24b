"""``carepath db …``: the database schema, and on PostgreSQL the roles that own and use it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from carepath.cli.console import command_group, fail, run_reporting

if TYPE_CHECKING:
    from storage.roles import Roles

db_app = command_group("Database schema.")

OwnerRole = Annotated[
    str,
    typer.Option(envvar="CAREPATH_OWNER_ROLE", help="PostgreSQL role that owns the schema."),
]
AppRole = Annotated[
    str,
    typer.Option(envvar="CAREPATH_APP_ROLE", help="PostgreSQL role the application runs as."),
]


@db_app.command()
def upgrade(
    create_roles: Annotated[
        bool,
        typer.Option(
            "--create-roles",
            help="PostgreSQL, run by an administrator: create the owner and application roles "
            "(passwords from CAREPATH_OWNER_PASSWORD and CAREPATH_APP_PASSWORD), migrate as "
            "the owner and grant the application role its rights.",
        ),
    ] = False,
    owner_role: OwnerRole = "carepath_owner",
    app_role: AppRole = "carepath_app",
) -> None:
    """Create or upgrade the schema to the latest migration, connected as
    CAREPATH_MIGRATION_URL (the owner role), else as CAREPATH_DATABASE_URL."""
    from carepath.settings import Settings
    from storage.roles import Roles

    settings = Settings.from_env()
    url = settings.migration_url or settings.database_url
    try:
        roles = Roles(owner_role, app_role)
    except ValueError as exc:
        fail(str(exc))
    if create_roles:
        _create_roles(url, roles)
        return
    from storage.database import upgrade as run_upgrade
    from storage.roles import regrant

    run_reporting(lambda: run_upgrade(url))
    if run_reporting(lambda: regrant(url, roles)):
        typer.echo(f"grants for {roles.app} applied")
    typer.echo("schema up to date")


def _create_roles(url: str, roles: Roles) -> None:
    from storage.database import normalise_url
    from storage.roles import set_up

    backend = normalise_url(url).get_backend_name()
    if backend != "postgresql":
        fail(f"--create-roles: got a {backend} database URL, expected a PostgreSQL one")
    passwords = {
        roles.owner: os.environ.get("CAREPATH_OWNER_PASSWORD") or None,
        roles.app: os.environ.get("CAREPATH_APP_PASSWORD") or None,
    }
    for line in run_reporting(lambda: set_up(url, roles, passwords)):
        typer.echo(line)
    for name, password in passwords.items():
        if password is None:
            typer.echo(f"note: {name} has no password (peer or certificate authentication)")
    typer.echo(
        f"now run the application as {roles.app} (CAREPATH_DATABASE_URL) and later "
        f"migrations as {roles.owner} (CAREPATH_MIGRATION_URL)"
    )
