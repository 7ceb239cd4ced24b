"""Hand-built cohorts for the measures tests: episodes driven through the real use cases.

``Patient`` runs one episode of either pathway on any unit of work (in memory, SQLite,
PostgreSQL) with deterministic event ids; ``day`` is days since ``start`` (for the FLS cohort
start is 00:00 UTC of the fracture date, so day N.x is fracture day N). Before each command the
episode's due timers fire, as the scheduler would have fired them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pathway import usecases
from pathway.definition import Definition, load_definition, shipped_definition_files
from pathway.measure_eval import Course, Verdict, course_of, evaluate, history_of
from pathway.measures import rules_named
from pathway.registry import DefinitionRegistry
from pathway.unit_of_work import InMemoryUnitOfWork, UnitOfWork

L1L2, FLS = "l1-l2-compression-fracture", "fracture-liaison"
REGISTRY = DefinitionRegistry([load_definition(p) for p in shipped_definition_files()])
L1_START = datetime(2026, 1, 5, 9, tzinfo=UTC)
FLS_START = datetime(2026, 1, 5, tzinfo=UTC)  # fracture day 0 when fracture_date is 2026-01-05
FRACTURE_DATE = "2026-01-05"
PRESENT = {"fracture_levels": ["L1"], "pain_score": 6, "high_energy_trauma": False}
WORKUP = {"mri_done": True, "neuro_exam_done": True}
ASSESSED_HIGH = {"risk_category": "high", "falls_assessment_done": True, "falls_risk_high": False}


class Patient:
    def __init__(
        self, uow: Callable[[], UnitOfWork] | UnitOfWork, eid: str, pathway: str,
        start: datetime | None = None,
    ) -> None:  # fmt: skip
        self.uow = uow() if callable(uow) and not hasattr(uow, "get_episode") else uow
        self.eid, self.pathway, self.n = eid, pathway, 0
        self.start = start or (FLS_START if pathway == FLS else L1_START)
        self.now = self.start

    def at(self, day: float) -> datetime:
        return self.start + timedelta(days=day)

    def _ev(self) -> str:
        self.n += 1
        return f"{self.eid}/ev-{self.n}"

    def advance(self, day: float) -> Patient:
        self.now = self.at(day)
        usecases.fire_due_timers(self.uow, REGISTRY, self.now, episode_id=self.eid)
        return self

    def open(self, facts: dict[str, Any], day: float = 0) -> Patient:
        self.now = self.at(day)
        usecases.open_episode(
            self.uow, REGISTRY, dict(facts), at=self.now, now=self.now, actor="nurse",
            event_id=self._ev(), episode_id=self.eid, patient_ref=f"MRN-{self.eid}",
            pathway=self.pathway,
        )  # fmt: skip
        return self

    def observe(self, facts: dict[str, Any], day: float, entered: float | None = None) -> Patient:
        """Record ``facts`` at clinical time ``day``, entered then or on day ``entered``."""
        self.advance(day)
        now = self.at(entered) if entered is not None else self.now
        usecases.observe(
            self.uow, REGISTRY, self.eid, facts, at=self.now, now=now, actor="doctor",
            event_id=self._ev(),
        )  # fmt: skip
        return self

    def close(self, reason: str, day: float) -> Patient:
        self.advance(day)
        usecases.close(
            self.uow, REGISTRY, self.eid, reason, at=self.now, now=self.now, actor="doctor",
            event_id=self._ev(),
        )  # fmt: skip
        return self

    def request(self, action: str, day: float) -> Patient:
        self.advance(day)
        usecases.request(
            self.uow, REGISTRY, self.eid, action, at=self.now, now=self.now, actor="doctor",
            event_id=self._ev(),
        )  # fmt: skip
        return self

    def state(self) -> str:
        with self.uow:
            return self.uow.get_episode(self.eid).state


def l1(uow: Any, eid: str, start: datetime | None = None, **profile: Any) -> Patient:
    """An L1–L2 episode opened (age 45 unless given: no FLS enrolment) and taken to
    conservative_care on day 0, so that episode day and care day are the same number."""
    p = Patient(uow, eid, L1L2, start).open({"age": 45, **profile})
    return p.observe({**PRESENT, **WORKUP}, 0)


def fls(uow: Any, eid: str, start: datetime | None = None, **facts: Any) -> Patient:
    """An FLS episode opened on fracture day 0, eligible: in assessment."""
    base = {"age": 70, "sex": "female", "fracture_date": FRACTURE_DATE, "fracture_site": "wrist"}
    p = Patient(uow, eid, FLS, start).open({**base, **facts})
    return p.observe({"high_energy_trauma": False}, 0)


def definition_of(pathway: str) -> Definition:
    return REGISTRY.current_for(pathway)


def memory_courses(
    uow: InMemoryUnitOfWork, definition: Definition, as_of: datetime
) -> Iterator[Course]:
    """The courses of ``definition``'s episodes in an in-memory store, in episode id order (as
    the database streams them), read from the audit payloads in full."""
    rules = rules_named(definition.measures)
    for eid in sorted(uow.store.episodes):
        ep = uow.store.episodes[eid]
        if ep.pathway != definition.id:
            continue
        bodies = [r.body() for r in uow.audit_records(eid)]
        course = course_of(
            history_of(eid, ep.patient_ref, ep.closed_reason, bodies, rules), definition, as_of
        )
        if course is not None:
            yield course


def verdict(uow: InMemoryUnitOfWork, eid: str, measure_id: str, as_of: datetime) -> Verdict:
    """One episode's verdict on one measure, evaluated purely from its in-memory history."""
    ep = uow.store.episodes[eid]
    definition = definition_of(ep.pathway)
    (measure,) = [m for m in definition.measures if m.id == measure_id]
    (course,) = [c for c in memory_courses(uow, definition, as_of) if c.history.episode_id == eid]
    return evaluate(measure, course, definition)
