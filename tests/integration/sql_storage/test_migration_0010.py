"""Migration 0010 (the episode's appointment) downgrades to 0009 exactly and back."""

from __future__ import annotations

from storage.database import upgrade
from tests.support.migrations import downgrade_to, schema_of

ADDED = {
    "appointment_window", "appointment_on", "appointment_status", "appointment_reason",
    "appointment_deviation",
}  # fmt: skip
INDEX = ("episodes", "ix_episodes_appointment_on")


def test_0010_adds_the_appointment_columns_and_its_downgrade_removes_them_exactly(
    database_owner_url: str,
) -> None:
    url = database_owner_url  # PostgreSQL: the owner role, who may change the schema
    upgrade(url)
    downgrade_to(url, "0010")  # later migrations have their own round trip tests
    head = schema_of(url)
    assert set(head["episodes"]) >= ADDED  # type: ignore[arg-type]
    assert INDEX in head["indexes"]  # type: ignore[operator]
    downgrade_to(url, "0009")
    before = schema_of(url)
    assert before["episodes"] == [c for c in head["episodes"] if c not in ADDED]  # type: ignore[union-attr]
    assert before["indexes"] == [i for i in head["indexes"] if i != INDEX]  # type: ignore[union-attr]
    assert {k: v for k, v in before.items() if k not in ("episodes", "indexes")} == {
        k: v for k, v in head.items() if k not in ("episodes", "indexes")
    }
    upgrade(url, "0010")
    assert schema_of(url) == head
