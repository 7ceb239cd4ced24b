"""The scheduler on the embedded SQLite default: exactly once, in order, late timers, parking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from pathway.usecases import DefinitionRegistry
from scheduler.service import SchedulerService
from scheduler.status import scheduler_status
from scheduler.worker import TimerWorker
from storage.unit_of_work import uow_factory
from tests.support.timer_cohort import (
    EXTRA,
    NOW,
    assert_each_timer_fired_once_in_order,
    busy_definition,
    open_idle_episodes,
    timer_firings,
    write_busy_definition,
)

DEFS = DefinitionRegistry(busy_definition())


@pytest.fixture
def factory(tmp_path: Path):
    f = uow_factory(f"sqlite:///{tmp_path / 'carepath.db'}")
    yield f
    f.dispose()


def test_one_sweep_fires_every_due_timer_exactly_once_in_due_order(factory) -> None:
    ids = open_idle_episodes(factory, DEFS, 40)
    worker = TimerWorker(factory, DEFS, batch=7)
    assert worker.sweep(NOW) == 40 * (EXTRA + 1)
    assert worker.sweep(NOW) == 0
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)


def test_late_timers_record_how_late_they_fired(factory) -> None:
    [eid] = open_idle_episodes(factory, DEFS, 1)
    TimerWorker(factory, DEFS).sweep(NOW)
    bodies = timer_firings(factory, [eid])[eid]
    first = bodies[0]  # due one day after opening, fired at day 30
    assert first["lateness_seconds"] == pytest.approx(timedelta(days=29).total_seconds(), abs=2)
    assert all(b["lateness_seconds"] > 0 for b in bodies)


def test_timers_not_yet_due_do_not_fire(factory) -> None:
    [eid] = open_idle_episodes(factory, DEFS, 1)
    from tests.support.timer_cohort import OPENED

    fired = TimerWorker(factory, DEFS).sweep(OPENED + timedelta(days=3, hours=1))
    assert fired == 4  # FU-INTAKE-OVERDUE (day 1) and FU-TEST-01..03
    assert len(timer_firings(factory, [eid])[eid]) == 4


def test_two_workers_on_one_sqlite_file_fire_each_timer_once(factory, tmp_path: Path) -> None:
    ids = open_idle_episodes(factory, DEFS, 30)
    other = uow_factory(f"sqlite:///{tmp_path / 'carepath.db'}")
    a, b = TimerWorker(factory, DEFS, batch=3), TimerWorker(other, DEFS, batch=3)
    threads = [threading.Thread(target=w.sweep, args=(NOW,)) for w in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert a.fired_total + b.fired_total == 30 * (EXTRA + 1)
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)


def test_a_failing_timer_is_parked_with_its_error_and_the_rest_still_fire(
    factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = open_idle_episodes(factory, DEFS, 5)
    bad = ids[2]
    from pathway import engine

    real = engine.decide

    def flaky(definition, episode, event, now):  # noqa: ANN001, ANN202
        if episode.id == bad:
            raise RuntimeError("corrupt episode")
        return real(definition, episode, event, now)

    monkeypatch.setattr("pathway.usecases.decide", flaky)
    worker = TimerWorker(factory, DEFS, backoff=timedelta(minutes=1))
    assert worker.sweep(NOW) == 4 * (EXTRA + 1)
    report = scheduler_status(factory, NOW)
    assert report["parked"] == 1
    [parked] = report["parked_timers"]
    assert parked["episode_id"] == bad and parked["attempts"] == 1
    assert "corrupt episode" in parked["last_error"]
    assert worker.sweep(NOW) == 0  # backing off: not retried before its time
    monkeypatch.setattr("pathway.usecases.decide", real)
    assert worker.sweep(NOW + timedelta(minutes=2)) == EXTRA + 1  # retried, then all fire
    assert scheduler_status(factory, NOW)["parked"] == 0


def test_starting_and_stopping_the_service_leaves_no_thread_running(factory) -> None:
    open_idle_episodes(factory, DEFS, 3)
    before = set(threading.enumerate())
    worker = TimerWorker(factory, DEFS)
    service = SchedulerService(worker, interval=0.05, clock=lambda: NOW)
    service.start()
    deadline = time.monotonic() + 60  # a hang guard: the assertion below says what fired
    while worker.fired_total < 3 * (EXTRA + 1) and time.monotonic() < deadline:
        time.sleep(0.02)
    service.stop()
    assert worker.fired_total == 3 * (EXTRA + 1)
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []
    workers = scheduler_status(factory, NOW)["workers"]
    assert [w["status"] for w in workers] == ["stopped"]


def test_sigterm_finishes_cleanly_and_releases_claims(tmp_path: Path) -> None:
    db = tmp_path / "carepath.db"
    definition = write_busy_definition(tmp_path / "busy.json")
    env = {
        **os.environ,
        "CAREPATH_DATABASE_URL": f"sqlite:///{db}",
        "CAREPATH_DEFINITION": str(definition),
    }
    f = uow_factory(f"sqlite:///{db}")
    open_idle_episodes(f, DEFS, 3)  # opened in January: all due now
    proc = subprocess.Popen(
        [sys.executable, "-m", "carepath.cli", "scheduler", "run", "--interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60  # a hang guard: a loaded machine starts the CLI slowly
        while time.monotonic() < deadline:
            from datetime import UTC, datetime

            if scheduler_status(f, datetime.now(UTC))["due"] == 0:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped after firing 33 timer(s)" in out
    from datetime import UTC, datetime

    report = scheduler_status(f, datetime.now(UTC))
    assert [w["status"] for w in report["workers"]] == ["stopped"]
    held = f.connections.take()
    try:
        claimed = (
            held[1]
            .execute("SELECT count(*) FROM episodes WHERE claimed_by IS NOT NULL")
            .fetchone()[0]
        )
    finally:
        f.connections.give(held)
    f.dispose()
    assert claimed == 0
