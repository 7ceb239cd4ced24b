"""What the migration round-trip tests compare: a database's tables, columns and indexes, and a
downgrade to a revision (``test_migration_*.py``)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from storage.database import alembic_config, create_engine_for


def schema_of(url: str) -> dict[str, object]:
    """Every table's sorted column names, and ``"indexes"``: the sorted (table, index) pairs."""
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


def downgrade_to(url: str, revision: str) -> None:
    engine = create_engine_for(url)
    with engine.begin() as db:
        command.downgrade(alembic_config(db), revision)
    engine.dispose()
