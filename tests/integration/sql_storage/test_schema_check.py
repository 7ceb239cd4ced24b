"""Opening a database checks its revision without Alembic when it is at the head the scripts
name (``storage.database.ensure_schema``), and still migrates every other case with Alembic."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage import database
from storage.unit_of_work import uow_factory
from tests.support.protocol import REPOSITORY


def revision_of(path: Path) -> list[tuple[str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchall()


def test_a_database_at_head_is_opened_without_importing_alembic(tmp_path: Path) -> None:
    path = tmp_path / "at-head.db"
    database.upgrade(f"sqlite:///{path}")
    code = (
        "import sys\n"
        "from storage.unit_of_work import uow_factory\n"
        f"uow_factory('sqlite:///{path}').dispose()\n"
        "print('alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, cwd=REPOSITORY, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == b"False"


@pytest.mark.parametrize("plain", [True, False], ids=["scripts read", "scripts unclear"])
def test_a_database_behind_head_is_still_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain: bool
) -> None:
    head = database.head_revision()
    if not plain:  # a head the scripts do not say plainly: Alembic decides, as before
        monkeypatch.setattr(database, "scripts_head", lambda: None)
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
    assert database.scripts_head() == database.head_revision()
