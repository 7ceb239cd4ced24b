"""The values the engine reads and writes: episodes, facts, timers, tasks, events, decisions.

An ``Episode`` is a snapshot: everything the engine needs to decide the next event, nothing
more. Storage persists it as rows; the engine never mutates one it was given.

These values are treated as immutable but are not ``frozen``: a frozen dataclass costs four
times as much to construct (0.61 µs against 0.15 µs, measured here), and the engine builds
dozens per decision. Those an audit entry's payload holds (timers, tasks, links, rule firings
with their evidence, transitions, refusals) have no ``__slots__`` either: orjson serialises a
slotted dataclass through a slow path, about 3× the time of a plain one (2.3 µs against
0.8 µs a task), and every decision serialises dozens of them (bench/replay_floor.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from pathway.criteria import Evidence

# Timer and task statuses (a task is resolved when the condition of its escalation lapses)
PENDING, FIRED, CANCELLED = "pending", "fired", "cancelled"
OPEN, DONE, NOT_DONE, RESOLVED = "open", "done", "not_done", "resolved"
# Appointment statuses: booked; missed (its day passed with no review recorded); reviewed (the
# review it was booked for was recorded in its window)
BOOKED, MISSED, REVIEWED = "booked", "missed", "reviewed"


@dataclass(slots=True)
class FactValue:
    """The value of a fact in force, and the observation it came from (for evidence).
    Never changed once made (a new fact is a new FactValue): ``storage.writes`` caches the
    JSON of each by identity. Not frozen only because frozen dataclasses are slower to build."""

    value: Any
    observation_id: str
    at: datetime


@dataclass  # no __slots__: see the module docstring
class Timer:
    """A timer of one episode; ``key`` is unique per episode and stable across storage."""

    key: str
    rule_id: str
    due_at: datetime
    status: str = PENDING
    state: str | None = None  # set for state-bound timers: cancelled when the state is left
    order: int = 0  # ties on due time fire in the order the timers were set
    set_at: datetime | None = None  # clinical time of the event that set it (for re-timing)


@dataclass  # no __slots__: see the module docstring
class Task:
    """Something a person must do: an order, a task, or an escalation (overdue)."""

    key: str
    rule_id: str
    kind: str
    text: str
    created_at: datetime
    status: str = OPEN
    state: str | None = None  # escalations of state-bound timers close when the state is left
    note: str | None = None  # what the coordinator wrote when marking it done or not done


@dataclass(slots=True)
class Observation:
    """One recorded set of facts: kept forever, superseded fact by fact by later ones."""

    id: str
    facts: dict[str, Any]
    at: datetime
    actor: str
    source: str = "user"


@dataclass  # no __slots__: see the module docstring
class Link:
    """Another pathway's episode of the same patient, and how the two are related.

    ``relation`` is this episode's side: ``enrolled`` (this one opened it), ``enrolled_from``
    (it opened this one), ``linked`` (this one was linked to it, already running) or
    ``linked_from``."""

    episode_id: str
    pathway: str
    rule: str
    relation: str


@dataclass(slots=True)
class Appointment:
    """The episode's booked review: a day for one review window (named by the timer rule that
    opens it). ``deviation``: the day is outside the window, so ``reason`` says why."""

    window: str
    on: date
    status: str = BOOKED
    reason: str | None = None
    deviation: bool = False


class Facts(dict[str, FactValue]):
    """An episode's facts map as an observation made it: a plain mapping (stored, compared and
    serialised as one) that also notes ``tx_clear``, the definition version whose TX check the
    engine evaluated false on this very map (``pathway.work``), or None. A facts map is never
    changed in place (each observation makes a new one), so the note cannot go stale; a map
    read back from storage, or copied, is a plain dict with no note."""

    __slots__ = ("tx_clear",)
    tx_clear: str | None  # set by whoever makes one (no __init__: a call per observation)


@dataclass(slots=True)
class Episode:
    """One patient's place in one pathway version."""

    id: str
    definition_version: str
    state: str
    opened_at: datetime
    state_entered_at: datetime
    care_started_at: datetime | None = None
    facts: dict[str, FactValue] = field(default_factory=dict)
    timers: tuple[Timer, ...] = ()
    tasks: tuple[Task, ...] = ()
    remembered: dict[str, Any] = field(default_factory=dict)  # facts at the last review
    closed_reason: str | None = None
    version: int = 0
    patient_ref: str | None = None
    label: str | None = None
    audit_hash: str = "0" * 64  # head of this episode's audit chain (entry ``version``)
    links: tuple[Link, ...] = ()
    owner: str | None = None  # the coordinator it is assigned to (None: unassigned)
    appointment: Appointment | None = None  # the booked review (pathway.appointments)

    @property
    def pathway(self) -> str:
        """The id of the definition it runs on (its version is ``<id>@<hash>``)."""
        return self.definition_version.partition("@")[0]

    def pending_timers(self) -> list[Timer]:
        """Pending timers in firing order: due time, then the order they were set in."""
        return sorted(
            (t for t in self.timers if t.status == PENDING), key=lambda t: (t.due_at, t.order)
        )

    def open_escalations(self) -> list[Task]:
        return [t for t in self.tasks if t.kind == "escalation" and t.status == OPEN]

    def fact(self, name: str) -> Any:
        fv = self.facts.get(name)
        return None if fv is None else fv.value


