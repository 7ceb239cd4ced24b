"""Rows back into pathway values that compare equal to what the in-memory unit of work holds.

JSON gives lists back where the pathway has tuples (list facts), and every time comes back as
an aware UTC datetime whichever driver read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pathway.audit import AuditRecord
from pathway.model import Appointment, Episode, FactValue, Link, Observation, Task, Timer
from pathway.unit_of_work import Outcome
from storage.columns import read_json, read_time


def outcome_from_json(value: Any, scope: Sequence[Any] = (None, None, None)) -> Outcome:
    """An outcome from its JSON column, and (caller, idempotency key, request hash)."""
    o = read_json(value)
    return Outcome(
        event_id=o["event_id"],
        episode_id=o["episode_id"],
        kind=o["kind"],
        version=o["version"],
        state=o["state"],
        rules=tuple(o["rules"]),
        refused=tuple(o["refused"]),
        transitions=tuple((t["from"], t["to"], tuple(t["rules"])) for t in o["transitions"]),
        caller=scope[0],
        idempotency_key=scope[1],
        request_hash=scope[2],
    )


def episode_from_row(row: Sequence[Any]) -> Episode:
    """A row of ``Queries.episode_snapshot``: the episode columns, then timers and tasks as JSON."""
    (
        id_,
        version_of_definition,
        state,
        opened_at,
        entered_at,
        care_started_at,
        remembered,
        closed_reason,
        patient_ref,
        label,
        audit_hash,
        version,
        facts,
        links,
        owner,
        a_window,
        a_on,
        a_status,
        a_reason,
        a_deviation,
        timers,
        tasks,
    ) = row
    return Episode(
        id=id_,
        definition_version=version_of_definition,
        state=state,
        opened_at=read_time(opened_at),
        state_entered_at=read_time(entered_at),
        care_started_at=None if care_started_at is None else read_time(care_started_at),
        facts={
            name: FactValue(_tuples(f["value"]), f["observation_id"], read_time(f["at"]))
            for name, f in read_json(facts).items()
        },
        timers=tuple(
            Timer(
                key,
                rule_id,
                read_time(due_at),
                status,
                timer_state,
                order,
                None if set_at is None else read_time(set_at),
            )  # fmt: skip
            for key, rule_id, due_at, status, timer_state, order, _, set_at in sorted(
                read_json(timers) or (), key=lambda r: r[6]
            )
        ),
        tasks=tuple(
            Task(key, rule_id, kind, text, read_time(created_at), status, task_state, note)
            for key, rule_id, kind, text, created_at, status, task_state, _, note in sorted(
                read_json(tasks) or (), key=lambda r: r[7]
            )
        ),
        remembered=read_json(remembered) or {},
        closed_reason=closed_reason,
        version=version,
        patient_ref=patient_ref,
        label=label,
        audit_hash=audit_hash,
        links=tuple(Link(*link) for link in read_json(links) or ()),
        owner=owner,
        appointment=None
        if a_window is None
        else Appointment(a_window, date.fromisoformat(a_on), a_status, a_reason, bool(a_deviation)),
    )


def timer_from_row(row: Sequence[Any]) -> Timer:
    """A row of ``Queries.due_timers`` after its episode id: key … order."""
    key, rule_id, due_at, status, state, order, set_at = row
    set_time = None if set_at is None else read_time(set_at)
    return Timer(key, rule_id, read_time(due_at), status, state, order, set_time)


def observation_from_row(row: Sequence[Any]) -> Observation:
    id_, facts, at, actor, source = row
    return Observation(
        id_, {n: _tuples(v) for n, v in read_json(facts).items()}, read_time(at), actor, source
    )


def audit_from_row(row: Sequence[Any]) -> AuditRecord:
    (
        episode_id,
        seq,
        event_id,
        kind,
        actor,
        at,
        recorded_at,
        state_from,
        state_to,
        payload,
        prev_hash,
        hash_,
    ) = row
    return AuditRecord(
        episode_id=episode_id,
        seq=seq,
        event_id=event_id,
        kind=kind,
        actor=actor,
        at=read_time(at),
        recorded_at=read_time(recorded_at),
        state_from=state_from,
        state_to=state_to,
        payload=payload.encode() if isinstance(payload, str) else bytes(payload),
        prev_hash=prev_hash,
        hash=hash_,
    )


def _tuples(value: Any) -> Any:
    """List facts are tuples in the pathway (validated values); JSON gives lists back."""
    return tuple(value) if isinstance(value, list) else value
