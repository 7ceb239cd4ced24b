"""Alembic environment, configured from code (``storage.database``), not from alembic.ini.

A caller that already holds a connection (``ensure_schema``: in-memory SQLite, or a migration
under a lock) passes it as ``config.attributes["connection"]`` and owns its transaction;
otherwise the URL in ``sqlalchemy.url`` is opened with the same engine settings as the app.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from storage.tables import metadata

config = context.config


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    run(given)
else:
    from storage.database import create_engine_for

    engine = create_engine_for(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            run(connection)
            connection.commit()
    finally:
        engine.dispose()
