"""A small driver for pathway tests: one episode, the real use cases, a virtual clock.

``Run`` opens an episode on an ``InMemoryUnitOfWork`` and moves it through the use cases the
way the scheduler and a clinician would: before each event the clock moves to that event's
episode day and every timer due by then fires, in due order. Days are episode days (floats
are allowed, to stand just before a boundary); ``in_care`` builds an episode that enters
``conservative_care`` on day 0, so there episode day and care day are the same number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pathway import usecases
from pathway.audit import AuditRecord
from pathway.definition import Definition, load_definition, shipped_definition_files
from pathway.model import OPEN, Decision, Episode, Observation, Task
from pathway.unit_of_work import InMemoryUnitOfWork
from pathway.usecases import Applied, DefinitionRegistry

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ACTOR = "test-clinician"

PRESENTATION: dict[str, Any] = {"fracture_levels": ["L1"], "pain_score": 6}
WORKUP_DONE: dict[str, Any] = {"mri_done": True, "neuro_exam_done": True}
OSTEO_CARE_IN_PLACE: dict[str, Any] = {"dxa_done": True, "osteoporosis_treatment_started": True}


def definition() -> Definition:
    """The shipped definition (compiled once and cached by the loader)."""
    return load_definition()


def day_at(day: float, start: datetime = START) -> datetime:
    return start + timedelta(days=day)


def shipped_registry() -> DefinitionRegistry:
    """Every shipped definition side by side, as every process loads them (enrolments work)."""
    return DefinitionRegistry([load_definition(p) for p in shipped_definition_files()])


class Run:
    """One episode driven through the use cases on a virtual clock."""

    pathway: str | None = None  # the pathway episodes open on (None: the registry's default)
    start: datetime = START  # what day 0 means

    def __init__(
        self,
        uow: InMemoryUnitOfWork | None = None,
        defn: Definition | None = None,
        registry: DefinitionRegistry | None = None,
    ) -> None:
        if defn is None and registry is not None:
            defn = registry.current_for(self.pathway)
        self.definition = defn or definition()
        self.registry = registry or DefinitionRegistry(self.definition)
        self.uow = uow or InMemoryUnitOfWork()
        self.episode_id = ""
        self.day: float = 0
        self.history: list[Applied] = []  # every command and timer firing that decided something
        self._n = 0

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def open(cls, facts: Mapping[str, Any] | None = None, *, day: float = 0, **kw: Any) -> Run:
        run = cls(**kw)
        run.day = day
        run._n += 1
        applied = usecases.open_episode(
            run.uow,
            run.registry,
            dict(facts or {}),
            at=run.at(),
            now=run.at(),
            actor=ACTOR,
            event_id=f"ev-{run._n}",
            episode_id="ep-1",
            pathway=run.pathway,
        )
        run.episode_id = applied.outcome.episode_id
        run.history.append(applied)
        return run

    def advance(self, day: float) -> list[Applied]:
        """Move the clock to ``day`` and fire every timer due by then (in due order)."""
        assert day >= self.day, f"days never go backwards: {day} < {self.day}"
        self.day = day
        fired = usecases.fire_due_timers(
            self.uow, self.registry, self.at(), episode_id=self.episode_id
        )
        self.history.extend(fired)
        return fired

    def observe(
        self, facts: Any, *, day: float | None = None, event_id: str | None = None
    ) -> Applied:
        self._tick(day)
        return self._record(
            usecases.observe(
                self.uow,
                self.registry,
                self.episode_id,
                facts,
                at=self.at(),
                now=self.at(),
                actor=ACTOR,
                event_id=event_id or self._event_id(),
            )
        )

    def request(
        self, action: str, *, day: float | None = None, event_id: str | None = None
    ) -> Applied:
        self._tick(day)
        return self._record(
            usecases.request(
                self.uow,
                self.registry,
                self.episode_id,
                action,
                at=self.at(),
                now=self.at(),
                actor=ACTOR,
                event_id=event_id or self._event_id(),
            )
        )

    def close(
        self, reason: str, *, day: float | None = None, event_id: str | None = None
    ) -> Applied:
        self._tick(day)
        return self._record(
            usecases.close(
                self.uow,
                self.registry,
                self.episode_id,
                reason,
                at=self.at(),
                now=self.at(),
                actor=ACTOR,
                event_id=event_id or self._event_id(),
            )
        )

    # -- reading ----------------------------------------------------------------------------

    def at(self, day: float | None = None) -> datetime:
        return day_at(self.day if day is None else day, self.start)

    @property
    def episode(self) -> Episode:
        return self.uow.store.episodes[self.episode_id]

    @property
    def state(self) -> str:
        return self.episode.state

    @property
    def audit(self) -> list[AuditRecord]:
        return self.uow.audit_records(self.episode_id)

    @property
    def observations(self) -> list[Observation]:
        return self.uow.observations(self.episode_id)

    @property
    def decisions(self) -> list[Decision]:
        return [a.decision for a in self.history if a.decision is not None]

    def fired(self) -> list[str]:
        """Every rule id fired so far, in order (refusals excluded)."""
        return [rid for d in self.decisions for rid in d.rule_ids]

    def open_tasks(self, rule_id: str | None = None) -> list[Task]:
        return [
            t
            for t in self.episode.tasks
            if t.status == OPEN and (rule_id is None or t.rule_id == rule_id)
        ]

    def snapshot(self) -> tuple[Episode, list[AuditRecord], list[Observation], int]:
        """What a refused command must leave untouched (compare before and after)."""
        return self.episode, self.audit, self.observations, len(self.uow.store.outcomes)

    # -- internals --------------------------------------------------------------------------

    def _tick(self, day: float | None) -> None:
        if day is not None:
            self.advance(day)

    def _event_id(self) -> str:
        self._n += 1
        return f"ev-{self._n}"

    def _record(self, applied: Applied) -> Applied:
        self.history.append(applied)
        return applied


def in_care(profile: Mapping[str, Any] | None = None, *, pain: int = 6, **extra: Any) -> Run:
    """An episode opened with ``profile`` and taken to conservative_care on day 0 (care day 0)."""
    run = Run.open(profile)
    run.observe({**PRESENTATION, "pain_score": pain, **WORKUP_DONE, **extra}, day=0)
    assert run.state == "conservative_care", run.state
    return run


def at_three_month_review(profile: Mapping[str, Any] | None = None, *, pain: int = 6) -> Run:
    """An episode in care since day 0, reviewed (continued) on day 30, back in review on day 90."""
    run = in_care(profile, pain=pain)
    run.advance(28)
    assert run.state == "reassessment", run.state
    run.observe({"pain_score": pain}, day=30)
    assert run.state == "conservative_care", run.state
    run.advance(90)
    assert run.state == "reassessment", run.state
    return run


# -- the fracture liaison pathway (FLS.md) ----------------------------------------------------

FLS = "fracture-liaison"
FRACTURE_DATE = "2026-03-02"
FRACTURE_MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)  # 00:00 UTC of fracture day 0


class FlsRun(Run):
    """An FLS episode whose ``day`` is the fracture day (FLS.md): day 84.0 is 00:00 UTC of
    fracture day 84 when ``fracture_date`` is ``FRACTURE_DATE``; 3.375 is 09:00 of day 3."""

    pathway = FLS
    start = FRACTURE_MIDNIGHT

    def __init__(
        self, uow: InMemoryUnitOfWork | None = None, registry: DefinitionRegistry | None = None
    ) -> None:
        super().__init__(uow, registry=registry or shipped_registry())

    def update_task(self, rule_id: str, status: str = "done") -> Applied:
        task = self.open_tasks(rule_id)[0]
        return self._record(
            usecases.update_task(
                self.uow, self.registry, self.episode_id, task.key, status, note=None,
                at=self.at(), now=self.at(), actor=ACTOR, event_id=self._event_id(),
            )
        )  # fmt: skip
