"""``carepath episode …``: open, advance, inspect and close episodes on the database.

Every write takes ``--actor`` (default: the OS user) and ``--at`` (clinical time, ISO 8601,
default now). Before a write, the episode's timers that are due by now fire, as a running
scheduler would have fired them, so a command never acts on a stale state.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carepath.cli.console import fail, run_reporting

if TYPE_CHECKING:
    from pathway.unit_of_work import UnitOfWork
    from pathway.usecases import Applied, DefinitionRegistry

episode_app = typer.Typer(help="Open, advance, inspect and close episodes.", no_args_is_help=True)

Actor = Annotated[str | None, typer.Option(help="Who did this (default: the OS user).")]
At = Annotated[
    str | None,
    typer.Option(help="When it happened clinically, ISO 8601 (default now; no offset = UTC)."),
]
EventId = Annotated[
    str | None, typer.Option(help="Idempotency key: the same id twice applies once.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _backend() -> tuple[DefinitionRegistry, UnitOfWork]:
    """The definitions (every stored version, too) and a unit of work on the configured
    database (schema upgraded if new)."""
    from carepath.bootstrap import wire

    wiring = run_reporting(wire)
    return wiring.definitions, wiring.uow_factory()


def _now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str | None, field: str = "--at") -> datetime:
    if value is None:
        return _now()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{field}: got {value!r}, expected an ISO 8601 time such as 2026-03-02T09:30:00Z")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_facts(value: str) -> dict[str, Any]:
    import orjson

    try:
        facts = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        fail(f"--facts: not valid JSON ({exc}); expected an object such as '{{\"pain_score\": 4}}'")
    if not isinstance(facts, dict):
        fail(f"--facts: got {facts!r}, expected a JSON object of facts")
    return facts


def _write(episode_id: str, call: Any) -> None:
    from pathway import usecases

    definitions, uow = _backend()
    now = _now()

    def body() -> Applied:
        usecases.fire_due_timers(uow, definitions, now, episode_id=episode_id)
        return call(uow, definitions, now)

    _print_applied(run_reporting(body))


def _command(
    use_case: Any,
    episode_id: str,
    argument: Any,
    at: datetime,
    actor: str | None,
    event_id: str | None,
) -> None:
    """One write command: ``use_case(uow, defs, episode_id, argument, …)`` with the plumbing
    every write shares (actor default, clinical time, idempotency key, due timers first)."""
    _write(
        episode_id,
        lambda uow, defs, now: use_case(
            uow,
            defs,
            episode_id,
            argument,
            at=at,
            now=now,
            actor=actor or getpass.getuser(),
            event_id=event_id,
        ),  # fmt: skip
    )


def _print_applied(applied: Applied) -> None:
    o = applied.outcome
    if o.repeated:
        typer.echo(f"event {o.event_id} was already applied; its outcome:")
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
    actor: Actor = None,
    at: At = None,
    event_id: EventId = None,
) -> None:
    """Open an episode; the new episode's id is printed alone on the last line."""
    from pathway import usecases

    values = parse_facts(facts)
    moment = parse_time(at)
    definitions, uow = _backend()
    applied = run_reporting(
        lambda: usecases.open_episode(
            uow,
            definitions,
            values,
            at=moment,
            now=_now(),
            actor=actor or getpass.getuser(),
            event_id=event_id,
            patient_ref=patient_ref,
            label=label,
        )
    )
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
    """Record an observation (in reassessment, it is a review)."""
    from pathway import usecases

    values, moment = parse_facts(facts), parse_time(at)
    _command(usecases.observe, episode_id, values, moment, actor, event_id)


@episode_app.command()
def request(
    episode_id: str, action: str, actor: Actor = None, at: At = None, event_id: EventId = None
) -> None:
    """Request an action (vertebroplasty, kyphoplasty); the pathway grants or refuses it."""
    from pathway import usecases

    moment = parse_time(at)
    _command(usecases.request, episode_id, action, moment, actor, event_id)


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
    from pathway import usecases

    moment = parse_time(at)
    _command(usecases.close, episode_id, reason, moment, actor, event_id)


@episode_app.command()
def show(episode_id: str, json_out: Json = False) -> None:
    """The episode's state, facts, timers and tasks."""
    from carepath.cli.episode_view import episode_view

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
    for name, fact in view["facts"].items():
        typer.echo(f"  {name} = {fact['value']}  (recorded {fact['at']})")
    for timer in view["timers"]:
        typer.echo(f"  timer {timer['rule']} due {timer['due_at']}")
    for task in view["tasks"]:
        typer.echo(f"  {task['kind']} [{task['status']}] {task['text']}  [{task['rule']}]")


@episode_app.command()
def history(episode_id: str, json_out: Json = False) -> None:
    """The timeline: every decision with its evidence and citations, oldest first."""
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
