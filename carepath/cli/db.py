"""``carepath db …``: the database schema."""

from __future__ import annotations

import typer

from carepath.cli.console import run_reporting

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command()
def upgrade() -> None:
    """Create or upgrade the schema of CAREPATH_DATABASE_URL to the latest migration."""
    from carepath.settings import Settings
    from storage.database import upgrade as run_upgrade

    url = Settings.from_env().database_url
    run_reporting(lambda: run_upgrade(url))
    typer.echo("schema up to date")
