"""Shared fixtures: a PostgreSQL server for the session, and the three unit-of-work backends.

``postgres_url`` is ``CAREPATH_TEST_POSTGRES_URL`` when set, else a throwaway cluster started
for the session; with neither, PostgreSQL tests skip with the reason — or fail when CI=true.
``uow_factory`` runs a test on "memory", "sqlite" (a file in tmp_path) and "postgres" (a fresh
database per test, copied from a migrated template); ``database_url`` gives the two SQL ones.

On PostgreSQL the application's tests run as the least-privileged application role, as in
production (``storage.roles``): the template is set up by ``storage.roles.set_up`` (roles
created, migrated as the owner, grants applied), and ``fresh_postgres_url`` connects as
``carepath_app``. ``fresh_postgres`` also gives the owner's and the superuser's URLs of the
same database; ``database_admin_url`` is the superuser's (SQLite: the file), for tests that
tamper with what the application cannot touch.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pathway.audit import AuditKey, use_process_key
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork, UnitOfWork
from storage.postgres_cluster import postgres_available, postgres_server
from storage.roles import Roles

TEMPLATE = "carepath_template"
ROLES = Roles()  # carepath_owner, carepath_app
TEST_PASSWORD = "carepath-test"  # the throwaway cluster trusts loopback; a real server may not
# The signing key and checkpoints of every test live in a throwaway configuration directory,
# never the user's; one audit key serves the suite's processes (a unit of work given no key,
# the CLI, subprocess workers), so that what one writes another verifies. A test that needs
# other keys sets CAREPATH_* itself.
TEST_AUDIT_SECRET = bytes(range(100, 132))
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="carepath-test-config-")
os.environ["CAREPATH_CACHE_DIR"] = tempfile.mkdtemp(prefix="carepath-test-cache-")
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


@dataclass(frozen=True)
class PostgresDatabase:
    """One test's database, reachable as each of the three roles."""

    app: str  # the application role: what the application's tests use
    owner: str  # the owner role: migrations, DDL
    admin: str  # the cluster's superuser: tampering, inspecting


@pytest.fixture(scope="session")
def _postgres_template(postgres_url: str) -> str:
    """A database set up once as production is (roles, migrations as the owner, grants), that
    each test's database is copied from (ownership, grants and default privileges with it)."""
    from storage.roles import set_up

    _admin(postgres_url, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
    passwords = {ROLES.owner: TEST_PASSWORD, ROLES.app: TEST_PASSWORD}
    set_up(_database(postgres_url, TEMPLATE), ROLES, passwords)
    return TEMPLATE


@pytest.fixture
def fresh_postgres(postgres_url: str, _postgres_template: str) -> Iterator[PostgresDatabase]:
    from storage.roles import role_url

    name = f"carepath_test_{os.getpid()}_{next(_databases)}"
    _admin(postgres_url, f"CREATE DATABASE {name} TEMPLATE {_postgres_template}")
    admin = _database(postgres_url, name)
    yield PostgresDatabase(
        app=role_url(admin, ROLES.app, TEST_PASSWORD),
        owner=role_url(admin, ROLES.owner, TEST_PASSWORD),
        admin=admin,
    )
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fresh_postgres_url(fresh_postgres: PostgresDatabase) -> str:
    """A fresh database, connected as the application role."""
    return fresh_postgres.app


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'carepath.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def database_admin_url(request: pytest.FixtureRequest, database_url: str) -> str:
    """``database_url``'s database with every right: the file itself, or as the superuser."""
    if database_url.startswith("sqlite"):
        return database_url
    return str(request.getfixturevalue("fresh_postgres").admin)


@pytest.fixture
def database_owner_url(request: pytest.FixtureRequest, database_url: str) -> str:
    """``database_url``'s database as the role that migrates it (SQLite: the file)."""
    if database_url.startswith("sqlite"):
        return database_url
    return str(request.getfixturevalue("fresh_postgres").owner)


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
