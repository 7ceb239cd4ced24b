"""Migration 0009 (webhook subscriptions and their outbox) downgrades to 0008 exactly and back."""

from __future__ import annotations

from storage.database import upgrade
from tests.integration.sql_storage.test_migration_0008 import _schema, _to

TABLES = ("webhook_subscriptions", "webhook_messages")


def test_0009_adds_the_webhook_tables_and_its_downgrade_removes_them_exactly(
    database_owner_url: str,
) -> None:
    url = database_owner_url
    upgrade(url)
    _to(url, "0009")
    head = _schema(url)
    assert set(TABLES) <= set(head)
    assert ("webhook_messages", "ix_webhook_messages_status_next_attempt_at") in head["indexes"]  # type: ignore[operator]
    _to(url, "0008")
    before = _schema(url)
    assert not set(TABLES) & set(before)
    assert before["indexes"] == [i for i in head["indexes"] if i[0] not in TABLES]  # type: ignore[union-attr]
    assert {k: v for k, v in before.items() if k != "indexes"} == {
        k: v for k, v in head.items() if k not in (*TABLES, "indexes")
    }
    upgrade(url, "0009")
    assert _schema(url) == head
