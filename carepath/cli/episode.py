"""``carepath episode …``: open, advance, inspect and close episodes on the database.

Every write takes ``--actor`` (default: the OS user), ``--at`` (clinical time, ISO 8601,
default now) and ``--event-id``, an idempotency key that is the actor's own (``cli:<actor>``,
``pathway.idempotency``): the same actor's same key with the same command, episode and body
applies once; with a different one it is refused (exit 2, one line) and nothing is written.
Each write is parse → ``pathway.usecases.handle`` → render: the handler fires the episode's
timers that are due by now first, so a command never acts on a stale state.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carepath import inputs
from carepath.cli.console import checked, command_group, fail, run_reporting

if TYPE_CHECKING:
    from pathway.model import Event
    from pathway.unit_of_work import UnitOfWork
    from pathway.usecases import Applied, DefinitionRegistry

episode_app = command_group("Open, advance, inspect and close episodes.")

Actor = Annotated[str | None, typer.Option(help="Who did this (default: the OS user).")]
At = Annotated[
    str | None,
    typer.Option(help="When it happened clinically, ISO 8601 (default now; no offset = UTC)."),
]
EventId = Annotated[
    str | None,
    typer.Option(
        help="Idempotency key (yours: scoped to --actor): the same key with the same command "
        "applies once; with a different command, episode or facts it is refused."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _backend() -> tuple[DefinitionRegistry, UnitOfWork]:
    """The definitions (every stored version, too) and a unit of work on the configured
    database (schema upgraded if new)."""
    definitions, uow, _ = _command_backend()
    return definitions, uow


def _command_backend() -> tuple[DefinitionRegistry, UnitOfWork, Callable[[], datetime]]:
    """``_backend`` and the commands' clock: PostgreSQL's, checked against this host's
    (``scheduler.clock.command_clock``), so a host running ahead fires no timer early."""
    from datetime import timedelta

    from carepath.bootstrap import wire
    from carepath.settings import Settings
    from scheduler.clock import command_clock

    settings = Settings.from_env()
    wiring = run_reporting(lambda: wire(settings))
    tolerance = timedelta(seconds=settings.clock_tolerance_seconds)
    return wiring.definitions, wiring.uow_factory(), command_clock(wiring.uow_factory, tolerance)


def _now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | None, field: str = "--at") -> datetime:
    if value is None:
        return _now()
    moment = checked(inputs.parse_time, value, field)
    assert moment is not None
    return moment


def parse_facts(value: str) -> dict[str, Any]:
    import orjson

    try:
        facts = orjson.loads(checked(inputs.json_text, value, "--facts") or "")
    except orjson.JSONDecodeError as exc:
        fail(
            f"--facts: not valid JSON ({exc}); expected an object of fact names and values, such as '{{\"fact\": 4}}'"
        )
    if not isinstance(facts, dict):
        fail(f"--facts: got {facts!r}, expected a JSON object of facts")
    return facts


def _handle(
    episode_id: str | None, event: Event, *, keyed: bool = False, at_given: bool = True
) -> Applied:
    """Parse → handle → render: the one command handler (due timers first, then the event).
    ``keyed``: the event id is the actor's ``--event-id``, scoped to ``cli:<actor>``."""
    from pathway.usecases import handle

    checked(inputs.identifier, episode_id, "EPISODE_ID")
    definitions, uow, clock = _command_backend()
    caller = f"cli:{event.actor}" if keyed else None

    def run() -> Applied:
        now = clock()
        stamped = event if at_given else replace(event, at=now)
        return handle(
            uow, definitions, episode_id, stamped, now, caller=caller, at_given=at_given
        ).applied

    return run_reporting(run)


def _stamp(actor: str | None, at: str | None, event_id: str | None) -> tuple[str, datetime, str]:
    """The event id, clinical time and actor every write command's event carries."""
    from pathway.usecases import new_event_id

    checked(inputs.identifier, event_id, "--event-id")
    who = checked(inputs.actor, actor or getpass.getuser(), "--actor")
    return event_id or new_event_id(), parse_time(at), who or ""


