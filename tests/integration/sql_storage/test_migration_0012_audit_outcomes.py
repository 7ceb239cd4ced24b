"""Migration 0012 (idempotency outcomes on the audit entries) downgrades to 0011 exactly, with
every outcome back in ``outcomes``, and upgrades again to the same rows."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import text

from pathway import usecases
from pathway.model import Observe
from storage.columns import read_json
from storage.database import create_engine_for, upgrade
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import DEFS, day, in_care
from tests.support.migrations import downgrade_to, schema_of

OUTCOME_COLUMNS = ("outcome", "caller", "idempotency_key", "request_hash")


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as db:
            found = db.execute(text(sql)).all()
    finally:
        engine.dispose()
    return sorted(tuple(read_json(v) if i == 1 else v for i, v in enumerate(r)) for r in found)


def some_decisions(url: str) -> None:
    factory = uow_factory(url)
    try:
        in_care(factory, "ep-1")
        at = day(1)
        event = Observe("key-1", at, "t", {"pain_score": 3})
        usecases.handle(factory(), DEFS, "ep-1", event, at, caller="cli:t")
    finally:
        factory.dispose()


def assert_append_only(url: str) -> None:
    engine = create_engine_for(url)
    try:
        with pytest.raises(Exception, match="append-only"), engine.begin() as db:
            db.execute(text("UPDATE audit_log SET caller = 'someone else'"))
    finally:
        engine.dispose()


OUTCOMES_AT_HEAD = (
    "SELECT event_id, outcome, caller, idempotency_key, request_hash, episode_id "
    "FROM audit_log WHERE outcome IS NOT NULL"
)
OUTCOMES_AT_0011 = (
    "SELECT event_id, outcome, caller, idempotency_key, request_hash, episode_id FROM outcomes"
)


def test_0012_moves_outcomes_onto_audit_entries_and_back_exactly(database_owner_url: str) -> None:
    url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(url)
    some_decisions(url)
    head = schema_of(url)
    assert "outcomes" not in head
    assert set(OUTCOME_COLUMNS) <= set(head["audit_log"])  # type: ignore[arg-type]
    assert ("audit_log", "ix_audit_log_event_id") in head["indexes"]  # type: ignore[operator]
    outcomes = rows(url, OUTCOMES_AT_HEAD)
    assert len(outcomes) == 3 and any(o[2] == "cli:t" for o in outcomes)  # open, in care, keyed
    entries = rows(url, "SELECT episode_id, seq, hash FROM audit_log")

    downgrade_to(url, "0011")
    before = schema_of(url)
    assert not set(OUTCOME_COLUMNS) & set(before["audit_log"])  # type: ignore[arg-type]
    assert before["outcomes"] == sorted(["event_id", "episode_id", *OUTCOME_COLUMNS])
    assert rows(url, OUTCOMES_AT_0011) == outcomes
    assert rows(url, "SELECT episode_id, seq, hash FROM audit_log") == entries

    upgrade(url)
    assert schema_of(url) == head
    assert rows(url, OUTCOMES_AT_HEAD) == outcomes
    assert_append_only(url)  # the triggers lifted for the copy are back
    factory = uow_factory(url)  # and the repeat still answers its first outcome
    try:
        event = Observe("key-1", day(1), "t", {"pain_score": 3})
        again = usecases.handle(factory(), DEFS, "ep-1", event, day(1), caller="cli:t")
        assert again.applied.outcome.repeated
    finally:
        factory.dispose()


def test_0012_refuses_to_drop_an_outcome_with_no_audit_entry(database_owner_url: str) -> None:
    url = database_owner_url
    upgrade(url)
    some_decisions(url)
    downgrade_to(url, "0011")
    engine = create_engine_for(url)
    with engine.begin() as db:
        outcome = orjson.dumps({"event_id": "lost"}).decode()
        db.execute(
            text(
                "INSERT INTO outcomes (event_id, episode_id, outcome) "
                "VALUES ('lost', 'ep-1', :outcome)"
            ),
            {"outcome": outcome},
        )
    engine.dispose()
    with pytest.raises(RuntimeError, match="1 row\\(s\\) have no audit entry"):
        upgrade(url)
    assert "outcomes" in schema_of(url)  # nothing changed: still at 0011
