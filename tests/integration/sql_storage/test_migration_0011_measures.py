"""Migration 0011 (one pathway's episodes in id order) downgrades to 0010 exactly and back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from storage.database import alembic_config, create_engine_for, upgrade

INDEX = ("episodes", "ix_episodes_pathway_id")


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


def test_0011_adds_the_pathway_id_index_and_its_downgrade_removes_it_exactly(
    database_owner_url: str,
) -> None:
    database_url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(database_url)
    head = _schema(database_url)
    assert INDEX in head["indexes"]  # type: ignore[operator]
    _to(database_url, "0010")
    before = _schema(database_url)
    assert before["indexes"] == [i for i in head["indexes"] if i != INDEX]  # type: ignore[union-attr]
    assert {k: v for k, v in before.items() if k != "indexes"} == {
        k: v for k, v in head.items() if k != "indexes"
    }
    upgrade(database_url)
    assert _schema(database_url) == head
