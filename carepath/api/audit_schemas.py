"""The JSON of the audit, definition and token endpoints.

A history entry is the audit log's canonical entry (``pathway/audit.py``) with its chain
hashes; rule firings use the same shape as the episode view (rule, title, citations with their
reference keys, evidence).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carepath.api.episode_schemas import RuleFiring
from storage.access import NAME, ROLES


class TransitionEntry(BaseModel):
    source: str
    dest: str
    rules: list[str]


class RefusalEntry(BaseModel):
    action: str
    refused_by: RuleFiring


class TimerEntry(BaseModel):
    key: str
    rule_id: str
    due_at: datetime
    status: str
    state: str | None
    order: int


class TaskOpenedEntry(BaseModel):
    key: str
    rule_id: str
    kind: str
    text: str
    created_at: datetime
    status: str
    state: str | None
    note: str | None


class TaskClosedEntry(BaseModel):
    key: str
    status: str
    note: str | None


class HistoryEntry(BaseModel):
    """One decision: who, when (clinical and recorded), what moved, which rules and why."""

    seq: int
    event_id: str
    kind: str
    actor: str
    at: datetime
    recorded_at: datetime
    definition_version: str
    state_from: str | None
    state_to: str
    transitions: list[TransitionEntry]
    rules: list[RuleFiring]
    refused: list[RefusalEntry]
    timers_set: list[TimerEntry]
    timers_cancelled: list[str]
    tasks_opened: list[TaskOpenedEntry]
    tasks_closed: list[TaskClosedEntry]
    facts: dict[str, Any] | None = Field(None, description="The observation's facts, if any.")
    source: str | None = None
    timer: str | None = Field(None, description="The timer fired, for a timer event.")
    lateness_seconds: float | None = None
    reason: str | None = Field(None, description="Close reason or requested action.")
    patient_ref: str | None = None
    label: str | None = None
    owner: str | None = Field(None, description="For an assign event: the new owner (null: none).")
    action: str | None = Field(None, description="For a booking: book, move, cancel or missed.")
    window: str | None = Field(None, description="For a booking: the window (opening rule id).")
    on: str | None = Field(None, description="For a booking: the day, YYYY-MM-DD.")
    appointment: dict[str, Any] | None = Field(
        None, description="The appointment after a booking, or after the review that kept it."
    )
    prev_hash: str
    hash: str


class ChainCheckOut(BaseModel):
    episode_id: str
    ok: bool
    entries: int
    bad_seq: int | None
    problem: str | None


class RowDifferenceOut(BaseModel):
    episode_id: str
    what: str = Field(description="The column, or the observation, timer or task, that differs.")
    stored: Any = Field(description="What the database holds.")
    expected: Any = Field(description="What a rebuild from the episode's audit log gives.")
    problem: str


class VerifyReport(BaseModel):
    episodes: int
    entries: int
    intact: bool = Field(description="Every chain intact, and (unless chain_only) every row equal.")
    broken: list[ChainCheckOut] = Field(
        description="Each broken chain, naming its first bad entry."
    )
    rows_checked: bool = Field(
        default=False, description="The rows were checked against a rebuild from each log."
    )
    rows_broken: list[RowDifferenceOut] = Field(
        default_factory=list,
        description="The first difference of each episode (the first 20) whose rows differ.",
    )


class StateSummary(BaseModel):
    name: str
    label: str
    terminal: bool


class DefinitionSummary(BaseModel):
    version: str
    id: str
    title: str
    content_hash: str
    current: bool = Field(description="New episodes get this version.")
    initial_state: str
    states: list[StateSummary]
    rules: int


class DefinitionDocument(BaseModel):
    version: str
    current: bool
    document: dict[str, Any] = Field(description="The definition file, as loaded.")


class Diagram(BaseModel):
    version: str
    format: Literal["mermaid"] = "mermaid"
    current_state: str | None
    source: str


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=f"^{NAME.pattern}$", examples=["coordinator-ward-3"])]
    role: Literal[ROLES]  # type: ignore[valid-type]


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    actor: str = Field(description="The actor the audit log records for this token's writes.")
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class CreatedToken(TokenOut):
    token: str = Field(description="The secret: shown this once, stored only as its sha256.")
