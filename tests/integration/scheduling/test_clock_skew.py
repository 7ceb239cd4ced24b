"""A worker's "now" is the database's on PostgreSQL, and a skewed host refuses to run.

The host clock is injected (``SchedulerClock(host=...)``, or ``scheduler.clock.host_now`` for
the CLI); the database's is the real server's. A host three days ahead fires nothing early and
says why; within the tolerance, a worker runs on the database's time, which is also the
``recorded_at`` of what it writes. On SQLite the host's clock is the only one.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from pathway import usecases
from pathway.definition import load_definition
from pathway.usecases import DefinitionRegistry
from scheduler.clock import ClockSkewed, SchedulerClock, report_refusal
from scheduler.service import SchedulerService
from scheduler.status import scheduler_status
from scheduler.worker import TimerWorker
from storage.claims import ClaimStore
from storage.columns import read_time
from storage.unit_of_work import uow_factory
from tests.support.timer_cohort import timer_firings

DEFS = DefinitionRegistry(load_definition())
THREE_DAYS = timedelta(days=3)
TOLERANCE = timedelta(seconds=30)


@pytest.fixture
def pg(fresh_postgres_url: str):
    factory = uow_factory(fresh_postgres_url)
    yield factory
    factory.dispose()


def _db_now(factory) -> datetime:
    now = ClaimStore(factory).database_now()
    assert now is not None
    return now


def _open(factory, at: datetime, now: datetime) -> str:
    """An episode left in intake: FU-INTAKE-OVERDUE falls due one day after ``at``."""
    applied = usecases.open_episode(factory(), DEFS, {"age": 70}, at=at, now=now, actor="t")
    return applied.outcome.episode_id


def _ahead(by: timedelta):  # noqa: ANN202
    return lambda: datetime.now(UTC) + by


def _cli(*args: str):  # noqa: ANN202
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


def test_a_worker_three_days_ahead_fires_nothing_and_logs_the_refusal(
    pg, caplog: pytest.LogCaptureFixture
) -> None:
    now = _db_now(pg)
    eid = _open(pg, now, now)  # due tomorrow: a host three days ahead would fire it today
    clock = SchedulerClock(pg, TOLERANCE, host=_ahead(THREE_DAYS))
    with pytest.raises(ClockSkewed) as refused:
        clock()
    assert "refuses to run" in str(refused.value) and "ahead of the database" in str(refused.value)
    assert refused.value.reading.skew > THREE_DAYS - timedelta(seconds=5)
    worker = TimerWorker(pg, DEFS)
    service = SchedulerService(worker, interval=0.05, heartbeat=0.05, clock=clock)
    with caplog.at_level(logging.ERROR, logger="carepath.scheduler"):
        service.start()
        deadline, workers = time.monotonic() + 60, []  # a hang guard
        while not workers and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = scheduler_status(pg, _db_now(pg))["workers"]  # as any host sees them
        time.sleep(0.3)  # a few more sweeps, each refused
        service.stop()
    [seen] = workers
    assert seen["status"] == "refused" and seen["id"] == worker.id
    assert seen["clock_skew_seconds"] == pytest.approx(THREE_DAYS.total_seconds(), abs=5)
    assert "scheduler refuses to run" in seen["clock_refusal"]
    [stopped] = scheduler_status(pg, _db_now(pg))["workers"]
    assert stopped["status"] == "stopped"  # and still says why it never ran:
    assert "scheduler refuses to run" in stopped["clock_refusal"]
    assert worker.fired_total == 0
    assert timer_firings(pg, [eid])[eid] == []
    assert "scheduler refuses to run: this host's clock is 25" in caplog.text
    assert "Traceback" not in caplog.text


def test_due_ness_is_the_databases_even_when_a_skewed_host_is_tolerated(pg) -> None:
    now = _db_now(pg)
    eid = _open(pg, now, now)
    clock = SchedulerClock(pg, timedelta(days=4), host=_ahead(THREE_DAYS))
    assert abs(clock() - now) < timedelta(seconds=10)  # the database's time, not the host's
    assert TimerWorker(pg, DEFS).sweep(clock()) == 0
    assert timer_firings(pg, [eid])[eid] == []


def test_a_heartbeat_within_tolerance_clears_a_recorded_refusal(pg) -> None:
    worker = TimerWorker(pg, DEFS)
    try:
        SchedulerClock(pg, TOLERANCE, host=_ahead(THREE_DAYS))()
    except ClockSkewed as exc:
        report_refusal(worker, exc)
    assert scheduler_status(pg, _db_now(pg))["workers"][0]["status"] == "refused"
    worker.heartbeat(SchedulerClock(pg, TOLERANCE)())
    [running] = scheduler_status(pg, _db_now(pg))["workers"]
    assert (running["status"], running["clock_refusal"]) == ("running", None)


def test_within_tolerance_a_worker_runs_and_records_the_databases_time(pg) -> None:
    now = _db_now(pg)
    eid = _open(pg, now - timedelta(days=2), now)  # its intake timer is a day overdue
    host = _ahead(timedelta(seconds=20))
    fired = TimerWorker(pg, DEFS).sweep(SchedulerClock(pg, TOLERANCE, host=host)())
    assert fired >= 1
    held = pg.connections.take()
    try:
        rows = (
            held[1]
            .execute(
                "SELECT recorded_at FROM audit_log WHERE episode_id = %s AND kind = 'timer'", (eid,)
            )
            .fetchall()
        )
    finally:
        pg.connections.give(held)
    assert rows
    for (recorded,) in rows:
        recorded_at = read_time(recorded)
        assert abs(recorded_at - _db_now(pg)) < timedelta(seconds=10)
        assert recorded_at < host() - timedelta(seconds=10)  # not the host's clock


def test_on_sqlite_the_clock_is_the_hosts(tmp_path: Path) -> None:
    factory = uow_factory(f"sqlite:///{tmp_path / 'carepath.db'}")
    try:
        host = _ahead(THREE_DAYS)
        clock = SchedulerClock(factory, TOLERANCE, host=host)
        reading = clock.reading()
        assert reading.database is None and reading.skew is None and not reading.refused
        assert abs(clock() - host()) < timedelta(seconds=10)  # not the 3 days a database's is
    finally:
        factory.dispose()


def test_scheduler_status_shows_the_skew_and_run_once_refuses(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", fresh_postgres_url)
    factory = uow_factory(fresh_postgres_url)
    now = _db_now(factory)
    eid = _open(factory, now, now)
    monkeypatch.setattr("scheduler.clock.host_now", _ahead(THREE_DAYS))
    text = _cli("scheduler", "status")
    assert text.exit_code == 0, text.output
    assert "REFUSED: clock: this host's clock is 25" in text.output
    assert "workers on this host refuse to run" in text.output
    report = orjson.loads(_cli("scheduler", "status", "--json").output)
    assert report["clock"]["refused"] is True
    assert report["clock"]["skew_seconds"] == pytest.approx(THREE_DAYS.total_seconds(), abs=5)
    assert report["clock"]["tolerance_seconds"] == 30
    run = _cli("scheduler", "run", "--once")
    assert run.exit_code == 1
    assert "scheduler refuses to run" in run.output and "Traceback" not in run.output
    assert timer_firings(factory, [eid])[eid] == []
    monkeypatch.setattr("scheduler.clock.host_now", lambda: datetime.now(UTC))  # another host
    text = _cli("scheduler", "status")
    assert "REFUSED" not in text.output.splitlines()[0]  # this host's clock is fine
    assert ": stopped, last seen" in text.output  # the refused one-shot worker, with why:
    assert "    scheduler refuses to run: this host's clock is 25" in text.output
    monkeypatch.setattr("scheduler.clock.host_now", _ahead(THREE_DAYS))
    monkeypatch.setenv("CAREPATH_CLOCK_TOLERANCE_SECONDS", str(4 * 86400))
    report = orjson.loads(_cli("scheduler", "status", "--json").output)
    assert report["clock"]["refused"] is False
    assert _cli("scheduler", "run", "--once").output.strip().endswith("fired 0 timer(s)")
    factory.dispose()


def test_a_bad_tolerance_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from carepath.settings import Settings, SettingsError

    monkeypatch.setenv("CAREPATH_CLOCK_TOLERANCE_SECONDS", "soon")
    with pytest.raises(SettingsError, match="CAREPATH_CLOCK_TOLERANCE_SECONDS: got 'soon'"):
        Settings.from_env()
