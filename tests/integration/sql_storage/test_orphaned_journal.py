"""A database file that is missing while its ``-wal`` or ``-journal`` is there is refused.

SQLite applies the log it finds beside a database of that name without checking that they
belong together: a new database made where one was deleted (its log left) silently takes the
old one's pages. The first test shows SQLite doing it; the others that carepath never lets it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from carepath.replay import into_database
from carepath.replay.into_database import replay_into
from storage import new_file
from storage.file_modes import OrphanedJournal
from storage.unit_of_work import uow_factory
from tests.integration.sql_storage.test_replay_new_file import FILES, key, leftovers, url
from tests.support.episode_driver import DEFS


def leave_a_log(path: Path) -> bytes:
    """A database at ``path`` with a committed row still in its -wal, then the database file
    deleted and the -wal left (as ``rm carepath.db`` would): the -wal's bytes."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute("CREATE TABLE old (x)")
    db.execute("INSERT INTO old VALUES ('the deleted database''s row')")
    db.commit()
    wal = path.with_name(path.name + "-wal")
    saved = wal.read_bytes()  # closing the last connection would checkpoint it away
    db.close()
    path.unlink()
    wal.write_bytes(saved)
    return saved


def test_sqlite_applies_a_left_log_to_a_new_database_of_that_name(tmp_path: Path) -> None:
    path = tmp_path / "carepath.db"
    leave_a_log(path)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE new (x)")
    db.commit()
    db.close()
    shutil.copy(other, path)
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("old",)]  # the new database's table is gone: the hazard is real


@pytest.mark.parametrize("suffix", ["-wal", "-journal"])
def test_opening_a_new_database_beside_a_left_log_is_refused_and_changes_nothing(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / "carepath.db"
    log = path.with_name(path.name + suffix)
    log.write_bytes(b"a log left by a deleted database")
    with pytest.raises(OrphanedJournal, match=rf"carepath.db{suffix} is there but its database"):
        uow_factory(url(path), key())
    assert not path.exists()
    assert log.read_bytes() == b"a log left by a deleted database"  # left for a person


def test_an_existing_database_and_its_log_open_as_always(tmp_path: Path) -> None:
    path = tmp_path / "carepath.db"
    factory = uow_factory(url(path), key())
    held = factory.connections.take()
    try:
        assert path.with_name("carepath.db-wal").exists()
    finally:
        factory.connections.give(held)
    uow_factory(url(path), key()).dispose()  # a second opener, the -wal there: not refused
    factory.dispose()


def test_the_command_line_names_the_log_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "carepath.db"
    saved = leave_a_log(path)
    done = subprocess.run(
        [sys.executable, "-m", "carepath.cli", "db", "upgrade"],
        env={**os.environ, "CAREPATH_DATABASE_URL": url(path)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "carepath.db-wal is there but its database carepath.db is not" in done.stderr
    assert not path.exists() and path.with_name("carepath.db-wal").read_bytes() == saved


def test_a_replay_into_a_new_file_beside_a_left_log_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new.db"
    saved = leave_a_log(path)
    with pytest.raises(OrphanedJournal):
        replay_into(url(path), FILES, DEFS, key())
    assert not path.exists() and leftovers(tmp_path) == []
    assert path.with_name("new.db-wal").read_bytes() == saved


def test_a_log_left_while_the_new_file_is_built_is_refused_before_the_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new.db"
    real = into_database.replay_all

    def someone_leaves_a_log(*args: Any, **kwargs: Any) -> Any:
        done = real(*args, **kwargs)
        path.with_name("new.db-journal").write_bytes(b"theirs")
        return done

    monkeypatch.setattr(into_database, "replay_all", someone_leaves_a_log)
    with pytest.raises(OrphanedJournal, match="new.db-journal is there"):
        replay_into(url(path), FILES, DEFS, key())
    assert not path.exists() and leftovers(tmp_path) == []
    assert new_file.SUFFIX not in "".join(os.listdir(tmp_path))
