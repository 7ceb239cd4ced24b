"""Concurrent writers: a stale write is a ConcurrencyConflict, never a lost update.

Two threads that both read version N of one episode and both save: exactly one succeeds, the
other gets ConcurrencyConflict and succeeds on retry (SQLite and PostgreSQL). Then eight
processes of 200 events each on three PostgreSQL episodes, retrying on conflicts: every event
is applied exactly once and every chain verifies and replays.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

from pathway import usecases
from pathway.errors import ConcurrencyConflict
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import DEFS, check_stored_episode, day, in_care
from tests.support.protocol import REPOSITORY
from tests.support.racing import ReadThenWait

WRITER = ["-m", "tests.integration.sql_storage.writer"]  # run from the repository root


def race(url: str, event_ids: tuple[str, str]) -> tuple[list[Any], list[BaseException]]:
    """Two threads observe one episode, both reading the same version before either saves."""
    factory = uow_factory(url)
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def write(pain: int, event_id: str) -> None:
        uow = ReadThenWait(factory(), barrier)
        try:
            results.append(
                usecases.observe(
                    uow,
                    DEFS,
                    "ep-1",
                    {"pain_score": pain},
                    at=day(2),
                    now=day(2),
                    actor="t",
                    event_id=event_id,
                )
            )
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(p, e)) for p, e in zip((3, 9), event_ids, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    factory.dispose()
    return results, errors


def test_two_writers_of_one_version_one_conflicts_and_nothing_is_lost(database_url: str) -> None:
    make_uow = uow_factory(database_url)
    in_care(make_uow, "ep-1")  # version 2
    results, errors = race(database_url, ("a", "b"))

    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], ConcurrencyConflict), errors[0]
    assert (errors[0].expected_version, errors[0].found) == (2, 3)
    winner = results[0].outcome
    loser = "b" if winner.event_id == "a" else "a"
    episode = check_stored_episode(make_uow(), "ep-1")
    assert episode.version == 3 and episode.facts["pain_score"].observation_id == winner.event_id
    with make_uow() as uow:
        assert uow.find_outcome(loser) is None

    retried = usecases.observe(
        make_uow(),
        DEFS,
        "ep-1",
        {"pain_score": 5},
        at=day(2),
        now=day(2),
        actor="t",
        event_id=loser,
    )
    assert retried.outcome.version == 4  # applied on top of the winner: no lost update
    assert check_stored_episode(make_uow(), "ep-1").fact("pain_score") == 5


def test_the_same_event_from_two_writers_is_applied_once(database_url: str) -> None:
    make_uow = uow_factory(database_url)
    in_care(make_uow, "ep-1")
    results, errors = race(database_url, ("same", "same"))

    assert len(results) == 1 and [type(e) for e in errors] == [ConcurrencyConflict]
    again = usecases.observe(
        make_uow(),
        DEFS,
        "ep-1",
        {"pain_score": 1},
        at=day(2),
        now=day(2),
        actor="t",
        event_id="same",
    )
    assert again.outcome.repeated and again.outcome.version == 3
    assert check_stored_episode(make_uow(), "ep-1").version == 3


def test_eight_processes_of_200_events_on_postgres_apply_each_event_once(
    fresh_postgres_url: str,
) -> None:
    workers, events, episode_ids = 8, 200, ["ep-a", "ep-b", "ep-c"]
    make_uow = uow_factory(fresh_postgres_url)
    for episode_id in episode_ids:
        in_care(make_uow, episode_id)  # versions 1-2 each
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                *WRITER,
                "contend",
                fresh_postgres_url,
                ",".join(episode_ids),
                str(w),
                str(events),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPOSITORY,
        )
        for w in range(workers)
    ]
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        summaries.append(json.loads(out))

    versions = 0
    applied: list[str] = []
    for episode_id in episode_ids:
        episode = check_stored_episode(make_uow(), episode_id)  # chain, seqs 1..n, replay
        with make_uow() as uow:
            records = uow.audit_records(episode_id)
        applied += [r.event_id for r in records if r.actor.startswith("worker-")]
        versions += episode.version - 2
    expected = {f"w{w}-{i}" for w in range(workers) for i in range(events)}
    assert sorted(applied) == sorted(expected)  # each exactly once: nothing lost, nothing twice
    assert versions == workers * events
    assert sum(s["conflicts"] for s in summaries) > 0, "the writers never actually contended"
