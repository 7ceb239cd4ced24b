"""What one ``Change`` writes, as the parameters of the statements that write it.

``change_rows`` gives one dict for the single-row statements (episode, observation, audit
entry, outcome) and lists for the timers and tasks that are new or changed status, found by
diffing the snapshot before and after. The engine lists every timer and task it touched in the
decision, so a decision that touched none skips the diff altogether.

The episode row's columns (facts JSON and all: half of the work, or more) are built only when
read (``ChangeRows.params``): a group write that changed an episode ten times builds its row
once, from the last change, under the version and audit hash of the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pathway.model import FIRED, PENDING, Appointment, Episode, FactValue
from pathway.unit_of_work import Change, Outcome
from storage.columns import TimeParam, to_json
from storage.outbox import notice_rows

Rows = Sequence[dict[str, Any]]  # a list once a change has any; the shared () when it has none


@dataclass(slots=True)
class ChangeRows:
    """The parameters of every statement one change needs.

    ``own`` holds this change's own parameters (its observation, audit entry and outcome, the
    episode's id, new version and the guard it was decided on); the episode row's columns, facts
    JSON included, are added to it the first time ``params`` is read. A group write reads
    ``params`` of each episode's last change only (``storage.group_writes``,
    ``storage.batch_arrays``): the other changes of a run never build an episode row.
    """

    new_episode: bool  # the episode row is inserted (open), not updated under its version
    own: dict[str, Any]
    moved: bool = True  # state, pin, entry time, care start or timers changed (not only facts)
    new_timers: Rows = ()
    timer_status: Rows = ()
    new_tasks: Rows = ()
    task_status: Rows = ()
    notices: Rows = ()  # outbox rows (storage.outbox)
    unbuilt: Episode | None = None  # whose columns ``params`` adds to ``own`` when first read
    time: TimeParam | None = None

    @property
    def episode_id(self) -> str:
        return str(self.own["id"])

    @property
    def params(self) -> dict[str, Any]:
        """Every statement's parameters: ``own`` and the episode row's columns."""
        episode = self.unbuilt
        if episode is not None:
            self.unbuilt = None
            self.own.update(episode_columns(episode, self.time))  # type: ignore[arg-type]
        return self.own

    @property
    def in_place_params(self) -> dict[str, Any]:
        """The parameters of the in-place episode update (``update_episode_in_place``): the
        few columns it sets, without the times, indexed columns and appointment the full row
        needs (a group of decisions that only observed builds no more)."""
        episode = self.unbuilt
        own = self.own
        if episode is not None:  # ``params`` may still add the rest: the same values
            own["remembered"] = to_json(episode.remembered)
            own["links"] = _links_json(episode)
            own["closed_reason"] = episode.closed_reason
            own["audit_hash"] = episode.audit_hash
            own["facts"] = _facts_json(episode)
        return own


def appointment_params(appointment: Appointment | None) -> dict[str, Any]:
    """The appointment columns (migration 0009): all NULL when nothing is booked."""
    a = appointment
    return {
        "appointment_window": a.window if a else None,
        "appointment_on": a.on.isoformat() if a else None,
        "appointment_status": a.status if a else None,
        "appointment_reason": a.reason if a else None,
        "appointment_deviation": a.deviation if a else None,
    }


def episode_columns(ep: Episode, time: TimeParam) -> dict[str, Any]:
    """The episode row's columns a change leaves, besides those in ``ChangeRows.own``."""
    next_due = min((t.due_at for t in ep.timers if t.status == PENDING), default=None)
    return {
        "pathway": ep.pathway,
        "state": ep.state,
        "opened_at": time(ep.opened_at),
        "state_entered_at": time(ep.state_entered_at),
        "care_started_at": time(ep.care_started_at),
        "remembered": to_json(ep.remembered),
        "links": _links_json(ep),
        "closed_reason": ep.closed_reason,
        "patient_ref": ep.patient_ref,
        "label": ep.label,
        "owner": ep.owner,
        **appointment_params(ep.appointment),
        "audit_hash": ep.audit_hash,
        "facts": _facts_json(ep),
        "next_due_at": time(next_due),
    }


def _links_json(ep: Episode) -> str:
    if not ep.links:
        return "[]"
    return to_json([[k.episode_id, k.pathway, k.rule, k.relation] for k in ep.links])


# The JSON of each fact in force, ``"name":{...}``, by the identity of its FactValue (kept
# here, so the id is not reused): a decision replaces a fact or two and carries the others
# over as the same objects, so an episode's facts column is mostly joined, not encoded again.
# Only facts whose value is immutable are kept: a str, number, bool or None, or a tuple of
# them (a list fact's value as the engine holds it: one per episode of bench_storage, encoded
# again on every decision before).
_FACT_JSON: dict[int, tuple[FactValue, str, bytes]] = {}
_FACT_JSON_LIMIT = 16_384  # ~5 MB at most; a cohort larger than that only gains less
_SCALARS = frozenset((str, int, float, bool, type(None)))


def _facts_json(ep: Episode) -> str:
    """The facts column: the same text as ``to_json`` of ``{name: {"value", "observation_id",
    "at"}}`` (tests/unit/test_facts_json.py), from each fact's cached JSON."""
    cache, parts = _FACT_JSON, []
    for n, f in ep.facts.items():
        hit = cache.get(id(f))
        if hit is not None and hit[0] is f and hit[1] == n:
            parts.append(hit[2])
            continue
        part = orjson.dumps({n: {"value": f.value, "observation_id": f.observation_id, "at": f.at}})
        part = part[1:-1]
        if _immutable(f.value):
            if len(cache) >= _FACT_JSON_LIMIT:
                cache.clear()
            cache[id(f)] = (f, n, part)
        parts.append(part)
    return (b"{" + b",".join(parts) + b"}").decode()


