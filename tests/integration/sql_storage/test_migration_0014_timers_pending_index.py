"""Migration 0014 (due timers found through an index of pending timers only): the queries that
read pending timers use it, a fired timer leaves it, and it downgrades to 0013's index exactly
and upgrades again to the same, every timer kept."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from storage.database import create_engine_for, upgrade
from storage.sql import query as named
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import day, in_care
from tests.support.migrations import downgrade_to, schema_of

TIMERS = 'SELECT episode_id, key, rule_id, due_at, status, "order", fired_at FROM timers'
PENDING_READS = ("count_due", "oldest_due", "parked", "count_parked")  # + due_timers, below


def rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine_for(url)
    try:
        with engine.begin() as db:
            if engine.dialect.name == "postgresql":
                db.execute(text("SET LOCAL enable_seqscan = off"))  # a few rows: else a scan
            return [tuple(r) for r in db.execute(text(sql), params).all()]
    finally:
        engine.dispose()


def plan(url: str, sql: str) -> str:
    explain = "EXPLAIN QUERY PLAN " if url.startswith("sqlite") else "EXPLAIN "
    params = {"now": day(400), "limit": 10}
    return "\n".join(str(r) for r in rows(url, explain + sql, **params))


def due_timers(dialect: str) -> str:
    collate = ' COLLATE "C"' if dialect == "postgresql" else ""
    return named("due_timers").format(episode="", collate=collate)


def test_0014_indexes_the_pending_timers_and_downgrades_exactly(database_owner_url: str) -> None:
    url = database_owner_url  # PostgreSQL: the owner role
    upgrade(url)
    factory = uow_factory(url)
    try:
        in_care(factory, "ep-1").advance(60)  # timers set on day 0, some fired since
    finally:
        factory.dispose()
    timers = sorted(rows(url, TIMERS))
    assert {"pending", "fired"} <= {t[4] for t in timers}
    head = schema_of(url)
    assert ("timers", "ix_timers_pending_due_at") in head["indexes"]  # type: ignore[operator]
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    for sql in (*(named(n) for n in PENDING_READS), due_timers(dialect)):
        assert "ix_timers_pending_due_at" in plan(url, sql), sql
    pending = [t for t in timers if t[4] == "pending"]
    assert rows(url, "SELECT count(*) FROM timers WHERE status = 'pending'") == [(len(pending),)]

    downgrade_to(url, "0013")
    at_0013 = schema_of(url)
    indexes = {i for t, i in at_0013["indexes"] if t == "timers"}  # type: ignore[union-attr]
    assert "ix_timers_status_due_at" in indexes and "ix_timers_pending_due_at" not in indexes
    assert sorted(rows(url, TIMERS)) == timers
    assert "ix_timers_status_due_at" in plan(url, named("count_due"))

    upgrade(url)
    assert schema_of(url) == head
    assert sorted(rows(url, TIMERS)) == timers
