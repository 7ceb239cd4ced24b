"""Plain-data views of an episode for the CLI and the API (JSON-ready, no ORM objects)."""

from __future__ import annotations

from typing import Any

from pathway.appointments import appointment_body
from pathway.model import OPEN, PENDING, Episode


def episode_view(ep: Episode) -> dict[str, Any]:
    """What a coordinator needs to see of an episode: state, facts with provenance, due timers, tasks."""
    return {
        "id": ep.id,
        "state": ep.state,
        "definition_version": ep.definition_version,
        "version": ep.version,
        "patient_ref": ep.patient_ref,
        "label": ep.label,
        "owner": ep.owner,
        "appointment": appointment_body(ep.appointment),
        "opened_at": ep.opened_at.isoformat(),
        "state_entered_at": ep.state_entered_at.isoformat(),
        "care_started_at": ep.care_started_at.isoformat() if ep.care_started_at else None,
        "closed_reason": ep.closed_reason,
        "facts": {
            name: {
                "value": list(fv.value) if isinstance(fv.value, tuple) else fv.value,
                "observation_id": fv.observation_id,
                "at": fv.at.isoformat(),
            }
            for name, fv in sorted(ep.facts.items())
        },
        "timers": [
            {"key": t.key, "rule": t.rule_id, "due_at": t.due_at.isoformat()}
            for t in ep.pending_timers()
            if t.status == PENDING
        ],
        "tasks": [
            {
                "key": t.key,
                "rule": t.rule_id,
                "kind": t.kind,
                "text": t.text,
                "status": t.status,
                "created_at": t.created_at.isoformat(),
            }
            for t in ep.tasks
            if t.status == OPEN
        ],
    }
