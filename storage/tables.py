"""The tables: one row per episode, observation, timer, task, audit entry (with its command's
outcome) and page session.

The episode row holds the snapshot's scalar fields and its current facts (JSON, each with the
observation it came from) plus ``next_due_at``, the earliest pending timer, so the worklist is
one indexed query. Observations, timers, tasks and audit entries are rows of their own: the
audit log is append-only (triggers refuse UPDATE and DELETE, see migration 0001) and every
value ever recorded stays in ``observations``. Timers carry lease columns for the scheduler.

All times are timezone-aware UTC: TIMESTAMPTZ on PostgreSQL; on SQLite, UTC text that
``UTCDateTime`` hands back as aware datetimes. The schema itself is created by the Alembic
migrations in ``storage/migrations``; these models are the reference they are checked against.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, func, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: expected a timezone-aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# On SQLite, tables keyed by their primary key alone (WITHOUT ROWID): one B-tree to write
# per row instead of two. Each page written costs a WAL frame, so this is most of the commit.
CLUSTERED: dict[str, Any] = {"sqlite_with_rowid": False}


def _time(*, nullable: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class EpisodeRow(SQLModel, table=True):
    __tablename__ = "episodes"
    __table_args__ = (
        Index("ix_episodes_state_next_due_at", "state", "next_due_at"),
        Index("ix_episodes_next_due_at", "next_due_at"),
        Index("ix_episodes_pathway_next_due_at", "pathway", "next_due_at"),
        Index("ix_episodes_pathway_patient_ref", "pathway", "patient_ref"),
        Index("ix_episodes_owner_next_due_at", "owner", "next_due_at"),  # assigned= (0008)
        Index("ix_episodes_appointment_on", "appointment_on", "id"),  # booked day (0009)
        Index("ix_episodes_pathway_id", "pathway", "id", unique=True),  # measures (0011)
    )

    id: str = Field(primary_key=True)
    definition_version: str
    pathway: str = Field(sa_column_kwargs={"server_default": ""})  # definition id (migration 0005)
    state: str
    opened_at: datetime = _time()
    state_entered_at: datetime = _time()
    care_started_at: datetime | None = _time(nullable=True)
    remembered: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )  # fact → value at the last review (migration 0005)
    links: list[Any] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )  # [episode id, pathway, rule, relation] (migration 0005)
    closed_reason: str | None = None
    patient_ref: str | None = None
    label: str | None = None
    owner: str | None = None  # the coordinator it is assigned to (migration 0008)
    # the booked review (migration 0009, pathway.appointments); NULL: none booked
    appointment_window: str | None = None
    appointment_on: str | None = None  # YYYY-MM-DD
    appointment_status: str | None = None
    appointment_reason: str | None = Field(default=None, sa_type=Text)
    appointment_deviation: bool | None = None
    audit_hash: str
    version: int
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    next_due_at: datetime | None = _time(nullable=True)
    claimed_by: str | None = None  # the scheduler worker sweeping this episode (migration 0002)
    lease_until: datetime | None = _time(nullable=True)  # the claim lapses then


class WorkerRow(SQLModel, table=True):
    """A scheduler worker: registered at start, heartbeat while alive (migration 0002)."""

    __tablename__ = "workers"

    id: str = Field(primary_key=True)
    host: str
    pid: int
    started_at: datetime = _time()
    last_seen: datetime = _time()
    stopped_at: datetime | None = _time(nullable=True)
    fired: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    clock_skew_seconds: float | None = None  # host minus database, when refused (0007)
    clock_refusal: str | None = Field(default=None, sa_type=Text)  # why it does not run (0007)


class ObservationRow(SQLModel, table=True):
    __tablename__ = "observations"  # a rowid table on SQLite: rows append (migration 0013)

    episode_id: str = Field(primary_key=True, foreign_key="episodes.id")
    seq: int = Field(primary_key=True)  # the episode version that recorded it
    id: str  # the event id that recorded it (unique through ix_audit_log_event_id)
    facts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = _time()
    recorded_at: datetime = _time()
    actor: str
    source: str


class TimerRow(SQLModel, table=True):
    __tablename__ = "timers"
    __table_args__ = (  # the pending timers by due time (migration 0014): fired ones leave it
        Index(
            "ix_timers_pending_due_at",
            "due_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        CLUSTERED,
    )

    episode_id: str = Field(primary_key=True, foreign_key="episodes.id")
    key: str = Field(primary_key=True)
    rule_id: str
    due_at: datetime = _time()
    status: str
    state: str | None = None
    order: int
    position: int  # index in the snapshot's timers tuple, so a rebuilt snapshot compares equal
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, sa_type=Text)
    fired_at: datetime | None = _time(nullable=True)
    set_at: datetime | None = _time(nullable=True)  # when the event that set it happened (0005)


class TaskRow(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = CLUSTERED

    episode_id: str = Field(primary_key=True, foreign_key="episodes.id")
    key: str = Field(primary_key=True)
    rule_id: str
    kind: str
    text: str = Field(sa_type=Text)
    created_at: datetime = _time()
    status: str
    state: str | None = None
    position: int
    note: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime | None = _time(nullable=True)


class AuditRow(SQLModel, table=True):
    """An audit entry, and the outcome its command answered (idempotency, migration 0012:
    looked up by the unique event id, which also refuses an event applied twice)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_event_id", "event_id", unique=True),)

    episode_id: str = Field(primary_key=True, foreign_key="episodes.id")
    seq: int = Field(primary_key=True)
    event_id: str
    kind: str
    actor: str
    at: datetime = _time()
    recorded_at: datetime = _time()
    state_from: str | None = None
    state_to: str
    definition_version: str
    payload: str = Field(sa_type=Text)  # the canonical bytes as UTF-8 text, byte-for-byte
    prev_hash: str
    hash: str
    outcome: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    caller: str | None = None  # who sent the idempotency key (migration 0006, on 0012)
    idempotency_key: str | None = None  # the key as given; event_id is derived from both
    request_hash: str | None = None  # sha256 of command, episode and canonical body


