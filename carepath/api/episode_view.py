"""An episode as a coordinator sees it: the snapshot, plus the reasons found in its audit log.

The snapshot says which tasks are open; only the audit log says why: the entry that opened a
task holds the firing of its rule, with the evidence and citations of that moment. Refusals
are read from the log too (they change no state, so the snapshot keeps none).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from carepath.api import episode_schemas as s
from pathway.appointments import appointment_body
from pathway.audit import AuditRecord
from pathway.model import OPEN, Episode
from pathway.unit_of_work import Outcome
from pathway.usecases import DefinitionRegistry


def etag(episode_id: str, version: int) -> str:
    return f'"{episode_id}:{version}"'


def firing(body: dict[str, Any]) -> s.RuleFiring:
    """A rule firing as the audit log stores it (``RuleFiring`` dataclass fields)."""
    return s.RuleFiring(
        rule=body["rule_id"],
        title=body["title"],
        citations=[
            s.Citation(ref=ref, text=text)
            for ref, text in zip(body["refs"], body["citations"], strict=True)
        ],
        evidence=[s.Evidence(**e) for e in body["evidence"]],
    )


def episode_view(
    episode: Episode,
    records: Iterable[AuditRecord],
    definitions: DefinitionRegistry,
    now: datetime,
) -> s.EpisodeView:
    definition = definitions.get(episode.definition_version)
    state = definition.states[episode.state]
    open_tasks = [t for t in episode.tasks if t.status == OPEN]
    wanted = {t.key for t in open_tasks}
    opened_by: dict[str, s.RuleFiring] = {}
    refusals: list[s.RefusalSoFar] = []
    for record in records:
        body = record.body()
        opened = [t for t in body["tasks_opened"] if t["key"] in wanted]
        if opened:
            firings = {f["rule_id"]: f for f in body["rules"]}
            for task in opened:
                if task["rule_id"] in firings:
                    opened_by[task["key"]] = firing(firings[task["rule_id"]])
        for refusal in body["refused"]:
            refusals.append(
                s.RefusalSoFar(
                    action=refusal["action"],
                    seq=record.seq,
                    at=record.at,
                    actor=record.actor,
                    refused_by=firing(refusal["firing"]),
                )
            )
    tasks = [
        s.Task(
            key=t.key,
            rule=t.rule_id,
            kind=t.kind,
            text=t.text,
            status=t.status,
            created_at=t.created_at,
            opened_by=opened_by.get(t.key),
        )
        for t in open_tasks
    ]
    return s.EpisodeView(
        id=episode.id,
        pathway=episode.pathway,
        etag=etag(episode.id, episode.version),
        version=episode.version,
        state=episode.state,
        state_label=state.label,
        terminal=state.terminal,
        definition_version=episode.definition_version,
        current_definition_version=definitions.current_for(episode.pathway).version,
        patient_ref=episode.patient_ref,
        label=episode.label,
        owner=episode.owner,
        appointment=appointment_body(episode.appointment),
        opened_at=episode.opened_at,
        state_entered_at=episode.state_entered_at,
        care_started_at=episode.care_started_at,
        closed_reason=episode.closed_reason,
        facts={
            name: s.Fact(
                value=list(fv.value) if isinstance(fv.value, tuple) else fv.value,
                observation_id=fv.observation_id,
                at=fv.at,
            )
            for name, fv in sorted(episode.facts.items())
        },
        timers=[
            s.Timer(key=t.key, rule=t.rule_id, due_at=t.due_at, overdue=t.due_at <= now)
            for t in episode.pending_timers()
        ],
        tasks=tasks,
        recommended_actions=[
            s.RecommendedAction(
                task_key=t.key,
                rule=t.rule,
                text=t.text,
                citations=_citations(definitions, episode, t.rule),
            )
            for t in tasks
            if t.kind == "order"
        ],
        refusals=refusals,
        links=[
            s.EpisodeLink(episode=k.episode_id, pathway=k.pathway, rule=k.rule, relation=k.relation)
            for k in episode.links
        ],
    )


def _citations(definitions: DefinitionRegistry, episode: Episode, rule_id: str) -> list[s.Citation]:
    rule = definitions.get(episode.definition_version).rules[rule_id]
    return [s.Citation(ref=r, text=c) for r, c in zip(rule.refs, rule.citations, strict=True)]


def outcome_out(outcome: Outcome) -> s.OutcomeOut:
    return s.OutcomeOut.model_validate(outcome.to_dict())
