"""The rows an episode's audit log implies (``pathway.audit_rebuild``), on hand-made entries.

Each case is one way ``storage.writes`` writes a decision that the fold must mirror exactly:
a task opened and closed by the same decision is inserted closed (no note, no update time); a
migration that maps into a care-starting state starts care then; observing in a review state
remembers the definition's facts; the first difference is named the way an auditor reads it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from pathway.audit_rebuild import RebuildError, first_difference, rebuild

T0, T1, T2 = "2026-03-02T09:00:00+00:00", "2026-03-03T09:00:00+00:00", "2026-03-04T09:00:00+00:00"
STATES = {
    "intake": SimpleNamespace(review=False, starts_care=False),
    "care": SimpleNamespace(review=False, starts_care=True),
    "review": SimpleNamespace(review=True, starts_care=False),
    "closed": SimpleNamespace(review=False, starts_care=False),
}
DEFINITION = SimpleNamespace(initial_state="intake", remembered=frozenset({"pain"}), states=STATES)


def entry(seq: int, kind: str, state_to: str, at: str = T0, **extra: Any) -> tuple[bytes, str]:
    body = {
        "seq": seq, "kind": kind, "at": at, "recorded_at": at, "definition_version": "p@1",
        "event_id": f"ev-{seq}", "actor": "nurse", "state_from": None if seq == 1 else "x",
        "state_to": state_to, "transitions": [], "timers_set": [], "timers_cancelled": [],
        "tasks_opened": [], "tasks_closed": [], **extra,
    }  # fmt: skip
    return orjson.dumps(body), f"hash-{seq}"


def task(key: str, at: str = T0) -> dict[str, Any]:
    return {"key": key, "rule_id": key.split("@")[0], "kind": "order", "text": "do it",
            "created_at": at, "status": "open", "state": None, "note": None}  # fmt: skip


def timer(key: str, due: str) -> dict[str, Any]:
    return {"key": key, "rule_id": key.split("@")[0], "due_at": due, "status": "pending",
            "state": None, "order": 100, "set_at": T0}  # fmt: skip


def rows(*entries: tuple[bytes, str]) -> Any:
    return rebuild("ep-1", entries, lambda version: DEFINITION)


def test_a_task_opened_and_closed_by_one_decision_is_inserted_closed_without_a_note() -> None:
    built = rows(
        entry(1, "open", "intake", tasks_opened=[task("A@1"), task("B@1")],
              tasks_closed=[{"key": "A@1", "status": "cancelled", "note": None}]),
        entry(2, "task", "intake", at=T1, tasks_closed=[{"key": "B@1", "status": "done", "note": "seen"}]),
    )  # fmt: skip
    a, b = built.tasks["A@1"], built.tasks["B@1"]
    assert (a["status"], a["note"], a["updated_at"], a["position"]) == ("cancelled", None, None, 0)
    assert (b["status"], b["note"], b["updated_at"].isoformat(), b["position"]) == (
        "done",
        "seen",
        T1,
        1,
    )


def test_timers_fired_cancelled_and_the_next_due_time_follow_the_log() -> None:
    built = rows(
        entry(1, "open", "intake", timers_set=[timer("F@1", T1), timer("G@1", T2), timer("H@1", T2)]),
        entry(2, "timer", "intake", at=T1, timer="F@1", timers_cancelled=["G@1"]),
    )  # fmt: skip
    assert [(k, t["status"], t["position"]) for k, t in built.timers.items()] == [
        ("F@1", "fired", 0), ("G@1", "cancelled", 1), ("H@1", "pending", 2),
    ]  # fmt: skip
    assert built.timers["F@1"]["fired_at"].isoformat() == T1
    assert built.episode["next_due_at"].isoformat() == T2


def test_care_starts_on_entering_a_care_state_or_when_a_migration_maps_into_one() -> None:
    into_care = {"source": "intake", "dest": "care", "rules": ["R"]}
    built = rows(
        entry(1, "open", "intake"), entry(2, "observe", "care", at=T1, transitions=[into_care])
    )
    assert built.episode["care_started_at"].isoformat() == T1
    assert built.episode["state_entered_at"].isoformat() == T1
    migrated = rows(
        entry(1, "open", "intake"),
        entry(2, "migrate", "care", at=T2, migration={"care_started_at": T0}),
    )
    assert migrated.episode["care_started_at"].isoformat() == T0
    assert migrated.episode["state_entered_at"].isoformat() == T0  # a mapping is no transition


def test_observing_in_a_review_state_remembers_the_definitions_facts() -> None:
    built = rows(
        entry(1, "open", "intake", facts={"pain": 7, "age": 80}, source="open"),
        entry(2, "observe", "review", at=T1, facts={"pain": 5}, source="user"),
        entry(3, "observe", "review", at=T2, facts={"pain": 3}, source="user", state_from="review"),
    )
    assert built.episode["remembered"] == {"pain": 3}  # observed in review: the value then
    assert built.episode["facts"]["pain"] == {
        "value": 3,
        "observation_id": "ev-3",
        "at": built.observations[3]["at"],
    }
    assert built.observations[1]["source"] == "open"


def test_a_missing_timer_is_named_with_its_status_and_due_time() -> None:
    expected = rows(
        entry(1, "open", "care", timers_set=[timer("FU-3MONTH@1", "2026-03-01T00:00:00+00:00")])
    )
    stored = rows(entry(1, "open", "care"))
    found = first_difference("E-1", stored, expected)
    assert found is not None and found.message == (
        "episode E-1: timers: FU-3MONTH@1 is missing (expected pending, due 2026-03-01T00:00:00Z)"
    )
    assert first_difference("E-1", expected, expected) is None


def test_an_entry_on_an_unknown_definition_version_is_named() -> None:
    def unknown(version: str) -> Any:
        raise KeyError(version)

    with pytest.raises(RebuildError, match="entry 1: definition 'p@1'"):
        rebuild("ep-1", [entry(1, "open", "intake")], unknown)
