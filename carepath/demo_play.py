"""Playing a demo cohort: each patient a script of real commands through the use cases.

The machinery behind ``carepath.demo`` (the cohorts themselves live in ``carepath.demo`` and
``carepath.demo_fls``; this module knows no pathway). A patient's episode is opened on its
pathway at a clinical time in the past, each step is run at its own clinical time, and before
each step (and at the end) the episode's timers due by then are fired at their due times, as a
running scheduler would have fired them. An episode another pathway enrols while the script runs
(a link ``enrolled``) is caught up the same way, and plays the patient's ``enrolled`` steps.

Loading twice changes nothing: each patient has a fixed episode id (from its demo reference), a
patient already present is skipped with the episodes it enrolled, and every command has a fixed
event id besides.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pathway import usecases
from pathway.enrolment import ENROLLED
from pathway.errors import EpisodeNotFound
from pathway.model import Episode
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import DefinitionRegistry

if TYPE_CHECKING:
    from storage.unit_of_work import SqlUnitOfWorkFactory

ACTOR = "demo"
NAMESPACE = uuid.UUID("5a0c7c1e-3d5b-4c55-9a0e-6f1d2c3b4a59")

# (day after opening, "observe" | "request" | "close" | "done", payload); "done" marks the open
# tasks whose rule id starts with one of the payload's prefixes done, as a coordinator would.
Step = tuple[float, str, Any]


@dataclass(frozen=True, slots=True)
class Patient:
    ref: str
    label: str
    days_ago: float  # when the episode was opened
    facts: dict[str, Any]
    steps: tuple[Step, ...] = ()
    pathway: str | None = None  # None: the default pathway
    # date facts given as days before the load's ``now`` (their ISO date is added to ``facts``)
    dates: dict[str, float] = field(default_factory=dict)
    # steps played on the episode this one enrols (days after *this* episode's opening)
    enrolled: tuple[Step, ...] = ()


def episode_id_of(ref: str) -> str:
    return uuid.uuid5(NAMESPACE, ref).hex


@dataclass(frozen=True, slots=True)
class Loaded:
    created: int  # episodes created, the enrolled ones included
    present: int  # episodes already present (the patient's and those it enrolled)


def load_patients(
    make_uow: Callable[[], UnitOfWork],
    definitions: DefinitionRegistry,
    now: datetime,
    patients: list[Patient],
) -> Loaded:
    """Load the patients not yet present, each through the real use cases; see the docstring."""
    created = present = 0
    for patient in patients:
        eid = episode_id_of(patient.ref)
        existing = _existing(make_uow(), eid)
        if existing is not None:
            present += 1 + len(enrolled_ids(existing))
            continue
        created += 1 + _play(make_uow, definitions, patient, eid, now)
    return Loaded(created, present)


def enrolled_ids(episode: Episode) -> list[str]:
    """The episodes this one opened on other pathways (enrolment)."""
    return [link.episode_id for link in episode.links if link.relation == ENROLLED]


def _existing(uow: UnitOfWork, episode_id: str) -> Episode | None:
    with uow:
        try:
            return uow.get_episode(episode_id)
        except EpisodeNotFound:
            return None


def _play(
    make_uow: Callable[[], UnitOfWork],
    definitions: DefinitionRegistry,
    patient: Patient,
    eid: str,
    now: datetime,
) -> int:
    """Play the patient's script; the number of episodes it enrolled."""
    opened = now - timedelta(days=patient.days_ago)
    facts = dict(patient.facts)
    for name, days in patient.dates.items():
        facts[name] = (now - timedelta(days=days)).date().isoformat()
    usecases.open_episode(
        make_uow(), definitions, facts, at=opened, now=now, actor=ACTOR,
        event_id=f"demo:{patient.ref}:open", episode_id=eid,
        patient_ref=patient.ref, label=patient.label, pathway=patient.pathway,
    )  # fmt: skip
    _steps(make_uow, definitions, eid, opened, patient.steps, f"demo:{patient.ref}", now)
    episode = _existing(make_uow(), eid)
    enrolled = enrolled_ids(episode) if episode is not None else []
    for n, other in enumerate(enrolled):
        steps = patient.enrolled if n == 0 else ()
        _steps(make_uow, definitions, other, opened, steps, f"demo:{patient.ref}:enrolled", now)
    return len(enrolled)


