"""PostgreSQL least privilege: the application role cannot rewrite history or change the schema.

Every other PostgreSQL test of the application already runs as ``carepath_app`` (see
``tests/conftest.py``), so "everything else works under it" is the whole suite; here, what it
must not be able to do, how an app role meets a schema behind its code, and ``carepath db
upgrade --create-roles`` end to end, with role names of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from pathway import usecases
from pathway.audit import verify_chain
from storage.database import SchemaNotCurrent, head_revision, upgrade
from storage.roles import Roles, prepare_schema, role_url, script
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import DEFS, day, in_care

FORBIDDEN = {
    "update the audit log": "UPDATE audit_log SET actor = 'someone else'",
    "delete from the audit log": "DELETE FROM audit_log",
    "truncate the audit log": "TRUNCATE audit_log",
    "drop the append-only trigger": "DROP TRIGGER audit_log_no_change ON audit_log",
    "create a table": "CREATE TABLE intruder (id int)",
    "add a column": "ALTER TABLE episodes ADD COLUMN intruder text",
    "drop a table": "DROP TABLE observations",
    "create an index": "CREATE INDEX intruder ON episodes (label)",
    "create a trigger": "CREATE TRIGGER intruder BEFORE INSERT ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "rewrite the schema version": "UPDATE alembic_version SET version_num = '0001'",
}


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _cli(*args: str):  # noqa: ANN202
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("statement", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_the_app_role_may_not(fresh_postgres_url: str, statement: str) -> None:
    make_uow = uow_factory(fresh_postgres_url)
    in_care(make_uow, "ep-1")
    make_uow.dispose()
    with psycopg.connect(_conninfo(fresh_postgres_url)) as db:
        assert db.execute("SELECT current_user").fetchone() == ("carepath_app",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(statement)


def test_the_app_role_reads_and_appends_and_the_chain_holds(fresh_postgres_url: str) -> None:
    make_uow = uow_factory(fresh_postgres_url)
    in_care(make_uow, "ep-1")
    usecases.observe(make_uow(), DEFS, "ep-1", {"pain_score": 3}, at=day(5), now=day(5), actor="t")
    with make_uow() as uow:
        episode = uow.get_episode("ep-1")
        check = verify_chain(
            "ep-1",
            uow.audit_records("ep-1"),
            (episode.version, episode.audit_hash),
            key=uow.audit_key,
        )
    assert check.ok
    make_uow.dispose()


def test_an_app_role_meeting_an_old_schema_says_who_must_upgrade_and_changes_nothing(
    fresh_postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(_conninfo(fresh_postgres.owner), autocommit=True) as db:
        db.execute("UPDATE alembic_version SET version_num = '0004'")  # as if code moved on
    with pytest.raises(SchemaNotCurrent) as refused:
        uow_factory(fresh_postgres.app)
    message = str(refused.value)
    assert f"database schema is at 0004, expected {head_revision()}" in message
    assert "'carepath_app' may not change the schema" in message
    assert "run `carepath db upgrade` as the owner role (CAREPATH_MIGRATION_URL)" in message
    monkeypatch.setenv("CAREPATH_DATABASE_URL", fresh_postgres.app)
    for args in (["episode", "show", "ep-1"], ["db", "upgrade"]):
        result = _cli(*args)
        assert result.exit_code == 2
        assert "database schema is at 0004" in result.output and "Traceback" not in result.output
    with psycopg.connect(_conninfo(fresh_postgres.owner)) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0004",)


@pytest.fixture
def empty_database(postgres_url: str) -> Iterator[tuple[str, Roles]]:
    """An empty database and two role names of this test's own, removed afterwards."""
    suffix = f"{os.getpid()}"
    roles = Roles(owner=f"own_{suffix}", app=f"app_{suffix}")
    name = f"carepath_roles_{suffix}"
    admin = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_conninfo(postgres_url), autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    yield admin, roles
    with psycopg.connect(_conninfo(postgres_url), autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        for role in (roles.app, roles.owner):
            db.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.parametrize("before", ["empty", "migrated by the superuser"])
def test_db_upgrade_create_roles_sets_up_both_roles_and_later_tables_get_the_grants(
    empty_database: tuple[str, Roles], monkeypatch: pytest.MonkeyPatch, before: str
) -> None:
    admin, roles = empty_database
    if before != "empty":  # a deployment from before the roles: every table the superuser's
        upgrade(admin)
    monkeypatch.setenv("CAREPATH_MIGRATION_URL", admin)
    monkeypatch.setenv("CAREPATH_DATABASE_URL", role_url(admin, roles.app))
    monkeypatch.setenv("CAREPATH_OWNER_PASSWORD", "owner-s3cret")
    monkeypatch.setenv("CAREPATH_APP_PASSWORD", "app-s3cret")
    args = ["db", "upgrade", "--create-roles", "--owner-role", roles.owner]
    result = _cli(*args, "--app-role", roles.app)
    assert result.exit_code == 0, result.output
    assert f"role {roles.owner} created, password set" in result.output
    assert "s3cret" not in result.output
    with psycopg.connect(_conninfo(admin)) as db:
        stored = dict(
            db.execute(
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN (%s, %s)",
                (roles.owner, roles.app),
            ).fetchall()
        )
        assert all(p.startswith("SCRAM-SHA-256$") for p in stored.values()), "hashed here"
        owners = db.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert owners == [(roles.owner,)]
        function_owner = db.execute(
            "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'audit_log_append_only'"
        ).fetchone()
        assert function_owner == (roles.owner,)
    app_url = role_url(admin, roles.app, "app-s3cret")
    make_uow = uow_factory(app_url)  # at head: the app role need not (and cannot) migrate
    in_care(make_uow, "ep-1")
    make_uow.dispose()
    with psycopg.connect(_conninfo(app_url)) as db:
        for statement in ("DELETE FROM audit_log", "CREATE TABLE intruder (id int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(statement)
            db.rollback()
    owner_url = role_url(admin, roles.owner, "owner-s3cret")
    with psycopg.connect(_conninfo(owner_url), autocommit=True) as db:
        db.execute("CREATE TABLE added_later (id int PRIMARY KEY)")  # a later migration's
    with psycopg.connect(_conninfo(app_url), autocommit=True) as db:
        db.execute("INSERT INTO added_later VALUES (1)")
        db.execute("UPDATE added_later SET id = 2")
        db.execute("DELETE FROM added_later")
    again = _cli(*args, "--app-role", roles.app)  # idempotent: passwords rotated, nothing else
    assert again.exit_code == 0 and f"role {roles.app} exists, password set" in again.output


def test_plain_db_upgrade_as_the_owner_migrates_an_empty_database_and_grants(
    empty_database: tuple[str, Roles], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, roles = empty_database
    with psycopg.connect(_conninfo(admin), autocommit=True) as db:
        for role in (roles.owner, roles.app):
            db.execute(f"CREATE ROLE {role} LOGIN")
        prepare_schema(db, roles)  # what the DBA script does before the first migration
    app_url, owner_url = role_url(admin, roles.app), role_url(admin, roles.owner)
    with pytest.raises(SchemaNotCurrent, match="at no revision \\(an empty database\\)"):
        uow_factory(app_url)
    monkeypatch.setenv("CAREPATH_MIGRATION_URL", owner_url)
    monkeypatch.setenv("CAREPATH_APP_ROLE", roles.app)
    monkeypatch.setenv("CAREPATH_OWNER_ROLE", roles.owner)
    result = _cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"grants for {roles.app} applied" in result.output
    make_uow = uow_factory(app_url)
    in_care(make_uow, "ep-1")
    make_uow.dispose()


def test_the_dba_script_is_the_one_in_the_readme() -> None:
    readme = (os.path.dirname(__file__) + "/../../../README.md").replace("\\", "/")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    assert script() in text, "README's least-privilege SQL differs from storage.roles.script()"
