"""``carepath episode book``: book, move or cancel an episode's review appointment, and list
its windows.

A booking is for a day inside a window the definition declares (``pathway.windows``): the
window is named by the rule id of the timer that opens it (``carepath episode book ID
--windows`` lists them). A day outside needs ``--reason`` and is recorded as a deviation.
Parse → ``pathway.usecases.handle`` → render, as every episode command (``carepath.cli.episode``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from carepath import inputs
from carepath.cli.console import checked, fail, run_reporting
from carepath.cli.episode import (
    Actor,
    At,
    EventId,
    _backend,
    _handle,
    _keys,
    _now,
    _print_applied,
    _stamp,
    episode_app,
)


@episode_app.command()
def book(
    episode_id: str,
    window: Annotated[
        str | None, typer.Option("--window", help="The window: its opening timer's rule id.")
    ] = None,
    on: Annotated[str | None, typer.Option("--on", help="The day, YYYY-MM-DD.")] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for a day outside the window.")
    ] = None,
    move: Annotated[bool, typer.Option("--move", help="Move the booked appointment.")] = False,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Cancel the booked appointment.")
    ] = False,
    windows: Annotated[
        bool, typer.Option("--windows", help="List the upcoming and open windows.")
    ] = False,
    actor: Actor = None,
    at: At = None,
    event_id: EventId = None,
) -> None:
    """Book (or --move, --cancel) the episode's review appointment inside a protocol window."""
    from pathway.model import Booking

    if windows:
        _print_windows(episode_id)
        return
    if move and cancel:
        fail("--move, --cancel: give one of them, or neither to book")
    action = "cancel" if cancel else "move" if move else "book"
    if not window:
        fail("--window: give the window's rule id (see --windows)")
    checked(inputs.identifier, window, "--window")
    day = None
    if action != "cancel":
        if on is None:
            fail(f"--on: give the day to {action} for, YYYY-MM-DD")
        day = checked(inputs.booking_day, on, "--on")
    why = None if reason is None else checked(inputs.booking_reason, reason, "--reason")
    event = Booking(*_stamp(actor, at, event_id), action, window, day, why)
    applied = _handle(episode_id, event, **_keys(at, event_id))
    _print_applied(applied)
    episode = applied.decision.episode if applied.decision else None
    a = episode.appointment if episode else None
    if applied.decision is None:
        return
    if a is None:
        typer.echo("appointment: none")
    else:
        outside = f"  OUTSIDE the window: {a.reason}" if a.deviation else ""
        typer.echo(f"appointment: {a.window} on {a.on} ({a.status}){outside}")


def _print_windows(episode_id: str) -> None:
    from pathway.windows import episode_windows

    checked(inputs.identifier, episode_id, "EPISODE_ID")
    definitions, uow = _backend()

    def read():  # type: ignore[no-untyped-def]
        with uow:
            return uow.get_episode(episode_id)

    episode = run_reporting(read)
    found = episode_windows(definitions.get(episode.definition_version), episode, _now())
    for w in found:
        typer.echo(f"{w.rule}  {w.status}  {w.first_day} to {w.last_day}  {w.label}")
    if not found:
        typer.echo("no upcoming or open window")
    a = episode.appointment
    typer.echo(f"appointment: {a.window} on {a.on} ({a.status})" if a else "appointment: none")