def _steps(
    make_uow: Callable[[], UnitOfWork],
    definitions: DefinitionRegistry,
    eid: str,
    opened: datetime,
    script: tuple[Step, ...],
    event_prefix: str,
    now: datetime,
) -> None:
    for i, (day, kind, payload) in sorted(enumerate(script), key=lambda s: s[1][0]):
        at = opened + timedelta(days=day)
        catch_up(make_uow, definitions, eid, at)
        if _ended(make_uow(), definitions, eid):
            return  # a generated script may outlive its episode (``carepath.demo_history``)
        common: dict[str, Any] = {
            "at": at, "now": now, "actor": ACTOR, "event_id": f"{event_prefix}:{i}"
        }  # fmt: skip
        if kind == "observe":
            usecases.observe(make_uow(), definitions, eid, payload, **common)
        elif kind == "request":
            usecases.request(make_uow(), definitions, eid, payload, **common)
        elif kind == "done":
            _tasks_done(make_uow, definitions, eid, payload, common)
        else:
            usecases.close(make_uow(), definitions, eid, payload, **common)
    catch_up(make_uow, definitions, eid, now)


def _ended(uow: UnitOfWork, definitions: DefinitionRegistry, eid: str) -> bool:
    with uow:
        episode = uow.get_episode(eid)
    return definitions.get(episode.definition_version).is_terminal(episode.state)


def load_batched(
    factory: SqlUnitOfWorkFactory,
    definitions: DefinitionRegistry,
    now: datetime,
    patients: list[Patient],
    per_transaction: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> Loaded:
    """``load_patients`` with each group of patients written in one transaction (a
    ``BatchUnitOfWork``), so hundreds load in seconds, not minutes: on PostgreSQL every write
    of the group is deferred to one pipeline (the group is redone with a savepoint per use
    case if that fails), on SQLite each use case writes in a savepoint."""
    from storage.batch import BatchFailed

    deferred = factory.engine.dialect.name == "postgresql"
    created = present = 0
    for first in range(0, len(patients), per_transaction):
        group = patients[first : first + per_transaction]
        try:
            part = _load_group(factory, definitions, now, group, deferred)
        except BatchFailed:
            part = _load_group(factory, definitions, now, group, False)
        created, present = created + part.created, present + part.present
        if progress is not None:
            progress(first + len(group), len(patients))
    return Loaded(created, present)


def _load_group(
    factory: SqlUnitOfWorkFactory,
    definitions: DefinitionRegistry,
    now: datetime,
    group: list[Patient],
    deferred: bool,
) -> Loaded:
    from storage.batch import BatchUnitOfWork

    held = factory.connections.take()
    try:
        uow = BatchUnitOfWork(factory, held, deferred=deferred)
        with uow.backend.transaction(held[1]):
            loaded = load_patients(lambda bound=uow: bound, definitions, now, group)
            uow.flush()
    finally:
        factory.connections.give(held)
    for episode in uow.written.values():  # committed: now the cache may trust them
        factory.snapshots.put(episode)
    return loaded


def _tasks_done(
    make_uow: Callable[[], UnitOfWork],
    definitions: DefinitionRegistry,
    eid: str,
    prefixes: tuple[str, ...],
    common: dict[str, Any],
) -> None:
    uow = make_uow()
    with uow:
        tasks = [t for t in uow.get_episode(eid).tasks if t.status == "open"]
    for task in tasks:
        if task.kind != "escalation" and task.rule_id.startswith(prefixes):
            usecases.update_task(
                make_uow(), definitions, eid, task.key, "done", note=None,
                **{**common, "event_id": f"{common['event_id']}:{task.key}"},
            )  # fmt: skip


def catch_up(
    make_uow: Callable[[], UnitOfWork], definitions: DefinitionRegistry, eid: str, until: datetime
) -> None:
    """Fire the episode's timers due by ``until``, each at its own due time (never late)."""
    while True:
        uow = make_uow()
        with uow:
            due = uow.due_timers(until, 1, eid)
        if not due:
            return
        timer = due[0].timer
        usecases.fire_timer(make_uow(), definitions, eid, timer.key, timer.due_at, now=timer.due_at)
