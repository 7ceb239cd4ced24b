"""What the episode page shows, read in one unit of work: snapshot, audit log, last outcome.

Everything on the page comes from the episode's snapshot (state, facts, timers, tasks) and its
audit log (timeline, refusals, states visited); nothing is kept in the page's session. After a
form is sent, the page is redirected to with the command's event id, and the stored outcome of
that event (``find_outcome``) says what the command did: no flash message to keep anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from carepath.api.services import Services
from carepath.explain_words import Line, lines
from carepath.web.observation_form import ObservationForm, build_form
from carepath.web.pathway_map import PathwayMap, pathway_map
from carepath.web.timeline import Entry, Refused, refusals, show_value, timeline, visited_states
from carepath.web.worklist_rows import Row, build_row
from pathway.definition import Definition
from pathway.diagram import mermaid
from pathway.errors import PathwayError
from pathway.explain import explain_episode
from pathway.model import OPEN, Episode, Task
from pathway.unit_of_work import Outcome


@dataclass(frozen=True, slots=True)
class FactLine:
    label: str
    value: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TimerLine:
    rule_id: str
    title: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class LinkLine:
    """The same patient's episode on another pathway, said from this episode's side."""

    episode_id: str
    pathway_title: str
    rule_id: str
    how: str


RELATIONS = {
    "enrolled": "enrolled from this episode by",
    "enrolled_from": "this episode was enrolled from it by",
    "linked": "already running; linked by",
    "linked_from": "linked to this episode by",
}


@dataclass(frozen=True, slots=True)
class EpisodePage:
    episode: Episode
    definition: Definition
    row: Row
    terminal: bool
    tasks: list[Task]
    escalations: list[Task]
    facts: list[FactLine]
    timers: list[TimerLine]
    entries: list[Entry]
    refusals: list[Refused]
    pathway: PathwayMap
    mermaid_text: str
    form: ObservationForm
    outcome: Outcome | None
    state_labels: dict[str, str]
    requests: tuple[str, ...]
    close_reasons: tuple[str, ...]
    review: bool  # in a review state, an observation is the review
    links: tuple[LinkLine, ...] = ()
    waiting: Waiting | None = None  # None for an ended episode


@dataclass(frozen=True, slots=True)
class Waiting:
    """The "What it is waiting for" panel: ``pathway.explain`` said (``carepath.explain_words``)."""

    next_move: Line | None  # what the next observation would do, as things stand
    routes: list[Line]  # the state's own ways out, in the order they are checked
    transfers: list[Line]  # the immediate-transfer checks, checked first
    timers: list[Line]


def waiting(definition: Definition, episode: Episode, now: datetime) -> Waiting | None:
    if definition.is_terminal(episode.state):
        return None
    e = explain_episode(definition, episode, max(now, episode.state_entered_at))
    cands, timers = lines(definition, e)
    nxt = next((c for c in cands if c.holds), None)
    return Waiting(
        nxt, [c for c in cands if not c.transfer], [c for c in cands if c.transfer], timers
    )


def load_episode_page(
    svc: Services,
    episode_id: str,
    now: datetime,
    *,
    form: ObservationForm | None = None,
    event_id: str | None = None,
) -> EpisodePage:
    """The page's content; EpisodeNotFound when there is no such episode."""
    uow = svc.uow_factory()
    with uow:
        episode = uow.get_episode(episode_id)
        records = uow.audit_records(episode_id)
        outcome = uow.find_outcome(event_id) if event_id else None
    if outcome is not None and outcome.episode_id != episode_id:
        outcome = None
    definition = svc.definitions.get(episode.definition_version)
    entries = timeline(definition, records)
    specs = definition.vocabulary.facts
    open_tasks = [t for t in episode.tasks if t.status == OPEN]
    return EpisodePage(
        episode=episode,
        definition=definition,
        row=build_row(definition, episode, now),
        terminal=definition.is_terminal(episode.state),
        tasks=[t for t in open_tasks if t.kind != "escalation"],
        escalations=[t for t in open_tasks if t.kind == "escalation"],
        facts=[
            FactLine(
                specs[name].label if name in specs else name,
                show_value(fv.value, specs.get(name)),
                fv.at,
            )
            for name, fv in sorted(
                episode.facts.items(),
                key=lambda kv: list(specs).index(kv[0]) if kv[0] in specs else len(specs),
            )
        ],
        timers=[
            TimerLine(t.rule_id, _title(definition, t.rule_id), t.due_at)
            for t in episode.pending_timers()
        ],
        entries=entries,
        refusals=refusals(entries),
        pathway=pathway_map(definition, episode.state, visited_states(records)),
        mermaid_text=mermaid(definition, current_state=episode.state),
        form=form if form is not None else build_form(definition.vocabulary, episode),
        outcome=outcome,
        state_labels={n: s.label for n, s in definition.states.items()},
        requests=tuple(definition.requests),
        close_reasons=definition.close.reasons,
        review=definition.states[episode.state].review,
        links=tuple(
            LinkLine(k.episode_id, _pathway_title(svc, k.pathway), k.rule, RELATIONS[k.relation])
            for k in episode.links
        ),
        waiting=waiting(definition, episode, now),
    )


def _pathway_title(svc: Services, pathway: str) -> str:
    try:
        return svc.definitions.current_for(pathway).title
    except PathwayError:
        return pathway


def _title(definition: Definition, rule_id: str) -> str:
    rule = definition.rules.get(rule_id)
    return rule.title if rule else rule_id
