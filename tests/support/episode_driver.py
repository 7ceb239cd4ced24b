"""Drive episodes through the real use cases on any unit of work, and check what was stored.

``Course`` runs one episode on a virtual clock with deterministic event ids, so that the same
course on two backends must store exactly the same rows. ``rebuild_from_audit`` replays an
episode's audit entries through the engine: the snapshot it gives, and the hash of every entry
it recomputes, must equal what the database holds — the strongest check that a write was all or
nothing. Used by the storage tests and by ``writer.py`` (the subprocess the crash and
concurrency tests run).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pathway import usecases
from pathway.audit import AuditKey, AuditRecord, entry_for, verify_chain
from pathway.definition import load_definition
from pathway.engine import decide, open_episode
from pathway.model import (
    Assign,
    Close,
    Episode,
    Event,
    FireTimer,
    Observe,
    Open,
    Request,
    UpdateTask,
)
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import Applied, DefinitionRegistry

DEFS = DefinitionRegistry(load_definition())
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROFILE = {"age": 78, "sex": "female", "first_fracture": True, "egfr": 45}
PRESENTATION = {"fracture_levels": ["L1"], "pain_score": 8, "high_energy_trauma": False}
WORKUP = {
    "mri_done": True,
    "vertebral_collapse_pct": 25,
    "posterior_column_involvement": False,
    "alignment_abnormality": False,
    "neuro_exam_done": True,
    "neuro_deficit_motor": False,
}


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class Course:
    """One episode through the use cases: before each command, due timers fire (as replay does)."""

    def __init__(self, make_uow: Callable[[], UnitOfWork], episode_id: str = "ep-1") -> None:
        self.uow = make_uow()
        self.episode_id = episode_id
        self.now = T0
        self.applied: list[Applied] = []
        self._n = 0

    def next_event_id(self) -> str:
        self._n += 1
        return f"{self.episode_id}/ev-{self._n}"

    def open(self, facts: dict[str, Any] | None = None) -> Applied:
        return self._record(
            usecases.open_episode(
                self.uow,
                DEFS,
                dict(facts or {}),
                at=self.now,
                now=self.now,
                actor="nurse",
                event_id=self.next_event_id(),
                episode_id=self.episode_id,
                patient_ref="MRN-1",
                label="L1 fracture",
            )
        )

    def advance(self, to_day: float) -> list[Applied]:
        self.now = day(to_day)
        fired = usecases.fire_due_timers(self.uow, DEFS, self.now, episode_id=self.episode_id)
        self.applied.extend(fired)
        return fired

    def observe(self, facts: dict[str, Any], at_day: float | None = None, **kw: Any) -> Applied:
        self._tick(at_day)
        return self._record(
            usecases.observe(
                self.uow,
                DEFS,
                self.episode_id,
                facts,
                at=self.now,
                now=self.now,
                actor="doctor",
                event_id=kw.get("event_id") or self.next_event_id(),
            )
        )

    def request(self, action: str, at_day: float | None = None) -> Applied:
        self._tick(at_day)
        return self._record(
            usecases.request(
                self.uow,
                DEFS,
                self.episode_id,
                action,
                at=self.now,
                now=self.now,
                actor="doctor",
                event_id=self.next_event_id(),
            )
        )

    def close(self, reason: str, at_day: float | None = None) -> Applied:
        self._tick(at_day)
        return self._record(
            usecases.close(
                self.uow,
                DEFS,
                self.episode_id,
                reason,
                at=self.now,
                now=self.now,
                actor="doctor",
                event_id=self.next_event_id(),
            )
        )

    def episode(self) -> Episode:
        with self.uow:
            return self.uow.get_episode(self.episode_id)

    def _tick(self, at_day: float | None) -> None:
        if at_day is not None:
            self.advance(at_day)

    def _record(self, applied: Applied) -> Applied:
        self.applied.append(applied)
        return applied


def standard_course(make_uow: Callable[[], UnitOfWork], episode_id: str = "ep-1") -> Course:
    """Intake → workup → care, a refused request, a review at day 28, timers fired late, then
    discharge-or-close: every kind of row (facts, timers fired and cancelled, tasks, refusals)."""
    course = Course(make_uow, episode_id)
    course.open(PROFILE)
    course.observe(PRESENTATION, 0)
    course.observe(WORKUP, 1)
    course.request("vertebroplasty", 10)
    course.observe({"pain_score": 4}, 29)
    course.observe({"pain_score": 2, "dxa_done": True, "osteoporosis_treatment_started": True}, 33)
    course.advance(120)
    if not DEFS.current.is_terminal(course.episode().state):
        course.close("lost_to_follow_up", 121)
    return course


def in_care(make_uow: Callable[[], UnitOfWork], episode_id: str) -> Course:
    """An episode opened and taken to conservative_care on day 0."""
    course = Course(make_uow, episode_id)
    course.open(PROFILE)
    course.observe({**PRESENTATION, **WORKUP}, 0)
    assert course.episode().state == "conservative_care"
    return course


# -- checking what is stored ------------------------------------------------------------------


def event_of(record: AuditRecord) -> Event:
    """The command an audit entry records, rebuilt from its payload."""
    body = record.body()
    kind, at, actor = record.kind, record.at, record.actor
    if kind == "open":
        return Open(record.event_id, at, actor, body.get("facts", {}))
    if kind == "observe":
        return Observe(record.event_id, at, actor, body["facts"], body["source"])
    if kind == "request":
        return Request(record.event_id, at, actor, body["reason"])
    if kind == "close":
        return Close(record.event_id, at, actor, body["reason"])
    if kind == "task":
        task = body["tasks_closed"][0]
        return UpdateTask(record.event_id, at, actor, task["key"], task["status"], task["note"])
    if kind == "timer":
        return FireTimer(record.event_id, at, actor, body["timer"])
    if kind == "assign":
        return Assign(record.event_id, at, actor, body["owner"])
    raise AssertionError(f"unknown audit kind {kind!r}")


def rebuild_from_audit(records: list[AuditRecord], stored: Episode, key: AuditKey) -> Episode:
    """Replay the audit entries through the engine; every recomputed entry must match its row."""
    episode: Episode | None = None
    for record in records:
        event = event_of(record)
        definition = DEFS.get(record.body()["definition_version"])
        if isinstance(event, Open):
            event = Open(
                event.event_id, event.at, event.actor, event.facts, stored.patient_ref, stored.label
            )  # not in the payload: the episode row's own columns
            decision = open_episode(definition, event, stored.id, record.recorded_at)
        else:
            assert episode is not None
            decision = decide(definition, episode, event, record.recorded_at)
        again = entry_for(decision, record.recorded_at, key=key)
        assert again.payload == record.payload, f"entry {record.seq} does not replay"
        assert again.hash == record.hash
        decision.episode.audit_hash = again.hash
        episode = decision.episode
    assert episode is not None, "an episode without audit entries"
    return episode


def check_stored_episode(uow: UnitOfWork, episode_id: str) -> Episode:
    """The stored episode is exactly what its audit log says; return it."""
    with uow:
        episode = uow.get_episode(episode_id)
        records = uow.audit_records(episode_id)
    check = verify_chain(
        episode_id, records, (episode.version, episode.audit_hash), key=uow.audit_key
    )
    assert check.ok, check.problem
    assert [r.seq for r in records] == list(range(1, episode.version + 1))
    assert records[-1].state_to == episode.state
    assert rebuild_from_audit(records, episode, uow.audit_key) == episode
    return episode
