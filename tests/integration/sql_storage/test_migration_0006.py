"""Migration 0006 (scoped idempotency, page sessions) downgrades to 0005 exactly and back."""

from __future__ import annotations

from storage.database import upgrade
from tests.support.migrations import downgrade_to, schema_of


def test_0006_adds_the_outcome_scope_and_sessions_and_its_downgrade_removes_them(
    database_owner_url: str,
) -> None:
    database_url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(database_url)
    downgrade_to(database_url, "0006")  # 0012 moves these columns onto audit_log
    head = schema_of(database_url)
    assert {"caller", "idempotency_key", "request_hash"} <= set(head["outcomes"])
    assert head["sessions"] == ["created_at", "id_hash", "last_seen_at", "token_id"]
    downgrade_to(database_url, "0005")
    before = schema_of(database_url)
    assert "sessions" not in before
    assert before["outcomes"] == ["episode_id", "event_id", "outcome"]
    upgrade(database_url, "0006")
    assert schema_of(database_url) == head
