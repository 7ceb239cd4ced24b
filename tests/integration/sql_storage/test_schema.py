"""Engines, migrations and the table models agree with each other on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.pool import StaticPool

from storage.database import (
    alembic_config,
    create_engine_for,
    current_revision,
    ensure_schema,
    head_revision,
    normalise_url,
    upgrade,
)
from storage.tables import TABLES, EpisodeRow, TimerRow, metadata
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import in_care


def test_the_migrations_build_the_schema_the_table_models_describe(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine_for(database_url)
    with engine.connect() as db:
        context = MigrationContext.configure(db, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        assert current_revision(db) == head_revision()
    engine.dispose()


def test_downgrade_removes_everything_and_upgrade_restores_it(database_owner_url: str) -> None:
    database_url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(database_url)
    engine = create_engine_for(database_url)
    with engine.begin() as db:
        command.downgrade(alembic_config(db), "base")
    assert not set(TABLES) & set(inspect(engine).get_table_names())
    upgrade(database_url)
    assert set(TABLES) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_a_fresh_sqlite_file_is_migrated_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    make_uow = uow_factory(url)
    in_care(make_uow, "ep-1")
    ensure_schema(make_uow.engine)  # already at head: a no-op
    with make_uow.engine.connect() as db:
        assert current_revision(db) == head_revision()
    make_uow.dispose()


def test_sqlite_connections_are_set_up_for_one_writer_and_many_readers(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as db:
        pragma = {
            p: db.exec_driver_sql(f"PRAGMA {p}").scalar_one()
            for p in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": 1,
        "busy_timeout": 10_000,
    }
    engine.dispose()


def test_in_memory_sqlite_is_one_database_shared_by_every_connection() -> None:
    engine = create_engine_for("sqlite://")
    assert isinstance(engine.pool, StaticPool)
    make_uow = uow_factory("sqlite://")
    in_care(make_uow, "ep-1")
    with make_uow() as first, make_uow() as second:
        assert first.get_episode("ep-1") == second.get_episode("ep-1")


def test_urls_name_psycopg_3_for_postgresql() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"):
        assert normalise_url(url).drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="expected sqlite"):
        create_engine_for("mysql://u@h/db")


def test_times_read_through_the_table_models_are_aware_utc(database_url: str) -> None:
    make_uow = uow_factory(database_url)
    expected = in_care(make_uow, "ep-1").episode()
    with make_uow.engine.connect() as db:
        row = db.execute(select(EpisodeRow.opened_at, EpisodeRow.next_due_at)).one()
        pending = select(TimerRow.due_at).where(TimerRow.status == "pending")
        due = db.execute(pending.order_by(TimerRow.due_at)).scalars().first()
    assert row.opened_at == expected.opened_at and row.opened_at.utcoffset().total_seconds() == 0
    assert row.next_due_at == due == min(t.due_at for t in expected.pending_timers())
    make_uow.dispose()
