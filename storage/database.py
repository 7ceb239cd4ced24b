"""Engines and schema: the one place that knows how to connect to SQLite and PostgreSQL.

``create_engine_for(url)`` gives an engine whose every connection is set up the same way:
SQLite in WAL mode with a busy timeout, foreign keys on and ``synchronous=NORMAL`` (durable
across a process crash, fast enough for one writer), checkpointed every
``WAL_AUTOCHECKPOINT_PAGES`` (measured, see there), in autocommit at the driver level so that
transactions begin exactly where we say (``BEGIN``, or ``BEGIN IMMEDIATE`` for writers);
PostgreSQL through psycopg 3 with the session time zone pinned to UTC. A SQLite database file,
its ``-wal`` and its ``-shm`` are the owner's alone (0600, ``storage.file_modes``).

``upgrade(url)`` and ``ensure_schema(engine)`` run the Alembic migrations in
``storage/migrations`` from code (no alembic.ini), under a lock so that several processes
meeting a fresh database migrate it once.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from storage.file_modes import secure_companions, secure_sqlite_files
from storage.sql import QUERIES

if TYPE_CHECKING:  # Alembic is imported where it is used: ~0.1 s a process that needs none
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# The commit that takes the WAL past this many pages checkpoints it (copies it back into the
# database file and syncs both: the only fsyncs under synchronous=NORMAL). At SQLite's default,
# 1,000, every third group commit of 100 decisions (~300 pages) paid one. A checkpoint costs
# about the distinct pages it copies, so a larger window also copies the hot pages (episodes,
# index tails) fewer times. Measured (CPU µs per decision, grouped / one per transaction, same
# runs): 1,000: 155–169 / 254–267; 8,000: 129–139 / 160–186; 16,000 and 32,000 no better. A
# passive checkpoint every 0.2 s from a thread of its own cost more (~150 / ~230): not kept.
WAL_AUTOCHECKPOINT_PAGES = 8_000  # 32 MiB of 4 KiB pages
SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA cache_size = -65536",  # 64 MiB: the id indexes are written at random places
    f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}",
    f"PRAGMA journal_size_limit = {WAL_AUTOCHECKPOINT_PAGES * 4096}",  # the WAL cut back to this
)
# A new file being built (``storage.new_file``): no reader can see it and a crash discards it,
# so no journal on disk and no fsync while it fills. MEMORY, not OFF: a savepoint a failed
# scenario rolls back (``storage.bulk_load``) still needs the journal (under OFF, ROLLBACK is
# undefined); the pages of a growing file are not journaled at all.
BUILDING_PRAGMAS = ("PRAGMA journal_mode = MEMORY", "PRAGMA synchronous = OFF")
MIGRATION_LOCK = 7_420_001  # pg_advisory_xact_lock key: one migrating process at a time


def normalise_url(url: str | URL) -> URL:
    """Parse ``url``; ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine_for(url: str | URL, building: bool = False) -> Engine:
    """An engine for a SQLite or PostgreSQL URL ('sqlite://' is one shared in-memory database).
    ``building``: a SQLite file nobody else sees yet (``storage.new_file``), filled with
    ``BUILDING_PRAGMAS`` instead of WAL; ``is_building`` tells such an engine."""
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, building)
    if backend == "postgresql":
        return _postgres_engine(parsed)
    raise ValueError(
        f"database URL {parsed.render_as_string()!r}: expected sqlite:// or postgresql://"
    )


def is_building(engine: Engine) -> bool:
    return bool(engine.get_execution_options().get("carepath_building", False))


def _sqlite_engine(url: URL, building: bool = False) -> Engine:
    memory = is_memory(url)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool  # one connection, so one database, for everyone
    else:
        path = Path(str(url.database))
        secure_sqlite_files(path)  # 0600 before SQLite creates it (and its -wal, -shm)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see "begin" below)
        if not memory and not building:
            dbapi_connection.execute("PRAGMA journal_mode = WAL")
            secure_companions(path)
        for pragma in SQLITE_PRAGMAS:
            dbapi_connection.execute(pragma)
        if building and not memory:
            for pragma in BUILDING_PRAGMAS:
                dbapi_connection.execute(pragma)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    if building and not memory:
        engine.update_execution_options(carepath_building=True)
    return engine


