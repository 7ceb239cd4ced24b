"""Webhook delivery: scheduler workers send the outbox's messages, signed, exactly one attempt
in flight per message, retried with exponential backoff, then failed.

``DeliveryWorker.deliver_due(now)`` repeats claim → send → record until nothing is due. A claim
(``storage.webhooks``) leases up to ``batch`` messages for ``lease`` — longer than an attempt
can take (the HTTP timeout, plus a margin) — and counts the attempt; the batch is sent in
parallel threads, so a slow receiver delays one batch by at most the timeout. A worker killed
mid-delivery loses nothing: its leases lapse and another worker sends the same message again,
under the same ``webhook-id``, which is how receivers drop the duplicate.

Each request follows the Standard Webhooks specification: headers ``webhook-id`` (the message
id, the same on every retry), ``webhook-timestamp`` (seconds, at this attempt) and
``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body`` under the
subscription's secret). A 2xx answer delivers it; anything else (an error status, a redirect,
which is never followed, a timeout, a refused connection) is retried after ``backoff`` × 2^(n-1)
(capped), until the message is older than ``retry_for``: then it is failed, and ``scheduler
status`` and the admin page count it. Times come from the caller's clock (the database's on
PostgreSQL, ``scheduler.clock``), advanced by this host's monotonic clock while sending.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from pathway.audit import AuditKey
from scheduler.webhook_addresses import PUBLIC_ONLY, AddressPolicy, NoRedirects, proxied
from storage.unit_of_work import SqlUnitOfWorkFactory
from storage.webhook_secrets import SecretUnreadable, decrypt
from storage.webhooks import Claimed, Subscription, WebhookStore

log = logging.getLogger("carepath.webhooks")
SUBSCRIPTION_REMOVED = "subscription removed"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard and how long to try (``CAREPATH_WEBHOOK_*``, see the README)."""

    timeout: float = 5.0  # seconds per HTTP attempt
    backoff: timedelta = timedelta(seconds=10)  # the first retry's delay; doubles each time
    backoff_cap: timedelta = timedelta(hours=1)
    retry_for: timedelta = timedelta(hours=24)
    batch: int = 8  # messages claimed (and sent in parallel) at a time
    lease_margin: float = 10.0  # seconds a lease outlasts the longest attempt
    addresses: AddressPolicy = PUBLIC_ONLY  # where a connection may go, beyond public ones

    @property
    def lease(self) -> timedelta:
        """Longer than any attempt can take, so one attempt at a time is in flight."""
        return timedelta(seconds=2 * self.timeout + self.lease_margin)

    def retry_delay(self, attempts: int) -> timedelta:
        return min(self.backoff * (2 ** max(attempts - 1, 0)), self.backoff_cap)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int | None  # the HTTP status, None when there was no answer
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signature(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


@functools.cache
def _opener(addresses: AddressPolicy) -> urllib.request.OpenerDirector:
    return addresses.opener()


_PROXIED = urllib.request.build_opener(NoRedirects)  # the environment's proxies, if any


def http_post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    addresses: AddressPolicy = PUBLIC_ONLY,
) -> Answer:
    """POST with the standard library, connecting only to an address ``addresses`` allows
    (``scheduler.webhook_addresses``); no redirect is followed, and a proxy from the
    environment is used as it is (the proxy then makes, and polices, the connection)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = _PROXIED if proxied(url) else _opener(addresses)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return Answer(response.status)
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(None, f"{type(exc).__name__}: {reason}")


def body_of(message: Claimed) -> bytes:
    """The request body: the stored payload, with the patient reference only if kept (the
    subscription asked for it); the same bytes on every retry."""
    if message.patient_ref is None:
        return message.payload.encode()
    payload = orjson.loads(message.payload)
    payload["data"]["patient_ref"] = message.patient_ref
    return orjson.dumps(payload)


class DeliveryWorker:
    """One process's (or thread's) sender of the shared outbox."""

    def __init__(
        self,
        factory: SqlUnitOfWorkFactory,
        key: AuditKey,
        policy: DeliveryPolicy | None = None,
        *,
        worker_id: str | None = None,
        post: Callable[[str, bytes, dict[str, str], float], Answer] | None = None,
        allowed: Callable[[str], str | None] | None = None,
    ) -> None:
        """``allowed(url)``: None if the target may be posted to, else why not (checked again at
        each attempt: a row edited in the database is not trusted)."""
        self.store = WebhookStore(factory)
        self.key = key
        self.policy = policy or DeliveryPolicy()
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.post = post or functools.partial(http_post, addresses=self.policy.addresses)
        self.allowed = allowed
        self.delivered_total = 0
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=self.policy.batch, thread_name_prefix="webhook")

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def deliver_due(self, now: datetime) -> int:
        """Send every message due by ``now`` that no other worker holds; return how many were
        delivered."""
        delivered = 0
        started = time.monotonic()
        subscriptions: dict[str, Subscription] = {}
        while not self._stopping.is_set():
            at = now + timedelta(seconds=time.monotonic() - started)
            claimed = self.store.claim(self.id, at, at + self.policy.lease, self.policy.batch)
            if not claimed:
                break
            if any(m.subscription_id not in subscriptions for m in claimed):
                subscriptions = {s.id: s for s in self.store.list()}  # added or rotated since
            subs, ats = [subscriptions] * len(claimed), [at] * len(claimed)
            answers = list(self._pool.map(self._attempt, claimed, subs, ats))
            done = now + timedelta(seconds=time.monotonic() - started)
            results = [self._result(m, a, done) for m, a in zip(claimed, answers, strict=True)]
            self.store.record(self.id, results)
            delivered += sum(1 for outcome, _, _ in results if outcome == "delivered")
        self.delivered_total += delivered
        return delivered

    def _attempt(
        self, message: Claimed, subscriptions: dict[str, Subscription], at: datetime
    ) -> Answer:
        sub = subscriptions.get(message.subscription_id)
        if sub is None:
            return Answer(None, SUBSCRIPTION_REMOVED)
        refusal = self.allowed(sub.url) if self.allowed is not None else None
        if refusal is not None:
            return Answer(None, refusal)
        try:
            secret = decrypt(self.key, sub.id, sub.secret)
        except SecretUnreadable as exc:
            return Answer(None, str(exc))
        body = body_of(message)
        stamp = int(at.timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": "carepath-webhooks",
            "webhook-id": message.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature(secret, message.id, stamp, body),
        }
        try:
            return self.post(sub.url, body, headers, self.policy.timeout)
        except Exception as exc:  # a broken transport must not lose the message
            return Answer(None, f"{type(exc).__name__}: {exc}")

    def _result(
        self, message: Claimed, answer: Answer, now: datetime
    ) -> tuple[str, str, dict[str, object]]:
        """What to record for one attempt: delivered, retried after the backoff, or failed."""
        policy = self.policy
        if answer.ok:
            return "delivered", message.id, {"now": now, "code": answer.status}
        error = answer.error or f"HTTP {answer.status}"
        retry_at = now + policy.retry_delay(message.attempts)
        gone = answer.error == SUBSCRIPTION_REMOVED
        if gone or retry_at > message.created_at + policy.retry_for:
            log.warning(
                "webhook %s failed after %d attempts: %s", message.id, message.attempts, error
            )
            return "failed", message.id, {"code": answer.status, "error": error}
        return "retry", message.id, {"retry_at": retry_at, "code": answer.status, "error": error}
