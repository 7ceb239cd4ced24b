"""Ready connections: a broken one is dropped, never handed to the next unit of work."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError as SAOperationalError

from pathway import usecases
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import DEFS, check_stored_episode, day, in_care


def test_a_connection_the_server_dropped_fails_once_then_a_fresh_one_is_used(
    fresh_postgres_url: str,
) -> None:
    make_uow = uow_factory(fresh_postgres_url)
    in_care(make_uow, "ep-1")
    url = make_url(fresh_postgres_url)
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as db:
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (url.database,),
        )

    def observe(pain: int) -> int:
        uow = make_uow()
        return usecases.observe(
            uow, DEFS, "ep-1", {"pain_score": pain}, at=day(1), now=day(1), actor="t"
        ).outcome.version

    with pytest.raises((psycopg.OperationalError, SAOperationalError)):
        observe(4)
    assert observe(5) == 3
    make_uow.dispose()


def test_a_write_failing_halfway_writes_nothing_and_leaves_the_connection_clean(
    tmp_path: Path,
) -> None:
    make_uow = uow_factory(f"sqlite:///{tmp_path / 'x.db'}")
    in_care(make_uow, "ep-1")
    before = check_stored_episode(make_uow(), "ep-1")
    backend = make_uow.connections.backend
    broken = replace(backend.queries, insert_audit="INSERT INTO no_such_table VALUES (1)")
    backend.queries = broken  # the episode and observation rows go in, then this fails
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        usecases.observe(
            make_uow(), DEFS, "ep-1", {"pain_score": 2}, at=day(1), now=day(1), actor="t"
        )
    del backend.queries  # back to the class's statements
    assert check_stored_episode(make_uow(), "ep-1") == before
    pooled, cursor = make_uow.connections.take()
    assert backend.is_clean(cursor.connection)
    make_uow.connections.give((pooled, cursor))
    applied = usecases.observe(
        make_uow(), DEFS, "ep-1", {"pain_score": 2}, at=day(1), now=day(1), actor="t"
    )
    assert applied.outcome.version == 3
    make_uow.dispose()


def test_a_sqlite_connection_checkpoints_its_wal_only_past_the_measured_size(
    tmp_path: Path,
) -> None:
    from storage.database import WAL_AUTOCHECKPOINT_PAGES

    make_uow = uow_factory(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with make_uow() as uow:
            db = uow.connection()
            assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 8_000
            limit = db.execute("PRAGMA journal_size_limit").fetchone()[0]
        assert WAL_AUTOCHECKPOINT_PAGES == 8_000 and limit == 8_000 * 4096
    finally:
        make_uow.dispose()
