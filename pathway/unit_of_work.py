"""The unit of work the use cases run in, and a complete in-memory implementation of it.

A unit of work is a context manager: leaving it without ``commit()`` rolls back, so nothing is
half-written by default. ``save`` takes one ``Change`` (the decision, its audit entry and its
outcome) and the backend writes all of it in the transaction or none of it; a stale episode
version raises ``ConcurrencyConflict``.

``InMemoryUnitOfWork`` is a real implementation, not a mock: the same use-case suite runs on it,
on SQLite and on PostgreSQL, and ``carepath replay`` uses it by default for speed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Self

from pathway.audit import AuditKey, AuditRecord, process_key
from pathway.compiled import mypyc_attr
from pathway.errors import ConcurrencyConflict, EpisodeNotFound
from pathway.model import PENDING, Decision, Episode, Observation, Timer
from pathway.notifications import Notice


@dataclass(slots=True)
class Outcome:
    """What a command did, as returned to its caller and replayed for a repeated event id."""

    event_id: str
    episode_id: str
    kind: str
    version: int
    state: str
    rules: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    transitions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    repeated: bool = False
    # Stored beside the outcome, never shown to its caller (``pathway.idempotency``):
    caller: str | None = None  # who sent the idempotency key
    idempotency_key: str | None = None  # the key as given
    request_hash: str | None = None  # command, episode and canonical body

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "episode_id": self.episode_id,
            "kind": self.kind,
            "version": self.version,
            "state": self.state,
            "rules": list(self.rules),
            "refused": list(self.refused),
            "transitions": [{"from": a, "to": b, "rules": list(r)} for a, b, r in self.transitions],
            "repeated": self.repeated,
        }

    @classmethod
    def of(cls, decision: Decision) -> Outcome:
        ep, event = decision.episode, decision.event
        return cls(  # positional, in field order: one per decision
            event.event_id,
            ep.id,
            event.kind,
            ep.version,
            ep.state,
            tuple([f.rule_id for f in decision.fired]) if decision.fired else (),
            tuple([r.firing.rule_id for r in decision.refused]) if decision.refused else (),
            tuple([(t.source, t.dest, t.rules) for t in decision.transitions])
            if decision.transitions
            else (),
        )


@dataclass(slots=True)
class Change:
    """Everything one decision writes, in one transaction."""

    decision: Decision
    audit: AuditRecord
    outcome: Outcome
    notices: tuple[Notice, ...] = ()  # what webhooks tell subscribers (pathway.notifications)


@dataclass(slots=True)
class DueTimer:
    episode_id: str
    timer: Timer


class UnitOfWork(Protocol):
    """What the use cases need from storage. Implemented in memory here and in SQL in storage/."""

    audit_key: AuditKey
    """The key this database's audit chains are under (handed in, never stored with them)."""

    keeps_notices: bool
    """Whether ``save`` writes a change's webhook notices (an outbox): the use cases work them
    out only for a unit of work that keeps them."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def get_episode(self, episode_id: str) -> Episode:
        """The episode's current snapshot; EpisodeNotFound if there is none."""
        ...

    def find_outcome(self, event_id: str) -> Outcome | None:
        """The outcome recorded for this event id, if it was already applied."""
        ...

    def save(self, change: Change) -> None:
        """Write the decision (episode with version check, observation, timers, tasks), its audit
        entry and its outcome; ConcurrencyConflict if the episode moved since it was read."""
        ...

    def due_timers(
        self, now: datetime, limit: int, episode_id: str | None = None
    ) -> list[DueTimer]:
        """Pending timers due by ``now``, in firing order (a terminal episode has none: the engine
        cancels them all when the episode ends)."""
        ...

    def audit_records(self, episode_id: str) -> list[AuditRecord]:
        """The episode's audit entries in seq order."""
        ...

    def observations(self, episode_id: str) -> list[Observation]:
        """Every observation recorded on the episode, oldest first."""
        ...

    def episode_ids(self) -> list[str]: ...

    def episodes_of_patient(self, patient_ref: str, pathway: str) -> list[Episode]:
        """The patient's episodes on one pathway, oldest first (staged ones included)."""
        ...