def _immutable(value: Any) -> bool:
    kind = type(value)
    return kind in _SCALARS or (kind is tuple and all(type(v) in _SCALARS for v in value))


def change_rows(change: Change, time: TimeParam) -> ChangeRows:
    """The rows of one change; its episode row's columns are built when first read."""
    decision, audit = change.decision, change.audit
    ep, before = decision.episode, decision.episode_before
    recorded_at = time(audit.recorded_at)
    obs = decision.observation
    own: dict[str, Any] = {
        "id": ep.id,
        "definition_version": ep.definition_version,
        "version": ep.version,
        "expected_version": before.version if before else None,
        "recorded_at": recorded_at,
        "obs_id": obs.id if obs else None,
        "obs_facts": to_json(obs.facts) if obs else None,
        "obs_at": time(obs.at) if obs else None,
        "obs_actor": obs.actor if obs else None,
        "obs_source": obs.source if obs else None,
        "event_id": audit.event_id,
        "kind": audit.kind,
        "actor": audit.actor,
        "at": time(audit.at),
        "state_from": audit.state_from,
        "state_to": audit.state_to,
        "payload": audit.payload.decode(),
        "prev_hash": audit.prev_hash,
        "hash": audit.hash,
        "outcome": outcome_json(change.outcome),
        "caller": change.outcome.caller,
        "idempotency_key": change.outcome.idempotency_key,
        "request_hash": change.outcome.request_hash,
    }
    timers_touched = bool(decision.timers_set or decision.timers_cancelled or decision.timer_fired)
    moved = (
        before is None
        or timers_touched
        or decision.transitions
        or ep.state != before.state
        or ep.definition_version != before.definition_version  # a migration repins it
        or ep.state_entered_at != before.state_entered_at
        or ep.care_started_at != before.care_started_at
        or ep.owner != before.owner  # indexed (migration 0008): only the full update sets it
        or ep.appointment != before.appointment  # indexed too (migration 0009)
    )
    rows = ChangeRows(before is None, own, bool(moved), unbuilt=ep, time=time)
    if change.notices:
        rows.notices = notice_rows(change)
    if not (timers_touched or decision.tasks_opened or decision.tasks_closed):
        return rows  # the engine lists every timer and task it touched: none here
    new, changed = _diff(before.timers if before else (), ep.timers)
    if new:
        rows.new_timers = [
            {
                "episode_id": ep.id,
                "key": t.key,
                "rule_id": t.rule_id,
                "due_at": time(t.due_at),
                "status": t.status,
                "state": t.state,
                "order": t.order,
                "position": pos,
                "fired_at": recorded_at if t.status == FIRED else None,
                "set_at": time(t.set_at),
            }
            for pos, t in new
        ]
    if changed:
        rows.timer_status = [
            {
                "episode_id": ep.id,
                "key": t.key,
                "status": t.status,
                "fired_at": recorded_at if t.status == FIRED else None,
            }
            for t in changed
        ]
    new, changed = _diff(before.tasks if before else (), ep.tasks)
    if new:
        rows.new_tasks = [
            {
                "episode_id": ep.id,
                "key": k.key,
                "rule_id": k.rule_id,
                "kind": k.kind,
                "text": k.text,
                "created_at": time(k.created_at),
                "status": k.status,
                "state": k.state,
                "position": pos,
            }
            for pos, k in new
        ]
    if changed:
        rows.task_status = [
            {
                "episode_id": ep.id,
                "key": k.key,
                "status": k.status,
                "note": k.note,
                "updated_at": recorded_at,
            }
            for k in changed
        ]
    return rows


def _diff(before: Sequence[Any], after: Sequence[Any]) -> tuple[list[tuple[int, Any]], list[Any]]:
    """Items of ``after`` that are new (with their position) and those whose status changed.

    Most changes keep the items in place and add any new ones at the end (a timer fired, one
    set): walked side by side, without a map of the old items by key; anything else (an item
    moved or gone) takes the general way, which gives the same answer."""
    if before is after:
        return [], []
    quick = _in_place(before, after)
    if quick is not None:
        return quick
    old = {item.key: item for item in before}
    new: list[tuple[int, Any]] = []
    changed: list[Any] = []
    for pos, item in enumerate(after):
        prior = old.get(item.key)
        if prior is None:
            new.append((pos, item))
        elif prior is not item and prior.status != item.status:
            changed.append(item)
    return new, changed


def _in_place(
    before: Sequence[Any], after: Sequence[Any]
) -> tuple[list[tuple[int, Any]], list[Any]] | None:
    """``_diff`` when ``after`` starts with ``before``'s keys in their order, else None. Its
    other items are then new: keys are unique per episode (the tables' primary keys)."""
    n = len(before)
    if len(after) < n:
        return None
    changed: list[Any] = []
    for prior, item in zip(before, after, strict=False):  # after may be longer
        if prior is not item:
            if prior.key != item.key:
                return None
            if prior.status != item.status:
                changed.append(item)
    return list(enumerate(after[n:], n)), changed


def outcome_json(outcome: Outcome) -> str:
    """The stored outcome: ``Outcome.to_dict`` without ``repeated`` (the same text: orjson
    writes a tuple as the list ``to_dict`` makes of it; tests/unit/test_facts_json.py)."""
    o = outcome
    transitions = (
        [{"from": a, "to": b, "rules": r} for a, b, r in o.transitions] if o.transitions else []
    )
    return orjson.dumps(
        {
            "event_id": o.event_id,
            "episode_id": o.episode_id,
            "kind": o.kind,
            "version": o.version,
            "state": o.state,
            "rules": o.rules,
            "refused": o.refused,
            "transitions": transitions,
        }
    ).decode()
