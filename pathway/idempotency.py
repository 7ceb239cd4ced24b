"""Idempotency keys bound to who sent them and what they asked.

A key given by a caller (an API token, a CLI actor, a page session's token) is that caller's:
the command's stored event id is derived from (caller, key) (``scoped_event_id``), so another
caller's same key is another event, and nothing of one caller's outcome ever reaches another.
The first outcome is stored with the request's hash (command, episode, canonical body): the
same key with the same request replays that outcome; with a different request it is refused
(``IdempotencyKeyReused``, naming the key and the part that differs) and nothing is written.

The derived event id is what the audit log, the observation and the outcome record: it is
globally unique as event ids always were (the outcomes table's primary key), so an
observation's id still names one observation. Events without a caller (timer firings,
enrolments, replay, tests) keep their event id as given, exactly as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from pathway.errors import IdempotencyKeyReused
from pathway.model import Event
from pathway.unit_of_work import Outcome

UNHASHED = frozenset({"event_id", "actor", "at"})  # ``at`` only when the caller gave it


@dataclass(frozen=True, slots=True)
class Keyed:
    """A command sent with a caller's idempotency key: who, the key, and the request's hash."""

    caller: str
    key: str
    request_hash: str


def scoped_event_id(caller: str, key: str) -> str:
    """The event id of ``caller``'s command with ``key``: 32 hex digits, like a fresh one."""
    raw = f"idempotency\0{caller}\0{key}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:32]


def request_hash(event: Event, episode_id: str | None, *, at_given: bool) -> str:
    """sha256 of what the caller asked: the command, the episode and the canonical body (the
    clinical time too when the caller gave one; a defaulted "now" differs on every retry)."""
    body = {
        f.name: getattr(event, f.name)
        for f in dataclasses.fields(event)
        if f.name not in UNHASHED or (f.name == "at" and at_given)
    }
    # The standard library's encoder: ASCII-escaped, it takes any str (a lone surrogate too, which
    # the engine then refuses), so hashing never fails on input it has not validated yet.
    canonical = json.dumps(
        {"command": event.kind, "episode": episode_id, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def keyed(event: Event, episode_id: str | None, caller: str, *, at_given: bool) -> Keyed:
    return Keyed(caller, event.event_id, request_hash(event, episode_id, at_given=at_given))


def check_replay(prior: Outcome, request: Keyed | None, kind: str, episode_id: str | None) -> None:
    """Refuse a stored outcome for a different request under the same caller's key."""
    if request is None or prior.request_hash is None or prior.request_hash == request.request_hash:
        return
    if prior.kind != kind:
        part = "command"
    elif episode_id is not None and prior.episode_id != episode_id:
        part = "episode"
    else:
        part = "body"
    first = f"{prior.kind} on episode {prior.episode_id}"
    raise IdempotencyKeyReused(request.key, part, first, episode_id=episode_id)


def stamp(outcome: Outcome, request: Keyed | None) -> Outcome:
    """The outcome to store: with who sent the key, the key and the request's hash."""
    if request is not None:
        outcome.caller = request.caller
        outcome.idempotency_key = request.key
        outcome.request_hash = request.request_hash
    return outcome


def with_scoped_id(event: Event, caller: str) -> Event:
    """The event with its caller's key turned into the scoped event id."""
    return dataclasses.replace(event, event_id=scoped_event_id(caller, event.event_id))
