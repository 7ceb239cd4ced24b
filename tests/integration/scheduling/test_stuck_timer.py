"""A timer "applied but still pending" is parked with a clear error, never swept forever.

The state is written directly in the database (an audit entry and outcome under the timer's
own event id while the timer row stays pending): the shape a client-chosen ``timer:`` event id left before
the use cases reserved the prefix. ``carepath scheduler run --once`` must finish promptly and
``carepath scheduler status`` list the parked timer with its error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import orjson
import pytest
from typer.testing import CliRunner

from pathway.definition import load_definition
from pathway.usecases import DefinitionRegistry, timer_event_id
from scheduler.status import scheduler_status
from scheduler.worker import TimerWorker
from storage.unit_of_work import uow_factory
from tests.support.timer_cohort import NOW, open_idle_episodes, timer_firings

DEFS = DefinitionRegistry(load_definition())
TIMER = "FU-INTAKE-OVERDUE@1"  # the first (and only) time it is set


def _take_the_timer_id(factory, episode_id: str) -> str:
    """Copy the episode's open entry and outcome under its pending timer's event id (the stuck
    state; outcomes live on audit entries since migration 0012)."""
    event_id = timer_event_id(episode_id, TIMER)
    held = factory.connections.take()
    db = held[1]
    pg = factory.engine.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    try:
        with factory.connections.backend.transaction(db):
            row = db.execute(
                f"SELECT outcome FROM audit_log WHERE episode_id = {mark} AND seq = 1",
                (episode_id,),
            ).fetchone()
            outcome = row[0] if isinstance(row[0], dict) else orjson.loads(row[0])
            outcome = {**outcome, "event_id": event_id}
            cast = "CAST(%s AS json)" if pg else "?"
            db.execute(
                "INSERT INTO audit_log (episode_id, seq, event_id, kind, actor, at, recorded_at,"
                " state_from, state_to, definition_version, payload, prev_hash, hash, outcome)"
                f" SELECT episode_id, 999, {mark}, kind, actor, at, recorded_at, state_from,"
                f" state_to, definition_version, payload, prev_hash, hash, {cast}"
                f" FROM audit_log WHERE episode_id = {mark} AND seq = 1",
                (event_id, orjson.dumps(outcome).decode(), episode_id),
            )
    finally:
        factory.connections.give(held)
    return event_id


def _cli(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAREPATH_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "carepath.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _in_process(*args: str):  # noqa: ANN202
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


def test_scheduler_run_once_parks_an_applied_but_pending_timer_and_status_lists_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = uow_factory(database_url)
    try:
        [stuck, fine] = open_idle_episodes(factory, DEFS, 2)
        event_id = _take_the_timer_id(factory, stuck)
        started = time.monotonic()
        run = _cli(database_url, "scheduler", "run", "--once")
        elapsed = time.monotonic() - started
        assert run.returncode == 0, run.stderr
        assert elapsed < 30, f"scheduler run --once took {elapsed:.1f} s"
        fired = timer_firings(factory, [stuck, fine])
        assert TIMER in [b["timer"] for b in fired[fine]]  # the other episode's timers fired
        assert fired[stuck] == []
        monkeypatch.setenv("CAREPATH_DATABASE_URL", database_url)
        status = _in_process("scheduler", "status", "--json")
        assert status.exit_code == 0, status.output
        report = orjson.loads(status.output)
        assert report["parked"] == 1
        [parked] = report["parked_timers"]
        assert (parked["episode_id"], parked["timer"], parked["attempts"]) == (stuck, TIMER, 1)
        assert "TimerAppliedButPending" in parked["last_error"]
        assert event_id in parked["last_error"] and "already has an outcome" in parked["last_error"]
        assert f"{stuck} {TIMER}" in _in_process("scheduler", "status").output
    finally:
        factory.dispose()


def test_a_worker_sweep_returns_on_an_applied_but_pending_timer(database_url: str) -> None:
    factory = uow_factory(database_url)
    try:
        [stuck] = open_idle_episodes(factory, DEFS, 1)
        _take_the_timer_id(factory, stuck)
        worker = TimerWorker(factory, DEFS)
        assert worker.sweep(NOW) == 0
        assert worker.sweep(NOW) == 0  # backing off: not claimed again before its retry time
        parked = scheduler_status(factory, datetime.now(UTC))["parked_timers"]
        assert [(p["episode_id"], p["timer"]) for p in parked] == [(stuck, TIMER)]
    finally:
        factory.dispose()
