"""Webhook subscriptions and the outbox, behind ``WebhookStore`` (SQL in ``queries.sql``).

Subscriptions are few and admin-managed: each statement is its own transaction. Messages are
claimed as timers are (``storage.claims``): on PostgreSQL ``FOR UPDATE SKIP LOCKED``, on SQLite
``BEGIN IMMEDIATE``; a claim is a lease, and the attempt is counted when it is claimed, so a
worker killed mid-delivery leaves a message that another worker takes once the lease lapses.
A result is recorded only by the worker that holds the lease (``claimed_by``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.columns import read_time
from storage.sql import QUERIES, pyformat
from storage.unit_of_work import SqlUnitOfWorkFactory

_NAMES = (
    "webhook_claim",
    "webhook_delivered",
    "webhook_retry",
    "webhook_failed",
    "webhook_counts",
    "webhook_failed_messages",
    "webhook_message",
    "webhook_subscription_insert",
    "webhook_subscriptions",
    "webhook_subscription",
    "webhook_subscription_rotate",
    "webhook_subscription_messages_delete",
    "webhook_subscription_delete",
)


def _statements(dialect: str) -> dict[str, str]:
    out = {}
    for name in _NAMES:
        sql = QUERIES.get(f"{name}@{dialect}", QUERIES.get(name))
        assert sql is not None, name
        out[name] = pyformat(sql) if dialect == "postgresql" else sql
    return out


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    url: str
    events: tuple[str, ...]
    include_patient_ref: bool
    secret: str  # as stored: encrypted (storage.webhook_secrets)
    created_at: datetime
    created_by: str
    rotated_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> Subscription:
        sid, url, events, patient, secret, created, by, rotated = row
        return cls(
            sid, url, tuple(e for e in events.split(",") if e), bool(patient), secret,
            read_time(created), by, read_time(rotated) if rotated else None,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message claimed for one delivery attempt (``attempts`` counts this one)."""

    id: str
    subscription_id: str
    event_type: str
    payload: str
    patient_ref: str | None
    attempts: int
    created_at: datetime


class SubscriptionNotFound(LookupError):
    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"webhook subscription {subscription_id!r}: no such subscription")
        self.subscription_id = subscription_id


class WebhookStore:
    """The statements of webhooks, on one database."""

    def __init__(self, factory: SqlUnitOfWorkFactory) -> None:
        self.factory = factory
        self.backend = factory.connections.backend
        self.dialect = factory.engine.dialect.name
        self.q = _statements(self.dialect)
        self._time = self.backend.time

    @contextmanager
    def _tx(self, immediate: bool = True) -> Iterator[Any]:
        held = self.factory.connections.take()
        try:
            db = held[1]
            with self.backend.transaction(db, immediate):
                yield db
        finally:
            self.factory.connections.give(held)

    # -- subscriptions ----------------------------------------------------------------------

    def add(self, sub: Subscription) -> None:
        params = {
            "id": sub.id,
            "url": sub.url,
            "events": "," + ",".join(sub.events) + ",",
            "include_patient_ref": sub.include_patient_ref,
            "secret": sub.secret,
            "now": self._time(sub.created_at),
            "actor": sub.created_by,
        }
        with self._tx() as db:
            db.execute(self.q["webhook_subscription_insert"], params)
        subscribed = getattr(self.backend, "subscribed", None)  # PostgreSQL (storage.outbox)
        if subscribed is not None:
            subscribed.added()

    def list(self) -> list[Subscription]:
        with self._tx(immediate=False) as db:
            rows = db.execute(self.q["webhook_subscriptions"], {}).fetchall()
        return [Subscription.of(r) for r in rows]

    def get(self, subscription_id: str) -> Subscription:
        with self._tx(immediate=False) as db:
            row = db.execute(self.q["webhook_subscription"], {"id": subscription_id}).fetchone()
        if row is None:
            raise SubscriptionNotFound(subscription_id)
        return Subscription.of(row)

    def rotate(self, subscription_id: str, secret: str, now: datetime) -> None:
        params = {"id": subscription_id, "secret": secret, "now": self._time(now)}
        with self._tx() as db:
            if db.execute(self.q["webhook_subscription_rotate"], params).rowcount != 1:
                raise SubscriptionNotFound(subscription_id)

    def remove(self, subscription_id: str) -> None:
        """Remove the subscription and its undelivered messages (delivered and failed stay)."""
        with self._tx() as db:
            db.execute(self.q["webhook_subscription_messages_delete"], {"id": subscription_id})
            if (
                db.execute(self.q["webhook_subscription_delete"], {"id": subscription_id}).rowcount
                != 1
            ):
                raise SubscriptionNotFound(subscription_id)

    # -- delivery ---------------------------------------------------------------------------

    def claim(self, worker: str, now: datetime, until: datetime, limit: int) -> list[Claimed]:
        params = {
            "worker": worker,
            "now": self._time(now),
            "until": self._time(until),
            "limit": limit,
        }
        with self._tx() as db:
            rows = db.execute(self.q["webhook_claim"], params).fetchall()
        return [Claimed(r[0], r[1], r[2], r[3], r[4], int(r[5]), read_time(r[6])) for r in rows]

    def record(self, worker: str, results: list[tuple[str, str, dict[str, Any]]]) -> int:
        """Record a batch's results in one transaction: (``delivered``, ``retry`` or
        ``failed``, message id, values); only rows this worker's lease still holds change.
        Returns how many rows changed."""
        changed = 0
        with self._tx() as db:
            for outcome, message_id, values in results:
                params = {"id": message_id, "worker": worker, "now": None, "retry_at": None}
                params |= {
                    k: self._time(v) if isinstance(v, datetime) else v for k, v in values.items()
                }
                changed += db.execute(self.q[f"webhook_{outcome}"], params).rowcount
        return changed

    # -- reports ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self._tx(immediate=False) as db:
            rows = db.execute(self.q["webhook_counts"], {}).fetchall()
        out = {"pending": 0, "delivered": 0, "failed": 0}
        out.update({status: int(n) for status, n in rows})
        return out

    def failed_messages(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._tx(immediate=False) as db:
            rows = db.execute(self.q["webhook_failed_messages"], {"limit": limit}).fetchall()
        keys = ("id", "subscription", "type", "episode", "attempts", "last_status", "last_error")
        return [
            {**dict(zip(keys, r[:7], strict=True)), "created_at": read_time(r[7]).isoformat()}
            for r in rows
        ]

    def message(self, message_id: str) -> dict[str, Any] | None:
        with self._tx(immediate=False) as db:
            row = db.execute(self.q["webhook_message"], {"id": message_id}).fetchone()
        if row is None:
            return None
        keys = ("id", "subscription", "type", "episode", "status", "attempts", "last_status",
                "last_error", "created_at", "next_attempt_at", "delivered_at")  # fmt: skip
        return dict(zip(keys, row, strict=True))
