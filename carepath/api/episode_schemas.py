"""The JSON of the episode endpoints: command bodies, the episode view, the worklist, outcomes.

Bodies forbid unknown members (a misspelt fact name must not vanish silently) and refuse
control characters in free text (PostgreSQL cannot store NUL, and none belongs in a label or a
note). Times without an offset are UTC, as on the command line. The pathway validates fact
values itself: a refused value is a 422 naming the fact, the value and what was expected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from carepath import inputs
from carepath.api.appointment_schemas import AppointmentOut
from carepath.inputs import PRINTABLE


def _rule(check: Any, **field: Any) -> Any:
    """A pydantic field that keeps to one of ``carepath.inputs``' rules (its schema says the
    pattern and the lengths; the rule also refuses what a pattern cannot say, e.g. surrogates)."""

    def validate(value: Any) -> Any:
        return value if value is None else check(value, "")

    return (Field(**field), AfterValidator(validate))


def _time(value: datetime | None) -> datetime | None:
    return None if value is None else inputs.clinical_time(value, "at")


ClinicalTime = Annotated[
    datetime | None,
    Field(
        description="When it happened clinically (ISO 8601; no offset = UTC), from "
        f"{inputs.TIME_MIN:%Y-%m-%d} to {inputs.TIME_MAX:%Y-%m-%d}. Default: now."
    ),
    AfterValidator(_time),
]
PatientRef = Annotated[
    str,
    *_rule(
        inputs.patient_ref,
        min_length=1,
        max_length=inputs.PATIENT_REF_MAX,
        pattern=PRINTABLE,
        examples=["MRN-004211"],
    ),
]
Label = Annotated[str | None, *_rule(inputs.label, max_length=inputs.LABEL_MAX, pattern=PRINTABLE)]
Note = Annotated[
    str | None,
    *_rule(inputs.note, max_length=inputs.NOTE_MAX, pattern=inputs.PRINTABLE_LINES),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenEpisode(Body):
    patient_ref: PatientRef
    label: Label = None
    pathway: Annotated[
        str | None,
        *_rule(
            inputs.identifier,
            min_length=1,
            max_length=inputs.ID_MAX,
            pattern=PRINTABLE,
            description="The pathway to open on (GET /api/definitions); default: the default one.",
        ),
    ] = None
    facts: dict[str, Any] = Field(
        default_factory=dict, description="Facts of the pathway's vocabulary, by name."
    )
    at: ClinicalTime = None


class Observe(Body):
    facts: dict[str, Any] = Field(description="Facts of the episode's pathway, by name.")
    at: ClinicalTime = None


class RequestAction(Body):
    action: Annotated[
        str,
        *_rule(
            inputs.reason,
            min_length=1,
            max_length=inputs.REASON_MAX,
            description="A request the episode's pathway defines.",
        ),
    ]
    at: ClinicalTime = None


class Close(Body):
    reason: Annotated[
        str,
        *_rule(
            inputs.reason,
            min_length=1,
            max_length=inputs.REASON_MAX,
            description="A close reason the episode's pathway defines.",
        ),
    ]
    at: ClinicalTime = None


class UpdateTask(Body):
    status: Literal["done", "not_done"]
    note: Note = None
    at: ClinicalTime = None


def _owner_or_me(value: str | None) -> str | None:
    return value if value is None or value == "me" else inputs.owner(value, "")


class Assign(Body):
    owner: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=inputs.ACTOR_MAX,
            pattern=PRINTABLE,
            description="The coordinator's name; \"me\": the calling token's name; null: "
            'unassign. Not starting "token:", not "none".',
            examples=["alice", "me", None],
        ),
        AfterValidator(_owner_or_me),
    ]
    at: ClinicalTime = None


# -- what an episode shows -------------------------------------------------------------------


class Citation(BaseModel):
    ref: str = Field(description="The reference's key in the definition.")
    text: str


class Evidence(BaseModel):
    test: str
    observed: Any
    observation_id: str | None
    held: bool


class RuleFiring(BaseModel):
    """A rule that fired (or refused), with the evidence that decided it and its citations."""

    rule: str
    title: str
    citations: list[Citation]
    evidence: list[Evidence]


class Fact(BaseModel):
    value: Any
    observation_id: str
    at: datetime


class Timer(BaseModel):
    key: str
    rule: str
    due_at: datetime
    overdue: bool


class Task(BaseModel):
    key: str
    rule: str
    kind: str = Field(description="order, task or escalation")
    text: str
    status: str
    created_at: datetime
    opened_by: RuleFiring | None = Field(
        description="The rule that opened it, with its evidence and citations."
    )


class RecommendedAction(BaseModel):
    """An open order of the pathway: what it recommends doing now."""

    task_key: str
    rule: str
    text: str
    citations: list[Citation]


class RefusalSoFar(BaseModel):
    action: str
    seq: int
    at: datetime
    actor: str
    refused_by: RuleFiring


class EpisodeLink(BaseModel):
    episode: str = Field(description="The other episode's id.")
    pathway: str
    rule: str = Field(description="The enrolment rule that made the link.")
    relation: Literal["enrolled", "enrolled_from", "linked", "linked_from"] = Field(
        description="This episode's side: enrolled (it opened the other), enrolled_from (the "
        "other opened it), linked (it was linked to the other, already running), linked_from."
    )


class EpisodeView(BaseModel):
    id: str
    pathway: str = Field(description="The id of the pathway the episode runs on.")
    etag: str = Field(description='The value to send as If-Match: "<id>:<version>".')
    version: int
    state: str
    state_label: str
    terminal: bool
    definition_version: str = Field(description="The definition version the episode runs on.")
    current_definition_version: str = Field(description="The version new episodes get.")
    patient_ref: str | None
    label: str | None
    owner: str | None = Field(description="The coordinator it is assigned to; null: nobody.")
    appointment: AppointmentOut | None = Field(None, description="The booked review; null: none.")
    opened_at: datetime
    state_entered_at: datetime
    care_started_at: datetime | None
    closed_reason: str | None
    facts: dict[str, Fact]
    timers: list[Timer] = Field(description="Pending timers, in firing order.")
    tasks: list[Task] = Field(description="Open tasks, orders and escalations.")
    recommended_actions: list[RecommendedAction]
    refusals: list[RefusalSoFar]
    links: list[EpisodeLink] = Field(description="The same patient's episodes on other pathways.")


# -- the worklist ----------------------------------------------------------------------------


class WorklistItem(BaseModel):
    id: str
    pathway: str = Field(description="The id of the pathway the episode runs on.")
    state: str
    patient_ref: str | None
    label: str | None
    owner: str | None = Field(description="The coordinator it is assigned to; null: nobody.")
    next_due_at: datetime | None
    overdue: bool = Field(description="A timer is past due.")
    escalated: bool = Field(description="An escalation task is open.")
    appointment: AppointmentOut | None = Field(None, description="The booked review; null: none.")
    missed: bool = Field(
        False, description="Missed appointment: its day passed with no review recorded."
    )
    opened_at: datetime
    state_entered_at: datetime
    definition_version: str
    version: int


class WorklistPage(BaseModel):
    items: list[WorklistItem]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: last.")


# -- what a command did ----------------------------------------------------------------------


class TransitionOut(BaseModel):
    from_: str = Field(alias="from")
    to: str
    rules: list[str]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class OutcomeOut(BaseModel):
    event_id: str
    episode_id: str
    kind: str
    version: int
    state: str
    rules: list[str]
    refused: list[str]
    transitions: list[TransitionOut]
    repeated: bool = Field(description="The event id was applied before: its first outcome.")


class TaskOpened(BaseModel):
    key: str
    rule: str
    kind: str
    text: str


class CommandResult(BaseModel):
    """A command's outcome; for a command decided now, also what it fired, refused and opened."""

    outcome: OutcomeOut
    fired: list[RuleFiring]
    refusals: list[RuleFiring]
    tasks_opened: list[TaskOpened]
    timers_fired_first: list[OutcomeOut] = Field(
        description="Timers that were due and fired before the command was applied."
    )