def _postgres_engine(url: URL) -> Engine:
    options = " ".join(filter(None, [url.query.get("options"), "-c TimeZone=UTC"]))
    return create_engine(url, connect_args={"options": options}, pool_size=5, max_overflow=10)


# -- schema ---------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The revision the migrations lead to: read from the scripts' text when they say it
    plainly (``scripts_head``: no Alembic import, ~0.1 s of every process start), else
    Alembic's."""
    return scripts_head() or alembic_head()


@lru_cache(maxsize=1)
def alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def ensure_schema(engine: Engine) -> None:
    """Migrate to the latest revision unless already there. The usual case (already there)
    is told without Alembic: the ``alembic_version`` row read as plain SQL against
    ``head_revision``. Anything else (a new database, another revision) goes to ``migrate``."""
    if _stored_revisions(engine) != [head_revision()]:
        migrate(engine)


def _stored_revisions(engine: Engine) -> list[str] | None:
    """The ``alembic_version`` rows, or ``None`` when there is no such table (yet)."""
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(QUERIES["alembic_revisions"]).all()
    except DBAPIError:
        return None
    return [row[0] for row in rows]


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def scripts_head() -> str | None:
    """The one revision no migration script names as its ``down_revision``; ``None`` when the
    scripts do not say it plainly (then Alembic decides)."""
    revisions, downs = set(), set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((m[0], m[1]) for m in _REVISION.findall(script.read_text()))
        revision, down = found.get("revision", ""), found.get("down_revision", "")
        if not re.fullmatch(r"[\"'][\w-]+[\"']", revision):
            return None
        revisions.add(revision[1:-1])
        if down != "None":
            if not re.fullmatch(r"[\"'][\w-]+[\"']", down):
                return None  # a merge (a tuple of revisions) or something else: Alembic's
            downs.add(down[1:-1])
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 and downs <= revisions else None


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Run the migrations up to ``revision`` on the database at ``url``."""
    engine = create_engine_for(url)
    try:
        migrate(engine, revision)
    finally:
        engine.dispose()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade in one transaction that holds the database's migration lock. A PostgreSQL role
    that may not create in the schema (the application role, ``storage.roles``) never tries:
    ``SchemaNotCurrent`` says who must."""
    with engine.connect() as connection:
        connection.execution_options(sqlite_immediate=True)
        with connection.begin():
            postgres = engine.dialect.name == "postgresql"
            if postgres:
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            if revision == "head" and _from_template(connection):
                return
            target = head_revision() if revision == "head" else revision
            current = current_revision(connection)
            if current != target:
                if postgres:
                    _refuse_without_ddl(connection, current, target)
                from alembic import command

                command.upgrade(alembic_config(connection), revision)


def _from_template(connection: Connection) -> bool:
    """An empty SQLite file (no table, so at no revision) gets the head schema from the cached
    template, without importing Alembic unless the template must be built."""
    if connection.dialect.name != "sqlite":
        return False
    from storage import schema_template

    if not schema_template.is_empty(connection):
        return False
    template = schema_template.load_template(head_revision(), alembic_migrate_file)
    schema_template.apply_template(connection, template)
    return True


def alembic_migrate_file(path: Path) -> None:
    """Every migration, by Alembic alone, on the SQLite file at ``path`` (the template's source)."""
    from alembic import command

    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()


class SchemaNotCurrent(RuntimeError):
    """The schema is behind and this database role may not change it (no DDL)."""


def _refuse_without_ddl(connection: Connection, current: str | None, target: str) -> None:
    from storage.sql import QUERIES

    row = connection.exec_driver_sql(QUERIES["may_change_schema@postgresql"]).fetchone()
    if row is None or row[0]:
        return
    at = current or "no revision (an empty database)"
    raise SchemaNotCurrent(
        f"database schema is at {at}, expected {target}; role {row[1]!r} may not change "
        "the schema: run `carepath db upgrade` as the owner role (CAREPATH_MIGRATION_URL)"
    )
