"""Least privilege on PostgreSQL: an owner role that migrates, an application role that cannot.

- The **owner** (default ``carepath_owner``) owns the schema's tables and runs the migrations
  (``CAREPATH_MIGRATION_URL``).
- The **application** role (default ``carepath_app``; ``CAREPATH_DATABASE_URL``) may read and
  write rows, but has no DDL (no CREATE in the schema, owns nothing, so cannot ALTER or DROP),
  and on ``audit_log`` only INSERT and SELECT: it cannot UPDATE, DELETE or TRUNCATE history,
  even with the append-only triggers gone. ``alembic_version`` it may only read.

Grants are generic (every table in the schema, and default privileges for the tables later
migrations add), with the two exceptions above. ``script(roles)`` is the same SQL as plain text
for a DBA; ``create_roles`` and ``apply_grants`` run it (``carepath db upgrade --create-roles``).
Passwords are sent only as SCRAM verifiers computed here, so the clear text never reaches the
server's statement log, and are never logged or printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from storage.sql import QUERIES, pyformat

ROLE_EXISTS = pyformat(QUERIES["role_exists@postgresql"])
OWNER_OF_APP = pyformat(QUERIES["connected_as_owner_of_app@postgresql"])
DEFAULT_OWNER = "carepath_owner"
DEFAULT_APP = "carepath_app"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class Roles:
    owner: str = DEFAULT_OWNER
    app: str = DEFAULT_APP
    schema: str = "public"

    def __post_init__(self) -> None:
        for field, value in (("owner role", self.owner), ("app role", self.app)):
            if not _NAME.fullmatch(value):
                raise ValueError(
                    f"{field}: got {value!r}, expected a lower-case SQL name "
                    "(letters, digits, _; at most 63)"
                )
        if self.owner == self.app:
            raise ValueError(f"app role: got {self.app!r}, expected a role other than the owner")
        if not _NAME.fullmatch(self.schema):
            raise ValueError(f"schema: got {self.schema!r}, expected a lower-case SQL name")


def _statements(name: str, roles: Roles) -> list[str]:
    names = {"owner": roles.owner, "app": roles.app, "schema": roles.schema}
    return [part.strip().format(**names) for part in QUERIES[name].split(";\n")]


def schema_statements(roles: Roles) -> list[str]:
    """Run by an administrator in the carepath database: who may create in the schema, and
    objects made before the owner existed (migrated by another user) handed to it."""
    return [
        *_statements("roles_schema@postgresql", roles),
        QUERIES["roles_hand_over@postgresql"].format(owner=roles.owner, schema=roles.schema),
    ]


def grant_statements(roles: Roles) -> list[str]:
    """Run by the owner after each migration (idempotent): the app's rights on every table,
    the defaults for tables yet to come, and the append-only and read-only exceptions."""
    return _statements("roles_grants@postgresql", roles)


def script(roles: Roles = Roles(), database: str = "carepath") -> str:
    """The whole set-up as SQL for a DBA (psql), in the order it must run."""
    o, a = roles.owner, roles.app
    lines = [
        "-- as a superuser (or a role with CREATEROLE that owns the database):",
        f"CREATE ROLE {o} LOGIN PASSWORD 'owner-secret';",
        f"CREATE ROLE {a} LOGIN PASSWORD 'app-secret';",
        f"\\connect {database}",
        *(f"{s};" for s in schema_statements(roles)),
        f"-- then, as {o}: carepath db upgrade (CAREPATH_MIGRATION_URL), which after each",
        "-- migration runs (again) what follows:",
        *(f"{s};" for s in grant_statements(roles)),
    ]
    return "\n".join(lines) + "\n"


def create_roles(conn: Any, roles: Roles, passwords: dict[str, str | None]) -> list[str]:
    """Create (or, given a password, re-password) both roles on a psycopg connection of an
    administrator, in autocommit. Returns what was done, one line each, without secrets."""
    done = []
    for name in (roles.owner, roles.app):
        exists = conn.execute(ROLE_EXISTS, {"name": name}).fetchone()
        password = passwords.get(name)
        if exists is None:
            conn.execute(QUERIES["create_role@postgresql"].format(name=name))
            done.append(f"role {name} created")
        else:
            done.append(f"role {name} exists")
        if password:
            verifier = conn.pgconn.encrypt_password(
                password.encode(), name.encode(), b"scram-sha-256"
            ).decode()
            conn.execute(QUERIES["role_password@postgresql"].format(name=name, verifier=verifier))
            done[-1] += ", password set"
    return done


def prepare_schema(conn: Any, roles: Roles) -> None:
    """``schema_statements`` on an administrator's psycopg connection to the database."""
    for statement in schema_statements(roles):
        conn.execute(statement)


def apply_grants(execute: Any, roles: Roles) -> None:
    """``grant_statements``, each through ``execute`` (as the owner or an administrator)."""
    for statement in grant_statements(roles):
        execute(statement)


def role_url(url: str, role: str, password: str | None = None) -> str:
    """``url`` (an administrator's) as ``role`` on the same server and database."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(username=role, password=password).render_as_string(False)


def set_up(admin_url: str, roles: Roles, passwords: dict[str, str | None]) -> list[str]:
    """``carepath db upgrade --create-roles``: both roles, the schema's rights, the migrations
    run *as the owner* (so that it owns every table), then the app's grants. Idempotent."""
    import psycopg
    from sqlalchemy.engine import make_url

    from storage.database import create_engine_for, migrate, normalise_url

    url = normalise_url(admin_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        done = create_roles(conn, roles, passwords)
        prepare_schema(conn, roles)
    options = " ".join(filter(None, [url.query.get("options"), f"-c role={roles.owner}"]))
    as_owner = make_url(url).update_query_dict({"options": options})
    engine = create_engine_for(as_owner)  # the administrator's login, the owner's rights
    try:
        migrate(engine)
        with engine.begin() as db:
            apply_grants(db.exec_driver_sql, roles)
    finally:
        engine.dispose()
    return [*done, f"schema migrated as {roles.owner}", f"grants for {roles.app} applied"]


def regrant(url: str, roles: Roles) -> bool:
    """After a plain ``carepath db upgrade`` as the owner: re-apply the app's grants if the app
    role exists (the default privileges already cover new tables; this keeps the exceptions).
    False (nothing done) on SQLite, without the app role, or when connected as someone else."""
    from storage.database import create_engine_for

    engine = create_engine_for(url)
    try:
        if engine.dialect.name != "postgresql":
            return False
        with engine.begin() as db:
            row = db.exec_driver_sql(OWNER_OF_APP, {"app": roles.app}).fetchone()
            if row is None or row[0] != roles.owner or not row[1]:
                return False
            apply_grants(db.exec_driver_sql, roles)
            return True
    finally:
        engine.dispose()