metadata = SQLModel.metadata
TABLES = (
    "episodes",
    "observations",
    "timers",
    "tasks",
    "audit_log",
    "workers",
    "tokens",
    "sessions",
)


# -- migration 0003: API tokens, and the indexes of the worklist (storage/worklist.py) -------


class TokenRow(SQLModel, table=True):
    """An API bearer token: its name (the audit actor), its role and the token's sha256 only."""

    __tablename__ = "tokens"
    __table_args__ = (
        Index("ix_tokens_token_hash", "token_hash", unique=True),
        Index("ix_tokens_name", "name", unique=True),
    )

    id: str = Field(primary_key=True)
    name: str
    role: str
    token_hash: str
    created_at: datetime = _time()
    revoked_at: datetime | None = _time(nullable=True)
    last_used_at: datetime | None = _time(nullable=True)


# Declared against the tables above (a module-level Index attaches itself to its table). On
# PostgreSQL the migration builds the search indexes in the "C" collation (see 0003).
_episodes, _tasks = EpisodeRow.__table__.c, TaskRow.__table__.c  # type: ignore[attr-defined]
Index("ix_episodes_patient_ref_search", func.lower(_episodes.patient_ref))
Index("ix_episodes_label_search", func.lower(_episodes.label))
Index(
    "ix_episodes_undated",
    _episodes.state,
    _episodes.id,
    sqlite_where=text("next_due_at IS NULL"),
    postgresql_where=text("next_due_at IS NULL"),
)
Index(
    "ix_tasks_open_escalations",
    _tasks.episode_id,
    sqlite_where=text("kind = 'escalation' AND status = 'open'"),
    postgresql_where=text("kind = 'escalation' AND status = 'open'"),
)


# -- migration 0004: the definition versions episodes are pinned to -------------------------


class DefinitionRow(SQLModel, table=True):
    """A definition version as first seen: its document, so episodes pinned to it keep running
    after the file changes. ``version`` is ``<id>@<sha256 prefix>`` of the canonical document."""

    __tablename__ = "definitions"

    version: str = Field(primary_key=True)
    id: str
    content_hash: str
    document: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    first_seen_at: datetime = _time()


# -- migration 0006: server-side page sessions ---------------------------------------------


class SessionRow(SQLModel, table=True):
    """A signed-in page session: the cookie holds a random id, this row only its sha256, and
    the token it was opened with; idle and absolute expiry run from the two times."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_token_id", "token_id"),)

    id_hash: str = Field(primary_key=True)
    token_id: str = Field(foreign_key="tokens.id")
    created_at: datetime = _time()
    last_seen_at: datetime = _time()


# -- migration 0009: webhook subscriptions and their outbox (storage/webhooks.py) -----------


class WebhookSubscriptionRow(SQLModel, table=True):
    """A webhook target: its event types (``,a,b,``) and its secret, encrypted (0009)."""

    __tablename__ = "webhook_subscriptions"

    id: str = Field(primary_key=True)
    url: str = Field(sa_type=Text)
    events: str = Field(sa_type=Text)
    include_patient_ref: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    secret: str = Field(sa_type=Text)
    created_at: datetime = _time()
    created_by: str
    rotated_at: datetime | None = _time(nullable=True)


class WebhookMessageRow(SQLModel, table=True):
    """One notice to deliver to one subscription: the outbox, claimed under a lease (0009)."""

    __tablename__ = "webhook_messages"
    __table_args__ = (
        Index("ix_webhook_messages_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_messages_subscription_id", "subscription_id"),
    )

    id: str = Field(primary_key=True)
    subscription_id: str
    event_type: str
    episode_id: str
    payload: str = Field(sa_type=Text)
    patient_ref: str | None = None
    status: str
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = _time()
    next_attempt_at: datetime = _time()
    lease_until: datetime | None = _time(nullable=True)
    claimed_by: str | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    delivered_at: datetime | None = _time(nullable=True)
