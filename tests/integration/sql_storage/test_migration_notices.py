"""A definition migration tells webhook subscribers what it did, like any other decision: an
episode that the new version transfers raises ``episode.transferred`` and ``episode.ended``, in
the migration's own transaction; a dry run and an episode left where it was raise nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from carepath import webhooks
from pathway import usecases
from pathway.migration.usecases import MIGRATED, migrate_all
from storage.definitions import registry_for
from storage.unit_of_work import uow_factory
from storage.webhooks import WebhookStore
from tests.integration.sql_storage.test_definition_versions import (
    NOW,
    PRESENTATION,
    RENAMED,
    WORKUP,
    A,
    B,
)


@pytest.fixture
def factory(database_url: str) -> Any:
    made = uow_factory(database_url)
    yield made
    made.dispose()


def _messages(factory: Any) -> list[tuple[str, str]]:
    with factory.engine.connect() as db:
        rows = db.exec_driver_sql(
            "SELECT event_type, episode_id FROM webhook_messages ORDER BY event_type, episode_id"
        ).fetchall()
    return [tuple(r) for r in rows]


def test_a_migration_that_transfers_raises_the_transfer_notices(factory: Any) -> None:
    store = WebhookStore(factory)
    for kind in ("episode.transferred", "episode.ended"):
        webhooks.add(store, factory.audit_key, "https://h.example.org/in", kind, "t", NOW)
    registry = registry_for(factory, A)
    for eid, collapse in (("ep-transfers", 45), ("ep-stays", 20)):
        at = NOW - timedelta(days=3)
        facts = {**PRESENTATION, **WORKUP, "vertebral_collapse_pct": collapse}
        usecases.open_episode(factory(), registry, facts, at=at, now=at, actor="n", episode_id=eid)
    assert _messages(factory) == []

    new = registry_for(factory, B)
    migrate_all(factory, new, B.version, RENAMED, now=NOW, actor="m", dry_run=True)
    assert _messages(factory) == []

    report = migrate_all(factory, new, B.version, RENAMED, now=NOW, actor="m")
    assert report.counts() == {MIGRATED: 2}
    assert _messages(factory) == [
        ("episode.ended", "ep-transfers"),
        ("episode.transferred", "ep-transfers"),
    ]
