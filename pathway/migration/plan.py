"""Moving a running episode to another version of its definition: the plan, then the decision.

A changed definition file is a new version; running episodes stay on the version they were
opened under until migrated. ``plan_migration`` works out, without touching anything, what
moving one episode means; ``migration_decision`` turns the plan into an ordinary ``Decision`` that the use
case audits and saves like any other (kind ``migrate``).

What a migration does, and the reading taken where the rules leave a choice:

- **State.** Kept when the new version has it as a live state. A state the new version no
  longer has (or has only as a terminal one) needs an explicit mapping, else
  ``MissingStateMapping`` names it and the states there are. The time the state was entered
  is kept: a mapping renames the patient's stage, it is not a clinical transition, so no
  ``on_enter`` rule fires. Mapped into a care-starting state before care started, the care
  timeline starts at that entry time (otherwise no follow-up would ever be scheduled).
- **Timers: history stays history.** Fired and cancelled timers stay as they are.
- **Pending timers are recomputed from when they were set.** The episode is pinned, so a
  pending timer was set with the old version's delay: ``set = due − old delay`` (for a
  state-bound timer that is ``state_entered_at``, for the care timeline ``care_started_at``,
  for a route timer such as FU-NEXT-REVIEW the review that set it). The new due time is
  ``set + new delay``. If that is already past, the timer falls due *at the migration*, not
  before it: the obligation existed, the new numbers make it overdue, and the patient is seen
  now — clinical time in the log never goes backwards. A re-timed timer is cancelled and set
  again under a new key, so storage and the audit log see two ordinary timer changes.
- **Timers the new version no longer has** (gone from the definition, no longer a timer of
  the current state, or no longer of the same kind) are cancelled.
- **Timers the new version adds** to the current state (state-bound, from ``state_entered_at``)
  or to the care timeline (from ``care_started_at``, once care has started) are set only if
  their due time is still ahead. One whose time passed before the migration is *not* set and
  is listed: firing it now would put a backdated obligation — under a rule that was not in
  force then — on the patient. Route timers are never added: whether the route would have
  been taken is history the old version decided.
- **Then the TX check** of the new version runs on the current facts: if it transfers the
  patient, the migration transfers them (rules fired with evidence, pending timers cancelled
  by the transfer itself, so no timer is re-timed first). Other rules wait for the next event.
- **Terminal episodes are not migrated**, nor episodes already on the target version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from pathway.definition import Definition
from pathway.errors import InvalidRequest
from pathway.model import CANCELLED, PENDING, Decision, Episode, Event, Timer
from pathway.work import DecisionInProgress


@dataclass(slots=True)
class Migrate(Event):
    """A running episode re-pinned to another definition version (clinical time: now)."""

    from_version: str = ""
    to_version: str = ""

    kind = "migrate"


class MissingStateMapping(InvalidRequest):
    """Episodes are in states the target version does not have, and no mapping names them."""

    def __init__(self, missing: dict[str, int], to_version: str, states: list[str]) -> None:
        names = ", ".join(f"{s!r} ({n} episode{'s' * (n != 1)})" for s, n in missing.items())
        expected = f"a mapping STATE=NEW for each, NEW one of {', '.join(states)}"
        super().__init__("state map", sorted(missing), expected)
        self.message = f"{to_version} has no state {names}; expected {expected}"
        self.args = (self.message,)
        self.missing, self.states = missing, states


@dataclass(frozen=True, slots=True)
class TimerChange:
    """One timer the migration re-times, cancels, adds or declines to add, and why."""

    rule: str
    key: str | None  # the timer's key before; None for a timer the new version adds
    due: datetime | None  # due before; for an addition, the due time by the new numbers
    new_due: datetime | None  # None: cancelled, or not set
    state: str | None = None  # the state a (re-)set timer is bound to
    why: str = ""
    set_at: datetime | None = None  # when what set it happened (kept, for later re-timing)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if name != "set_at"}


@dataclass(slots=True)
class MigrationPlan:
    """What moving one episode to ``new`` means; ``skip`` says why nothing would change."""

    episode: Episode
    old: Definition
    new: Definition
    now: datetime
    state: str = ""  # the state on the new version, before any transfer
    care_started_at: datetime | None = None
    retimed: list[TimerChange] = field(default_factory=list)
    added: list[TimerChange] = field(default_factory=list)
    cancelled: list[TimerChange] = field(default_factory=list)
    not_set: list[TimerChange] = field(default_factory=list)
    transfer: tuple[str, ...] = ()  # TX rules of the new version that hold on current facts
    skip: str | None = None  # "terminal" or "current" (already on the target version)

    def changes(self) -> dict[str, Any]:
        """The plan as JSON-ready data: what the audit entry and the listings show."""
        ep = self.episode
        out: dict[str, Any] = {
            "from_version": self.old.version,
            "to_version": self.new.version,
            "state": {"from": ep.state, "to": self.state, "mapped": ep.state != self.state},
            "transfer": list(self.transfer),
        }
        if self.care_started_at != ep.care_started_at:
            out["care_started_at"] = self.care_started_at
        for name in ("retimed", "added", "cancelled", "not_set"):
            out[name] = [c.to_dict() for c in getattr(self, name)]
        return orjson.loads(orjson.dumps(out))  # times as the audit log writes them


def check_state_map(new: Definition, state_map: dict[str, str]) -> None:
    """A mapping renames a state the new version lacks into one of its live states."""
    live = _live_states(new)
    for old_state, new_state in state_map.items():
        if old_state in live:
            raise InvalidRequest(
                "state map",
                f"{old_state}={new_state}",
                f"a state {new.version} no longer has ({old_state!r} still exists)",
            )
        if new_state not in live:
            raise InvalidRequest(
                "state map", f"{old_state}={new_state}", f"NEW one of {', '.join(live)}"
            )


def plan_migration(
    episode: Episode, old: Definition, new: Definition, state_map: dict[str, str], now: datetime
) -> MigrationPlan:
    """Plan moving ``episode`` (pinned to ``old``) to ``new`` at ``now``; changes nothing."""
    plan = MigrationPlan(episode, old, new, now, episode.state, episode.care_started_at)
    if old.is_terminal(episode.state):
        plan.skip = "terminal"
        return plan
    if episode.definition_version == new.version:
        plan.skip = "current"
        return plan
    plan.state = _mapped_state(episode, new, state_map)
    sdef = new.states[plan.state]
    if sdef.starts_care and plan.care_started_at is None:
        plan.care_started_at = episode.state_entered_at
    plan.transfer = _transfer_rules(plan)
    if not plan.transfer:  # a transfer cancels every pending timer: nothing to re-time
        _plan_pending(plan)
        _plan_additions(plan)
    return plan


def migration_decision(plan: MigrationPlan, actor: str) -> Decision:
    """The migration as a decision on the new version: same facts, the planned state and
    timers, and the transfer if the new TX check calls for one."""
    if plan.skip is not None:
        raise InvalidRequest("episode", plan.episode.id, f"an episode to migrate ({plan.skip})")
    ep0, new = plan.episode, plan.new
    event_id = f"migrate:{ep0.id}:{ep0.version}:{new.version}"
    work = DecisionInProgress.start(
        new, ep0, Migrate(event_id, plan.now, actor, plan.old.version, new.version)
    )
    ep = work.episode
    ep.definition_version, ep.state = new.version, plan.state
    ep.care_started_at = plan.care_started_at
    keys = {t.key: i for i, t in enumerate(work.timers)}
    for change in (*plan.cancelled, *plan.retimed):
        work.set_timer_status(keys[change.key], CANCELLED)
    for change in (*plan.retimed, *plan.added):
        assert change.new_due is not None
        timer = Timer(
            f"{change.rule}@{work.version}",
            change.rule,
            change.new_due,
            PENDING,
            change.state,
            work.version * 100 + len(work.decision.timers_set),
            change.set_at,
        )
        work.decision.timers_set.append(timer)
        work.timers.append(timer)
    if plan.transfer:
        ctx = work.context()
        next(route for route in new.global_routes if work._take(route, ctx))
    return work.finish()


# -- planning -------------------------------------------------------------------------------


def _mapped_state(episode: Episode, new: Definition, state_map: dict[str, str]) -> str:
    current = new.states.get(episode.state)
    if current is not None and not current.terminal:
        return episode.state
    target = state_map.get(episode.state)
    if target is None:
        raise MissingStateMapping({episode.state: 1}, new.version, _live_states(new))
    check_state_map(new, {episode.state: target})
    return target


def _live_states(definition: Definition) -> list[str]:
    return sorted(s for s, d in definition.states.items() if not d.terminal)


def _transfer_rules(plan: MigrationPlan) -> tuple[str, ...]:
    """The TX rules (``on_every_event`` routes) of the new version that hold on current facts."""
    work = DecisionInProgress.start(plan.new, plan.episode, Migrate("plan", plan.now, "plan"))
    work.episode.care_started_at = plan.care_started_at
    ctx = work.context()
    rules = plan.new.rules
    for route in plan.new.global_routes:
        if route.when is None or route.when.test(ctx):
            holding = tuple(r for r in route.rules if rules[r].criterion.test(ctx))
            if holding:
                return holding
    return ()


def _set_at(timer: Timer, old: Definition) -> datetime:
    """When a timer was set: recorded on it since schema 0005; for an older timer, its due
    time less the delay of the version it was set under. (A timer an earlier migration made
    due at once breaks that, but it is due, so the use case fires it before any later
    migration plans.)"""
    if timer.set_at is not None:
        return timer.set_at
    return timer.due_at - old.timers[timer.rule_id].delay


def _plan_pending(plan: MigrationPlan) -> None:
    old, new, state = plan.old, plan.new, plan.state
    for t in plan.episode.timers:
        if t.status != PENDING:
            continue
        spec = new.timers.get(t.rule_id)
        bound = t.state is not None
        why = None
        if spec is None:
            why = f"no longer a timer of {new.version}"
        elif bound and not (spec.state_bound and t.rule_id in new.states[state].timers):
            why = f"no longer a timer of state {state!r} in {new.version}"
        elif not bound and spec.state_bound:
            why = f"state-bound in {new.version}"
        if why is not None:
            plan.cancelled.append(TimerChange(t.rule_id, t.key, t.due_at, None, None, why))
            continue
        assert spec is not None
        set_at = _set_at(t, old)
        due = spec.nominal_due(set_at, plan.episode.facts)
        if due is None:  # anchored on a date fact the episode does not have
            why = f"anchored in {new.version} on a date fact this episode has not recorded"
            plan.cancelled.append(TimerChange(t.rule_id, t.key, t.due_at, None, None, why))
            continue
        binding = state if bound else None
        if due == t.due_at and binding == t.state:
            continue  # unchanged: kept as it is
        why = f"{old.timers[t.rule_id].days} → {spec.days} days from {set_at.isoformat()}"
        if due < plan.now:
            why += f" ({due.isoformat()}) is past: due at the migration"
            due = plan.now
        elif binding != t.state:
            why += f", now bound to state {binding!r}"
        plan.retimed.append(TimerChange(t.rule_id, t.key, t.due_at, due, binding, why, set_at))


def _plan_additions(plan: MigrationPlan) -> None:
    ep, old, new = plan.episode, plan.old, plan.new
    live = [t for t in ep.timers if t.status != CANCELLED and t.rule_id in old.timers]
    gone = {c.key for c in plan.cancelled}
    this_visit = {
        t.rule_id
        for t in live
        if t.state is not None and t.key not in gone and _set_at(t, old) >= ep.state_entered_at
    }
    for tid in new.states[plan.state].timers:
        if new.timers[tid].state_bound and tid not in this_visit:
            _add(plan, tid, ep.state_entered_at, plan.state, "state entry")
    if plan.care_started_at is None:
        return
    on_timeline = {t.rule_id for t in live if t.key not in gone}
    for sdef in new.states.values():
        if not sdef.starts_care:
            continue
        for tid in sdef.timers:
            if not new.timers[tid].state_bound and tid not in on_timeline:
                on_timeline.add(tid)
                _add(plan, tid, plan.care_started_at, None, "care start")


def _add(plan: MigrationPlan, tid: str, anchor: datetime, state: str | None, what: str) -> None:
    spec = plan.new.timers[tid]
    due = spec.nominal_due(anchor, plan.episode.facts)
    if due is None:
        return  # anchored on a date fact not recorded: set when it is
    why = f"new in {plan.new.version}: {spec.days} days from {what} ({anchor.isoformat()})"
    if due > plan.now:
        plan.added.append(TimerChange(tid, None, due, due, state, why, anchor))
    else:
        plan.not_set.append(
            TimerChange(tid, None, due, None, state, why + ", a time already past: not set")
        )
