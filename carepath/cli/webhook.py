"""``carepath webhook …``: webhook subscriptions on the configured database (admins).

``add`` prints the signing secret ``whsec_…`` once, alone on the last line (``tail -1`` gets
it); it is stored encrypted under a key derived from the audit key, never in clear.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from carepath.cli.console import command_group, database_problem, fail

if TYPE_CHECKING:
    from storage.unit_of_work import SqlUnitOfWorkFactory
    from storage.webhooks import Subscription

webhook_app = command_group(
    "Webhook subscriptions: add (secret shown once), list, remove, rotate-secret."
)


def _factory() -> SqlUnitOfWorkFactory:
    from carepath.bootstrap import open_database

    try:
        return open_database()
    except Exception as exc:
        problem = database_problem(exc)
        if problem is None:
            raise
        fail(problem)


def _line(sub: Subscription) -> str:
    patient = " +patient_ref" if sub.include_patient_ref else ""
    return f"{sub.id}  {sub.url}  {','.join(sub.events)}{patient}  by {sub.created_by}"


@webhook_app.command()
def add(
    url: Annotated[str, typer.Argument(help="https:// target (http:// only on loopback).")],
    events: Annotated[str, typer.Option(help="Comma-separated event types.")],
    include_patient_ref: Annotated[
        bool, typer.Option("--include-patient-ref", help="Send the patient reference too.")
    ] = False,
) -> None:
    """Subscribe URL to events; the signing secret is printed once, alone on the last line."""
    from carepath import webhooks
    from pathway.errors import InvalidRequest
    from storage.webhooks import WebhookStore

    factory = _factory()
    try:
        sub, secret = webhooks.add(
            WebhookStore(factory), factory.audit_key, url, events, "cli",
            datetime.now(UTC), include_patient_ref=include_patient_ref,
        )  # fmt: skip
    except InvalidRequest as exc:
        fail(str(exc))
    typer.echo(_line(sub))
    typer.echo("signing secret (store it now, it is not shown again):")
    typer.echo(secret)


@webhook_app.command("list")
def list_() -> None:
    """Every subscription (never the secrets)."""
    from storage.webhooks import WebhookStore

    for sub in WebhookStore(_factory()).list():
        typer.echo(_line(sub))


@webhook_app.command()
def remove(subscription_id: Annotated[str, typer.Argument(help="ws_… (see webhook list)")]) -> None:
    """Remove a subscription and its undelivered messages."""
    from storage.webhooks import SubscriptionNotFound, WebhookStore

    try:
        WebhookStore(_factory()).remove(subscription_id)
    except SubscriptionNotFound as exc:
        fail(str(exc))
    typer.echo(f"removed {subscription_id}")


@webhook_app.command("rotate-secret")
def rotate_secret(
    subscription_id: Annotated[str, typer.Argument(help="ws_… (see webhook list)")],
) -> None:
    """Replace the signing secret; the new one is printed once, alone on the last line."""
    from carepath import webhooks
    from storage.webhooks import SubscriptionNotFound, WebhookStore

    factory = _factory()
    try:
        secret = webhooks.rotate(
            WebhookStore(factory), factory.audit_key, subscription_id, datetime.now(UTC)
        )
    except SubscriptionNotFound as exc:
        fail(str(exc))
    typer.echo(f"new signing secret for {subscription_id} (store it now):")
    typer.echo(secret)
