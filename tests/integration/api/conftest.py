"""Fixtures of the API tests: an app on a fresh SQLite file (``api``) or on each database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_world import ApiWorld


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy (migrating costs ~0.15 s)."""
    from storage.database import upgrade

    path = tmp_path_factory.mktemp("template") / "api.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def api(tmp_path: Path, _sqlite_template: Path) -> Iterator[ApiWorld]:
    shutil.copyfile(_sqlite_template, tmp_path / "api.db")
    world = ApiWorld.start(f"sqlite:///{tmp_path / 'api.db'}")
    yield world
    world.stop()


@pytest.fixture
def api_on(database_url: str) -> Iterator[ApiWorld]:
    """The app on SQLite and on PostgreSQL (the session's throwaway server)."""
    world = ApiWorld.start(database_url)
    yield world
    world.stop()
