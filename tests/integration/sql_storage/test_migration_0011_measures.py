"""Migration 0011 (one pathway's episodes in id order) downgrades to 0010 exactly and back."""

from __future__ import annotations

from storage.database import upgrade
from tests.support.migrations import downgrade_to, schema_of

INDEX = ("episodes", "ix_episodes_pathway_id")


def test_0011_adds_the_pathway_id_index_and_its_downgrade_removes_it_exactly(
    database_owner_url: str,
) -> None:
    database_url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(database_url)
    downgrade_to(database_url, "0011")  # later migrations have their own round trip tests
    head = schema_of(database_url)
    assert INDEX in head["indexes"]  # type: ignore[operator]
    downgrade_to(database_url, "0010")
    before = schema_of(database_url)
    assert before["indexes"] == [i for i in head["indexes"] if i != INDEX]  # type: ignore[union-attr]
    assert {k: v for k, v in before.items() if k != "indexes"} == {
        k: v for k, v in head.items() if k != "indexes"
    }
    upgrade(database_url, "0011")
    assert schema_of(database_url) == head