def _keys(at: str | None, event_id: str | None) -> dict[str, bool]:
    """How ``_handle`` treats the event id: the actor's idempotency key when one was given."""
    return {"keyed": event_id is not None, "at_given": at is not None}


def _print_applied(applied: Applied) -> None:
    o = applied.outcome
    if o.repeated:
        key = o.idempotency_key or o.event_id
        typer.echo(f"event {key} was already applied; its outcome:")
    for source, dest, rules in o.transitions:
        typer.echo(f"{source} → {dest}  ({', '.join(rules)})")
    if o.rules:
        typer.echo("rules fired: " + ", ".join(o.rules))
    if o.refused:
        typer.echo("refused: " + ", ".join(o.refused))
    if applied.decision is not None:
        for task in applied.decision.tasks_opened:
            typer.echo(f"{task.kind}: {task.text}  [{task.rule_id}]")
    typer.echo(f"state: {o.state} (version {o.version})")


@episode_app.command("open")
def open_(
    facts: Annotated[
        str, typer.Option(help="Profile and presentation facts, a JSON object.")
    ] = "{}",
    patient_ref: Annotated[
        str | None, typer.Option(help="External patient identifier (MRN).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Display label for the worklist.")] = None,
    pathway: Annotated[
        str | None,
        typer.Option(help="The pathway to open on (default: l1-l2-compression-fracture)."),
    ] = None,
    actor: Actor = None,
    at: At = None,
    event_id: EventId = None,
) -> None:
    """Open an episode; the new episode's id is printed alone on the last line."""
    from pathway.model import Open

    values = parse_facts(facts)
    patient_ref = checked(inputs.patient_ref, patient_ref, "--patient-ref")
    label = checked(inputs.label, label, "--label")
    pathway = checked(inputs.identifier, pathway, "--pathway")
    event = Open(*_stamp(actor, at, event_id), values, patient_ref, label, pathway)
    applied = _handle(None, event, **_keys(at, event_id))
    _print_applied(applied)
    typer.echo(applied.outcome.episode_id)


@episode_app.command()
def observe(
    episode_id: str,
    facts: Annotated[str, typer.Option(help="Facts observed, a JSON object.")],
    actor: Actor = None,
    at: At = None,
    event_id: EventId = None,
) -> None:
    """Record an observation (in a review state of its pathway, it is a review)."""
    from pathway.model import Observe

    values = parse_facts(facts)
    event = Observe(*_stamp(actor, at, event_id), values)
    _print_applied(_handle(episode_id, event, **_keys(at, event_id)))


@episode_app.command()
def request(
    episode_id: str, action: str, actor: Actor = None, at: At = None, event_id: EventId = None
) -> None:
    """Request an action the episode's pathway defines; the pathway grants or refuses it."""
    from pathway.model import Request

    checked(inputs.reason, action, "ACTION")
    event = Request(*_stamp(actor, at, event_id), action)
    _print_applied(_handle(episode_id, event, **_keys(at, event_id)))


@episode_app.command()
def close(
    episode_id: str,
    reason: Annotated[
        str, typer.Option(help="declined, lost_to_follow_up, deceased or entered_in_error")
    ],
    actor: Actor = None,
    at: At = None,
    event_id: EventId = None,
) -> None:
    """Close an episode for an administrative reason."""
    from pathway.model import Close

    checked(inputs.reason, reason, "--reason")
    event = Close(*_stamp(actor, at, event_id), reason)
    _print_applied(_handle(episode_id, event, **_keys(at, event_id)))


