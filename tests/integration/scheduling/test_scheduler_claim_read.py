"""A timer batch on PostgreSQL: the claim reads the claimed episodes' snapshots in its own
statement (``ClaimStore.claim_snapshots``), and the batch's writes are planned the same way
whatever the tables' statistics (never a scan of every timer on a database not analyzed)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from pathway import usecases
from pathway.usecases import DefinitionRegistry
from scheduler.worker import TimerWorker
from storage import batch
from storage.batch_arrays import write_group_arrays
from storage.reads import episode_from_row
from storage.unit_of_work import uow_factory
from tests.support.timer_cohort import (
    EXTRA,
    NOW,
    assert_each_timer_fired_once_in_order,
    busy_definition,
    open_idle_episodes,
    timer_firings,
)

DEFS = DefinitionRegistry(busy_definition())
LEASE = timedelta(minutes=1)


def test_the_claim_returns_the_snapshots_of_the_episodes_it_claimed(fresh_postgres_url) -> None:  # noqa: ANN001
    factory = uow_factory(fresh_postgres_url)
    ids = open_idle_episodes(factory, DEFS, 5)
    claims = TimerWorker(factory, DEFS, worker_id="w-a").claims
    with claims.connection() as db, claims.transaction(db):
        rows = claims.claim_snapshots(db, "w-a", NOW, 3, NOW + LEASE)
    assert len(rows) == 3
    fresh = uow_factory(fresh_postgres_url)  # no cache: each snapshot read from its rows
    with fresh() as uow:
        for row in rows:
            assert episode_from_row(row) == uow.get_episode(row[0])
        held = uow.connection().execute("SELECT id, claimed_by, lease_until FROM episodes")
        claimed = {r[0]: (r[1], r[2]) for r in held.fetchall()}
    assert {i for i, (who, _) in claimed.items() if who == "w-a"} == {r[0] for r in rows}
    assert all(until == NOW + LEASE for who, until in claimed.values() if who == "w-a")
    assert sum(1 for who, _ in claimed.values() if who is None) == len(ids) - 3
    fresh.dispose()
    factory.dispose()


def test_an_episode_moved_after_the_claim_read_it_fails_the_group_and_is_redone(
    fresh_postgres_url, caplog: pytest.LogCaptureFixture
) -> None:  # noqa: ANN001
    """The snapshot was read before the batch's transaction: a coordinator's observation in
    between must not be overwritten; the guard of the batch's episode write catches it."""
    factory = uow_factory(fresh_postgres_url)
    ids = open_idle_episodes(factory, DEFS, 3)
    worker = TimerWorker(factory, DEFS, worker_id="w-a")
    claims = worker.claims
    with claims.connection() as db, claims.transaction(db):
        rows = claims.claim_snapshots(db, "w-a", NOW, 10, NOW + LEASE)
    moved = rows[0][0]
    with factory() as uow:
        before = uow.get_episode(moved).version
    usecases.observe(factory(), DEFS, moved, {"pain_score": 5}, at=NOW, now=NOW, actor="nurse")
    with caplog.at_level(logging.INFO, logger="carepath.scheduler"):
        assert worker._fire_batch([r[0] for r in rows], NOW, rows) == 3 * (EXTRA + 1)
    assert any("redone carefully" in r.getMessage() for r in caplog.records)
    with factory() as uow:
        episode = uow.get_episode(moved)
        assert episode.facts["pain_score"].value == 5  # the observation stayed
        assert episode.version == before + 1 + EXTRA + 1
    assert_each_timer_fired_once_in_order(timer_firings(factory, ids), EXTRA + 1)
    factory.dispose()


# Episodes with nothing due, each with its copy of the timers (fired): tables big enough that a
# scan of either costs more than probing its primary key once per batch row.
PADDING = (
    "INSERT INTO episodes SELECT (jsonb_populate_record(NULL::episodes, to_jsonb(e)"
    " || jsonb_build_object('id', e.id || '-' || g, 'next_due_at', NULL))).*"
    " FROM episodes e, generate_series(1, 150) g",
    "INSERT INTO timers SELECT (jsonb_populate_record(NULL::timers, to_jsonb(t)"
    " || jsonb_build_object('episode_id', t.episode_id || '-' || g, 'status', 'fired'))).*"
    " FROM timers t, generate_series(1, 150) g",
)


def _explained(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """auto_explain's plans (as notices) of every statement a group write runs."""
    plans: list[str] = []
    seen: set[int] = set()

    def write(backend, db, queue, release_for=None):  # noqa: ANN001, ANN202
        conn = db.connection
        if id(conn) not in seen:
            seen.add(id(conn))
            conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
        try:
            db.execute("LOAD 'auto_explain'")
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("auto_explain needs a superuser")
        for setting in ("log_min_duration = 0", "log_level = notice", "log_analyze = off"):
            db.execute(f"SET LOCAL auto_explain.{setting}")
        return write_group_arrays(backend, db, queue, release_for)

    monkeypatch.setattr(batch, "write_group_arrays", write)
    return plans


def test_batch_writes_probe_the_primary_key_on_a_database_never_analyzed(
    fresh_postgres, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    """A custom plan of ``UPDATE … FROM unnest(…)`` on tables without statistics hash-joins a
    scan of the whole table (measured: 40-70 ms a batch of 1,100 timers out of 100,000).
    As the superuser: auto_explain is loaded per session."""
    factory = uow_factory(str(fresh_postgres.admin))
    with factory() as uow:  # no autovacuum either: it may analyze them before the check below
        db = uow.connection()
        for table in ("episodes", "timers"):
            db.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        db.connection.commit()
    open_idle_episodes(factory, DEFS, 20)
    with factory() as uow:  # tables as a copied or restored database has them: no statistics
        db = uow.connection()
        for sql in PADDING:
            db.execute(sql)
        db.connection.commit()
        analyzed = db.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename IN ('timers', 'episodes')"
        )
        assert analyzed.fetchone()[0] == 0
    plans = _explained(monkeypatch)
    assert TimerWorker(factory, DEFS, batch=20).sweep(NOW) == 20 * (EXTRA + 1)
    updates: dict[str, list[Any]] = {"timers": [], "episodes": []}
    for plan in plans:
        for table, found in updates.items():
            if f"Update on {table}" in plan:
                found.append(plan)
    assert all(updates.values()), plans
    for table, found in updates.items():
        for plan in found:
            assert f"Seq Scan on {table}" not in plan, plan
    factory.dispose()
