"""Opening a database checks its revision without Alembic when it is at the head the scripts
name (``storage.database.ensure_schema``), and still migrates every other case with Alembic."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import database
from storage.unit_of_work import uow_factory
from tests.support.imports import imports_module


def revision_of(path: Path) -> list[tuple[str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchall()


def test_a_database_at_head_is_opened_without_importing_alembic(tmp_path: Path) -> None:
    path = tmp_path / "at-head.db"
    database.upgrade(f"sqlite:///{path}")
    code = (
        f"from storage.unit_of_work import uow_factory\nuow_factory('sqlite:///{path}').dispose()"
    )
    assert not imports_module(code, "alembic")


@pytest.mark.parametrize("plain", [True, False], ids=["scripts read", "scripts unclear"])
def test_a_database_behind_head_is_still_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain: bool
) -> None:
    head = database.head_revision()
    if not plain:  # a head the scripts do not say plainly: Alembic decides, as before
        monkeypatch.setattr(database, "scripts_head", lambda: None)
        database.head_revision.cache_clear()  # Alembic's head, then (the same revision)
    path = tmp_path / "behind.db"
    database.upgrade(f"sqlite:///{path}", "0012")
    assert revision_of(path) == [("0012",)]
    uow_factory(f"sqlite:///{path}").dispose()
    assert revision_of(path) == [(head,)]
    with sqlite3.connect(path) as db:  # 0013's change is there, not just its version row
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'observations'").fetchone()
    assert "WITHOUT ROWID" not in sql[0].upper()  # 0013 made it a rowid table


def test_a_new_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    uow_factory(f"sqlite:///{path}").dispose()
    assert revision_of(path) == [(database.head_revision(),)]


def test_the_scripts_name_alembics_head() -> None:
    assert database.scripts_head() == database.alembic_head()


def test_definitions_are_recorded_and_loaded_without_the_sqlmodel_tables(tmp_path: Path) -> None:
    code = (
        "from storage.definitions import registry_for\n"
        "from storage.unit_of_work import uow_factory\n"
        "from tests.support.episode_driver import DEFS\n"
        f"factory = uow_factory('sqlite:///{tmp_path / 'defs.db'}')\n"
        "registry = registry_for(factory, [DEFS.get(v) for v in DEFS.versions()])\n"
        "assert registry.get(DEFS.versions()[0]).version == DEFS.versions()[0]\n"
        "again = registry_for(factory, [DEFS.get(DEFS.versions()[0])])  # the others: stored\n"
        "assert sorted(again.versions()) == sorted(DEFS.versions())\n"
    )
    assert not imports_module(code, "storage.tables")
