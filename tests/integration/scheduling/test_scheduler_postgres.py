"""Many scheduler processes on one PostgreSQL: every timer fires exactly once, in order.

Real processes (``carepath scheduler run``) against a real server: 4 workers drain 22,000 due
timers over 2,000 episodes; one of 3 workers is SIGKILLed mid-sweep and the others take its
episodes over once its lease lapses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pathway.usecases import DefinitionRegistry
from storage.unit_of_work import uow_factory
from tests.support.timer_cohort import (
    EXTRA,
    assert_each_timer_fired_once_in_order,
    busy_definition,
    open_idle_episodes,
    timer_firings,
    write_busy_definition,
)

DEFS = DefinitionRegistry(busy_definition())
PER_EPISODE = EXTRA + 1


def _workers(url: str, definition: Path, n: int, *args: str) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "CAREPATH_DATABASE_URL": url, "CAREPATH_DEFINITION": str(definition)}
    cmd = [sys.executable, "-m", "carepath.cli", "scheduler", "run", *args]
    return [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]


def _count_fired(factory) -> int:
    held = factory.connections.take()
    try:
        return held[1].execute("SELECT count(*) FROM audit_log WHERE kind = 'timer'").fetchone()[0]
    finally:
        factory.connections.give(held)


def _wait_for(factory, expected: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    fired = _count_fired(factory)
    while fired < expected and time.monotonic() < deadline:
        time.sleep(0.25)
        fired = _count_fired(factory)
    return fired


def _stop(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        results.append((p.returncode, err))
    return results


def test_four_workers_fire_22000_timers_over_2000_episodes_exactly_once(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    factory = uow_factory(fresh_postgres_url)
    ids = open_idle_episodes(factory, DEFS, 2000)
    procs = _workers(fresh_postgres_url, write_busy_definition(tmp_path / "busy.json"), 4,
                     "--interval", "0.2", "--batch", "50")  # fmt: skip
    try:
        fired = _wait_for(factory, 2000 * PER_EPISODE, 120)
    finally:
        results = _stop(procs)
    assert all(code == 0 for code, _ in results), results
    assert fired == 2000 * PER_EPISODE
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), PER_EPISODE)
    factory.dispose()


def test_one_of_three_workers_killed_mid_sweep_loses_nothing(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    factory = uow_factory(fresh_postgres_url)
    ids = open_idle_episodes(factory, DEFS, 400)
    definition = write_busy_definition(tmp_path / "busy.json")
    args = ("--interval", "0.1", "--batch", "5", "--lease", "2")
    victim, survivors = _workers(fresh_postgres_url, definition, 1, *args)[0], []
    try:
        # The victim first, until it holds claims (a batch of 5 holds them for milliseconds,
        # so polled without a pause); then the others, and the victim is killed at its next
        # claims, mid-sweep beside them.
        assert _holds_claims(factory, victim.pid, 60), "the victim never held a claim"
        survivors = _workers(fresh_postgres_url, definition, 2, *args)
        _holds_claims(factory, victim.pid, 10)
        victim.send_signal(signal.SIGKILL)  # mid-sweep: it holds claims and an open batch
        victim.wait(timeout=10)
        fired = _wait_for(factory, 400 * PER_EPISODE, 90)
    finally:
        results = _stop(survivors)
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    assert all(code == 0 for code, _ in results), results
    assert fired == 400 * PER_EPISODE
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), PER_EPISODE)
    factory.dispose()


def _holds_claims(factory, pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _claims_of(factory, pid) > 0:
            return True
    return False


def _claims_of(factory, pid: int) -> int:
    held = factory.connections.take()
    try:
        sql = "SELECT count(*) FROM episodes WHERE claimed_by LIKE %(p)s"
        return held[1].execute(sql, {"p": f"%-{pid}-%"}).fetchone()[0]
    finally:
        factory.connections.give(held)


@pytest.mark.parametrize("workers", [2])
def test_concurrent_sweeps_in_one_process_share_nothing_but_the_database(
    fresh_postgres_url: str, workers: int
) -> None:
    import threading

    from scheduler.worker import TimerWorker
    from tests.support.timer_cohort import NOW

    factory = uow_factory(fresh_postgres_url)
    ids = open_idle_episodes(factory, DEFS, 100)
    others = [uow_factory(fresh_postgres_url) for _ in range(workers)]
    sweepers = [TimerWorker(f, DEFS, batch=7) for f in others]
    threads = [threading.Thread(target=w.sweep, args=(NOW,)) for w in sweepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in others:
        f.dispose()
    assert sum(w.fired_total for w in sweepers) == 100 * PER_EPISODE
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), PER_EPISODE)
    factory.dispose()
