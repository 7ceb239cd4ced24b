"""Migration 0008 (the episode's owner) downgrades to 0007 exactly and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from storage.database import alembic_config, create_engine_for, upgrade


def _schema(url: str) -> dict[str, object]:
    engine = create_engine_for(url)
    found = inspect(engine)
    schema: dict[str, object] = {
        t: sorted(c["name"] for c in found.get_columns(t)) for t in found.get_table_names()
    }
    schema["indexes"] = sorted(
        (t, i["name"]) for t in found.get_table_names() for i in found.get_indexes(t)
    )
    engine.dispose()
    return schema


def _to(url: str, revision: str) -> None:
    engine = create_engine_for(url)
    with engine.begin() as db:
        command.downgrade(alembic_config(db), revision)
    engine.dispose()


def test_0008_adds_the_owner_column_and_its_downgrade_removes_it_exactly(
    database_owner_url: str,
) -> None:
    database_url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(database_url)
    _to(database_url, "0008")  # later migrations add tables of their own
    head = _schema(database_url)
    assert "owner" in head["episodes"]  # type: ignore[operator]
    assert ("episodes", "ix_episodes_owner_next_due_at") in head["indexes"]  # type: ignore[operator]
    _to(database_url, "0007")
    before = _schema(database_url)
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
    assert _schema(database_url) == head
