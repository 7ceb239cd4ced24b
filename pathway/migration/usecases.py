"""The migration use cases: one episode in one transaction, or every running episode.

``migrate_episode`` first fires the episode's timers already due (each its own transaction,
as the scheduler would have: they fell due under the version then in force), then plans the
move (``pathway.migration.plan``) and saves it as one decision with one audit entry of kind
``migrate`` that names both versions and everything that changed, under the usual optimistic
version check. Its event id is derived from the episode, the version it migrates from and the
target version, so a repeated command writes nothing (and an episode moved A → B → A → B is
still migrated the third time). A dry run fires nothing and writes nothing: it plans on the
episode as it would be after its due timers fire.

``migrate_all`` plans every episode before writing any, so a state the target version lacks
and no mapping names stops the whole run with one error, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from pathway.audit import AuditKey, AuditRecord, entry_for
from pathway.definition import Definition
from pathway.engine import decide
from pathway.errors import ConcurrencyConflict, InvalidDefinition, InvalidRequest, PathwayError
from pathway.migration.plan import (
    MissingStateMapping,
    check_state_map,
    migration_decision,
    plan_migration,
)
from pathway.model import Decision, Episode, FireTimer
from pathway.unit_of_work import Change, Outcome, UnitOfWork
from pathway.usecases import DefinitionRegistry, decision_notices, fire_due_timers, timer_event_id

MIGRATED, WOULD_MIGRATE, REPEATED, FAILED = "migrated", "would migrate", "repeated", "failed"
TERMINAL, CURRENT = "terminal", "current"  # not migrated: ended, or already on the target


@dataclass(slots=True)
class EpisodeMigration:
    """What migrating one episode did (or would do)."""

    episode_id: str
    status: str
    from_version: str
    to_version: str
    changes: dict[str, Any] | None = None  # the plan's changes, plus rules fired, transitions
    timers_fired_first: int = 0  # due timers fired under the old version before migrating
    outcome: Outcome | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return orjson.loads(
            orjson.dumps(
                {
                    "episode_id": self.episode_id,
                    "status": self.status,
                    "from_version": self.from_version,
                    "to_version": self.to_version,
                    "changes": self.changes,
                    "timers_fired_first": self.timers_fired_first,
                    "version": self.outcome.version if self.outcome else None,
                    "error": self.error,
                }
            )
        )


@dataclass(slots=True)
class MigrationReport:
    to_version: str
    dry_run: bool
    episodes: list[EpisodeMigration] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.episodes:
            out[e.status] = out.get(e.status, 0) + 1
        return out

    def summary(self) -> str:
        c = self.counts()
        moved = c.get(WOULD_MIGRATE if self.dry_run else MIGRATED, 0)
        verb = "would be migrated" if self.dry_run else "migrated"
        parts = [f"{moved} episode(s) {verb} to {self.to_version}"]
        parts += [f"{c[s]} {label}" for s, label in _OTHER.items() if c.get(s)]
        return "; ".join(parts) + (" (dry run: nothing written)" if self.dry_run else "")


_OTHER = {
    CURRENT: "already on it",
    TERMINAL: "ended (not migrated)",
    REPEATED: "already applied",
    FAILED: "FAILED",
}


def migrate_episode(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    to_version: str,
    state_map: dict[str, str],
    *,
    now: datetime,
    actor: str,
    dry_run: bool = False,
) -> EpisodeMigration:
    """Migrate one episode to ``to_version`` in one transaction (see the module docstring)."""
    new = definitions.get(to_version)
    check_state_map(new, state_map)
    fired = 0
    with uow:
        pathway = uow.get_episode(episode_id).pathway
    if pathway != new.id:  # checked before anything fires: bad input changes nothing
        raise InvalidRequest(
            "to", new.version, f"a version of the episode's own pathway {pathway!r}",
            episode_id=episode_id,
        )  # fmt: skip
    if not dry_run:
        fired = len(fire_due_timers(uow, definitions, now, episode_id=episode_id))
    with uow:
        episode = uow.get_episode(episode_id)
        old = definitions.get(episode.definition_version)
        if dry_run:
            episode, fired = fire_due_in_memory(old, episode, now)
        plan = plan_migration(episode, old, new, state_map, now)
        result = EpisodeMigration(episode_id, plan.skip or "", old.version, new.version)
        result.timers_fired_first = fired
        if plan.skip is not None:
            return result
        decision = migration_decision(plan, actor)
        prior = uow.find_outcome(decision.event.event_id)
        if prior is not None:
            result.status, result.outcome = REPEATED, prior
            return result
        result.changes = {
            **plan.changes(),
            "rules": decision.rule_ids,
            "transitions": [t.to_dict() for t in decision.transitions],
        }
        if dry_run:
            result.status = WOULD_MIGRATE
            return result
        record = migration_entry(decision, plan.changes(), now, uow.audit_key)
        decision.episode.audit_hash = record.hash
        result.outcome = Outcome.of(decision)
        notices = decision_notices(uow, definitions, decision)
        uow.save(Change(decision, record, result.outcome, notices))  # webhooks, as any decision
        uow.commit()
        result.status = MIGRATED
        return result


def migrate_all(
    make_uow: Callable[[], UnitOfWork],
    definitions: DefinitionRegistry,
    to_version: str,
    state_map: dict[str, str],
    *,
    now: datetime,
    actor: str,
    dry_run: bool = False,
    retries: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Migrate every running episode not yet on ``to_version``, one transaction each.

    Every episode is planned first (a dry run); a missing state mapping raises
    ``MissingStateMapping`` naming every such state before anything is written. An episode
    another writer moves meanwhile is planned again (up to ``retries`` times).
    ``progress(done, total)`` counts episodes planned, then episodes migrated."""
    check_state_map(definitions.get(to_version), state_map)
    uow = make_uow()
    pathway = definitions.get(to_version).id
    with uow:  # the target's pathway only: a version never applies to another pathway
        ids = [i for i in uow.episode_ids() if uow.get_episode(i).pathway == pathway]
    tick = progress or _no_progress
    planned = []
    for eid in ids:
        planned.append(_dry(uow, definitions, eid, to_version, state_map, now, actor))
        tick(len(planned), len(ids))
    errors = [p for p in planned if isinstance(p, MissingStateMapping)]
    if errors:
        missing: dict[str, int] = {}
        for error in errors:
            for state, n in error.missing.items():
                missing[state] = missing.get(state, 0) + n
        raise MissingStateMapping(missing, to_version, errors[0].states)
    report = MigrationReport(to_version, dry_run)
    moving = 0 if dry_run else sum(p.status == WOULD_MIGRATE for p in planned)  # type: ignore[union-attr]
    done = 0
    for p in planned:
        assert isinstance(p, EpisodeMigration)
        if not dry_run and p.status == WOULD_MIGRATE:
            p = _with_retries(make_uow, definitions, p, state_map, now, actor, retries)
            done += 1
            tick(len(ids) + done, len(ids) + moving)
        report.episodes.append(p)
    return report


