"""A fresh, empty SQLite file gets the head schema from a template instead of 13 migrations.

The template is the ``sqlite_master`` SQL (creation order) plus the ``alembic_version`` row of a
database migrated by Alembic. It is built once per cache dir and keyed by a digest of the
migration scripts, so a new or edited migration builds a new template. PostgreSQL and files that
already hold tables always go through Alembic.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).parent / "migrations"
Template = dict[str, list[str]]  # "ddl": statements in creation order; "versions": Alembic's


def migrations_digest() -> str:
    """A digest of every migration script and env.py: any change means another template."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    """``CAREPATH_CACHE_DIR``, else ``$XDG_CACHE_HOME/carepath``, else ``~/.cache/carepath``."""
    explicit = os.environ.get("CAREPATH_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "carepath"


def dump_schema(connection: sqlite3.Connection) -> Template:
    """The schema of a migrated database: DDL in creation order and its Alembic revision."""
    rows = connection.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
    ).fetchall()
    version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return {"ddl": [row[0] for row in rows], "versions": [row[0] for row in version]}


def _build(target: Path, alembic_migrate: Callable[[Path], None]) -> Template:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "template.db"
        alembic_migrate(path)
        with sqlite3.connect(path) as connection:
            template = dump_schema(connection)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(template))
        os.replace(partial, target)
    except OSError:
        pass  # a cache that cannot be written (read-only home): this file still gets its schema
    return template


def _trusted(path: Path) -> bool:
    """Only a template this user owns, in a directory this user owns, that nobody else may
    write: the DDL it holds is run on new files, so another user's file is never read."""
    try:
        for item in (path.parent, path):
            st = item.stat()
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return False
    except OSError:
        return False
    return True


def _cached(target: Path, head: str) -> Template | None:
    """The cached template, if trusted, readable and of ``head``; else None."""
    if not _trusted(target):
        return None
    try:
        template = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(template, dict) and template.get("versions") == [head]
    return template if ok else None  # else: not a template of these migrations


def load_template(head: str, alembic_migrate: Callable[[Path], None]) -> Template:
    """The cached template for the current migrations at ``head``; built if missing, not of
    ``head`` or not trusted, by ``alembic_migrate`` (every migration, run on a scratch file)."""
    target = cache_dir() / f"sqlite-schema-{migrations_digest()}.json"
    return _cached(target, head) or _build(target, alembic_migrate)


def is_empty(connection: Connection) -> bool:
    row = connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").fetchone()
    return row is not None and row[0] == 0


def apply_template(connection: Connection, template: Template) -> None:
    """Create the head schema on an empty SQLite file inside the caller's transaction."""
    for statement in template["ddl"]:
        connection.exec_driver_sql(statement)
    for version in template["versions"]:
        connection.exec_driver_sql(
            "INSERT INTO alembic_version (version_num) VALUES (?)", (version,)
        )
