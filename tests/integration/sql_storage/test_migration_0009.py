"""Migration 0009 (webhook subscriptions and their outbox) downgrades to 0008 exactly and back."""

from __future__ import annotations

from storage.database import upgrade
from tests.support.migrations import downgrade_to, schema_of

TABLES = ("webhook_subscriptions", "webhook_messages")


def test_0009_adds_the_webhook_tables_and_its_downgrade_removes_them_exactly(
    database_owner_url: str,
) -> None:
    url = database_owner_url
    upgrade(url)
    downgrade_to(url, "0009")
    head = schema_of(url)
    assert set(TABLES) <= set(head)
    assert ("webhook_messages", "ix_webhook_messages_status_next_attempt_at") in head["indexes"]  # type: ignore[operator]
    downgrade_to(url, "0008")
    before = schema_of(url)
    assert not set(TABLES) & set(before)
    assert before["indexes"] == [i for i in head["indexes"] if i[0] not in TABLES]  # type: ignore[union-attr]
    assert {k: v for k, v in before.items() if k != "indexes"} == {
        k: v for k, v in head.items() if k not in (*TABLES, "indexes")
    }
    upgrade(url, "0009")
    assert schema_of(url) == head