def _no_progress(done: int, total: int) -> None:
    return None


def fire_due_in_memory(
    definition: Definition, episode: Episode, now: datetime
) -> tuple[Episode, int]:
    """The episode after firing, in memory, every timer due by ``now`` (as the scheduler
    would before the migration): what a dry run plans on. Returns it and the count fired."""
    fired = 0
    while not definition.is_terminal(episode.state):
        due = [t for t in episode.pending_timers() if t.due_at <= now]
        if not due:
            break
        event = FireTimer(
            timer_event_id(episode.id, due[0].key), due[0].due_at, "scheduler", due[0].key
        )
        episode, fired = decide(definition, episode, event, now).episode, fired + 1
    return episode, fired


def migration_entry(
    decision: Decision, changes: dict[str, Any], recorded_at: datetime, key: AuditKey
) -> AuditRecord:
    """The decision's audit entry with a ``migration`` section: both versions and the changes."""
    return entry_for(decision, recorded_at, {"migration": changes}, key=key)


def _dry(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    to_version: str,
    state_map: dict[str, str],
    now: datetime,
    actor: str,
) -> EpisodeMigration | MissingStateMapping:
    try:
        return migrate_episode(
            uow,
            definitions,
            episode_id,
            to_version,
            state_map,
            now=now,
            actor=actor,
            dry_run=True,
        )
    except MissingStateMapping as exc:
        return exc
    except InvalidDefinition as exc:  # pinned to a version whose document was never stored
        with uow:
            pinned = uow.get_episode(episode_id).definition_version
        return EpisodeMigration(episode_id, FAILED, pinned, to_version, error=str(exc))


def _with_retries(
    make_uow: Callable[[], UnitOfWork],
    definitions: DefinitionRegistry,
    planned: EpisodeMigration,
    state_map: dict[str, str],
    now: datetime,
    actor: str,
    retries: int,
) -> EpisodeMigration:
    """Migrate for real; a conflict (the scheduler fired a timer meanwhile) plans again."""
    error: PathwayError | None = None
    for _ in range(retries + 1):
        try:
            return migrate_episode(
                make_uow(),
                definitions,
                planned.episode_id,
                planned.to_version,
                state_map,
                now=now,
                actor=actor,
            )
        except ConcurrencyConflict as exc:
            error = exc
        except PathwayError as exc:  # e.g. a timer firing first moved it to an unmapped state
            error = exc
            break
    return EpisodeMigration(
        planned.episode_id, FAILED, planned.from_version, planned.to_version, error=str(error)
    )
