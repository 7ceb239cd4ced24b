"""A writer killed with SIGKILL mid-run leaves only whole decisions behind.

``writer.py loop`` drives courses of episodes as fast as it can; it is killed at a random moment,
three times over on the same database (each round continuing with new episodes). Afterwards
every episode is exactly the replay of its audit log: the chain verifies up to the episode row's
head, versions run 1..n, the last entry's state is the episode's state, and re-running the
logged events through the engine rebuilds the stored snapshot (facts, timers, tasks) exactly.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

from sqlalchemy import text

from storage.unit_of_work import uow_factory
from tests.support.episode_driver import check_stored_episode
from tests.support.protocol import REPOSITORY

WRITER = ["-m", "tests.integration.sql_storage.writer"]  # run from the repository root


def kill_mid_run(url: str, round_: str, rng: random.Random) -> None:
    proc = subprocess.Popen(
        [sys.executable, *WRITER, "loop", url, round_],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.2, 0.6))
        assert proc.poll() is None, "the writer stopped on its own"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def test_a_killed_writer_leaves_only_whole_decisions(database_url: str) -> None:
    rng = random.Random(20260302)
    for round_ in ("r0", "r1", "r2"):
        kill_mid_run(database_url, round_, rng)

    make_uow = uow_factory(database_url)
    with make_uow() as uow:
        episode_ids = uow.episode_ids()
    assert len(episode_ids) >= 3
    decisions = 0
    for episode_id in episode_ids:
        decisions += check_stored_episode(make_uow(), episode_id).version
    assert decisions > 30, "the writer was killed before it wrote much: nothing was tested"

    with make_uow.engine.connect() as db:  # no row without its decision's audit entry
        entries = db.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
        outcomes = db.execute(
            text("SELECT count(*) FROM audit_log WHERE outcome IS NOT NULL")
        ).scalar_one()
        observed = db.execute(text("SELECT count(*) FROM observations")).scalar_one()
        with_facts = db.execute(
            text("SELECT count(*) FROM audit_log WHERE kind IN ('open', 'observe')")
        ).scalar_one()
        if make_uow.engine.dialect.name == "sqlite":
            assert db.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    assert entries == outcomes == decisions
    assert observed == with_facts
    make_uow.dispose()
