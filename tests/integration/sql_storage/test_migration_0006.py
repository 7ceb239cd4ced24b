"""Migration 0006 (scoped idempotency, page sessions) downgrades to 0005 exactly and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from storage.database import alembic_config, create_engine_for, upgrade


def _schema(url: str) -> dict[str, list[str]]:
    engine = create_engine_for(url)
    found = inspect(engine)
    schema = {t: sorted(c["name"] for c in found.get_columns(t)) for t in found.get_table_names()}
    engine.dispose()
    return schema


def _to(url: str, revision: str) -> None:
    engine = create_engine_for(url)
    with engine.begin() as db:
        command.downgrade(alembic_config(db), revision)
    engine.dispose()


def test_0006_adds_the_outcome_scope_and_sessions_and_its_downgrade_removes_them(
    database_owner_url: str,
) -> None:
    database_url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(database_url)
    head = _schema(database_url)
    assert {"caller", "idempotency_key", "request_hash"} <= set(head["outcomes"])
    assert head["sessions"] == ["created_at", "id_hash", "last_seen_at", "token_id"]
    _to(database_url, "0005")
    before = _schema(database_url)
    assert "sessions" not in before
    assert before["outcomes"] == ["episode_id", "event_id", "outcome"]
    upgrade(database_url)
    assert _schema(database_url) == head
