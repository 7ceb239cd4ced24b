"""Migration 0013 (SQLite: observations in a rowid table) downgrades to 0012 exactly — the
table's CREATE text as 0001 wrote it, every row — and upgrades again to the same."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from storage.database import create_engine_for, upgrade
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import in_care
from tests.support.migrations import downgrade_to, schema_of

OBSERVATIONS = "SELECT episode_id, seq, id, facts, at, recorded_at, actor, source FROM observations"


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as db:
            return sorted(tuple(r) for r in db.execute(text(sql)).all())
    finally:
        engine.dispose()


def create_sql(url: str) -> str | None:
    if not url.startswith("sqlite"):
        return None
    found = query(url, "SELECT sql FROM sqlite_master WHERE name = 'observations'")
    return str(found[0][0])


def test_0013_rebuilds_observations_with_a_rowid_and_back_exactly(database_owner_url: str) -> None:
    url = database_owner_url  # PostgreSQL: the owner role (nothing changes there)
    upgrade(url, "0012")
    at_0012 = create_sql(url)
    upgrade(url)
    factory = uow_factory(url)
    try:
        in_care(factory, "ep-1")
    finally:
        factory.dispose()
    downgrade_to(url, "0013")  # this test is 0013's: the later migrations undone
    rows = query(url, OBSERVATIONS)
    assert len(rows) >= 2
    at_0013, head_sql = schema_of(url), create_sql(url)
    if head_sql is not None:
        assert at_0012 is not None and "WITHOUT ROWID" in at_0012
        assert "WITHOUT ROWID" not in head_sql

    downgrade_to(url, "0012")
    assert create_sql(url) == at_0012  # the text as 0001 wrote it
    assert query(url, OBSERVATIONS) == rows
    assert schema_of(url) == at_0013

    upgrade(url, "0013")
    assert create_sql(url) == head_sql
    assert query(url, OBSERVATIONS) == rows
    assert schema_of(url) == at_0013