# Events ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Event:
    """Base of everything that can happen to an episode; ``at`` is clinical time."""

    event_id: str
    at: datetime
    actor: str
    kind: ClassVar[str]  # each kind of event names itself (audit entries, outcomes)


@dataclass(slots=True)
class Open(Event):
    facts: Mapping[str, Any] = field(default_factory=dict)  # as sent: the engine validates it
    patient_ref: str | None = None
    label: str | None = None
    pathway: str | None = None  # the definition id to open on (None: the default pathway)

    kind = "open"


@dataclass(slots=True)
class Observe(Event):
    facts: Mapping[str, Any] = field(default_factory=dict)  # as sent: the engine validates it
    source: str = "user"

    kind = "observe"


@dataclass(slots=True)
class Request(Event):
    action: str = ""

    kind = "request"


@dataclass(slots=True)
class Close(Event):
    reason: str = ""
    because_of: str | None = None  # the episode whose closing closed this one (enrolment)

    kind = "close"


@dataclass(slots=True)
class UpdateTask(Event):
    """A coordinator marks an open task done or not done, with a note."""

    task_key: str = ""
    status: str = ""
    note: str | None = None

    kind = "task"


@dataclass(slots=True)
class LinkEpisode(Event):
    """Another pathway's episode of the same patient linked to this one (an enrolment that
    found this episode already running): audited here as on the other side."""

    link: Link | None = None

    kind = "link"


@dataclass(slots=True)
class Assign(Event):
    """An episode assigned to a coordinator (``owner``), or unassigned (None): a decision
    that changes only the owner — no transition, no timer — audited like any other."""

    owner: str | None = None

    kind = "assign"


@dataclass(slots=True)
class Booking(Event):
    """A change to the episode's appointment: ``action`` book, move, cancel (a coordinator) or
    missed (the scheduler), for the window ``window`` (the rule id of the timer that opens it)
    on day ``on``; ``reason`` is required for a day outside the window. Never moves a timer."""

    action: str = ""
    window: str = ""
    on: date | None = None
    reason: str | None = None

    kind = "booking"


@dataclass(slots=True)
class FireTimer(Event):
    """A due timer, fired at clinical time ``at`` (= its due time) by the scheduler or replay."""

    timer_key: str = ""

    kind = "timer"


# Decisions --------------------------------------------------------------------------------


@dataclass  # no __slots__: see the module docstring
class RuleFiring:
    """A rule that fired, with the evidence that made it fire and where it comes from."""

    rule_id: str
    title: str
    citations: tuple[str, ...]
    refs: tuple[str, ...]
    evidence: tuple[Evidence, ...]


@dataclass  # no __slots__: see the module docstring
class Transition:
    source: str
    dest: str
    rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.dest, "rules": list(self.rules)}


@dataclass  # no __slots__: see the module docstring
class Refusal:
    """A request the pathway refused, with the rule, its citation and why."""

    action: str
    firing: RuleFiring


@dataclass(slots=True)
class Decision:
    """What one event does: the engine's whole answer, from which storage writes one transaction."""

    event: Event
    episode_before: Episode | None
    episode: Episode
    fired: list[RuleFiring] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    timers_set: list[Timer] = field(default_factory=list)
    timers_cancelled: list[Timer] = field(default_factory=list)
    timer_fired: Timer | None = None
    tasks_opened: list[Task] = field(default_factory=list)
    tasks_closed: list[Task] = field(default_factory=list)
    observation: Observation | None = None
    lateness_seconds: float | None = None
    skipped: bool = False  # a timer no longer pending: nothing happened
    timers_retimed: list[tuple[Timer, Timer]] = field(default_factory=list)  # (old, new)
    links_added: list[Link] = field(default_factory=list)

    @property
    def rule_ids(self) -> list[str]:
        return [f.rule_id for f in self.fired]

    @property
    def refused_ids(self) -> list[str]:
        return [r.firing.rule_id for r in self.refused]
