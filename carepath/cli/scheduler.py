"""``carepath scheduler run|status``: the background worker that fires due timers."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Annotated

import typer

from carepath.cli.console import command_group, database_problem, fail

scheduler_app = command_group("Fire due timers exactly once, with any number of workers.")


def _factory():  # noqa: ANN202 - typed at the call sites
    from carepath.bootstrap import wire

    wiring = wire()  # its registry holds every stored version: older episodes' timers fire too
    return wiring.uow_factory, wiring.definitions


def _clock(factory):  # noqa: ANN001, ANN202 - a SchedulerClock
    """The database's time on PostgreSQL, refused when this host's clock is too far off."""
    from carepath.settings import Settings
    from scheduler.clock import SchedulerClock

    tolerance = timedelta(seconds=Settings.from_env().clock_tolerance_seconds)
    return SchedulerClock(factory, tolerance)


def _deliveries(factory):  # noqa: ANN001, ANN202 - the service's webhook arguments
    """The webhook sender of this worker (``scheduler.deliveries``), from CAREPATH_WEBHOOK_*."""
    from carepath.webhooks import delivery_worker, poll_seconds

    return {"deliveries": delivery_worker(factory), "deliver_every": poll_seconds()}


@scheduler_app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="Fire what is due now, then exit.")] = False,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Episodes claimed per transaction.")
    ] = 100,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between sweeps.")] = 5.0,
    lanes: Annotated[
        int,
        typer.Option(
            min=1, max=8, help="Claim → fire loops at once in this worker (PostgreSQL; SQLite: 1)."
        ),
    ] = 2,
    lease: Annotated[
        float,
        typer.Option(min=1, help="Seconds a claim lasts before another worker may take over."),
    ] = 60.0,
) -> None:
    """Sweep in the foreground; SIGTERM/SIGINT finish the current timer, release claims, exit 0."""
    from scheduler.clock import ClockSkewed, report_refusal
    from scheduler.service import SchedulerService
    from scheduler.worker import TimerWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        factory, definitions = _factory()
        hooks = _deliveries(factory)  # CAREPATH_WEBHOOK_* checked before anything runs
        worker = TimerWorker(
            factory,
            definitions,
            batch=batch,
            lanes=lanes,
            lease=timedelta(seconds=lease),
            stale_after=timedelta(seconds=max(3 * interval, lease)),
        )
        clock = _clock(factory)
        if once:
            try:
                now = clock()
            except ClockSkewed as exc:  # recorded for `scheduler status` on any host
                report_refusal(worker, exc)
                worker.close(exc.reading.now)
                fail(str(exc), code=1)
            fired = worker.sweep(now)
            worker.close(now)
            sender = hooks["deliveries"]  # then the webhooks those firings (and others) raised
            sent = sender.deliver_due(clock())
            sender.close()
            if sent:
                typer.echo(f"delivered {sent} webhook message(s)")
            typer.echo(f"fired {fired} timer(s)")
            return
        from carepath.audit_verify import checkpoint_writer
        from carepath.settings import Settings, checkpoint_seconds

        settings = Settings.from_env()
        try:
            every = checkpoint_seconds(settings)
        except ValueError as exc:
            fail(str(exc))
        service = SchedulerService(
            worker,
            interval=interval,
            checkpoint=checkpoint_writer(settings, factory),
            checkpoint_every=every,
            clock=clock,
            **hooks,
        )
        typer.echo(f"scheduler {worker.id}: sweeping every {interval:g} s (Ctrl-C to stop)")
        service.run_until_signalled()
        typer.echo(f"scheduler {worker.id}: stopped after firing {worker.fired_total} timer(s)")
    except Exception as exc:
        problem = database_problem(exc)
        if problem is None:
            raise
        fail(problem)


@scheduler_app.command()
def status(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Workers (alive, stale, stopped), timers due now, overdue escalations, parked timers."""
    from scheduler.status import scheduler_status

    try:
        factory, _ = _factory()
        reading = _clock(factory).reading()
        report = scheduler_status(factory, reading.now)
        report["clock"] = reading.to_dict()
    except Exception as exc:
        problem = database_problem(exc)
        if problem is None:
            raise
        fail(problem)
    if json_out:
        import orjson

        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(
        ("REFUSED: " if report["clock"]["refused"] else "") + f"clock: {report['clock']['message']}"
    )
    typer.echo(
        f"due now: {report['due']}"
        + (f" (oldest due {report['oldest_due']})" if report["oldest_due"] else "")
    )
    typer.echo(f"open escalations (overdue): {report['overdue_escalations']}")
    typer.echo(f"parked timers: {report['parked']}")
    hooks = report.get("webhooks")
    if hooks is not None:
        typer.echo(
            f"webhook messages: {hooks['pending']} pending, {hooks['failed']} failed, "
            f"{hooks['delivered']} delivered"
        )
        for m in hooks["failed_messages"]:
            typer.echo(
                f"  failed {m['id']} {m['type']} episode {m['episode']} attempts {m['attempts']}: {m['last_error']}"
            )
    for p in report["parked_timers"]:
        typer.echo(
            f"  {p['episode_id']} {p['timer']} due {p['due_at']} attempts {p['attempts']}: {p['last_error']}"
        )
    typer.echo(f"workers: {len(report['workers'])}")
    for w in report["workers"]:
        typer.echo(
            f"  {w['id']} on {w['host']} pid {w['pid']}: {w['status']}, last seen {w['last_seen']}, fired {w['fired']}"
        )
        if w["clock_refusal"]:
            typer.echo(f"    {w['clock_refusal']}")
