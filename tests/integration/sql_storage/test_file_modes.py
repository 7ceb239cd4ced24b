"""The SQLite database, its -wal and its -shm are created 0600, and tightened if found open.

The umask is set wide open (0) for each test, so that a mode of 0600 is the code's doing.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pathway import usecases
from pathway.definition import load_definition
from pathway.usecases import DefinitionRegistry
from storage.database import upgrade
from storage.unit_of_work import uow_factory

DEFS = DefinitionRegistry(load_definition())
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FILES = ("carepath.db", "carepath.db-wal", "carepath.db-shm")


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _modes_after_a_write(url: str) -> dict[str, int]:
    """Write an episode; the modes of the three files while a connection holds them open."""
    folder = Path(url[len("sqlite:///") :]).parent
    factory = uow_factory(url)
    try:
        usecases.open_episode(factory(), DEFS, {"age": 70}, at=T0, now=T0, actor="t")
        held = factory.connections.take()
        try:
            return {name: _mode(folder / name) for name in FILES}
        finally:
            factory.connections.give(held)
    finally:
        factory.dispose()


def test_a_new_database_and_its_wal_and_shm_are_created_0600(tmp_path: Path) -> None:
    modes = _modes_after_a_write(f"sqlite:///{tmp_path / 'carepath.db'}")
    assert modes == dict.fromkeys(FILES, 0o600)


def test_db_upgrade_creates_the_file_0600(tmp_path: Path) -> None:
    upgrade(f"sqlite:///{tmp_path / 'carepath.db'}")
    assert _mode(tmp_path / "carepath.db") == 0o600


def test_an_existing_world_readable_database_is_tightened_on_open_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'carepath.db'}"
    upgrade(url)
    os.chmod(tmp_path / "carepath.db", 0o666)  # as an older carepath or a careless copy left it
    for name in FILES[1:]:  # and empty companions, as a crash can leave them
        os.close(os.open(tmp_path / name, os.O_CREAT | os.O_WRONLY, 0o644))
    with caplog.at_level(logging.WARNING, logger="carepath.storage"):
        modes = _modes_after_a_write(url)
    assert modes == dict.fromkeys(FILES, 0o600)
    assert f"{tmp_path / 'carepath.db'} was mode 666: tightened to 600" in caplog.text
    assert f"{tmp_path / 'carepath.db-wal'} was mode 644: tightened to 600" in caplog.text


def test_an_export_file_is_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    from storage.file_modes import open_private

    old = os.umask(0o000)
    try:
        with open_private(tmp_path / "new.xes") as sink:
            sink.write(b"<log/>")
        existing = tmp_path / "old.xes"
        existing.write_bytes(b"a longer earlier export")
        existing.chmod(0o644)
        with open_private(existing) as sink:
            sink.write(b"<log/>")
    finally:
        os.umask(old)
    for path in (tmp_path / "new.xes", existing):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert path.read_bytes() == b"<log/>"  # an earlier, longer export is truncated
