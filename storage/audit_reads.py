"""Reads that only ``carepath audit verify`` needs, beyond the unit of work's."""

from __future__ import annotations

from storage.sql import for_driver, query
from storage.unit_of_work import SqlUnitOfWork


def audit_episode_ids(uow: SqlUnitOfWork) -> list[str]:
    """Every episode id that has audit entries (whether or not its episode row exists)."""
    dialect = uow.engine.dialect.name
    rows = uow.connection().execute(for_driver(query("audit_episode_ids", dialect), dialect), {})
    return [row[0] for row in rows.fetchall()]
