"""A fresh SQLite file built from the schema template is identical to one Alembic migrated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from storage import schema_template
from storage.database import alembic_migrate_file, create_engine_for, head_revision, migrate


def _schema(path: Path) -> tuple[object, ...]:
    with sqlite3.connect(path) as connection:
        master = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid"
        ).fetchall()
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        pragmas = tuple(
            connection.execute(f"PRAGMA {name}").fetchall()
            for name in ("user_version", "application_id", "auto_vacuum", "encoding")
        )
    return master, versions, pragmas


def test_template_schema_is_identical_to_migrated(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAREPATH_CACHE_DIR", str(tmp_path / "cache"))
    migrated, templated = tmp_path / "migrated.db", tmp_path / "templated.db"
    alembic_migrate_file(migrated)
    engine = create_engine_for(f"sqlite:///{templated}")
    try:
        migrate(engine)  # builds the cache, then applies it
    finally:
        engine.dispose()
    assert list((tmp_path / "cache").glob("sqlite-schema-*.json")), "template was not cached"
    again = tmp_path / "again.db"
    engine = create_engine_for(f"sqlite:///{again}")
    try:
        migrate(engine)  # from the cached template
    finally:
        engine.dispose()
    assert _schema(templated) == _schema(migrated)
    assert _schema(again) == _schema(migrated)
    assert _schema(again)[1] == [(head_revision(),)]


def test_new_migration_changes_the_template_key(tmp_path: Path, monkeypatch) -> None:
    before = schema_template.migrations_digest()
    fake = tmp_path / "migrations"
    (fake / "versions").mkdir(parents=True)
    for path in schema_template.MIGRATIONS.rglob("*.py"):
        target = fake / path.relative_to(schema_template.MIGRATIONS)
        target.write_bytes(path.read_bytes())
    (fake / "versions" / "0099_new.py").write_text("# a new migration\n")
    monkeypatch.setattr(schema_template, "MIGRATIONS", fake)
    assert schema_template.migrations_digest() != before


@pytest.mark.parametrize("tables", [True])
def test_existing_file_keeps_alembic(tmp_path: Path, monkeypatch, tables: bool) -> None:
    monkeypatch.setenv("CAREPATH_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "existing.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE stray (x INTEGER)")
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        engine.dispose()
    assert not list((tmp_path / "cache").glob("*.json"))


def test_a_cached_template_of_other_migrations_is_built_again(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAREPATH_CACHE_DIR", str(tmp_path / "cache"))
    stale = tmp_path / "cache" / f"sqlite-schema-{schema_template.migrations_digest()}.json"
    stale.parent.mkdir()
    stale.write_text('{"ddl": ["CREATE TABLE stray (x INTEGER)"], "versions": ["0001_initial"]}')
    migrated, templated = tmp_path / "migrated.db", tmp_path / "templated.db"
    alembic_migrate_file(migrated)
    engine = create_engine_for(f"sqlite:///{templated}")
    try:
        migrate(engine)
    finally:
        engine.dispose()
    assert _schema(templated) == _schema(migrated)


def _migrated_from_template(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return path


def test_a_template_others_may_write_is_not_used(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CAREPATH_CACHE_DIR", str(cache))
    migrated = tmp_path / "migrated.db"
    alembic_migrate_file(migrated)
    _migrated_from_template(tmp_path, "first.db")
    (planted,) = cache.glob("sqlite-schema-*.json")
    assert planted.stat().st_mode & 0o777 == 0o600
    template = json.loads(planted.read_text())
    template["ddl"] = [*template["ddl"], "CREATE TABLE planted (x INTEGER)"]
    planted.write_text(json.dumps(template))
    planted.chmod(0o666)  # as if another user could have written it
    assert _schema(_migrated_from_template(tmp_path, "second.db")) == _schema(migrated)


def test_a_cache_that_cannot_be_written_still_gives_the_schema(tmp_path: Path, monkeypatch) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache directory would be")
    monkeypatch.setenv("CAREPATH_CACHE_DIR", str(blocked / "cache"))
    migrated = tmp_path / "migrated.db"
    alembic_migrate_file(migrated)
    assert _schema(_migrated_from_template(tmp_path, "new.db")) == _schema(migrated)
