"""Webhook subscriptions, as admins manage them (CLI and API call these; both stay thin).

``add`` checks the target and the event types, makes a random signing secret, stores it
encrypted (``storage.webhook_secrets``) and returns it once, as ``whsec_<base64>``; ``rotate``
replaces it (messages not yet delivered are signed with the new one). Targets must be
``https://``, except loopback addresses (127.0.0.0/8, ::1, ``localhost``) which may use
``http://``: a webhook carries what happened to a patient's episode, never over the open
network in clear. A target inside the deployment's own networks (private, link-local, reserved
addresses) is refused unless ``CAREPATH_WEBHOOK_ALLOWED_NETWORKS`` allows it: here for an address
written in the URL, and by the sender at every connection for whatever a name resolves to
(``scheduler.webhook_addresses``). ``policy_from_env`` reads the delivery settings
(``CAREPATH_WEBHOOK_*``).
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from pathway.audit import AuditKey
from pathway.errors import InvalidRequest
from pathway.notifications import EVENT_TYPES
from scheduler.deliveries import DeliveryPolicy, DeliveryWorker
from scheduler.webhook_addresses import AddressPolicy, ip_literal, names_loopback, parse_networks
from storage.unit_of_work import SqlUnitOfWorkFactory
from storage.webhook_secrets import encrypt, new_secret, shown
from storage.webhooks import Subscription, WebhookStore

EXPECTED_URL = (
    "an https:// URL (http:// only to a loopback address: 127.0.0.0/8, ::1, localhost), "
    "not to a private or reserved address unless CAREPATH_WEBHOOK_ALLOWED_NETWORKS allows it"
)
ALLOWED_NETWORKS = "CAREPATH_WEBHOOK_ALLOWED_NETWORKS"


def target_refusal(url: str) -> str | None:
    """None if webhooks may be sent to ``url``; otherwise what is wrong with it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if not host or parts.scheme not in ("https", "http"):
        return "not an http(s) URL with a host"
    if parts.username or parts.password:
        return "a URL with credentials in it"
    if parts.scheme == "http" and not names_loopback(host):
        return "http:// to a host that is not a loopback address"
    literal = ip_literal(host)
    if literal is not None:
        return address_policy().refusal(host, literal)
    return None


def address_policy() -> AddressPolicy:
    """Public addresses, loopback when named, and ``CAREPATH_WEBHOOK_ALLOWED_NETWORKS``."""
    return _address_policy(os.environ.get(ALLOWED_NETWORKS, ""))


@functools.cache
def _address_policy(text: str) -> AddressPolicy:
    from carepath.settings import SettingsError

    try:
        return AddressPolicy(parse_networks(text))
    except ValueError as exc:
        raise SettingsError(f"{ALLOWED_NETWORKS}: {exc}") from None


def check_url(url: str) -> str:
    url = url.strip()
    if len(url) > 2048 or target_refusal(url) is not None:
        raise InvalidRequest("url", url, EXPECTED_URL)
    return url


def parse_events(events: str | Iterable[str]) -> tuple[str, ...]:
    """Event types from ``a,b`` or a list; an unknown one is refused with the valid ones."""
    names = events.split(",") if isinstance(events, str) else list(events)
    out = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    expected = "one or more of " + ", ".join(EVENT_TYPES)
    if not out:
        raise InvalidRequest(
            "events", events if isinstance(events, str) else list(events), expected
        )
    for name in out:
        if name not in EVENT_TYPES:
            raise InvalidRequest("events", name, expected)
    return out


def add(
    store: WebhookStore,
    key: AuditKey,
    url: str,
    events: str | Iterable[str],
    actor: str,
    now: datetime,
    *,
    include_patient_ref: bool = False,
) -> tuple[Subscription, str]:
    """A new subscription and its secret (``whsec_…``), shown this once."""
    url, types = check_url(url), parse_events(events)
    sid = "ws_" + secrets.token_hex(8)
    secret = new_secret()
    sub = Subscription(
        sid, url, types, include_patient_ref, encrypt(key, sid, secret), now, actor, None
    )
    store.add(sub)
    return sub, shown(secret)


def rotate(store: WebhookStore, key: AuditKey, subscription_id: str, now: datetime) -> str:
    """A new secret for the subscription (the old one stops signing now), shown this once."""
    store.get(subscription_id)  # SubscriptionNotFound before anything is made
    secret = new_secret()
    store.rotate(subscription_id, encrypt(key, subscription_id, secret), now)
    return shown(secret)


def policy_from_env() -> DeliveryPolicy:
    """``CAREPATH_WEBHOOK_TIMEOUT_SECONDS`` (5), ``CAREPATH_WEBHOOK_BACKOFF_SECONDS`` (10, the
    first retry's delay, doubling), ``CAREPATH_WEBHOOK_BACKOFF_CAP_SECONDS`` (3600),
    ``CAREPATH_WEBHOOK_RETRY_HOURS`` (24), ``CAREPATH_WEBHOOK_BATCH`` (8 in parallel),
    ``CAREPATH_WEBHOOK_ALLOWED_NETWORKS`` (none)."""
    return DeliveryPolicy(
        timeout=_number("CAREPATH_WEBHOOK_TIMEOUT_SECONDS", 5.0),
        backoff=timedelta(seconds=_number("CAREPATH_WEBHOOK_BACKOFF_SECONDS", 10.0)),
        backoff_cap=timedelta(seconds=_number("CAREPATH_WEBHOOK_BACKOFF_CAP_SECONDS", 3600.0)),
        retry_for=timedelta(hours=_number("CAREPATH_WEBHOOK_RETRY_HOURS", 24.0)),
        batch=int(_number("CAREPATH_WEBHOOK_BATCH", 8, integer=True)),
        addresses=address_policy(),
    )


def delivery_worker(factory: SqlUnitOfWorkFactory) -> DeliveryWorker:
    """The webhook sender of a scheduler on ``factory`` (secrets under its audit key)."""
    return DeliveryWorker(factory, factory.audit_key, policy_from_env(), allowed=target_refusal)


def poll_seconds() -> float:
    """How often a scheduler looks for messages to send (``CAREPATH_WEBHOOK_POLL_SECONDS``, 1)."""
    return _number("CAREPATH_WEBHOOK_POLL_SECONDS", 1.0)


def _number(name: str, default: float, *, integer: bool = False) -> float:
    from carepath.settings import SettingsError

    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = -1
    if not 0 < value < float("inf"):
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{name}: got {text!r}, expected {kind} > 0")
    return value
