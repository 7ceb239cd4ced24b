"""Shared fixtures: a PostgreSQL server for the session, and the three unit-of-work backends.

``postgres_url`` is ``CAREPATH_TEST_POSTGRES_URL`` when set, else a throwaway cluster started
for the session; with neither, PostgreSQL tests skip with the reason — or fail when CI=true.
``uow_factory`` runs a test on "memory", "sqlite" (a file in tmp_path) and "postgres" (a fresh
database per test, copied from a migrated template); ``database_url`` gives the two SQL ones.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pathway.audit import AuditKey, use_process_key
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork, UnitOfWork
from storage.postgres_cluster import postgres_available, postgres_server

TEMPLATE = "carepath_template"
# The signing key and checkpoints of every test live in a throwaway configuration directory,
# never the user's; one audit key serves the suite's processes (a unit of work given no key,
# the CLI, subprocess workers), so that what one writes another verifies. A test that needs
# other keys sets CAREPATH_* itself.
TEST_AUDIT_SECRET = bytes(range(100, 132))
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="carepath-test-config-")
os.environ["CAREPATH_AUDIT_KEY"] = TEST_AUDIT_SECRET.hex()
for _name in ("CAREPATH_AUDIT_KEY_FILE", "CAREPATH_CHECKPOINT_DIR"):
    os.environ.pop(_name, None)
use_process_key(AuditKey(TEST_AUDIT_SECRET))
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    reason = postgres_available()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so PostgreSQL is required: {reason}")
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_template(postgres_url: str) -> str:
    """A database migrated once, that each test's database is copied from."""
    from storage.database import upgrade

    _admin(postgres_url, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
    upgrade(_database(postgres_url, TEMPLATE))
    return TEMPLATE


@pytest.fixture
def fresh_postgres_url(postgres_url: str, _postgres_template: str) -> Iterator[str]:
    name = f"carepath_test_{os.getpid()}_{next(_databases)}"
    _admin(postgres_url, f"CREATE DATABASE {name} TEMPLATE {_postgres_template}")
    yield _database(postgres_url, name)
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'carepath.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def uow_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], UnitOfWork]]:
    if request.param == "memory":
        store = InMemoryStore()
        yield lambda: InMemoryUnitOfWork(store)
        return
    from storage.unit_of_work import uow_factory as sql_uow_factory

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'carepath.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    factory = sql_uow_factory(url)
    yield factory
    factory.dispose()


def _database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin(url: str, *statements: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