@episode_app.command()
def assign(
    episode_id: str,
    to: Annotated[
        str | None,
        typer.Option("--to", help="The coordinator's name; 'me': --actor; 'none': unassign."),
    ] = None,
    unassign: Annotated[bool, typer.Option("--unassign", help="Clear the owner.")] = False,
    actor: Actor = None,
    at: At = None,
    event_id: EventId = None,
) -> None:
    """Assign the episode to a coordinator, or unassign it (audited; nothing else changes)."""
    from pathway.model import Assign

    if (to is None) == (not unassign):
        fail("--to: give a coordinator's name (or 'none'), or --unassign, not both")
    stamp = _stamp(actor, at, event_id)
    owner = None if unassign or to == "none" else stamp[2] if to == "me" else to
    owner = checked(inputs.owner, owner, "--to")
    applied = _handle(episode_id, Assign(*stamp, owner), **_keys(at, event_id))
    _print_applied(applied)
    typer.echo(f"owner: {owner or 'none'}")


@episode_app.command()
def show(episode_id: str, json_out: Json = False) -> None:
    """The episode's state, facts, timers and tasks."""
    from carepath.cli.episode_view import episode_view

    checked(inputs.identifier, episode_id, "EPISODE_ID")
    _, uow = _backend()

    def body() -> dict[str, Any]:
        with uow:
            return episode_view(uow.get_episode(episode_id))

    view = run_reporting(body)
    if json_out:
        _print_json(view)
        return
    typer.echo(
        f"episode {view['id']}  {view['state']}  ({view['definition_version']}, version {view['version']})"
    )
    typer.echo(f"  owner: {view['owner'] or 'none'}")
    for name, fact in view["facts"].items():
        typer.echo(f"  {name} = {fact['value']}  (recorded {fact['at']})")
    for timer in view["timers"]:
        typer.echo(f"  timer {timer['rule']} due {timer['due_at']}")
    for task in view["tasks"]:
        typer.echo(f"  {task['kind']} [{task['status']}] {task['text']}  [{task['rule']}]")


@episode_app.command()
def explain(episode_id: str, json_out: Json = False, at: At = None) -> None:
    """What the episode is waiting for: every way out of its state and every pending timer,
    with what fails and what is unknown."""
    from carepath.explain_words import text
    from pathway.explain import explain_stored

    checked(inputs.identifier, episode_id, "EPISODE_ID")
    moment = parse_time(at)
    definitions, uow = _backend()
    e = run_reporting(lambda: explain_stored(uow, definitions, episode_id, moment))
    if json_out:
        _print_json(e.to_dict())
        return
    definition = definitions.get(e.version)
    for line in text(definition, e):
        typer.echo(line)


@episode_app.command()
def history(episode_id: str, json_out: Json = False) -> None:
    """The timeline: every decision with its evidence and citations, oldest first."""
    checked(inputs.identifier, episode_id, "EPISODE_ID")
    _, uow = _backend()

    def body() -> list[dict[str, Any]]:
        with uow:
            uow.get_episode(episode_id)
            return [r.body() for r in uow.audit_records(episode_id)]

    entries = run_reporting(body)
    if json_out:
        _print_json(entries)
        return
    for e in entries:
        move = (
            f"{e['state_from']} → {e['state_to']}"
            if e["state_from"] != e["state_to"]
            else e["state_to"]
        )
        typer.echo(f"#{e['seq']} {e['at']} {e['kind']} by {e['actor']}: {move}")
        if e["kind"] == "assign":
            typer.echo(f"    owner: {e.get('owner') or 'none'}")
        if "migration" in e:
            m = e["migration"]
            retimed = ", ".join(t["rule"] for t in m.get("retimed", []))
            typer.echo(
                f"    migrated {m['from_version']} → {m['to_version']}"
                + (f"; re-timed {retimed}" if retimed else "")
            )
        for rule in e["rules"]:
            typer.echo(f"    {rule['rule_id']}: {rule['title']}  [refs {', '.join(rule['refs'])}]")
            for ev in rule["evidence"]:
                typer.echo(
                    f"        {'✓' if ev['held'] else '✗'} {ev['test']} (observed {ev['observed']!r})"
                )
        for refusal in e["refused"]:
            firing = refusal["firing"]
            typer.echo(f"    REFUSED {refusal['action']}: {firing['rule_id']} {firing['title']}")


def _print_json(value: Any) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