@dataclass
class InMemoryStore:
    """The committed data of in-memory units of work; share one between several of them."""

    episodes: dict[str, Episode] = field(default_factory=dict)
    audit: dict[str, list[AuditRecord]] = field(default_factory=dict)
    observations: dict[str, list[Observation]] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    audit_key: AuditKey = field(default_factory=process_key)  # random per process unless given


def _firing_order(t: Timer) -> tuple[datetime, int]:
    return (t.due_at, t.order)


@mypyc_attr(allow_interpreted_subclasses=True)  # replay's recording one, tests' (compiled build)
class InMemoryUnitOfWork:
    """A complete unit of work over plain dicts: staged on ``save``, applied on ``commit``.
    It has no webhook outbox (nothing in memory is delivered), so it keeps no notices."""

    keeps_notices = False

    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.store = store if store is not None else InMemoryStore()
        self._staged: list[Change] = []

    @property
    def audit_key(self) -> AuditKey:
        return self.store.audit_key

    def __enter__(self) -> Self:
        if self._staged:
            self._staged = []
        return self

    def __exit__(self, *exc: object) -> None:
        self.rollback()

    def commit(self) -> None:
        store, staged = self.store, self._staged
        if not staged:
            return
        episodes = store.episodes
        for change in staged:  # check every change before applying any
            decision = change.decision
            before = decision.episode_before
            current = episodes.get(decision.episode.id)
            expected = before.version if before else None
            found = current.version if current else None
            if found != expected:
                raise ConcurrencyConflict(decision.episode.id, expected or 0, found)
        audit, outcomes = store.audit, store.outcomes
        for change in staged:
            decision = change.decision
            ep = decision.episode
            episode_id = ep.id
            episodes[episode_id] = ep
            chain = audit.get(episode_id)
            if chain is None:
                audit[episode_id] = [change.audit]
            else:
                chain.append(change.audit)
            if decision.observation is not None:
                store.observations.setdefault(episode_id, []).append(decision.observation)
            outcomes[change.outcome.event_id] = change.outcome
        self._staged = []

    def rollback(self) -> None:
        if self._staged:  # nothing staged (every read-only block): nothing to drop
            self._staged = []

    def get_episode(self, episode_id: str) -> Episode:
        if self._staged:
            for change in reversed(self._staged):
                if change.decision.episode.id == episode_id:
                    return change.decision.episode
        try:
            return self.store.episodes[episode_id]
        except KeyError:
            raise EpisodeNotFound(episode_id) from None

    def find_outcome(self, event_id: str) -> Outcome | None:
        if self._staged:
            for change in self._staged:
                if change.outcome.event_id == event_id:
                    return change.outcome
        return self.store.outcomes.get(event_id)

    def save(self, change: Change) -> None:
        self._staged.append(change)

    def due_timers(
        self, now: datetime, limit: int, episode_id: str | None = None
    ) -> list[DueTimer]:
        if episode_id:  # one episode (a replay asks before every event): no sort unless due
            ep = self.get_episode(episode_id)
            timers = [t for t in ep.timers if t.status == PENDING and t.due_at <= now]
            if len(timers) > 1:
                timers.sort(key=_firing_order)
            return [DueTimer(ep.id, t) for t in timers[:limit]]
        episodes: Iterator[Episode] = iter(self.store.episodes.values())
        due = [
            DueTimer(ep.id, t)
            for ep in episodes
            for t in ep.timers
            if t.status == PENDING and t.due_at <= now
        ]
        due.sort(key=lambda d: (d.timer.due_at, d.episode_id, d.timer.order))
        return due[:limit]

    def audit_records(self, episode_id: str) -> list[AuditRecord]:
        return list(self.store.audit.get(episode_id, ()))

    def observations(self, episode_id: str) -> list[Observation]:
        return list(self.store.observations.get(episode_id, ()))

    def episode_ids(self) -> list[str]:
        return list(self.store.episodes)

    def episodes_of_patient(self, patient_ref: str, pathway: str) -> list[Episode]:
        ids = [
            ep.id
            for ep in (*self.store.episodes.values(), *(c.decision.episode for c in self._staged))
            if ep.patient_ref == patient_ref and ep.pathway == pathway
        ]
        return [self.get_episode(i) for i in dict.fromkeys(ids)]
