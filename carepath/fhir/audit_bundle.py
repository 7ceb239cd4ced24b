"""An episode and its audit log as a FHIR R4B Bundle, for systems and auditors that speak FHIR.

Why: a hospital's record systems keep care plans, tasks and provenance as FHIR resources; this
export lets them hold what the pathway did and why. The audit log stays the source of truth
(hash-chained); the export is one way, and carries each entry's chain hash so that it can be
checked against the log.

One Bundle (``collection``) per episode:

- a ``CarePlan`` for the episode: the patient as an identifier (the patient ref, e.g. an MRN),
  the definition version it instantiates, its period, its state as ``status`` (a live state is
  ``active``; a closed episode ``revoked``, or ``entered-in-error``; any other end
  ``completed``), and an activity per task;
- a ``Task`` per order, task and escalation the pathway opened, with its rule as ``code``, its
  state (open is ``requested``; done ``completed``; not done, cancelled or resolved
  ``cancelled``, the carepath status in ``statusReason``) and the coordinator's note;
- a ``Provenance`` per audit entry (decision): who and when (clinical and recorded), the
  definition version as ``policy``, the event as ``activity``, one ``reason`` per rule fired or
  refusal (rule id and title, the evidence summary and the citations in its text), the
  observations the evidence came from as ``entity``, and the entry's seq and chain hashes as
  extensions.

Validated with ``fhir.resources.R4B`` (the package's default models are R5); ``meta.tag``
says R4B, as the PlanDefinition export does (``carepath/fhir/plan_definition.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from carepath.fhir.plan_definition import FHIR_TAG
from pathway.audit import AuditRecord
from pathway.definition import Definition
from pathway.model import DONE, OPEN, Episode

FHIR_JSON = "application/fhir+json"
_NS = uuid.UUID("5f0c1a52-7a36-4c5e-9b8e-3f1d2c0e9a41")  # carepath's uuid5 namespace
_TASK_STATUS = {OPEN: "requested", DONE: "completed"}  # anything else: cancelled
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def _urn(kind: str, key: str) -> str:
    """A stable urn:uuid for a resource, so that a re-export names the same resources."""
    return f"urn:uuid:{uuid.uuid5(_NS, f'{kind}/{key}')}"


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    resource["id"] = full_url.removeprefix("urn:uuid:")
    return {"fullUrl": full_url, "resource": resource}


def _patient(episode: Episode) -> dict[str, Any]:
    if not episode.patient_ref:
        return {"display": "patient reference not recorded"}
    return {"identifier": {"system": "urn:carepath:patient-ref", "value": episode.patient_ref}}


def _care_plan_status(episode: Episode, definition: Definition) -> str:
    if not definition.is_terminal(episode.state):
        return "active"
    if episode.closed_reason is not None:
        return "entered-in-error" if episode.closed_reason == "entered_in_error" else "revoked"
    return "completed"


def _reason(rule: dict[str, Any], refused: str | None = None) -> dict[str, Any]:
    """A rule firing (audit-log shape) as a reason: evidence and citations said in its text."""
    evidence = "; ".join(
        f"{e['test']} (observed {e['observed']!r}): {'held' if e['held'] else 'did not hold'}"
        for e in rule["evidence"]
    )
    cites = "; ".join(f"[{r}] {c}" for r, c in zip(rule["refs"], rule["citations"], strict=True))
    head = f"refused {refused}: " if refused else "fired: "
    text = f"{rule['rule_id']} {head}{rule['title']}."
    text += f" Evidence: {evidence}." if evidence else ""
    text += f" Cites: {cites}."
    coding = {"system": "urn:carepath:rule", "code": rule["rule_id"], "display": rule["title"]}
    return {"coding": [coding], "text": text}


def _provenance(
    episode: Episode, record: AuditRecord, care_plan: str, task_urls: dict[str, str]
) -> dict[str, Any]:
    body = record.body()
    firings = [(r, None) for r in body["rules"]]
    firings += [(r["firing"], r["action"]) for r in body["refused"]]
    touched = [t["key"] for t in body["tasks_opened"]] + [t["key"] for t in body["tasks_closed"]]
    sources = dict.fromkeys(
        e["observation_id"] for rule, _ in firings for e in rule["evidence"] if e["observation_id"]
    )
    move = f"{body['state_from']} → {body['state_to']}" if body["state_from"] else body["state_to"]
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "meta": {"tag": [FHIR_TAG]},
        "extension": [
            {"url": "urn:carepath:audit-seq", "valueInteger": record.seq},
            {"url": "urn:carepath:audit-hash", "valueString": record.hash},
            {"url": "urn:carepath:audit-prev-hash", "valueString": record.prev_hash},
        ],
        "target": [{"reference": care_plan}]
        + [{"reference": task_urls[k]} for k in dict.fromkeys(touched) if k in task_urls],
        "occurredDateTime": record.at.isoformat(),
        "recorded": record.recorded_at.isoformat(),
        "policy": [f"urn:carepath:definition-version:{body['definition_version']}"],
        "activity": {
            "coding": [{"system": "urn:carepath:event-kind", "code": record.kind}],
            "text": f"{record.kind}: {move}",
        },
        "agent": [
            {
                "type": {"coding": [{"system": _PARTICIPANT, "code": "author"}]},
                "who": {"display": record.actor},
            }
        ],
        "reason": [_reason(rule, refused) for rule, refused in firings] or None,
        "entity": [
            {
                "role": "source",
                "what": {"identifier": {"system": "urn:carepath:observation", "value": obs}},
            }
            for obs in sources
        ]
        or None,
    }
    return {k: v for k, v in resource.items() if v is not None}


def episode_bundle(
    episode: Episode, records: Iterable[AuditRecord], definition: Definition
) -> dict[str, Any]:
    """The episode and its audit entries as a validated FHIR R4B Bundle (JSON-ready data)."""
    from fhir.resources.R4B.bundle import Bundle

    records = list(records)
    care_plan = _urn("CarePlan", episode.id)
    task_urls = {t.key: _urn("Task", f"{episode.id}/{t.key}") for t in episode.tasks}
    modified = {t["key"]: r.recorded_at for r in records for t in r.body()["tasks_closed"]}
    terminal = definition.is_terminal(episode.state)
    plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "meta": {"tag": [FHIR_TAG]},
        "identifier": [{"system": "urn:carepath:episode", "value": episode.id}],
        "instantiatesCanonical": [f"urn:carepath:definition:{definition.id}|{definition.version}"],
        "status": _care_plan_status(episode, definition),
        "intent": "plan",
        "title": episode.label or None,  # FHIR strings are never empty
        "description": f"{definition.title}: {definition.states[episode.state].label}",
        "subject": _patient(episode),
        "period": {
            "start": episode.opened_at.isoformat(),
            **({"end": episode.state_entered_at.isoformat()} if terminal else {}),
        },
        "created": episode.opened_at.isoformat(),
        "activity": [{"reference": {"reference": task_urls[t.key]}} for t in episode.tasks] or None,
    }
    entries = [_entry(care_plan, {k: v for k, v in plan.items() if v is not None})]
    for t in episode.tasks:
        task: dict[str, Any] = {
            "resourceType": "Task",
            "meta": {"tag": [FHIR_TAG]},
            "identifier": [{"system": "urn:carepath:task", "value": f"{episode.id}/{t.key}"}],
            "basedOn": [{"reference": care_plan}],
            "status": _TASK_STATUS.get(t.status, "cancelled"),
            "statusReason": {"text": t.status},
            "intent": "order",
            "priority": "urgent" if t.kind == "escalation" else "routine",
            "code": {
                "coding": [{"system": "urn:carepath:rule", "code": t.rule_id}],
                "text": t.kind,
            },
            "description": t.text,
            "for": _patient(episode),
            "authoredOn": t.created_at.isoformat(),
        }
        if t.key in modified:
            task["lastModified"] = modified[t.key].isoformat()
        if t.note:
            task["note"] = [{"text": t.note}]
        entries.append(_entry(task_urls[t.key], task))
    for record in records:
        url = _urn("Provenance", f"{episode.id}/{record.seq}")
        entries.append(_entry(url, _provenance(episode, record, care_plan, task_urls)))
    bundle = {
        "resourceType": "Bundle",
        "meta": {"tag": [FHIR_TAG]},
        "identifier": {"system": "urn:carepath:episode", "value": episode.id},
        "type": "collection",
        "timestamp": (records[-1].recorded_at if records else episode.opened_at).isoformat(),
        "entry": entries,
    }
    return Bundle.model_validate(bundle).model_dump(mode="json", exclude_none=True)
