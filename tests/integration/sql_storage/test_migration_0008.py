"""Migration 0008 (the episode's owner) downgrades to 0007 exactly and back."""

from __future__ import annotations

from storage.database import upgrade
from tests.support.migrations import downgrade_to, schema_of


def test_0008_adds_the_owner_column_and_its_downgrade_removes_it_exactly(
    database_owner_url: str,
) -> None:
    database_url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(database_url)
    downgrade_to(database_url, "0008")  # later migrations add tables of their own
    head = schema_of(database_url)
    assert "owner" in head["episodes"]  # type: ignore[operator]
    assert ("episodes", "ix_episodes_owner_next_due_at") in head["indexes"]  # type: ignore[operator]
    downgrade_to(database_url, "0007")
    before = schema_of(database_url)
    assert "owner" not in before["episodes"]  # type: ignore[operator]
    assert before["indexes"] == [
        i
        for i in head["indexes"]
        if i != ("episodes", "ix_episodes_owner_next_due_at")  # type: ignore[union-attr]
    ]
    assert {k: v for k, v in before.items() if k not in ("episodes", "indexes")} == {
        k: v for k, v in head.items() if k not in ("episodes", "indexes")
    }
    assert before["episodes"] == [c for c in head["episodes"] if c != "owner"]  # type: ignore[union-attr]
    upgrade(database_url, "0008")
    assert schema_of(database_url) == head
