"""SQLite's WAL checkpoints run in the factory's thread (storage.wal), not in a commit."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from storage.unit_of_work import uow_factory
from storage.wal import WAL_AUTOCHECKPOINT_PAGES, WalCheckpointer
from tests.support.episode_driver import in_care


def wait_for(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_writers_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    factory = uow_factory(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        in_care(factory, "ep-1")
        with factory() as uow:
            pages = uow.connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages == WAL_AUTOCHECKPOINT_PAGES  # a writer checkpoints only far past this
        assert factory.checkpointer is not None
        assert wait_for(lambda: factory.checkpointer.done[0] >= 1)
        probe = sqlite3.connect(tmp_path / "c.db")
        _, frames, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        probe.close()
        assert frames == copied  # everything the writers wrote is in the database file
    finally:
        factory.dispose()


def test_dispose_stops_the_thread_and_leaves_everything_in_the_file(tmp_path: Path) -> None:
    factory = uow_factory(f"sqlite:///{tmp_path / 'c.db'}")
    in_care(factory, "ep-1")
    factory.dispose()
    assert factory.checkpointer is not None
    assert not factory.checkpointer._thread.is_alive()
    shutil.copy(tmp_path / "c.db", tmp_path / "copy.db")  # the file alone, no -wal
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 2
    copy.close()


def test_an_in_memory_database_has_no_checkpointer() -> None:
    factory = uow_factory("sqlite://")
    try:
        assert factory.checkpointer is None
    finally:
        factory.dispose()


def test_the_thread_stops_when_its_owner_is_gone(tmp_path: Path) -> None:
    class Owner:
        pass

    owner = Owner()
    sqlite3.connect(tmp_path / "x.db").close()
    checkpointer = WalCheckpointer(tmp_path / "x.db", interval=0.01).start(owner)
    del owner  # garbage-collected: the thread held no reference to it
    assert wait_for(lambda: not checkpointer._thread.is_alive())
