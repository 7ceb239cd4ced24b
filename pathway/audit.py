"""The audit log: one append-only entry per decision, chained per episode with a keyed hash.

An entry's ``payload`` is the canonical JSON (sorted keys, no spaces) of everything the decision
did and why: actor, both times, definition version, event id, facts recorded, transitions,
rules fired with evidence and citations, refusals, timers and tasks. ``hash`` is
HMAC-SHA256(key, previous hash + payload), under an ``AuditKey`` the database does not hold
(the composition root hands it in), so that whoever can write the database cannot forge or
recompute a chain. Every stored column of an entry is either the payload or the chain link, or
is checked against the payload by ``verify_chain``. Entry ``seq`` of an episode equals the
episode version it produced, so a chain is complete when its seqs run 1..n with no gap; an
``anchor`` (a signed checkpoint's head) catches a chain cut short or rewound past it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from pathway.appointments import appointment_body
from pathway.model import Decision

GENESIS = "0" * 64
_BLOCK = 64  # SHA-256's block: HMAC's key pads (RFC 2104)
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
KEY_BYTES = 32  # an HMAC-SHA256 key of the hash's own size


class AuditKey:
    """The secret of the keyed chain. ``id`` names it without revealing it (checkpoints record
    which key their chains were under, so that a wrong key is told apart from a forgery)."""

    __slots__ = ("_inner", "_outer", "_secret", "id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"an audit key needs at least {KEY_BYTES} bytes, got {len(secret)}")
        self._secret = secret
        padded = (secret if len(secret) <= _BLOCK else hashlib.sha256(secret).digest()).ljust(
            _BLOCK, b"\0"
        )
        self._inner = hashlib.sha256(padded.translate(_IPAD))
        self._outer = hashlib.sha256(padded.translate(_OPAD))
        self.id = hmac.new(secret, b"carepath audit key id", hashlib.sha256).hexdigest()[:16]

    @classmethod
    def ephemeral(cls) -> AuditKey:
        """A random key for this process only: for in-memory runs that nothing verifies later."""
        return cls(secrets.token_bytes(KEY_BYTES))

    def chain_hash(self, prev_hash: str, payload: bytes) -> str:
        """HMAC-SHA256(key, previous hash + payload), hex (RFC 2104, as ``hmac`` computes it),
        from the two hash states the key pads leave, hashed once when the key is made: a
        copy of each per entry costs half of ``hmac.digest``, which sets the key up again on
        every call (2–3 against 4.5–6 µs for an entry of 2.4 KB, measured here)."""
        inner = self._inner.copy()
        inner.update(prev_hash.encode() + payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def derive(self, purpose: bytes, length: int = 32) -> bytes:
        """A key for another purpose (HKDF-SHA256 of this secret, ``purpose`` as its info), so
        that a deployment has one secret to keep, and no derived key reveals it or another."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(hashes.SHA256(), length, salt=None, info=purpose).derive(self._secret)

    def __repr__(self) -> str:
        return f"AuditKey(id={self.id})"  # never the secret

    def __reduce__(self) -> tuple[type[AuditKey], tuple[bytes]]:
        return (AuditKey, (self._secret,))  # to worker processes of a parallel replay

    def __copy__(self) -> AuditKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> AuditKey:
        return self  # immutable


_process_key: AuditKey | None = None


def use_process_key(key: AuditKey) -> None:
    """Make ``key`` this process's default key: for a test suite whose processes share one."""
    global _process_key
    _process_key = key


def process_key() -> AuditKey:
    """This process's random key (made once): what a unit of work uses when none is given."""
    global _process_key
    if _process_key is None:
        _process_key = AuditKey.ephemeral()
    return _process_key


@dataclass(slots=True)
class AuditRecord:
    """One stored audit entry: the indexed columns, the canonical payload and its chain link."""

    episode_id: str
    seq: int
    event_id: str
    kind: str
    actor: str
    at: datetime
    recorded_at: datetime
    state_from: str | None
    state_to: str
    payload: bytes
    prev_hash: str
    hash: str
    # Set by ``entry_for`` only: (key, prev_hash, payload, hash), the very objects it hashed. A
    # record whose three fields are still those objects under the verifier's key needs no
    # recomputed HMAC (``_sealed``); read back, replaced or reassigned, it is recomputed.
    sealed: tuple[AuditKey, str, bytes, str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def body(self) -> dict[str, Any]:
        return orjson.loads(self.payload)


@dataclass(slots=True)
class ChainCheck:
    """Result of verifying one episode's chain: the first bad entry, if any, and why."""

    episode_id: str
    ok: bool
    entries: int
    bad_seq: int | None = None
    problem: str | None = None
    head_hash: str | None = None  # the last entry's hash, when the chain is intact


def entry_for(
    decision: Decision,
    recorded_at: datetime,
    extra: dict[str, Any] | None = None,
    *,
    key: AuditKey,
) -> AuditRecord:
    """Build the audit entry of a decision, chained under ``key`` to the episode's current head;
    ``extra`` adds sections of its own (a migration's changes) to the hashed payload."""
    ep, event = decision.episode, decision.event
    before = decision.episode_before
    state_from = before.state if before is not None else None
    cancelled, closed = decision.timers_cancelled, decision.tasks_closed
    body: dict[str, Any] = {
        "episode_id": ep.id,
        "seq": ep.version,
        "event_id": event.event_id,
        "kind": event.kind,
        "actor": event.actor,
        "at": event.at,
        "recorded_at": recorded_at,
        "definition_version": ep.definition_version,
        "state_from": state_from,
        "state_to": ep.state,
        "transitions": decision.transitions,
        "rules": decision.fired,
        "refused": decision.refused,
        "timers_set": decision.timers_set,
        "timers_cancelled": [t.key for t in cancelled] if cancelled else [],
        "tasks_opened": decision.tasks_opened,
        "tasks_closed": [{"key": t.key, "status": t.status, "note": t.note} for t in closed]
        if closed
        else [],
    }
    if decision.observation is not None:
        body["facts"] = decision.observation.facts
        body["source"] = decision.observation.source
    if decision.timer_fired is not None:
        body["timer"] = decision.timer_fired.key
        body["lateness_seconds"] = decision.lateness_seconds
    if decision.timers_retimed:  # a corrected date fact moved these
        body["timers_retimed"] = [
            {"timer": old.key, "as": new.key, "from": old.due_at, "to": new.due_at}
            for old, new in decision.timers_retimed
        ]
    if decision.links_added:
        body["links"] = decision.links_added
    if (
        before is None
    ):  # the opening entry also names the patient, so the log alone rebuilds the row
        body["patient_ref"] = ep.patient_ref
        body["label"] = ep.label
    if event.kind == "assign":  # who owns it now (None: unassigned), so the log rebuilds it
        body["owner"] = ep.owner
    reason = getattr(event, "reason", None) or getattr(event, "action", None)
    if reason:
        body["reason"] = reason
    if event.kind == "booking":  # the event's own contract: action, window, on, reason
        on = getattr(event, "on", None)
        body.update(
            action=getattr(event, "action", None), window=getattr(event, "window", None),
            on=on.isoformat() if on is not None else None, reason=getattr(event, "reason", None),
        )  # fmt: skip
    if ep.appointment != (before.appointment if before else None):  # so the log rebuilds it
        body["appointment"] = appointment_body(ep.appointment)
    if getattr(event, "because_of", None):
        body["because_of"] = event.because_of  # type: ignore[attr-defined]
    if extra:
        body.update(extra)
    payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    prev = before.audit_hash if before else GENESIS
    link = key.chain_hash(prev, payload)
    record = AuditRecord(  # positional, in field order: one per decision
        ep.id, ep.version, event.event_id, event.kind, event.actor, event.at, recorded_at,
        state_from, ep.state, payload, prev, link,
    )  # fmt: skip
    record.sealed = (key, prev, payload, link)
    return record


def _sealed(rec: AuditRecord, key: AuditKey) -> bool:
    """Whether ``rec`` still holds the very objects ``entry_for`` hashed under ``key``: its
    hash is then HMAC(key, prev_hash + payload) by construction (str and bytes are immutable),
    so verifying it again would recompute the same bytes (an in-memory replay's chain)."""
    seal = rec.sealed
    return (
        seal is not None
        and seal[0] is key
        and seal[1] is rec.prev_hash
        and seal[2] is rec.payload
        and seal[3] is rec.hash
    )


def chain_hash(key: AuditKey, prev_hash: str, payload: bytes) -> str:
    """The keyed link of an entry: HMAC-SHA256(key, previous hash + payload), hex."""
    return key.chain_hash(prev_hash, payload)


def plain_chain_hash(prev_hash: str, payload: bytes) -> str:
    """The unkeyed link that chains written before keyed chains used: sha256(prev + payload)."""
    return hashlib.sha256(prev_hash.encode() + payload).hexdigest()


def verify_chain(
    episode_id: str,
    records: Iterable[AuditRecord],
    head: tuple[int, str] | None = None,
    *,
    key: AuditKey,
    anchor: tuple[int, str] | None = None,
    columns: bool = True,
) -> ChainCheck:
    """Check the chain under ``key`` in seq order (each link recomputed, but for records
    ``entry_for`` sealed here); name the first entry that is missing, moved or altered.

    ``head`` is the episode row's (version, audit hash): a chain cut short at its end is caught
    because it no longer reaches the head the episode records. ``anchor`` is a signed
    checkpoint's (seq, hash) of this chain: the chain must still hold that hash at that seq, so
    a chain cut short or rewound (its episode row with it), or recomputed, is caught too.
    ``columns=False`` skips comparing the columns with the payload, for records that were never
    stored (an in-memory replay's, whose columns ``entry_for`` set from the same decision).
    A record ``entry_for`` made in this process and never altered is not hashed again: its
    link is the one ``entry_for`` computed from these same bytes (``_sealed``), so verifying
    an in-memory replay is one pass over links, not a second HMAC of every entry.
    """
    prev, n = GENESIS, 0
    anchored = anchor is None
    for n, rec in enumerate(records, start=1):
        if rec.seq != n:
            return ChainCheck(
                episode_id,
                False,
                n,
                rec.seq,
                f"entry {rec.seq} found where entry {n} was expected (missing or reordered)",
            )
        if rec.prev_hash != prev:
            return ChainCheck(
                episode_id,
                False,
                n,
                n,
                f"entry {n} does not link to entry {n - 1} (previous hash differs)",
            )
        if not _sealed(rec, key) and key.chain_hash(prev, rec.payload) != rec.hash:
            return ChainCheck(episode_id, False, n, n, _altered(n, prev, rec))
        column = _column_mismatch(rec, episode_id, n) if columns else None
        if column is not None:
            return ChainCheck(
                episode_id,
                False,
                n,
                n,
                f"entry {n}: its {column} column disagrees with its hashed content",
            )
        prev = rec.hash
        if not anchored and n == anchor[0]:  # type: ignore[index]
            if rec.hash != anchor[1]:  # type: ignore[index]
                return ChainCheck(
                    episode_id,
                    False,
                    n,
                    n,
                    f"entry {n} differs from the checkpoint's (the chain was rewritten)",
                )
            anchored = True
    if not anchored:
        return ChainCheck(
            episode_id,
            False,
            n,
            n + 1,
            f"the chain ends at entry {n} but the checkpoint saw entry {anchor[0]}"  # type: ignore[index]
            " (cut short or rewound)",
        )
    if head is not None and (n, prev) != head:
        return ChainCheck(
            episode_id,
            False,
            n,
            n + 1,
            f"entry {n + 1} is missing: the episode is at version {head[0]} but the chain ends at entry {n}",
        )
    return ChainCheck(episode_id, True, n, head_hash=prev)


def _altered(n: int, prev: str, rec: AuditRecord) -> str:
    """Why entry ``n``'s hash is wrong: a plain sha256 is told apart (a forgery, or a chain
    written before keyed chains), otherwise the content or the key differs."""
    if plain_chain_hash(prev, rec.payload) == rec.hash:
        return (
            f"entry {n} is not keyed: its hash is a plain sha256 of its content, not the keyed "
            "hash (forged, or written before chains were keyed)"
        )
    return f"entry {n} was altered (its hash does not match its content under the audit key)"


def _column_mismatch(rec: AuditRecord, episode_id: str, seq: int) -> str | None:
    """The first stored column that does not say what the hashed payload says, if any.

    The payload is parsed (orjson: a few µs) and each top-level field compared with its column;
    times as instants, so that only a changed time is a mismatch, not its spelling.
    """
    if rec.episode_id != episode_id:
        return "episode_id"
    body = orjson.loads(rec.payload)
    if type(body) is not dict:
        return "payload"
    get = body.get
    for name, value in (
        ("seq", seq),
        ("episode_id", episode_id),
        ("state_to", rec.state_to),
        ("event_id", rec.event_id),
        ("kind", rec.kind),
        ("actor", rec.actor),
        ("state_from", rec.state_from),
    ):
        if get(name, _ABSENT) != value or (name == "seq" and type(get(name)) is not int):
            return name
    for name, at in (("at", rec.at), ("recorded_at", rec.recorded_at)):
        if not _same_time(get(name), at):
            return name
    return None


_ABSENT = object()


def _same_time(text: Any, value: datetime) -> bool:
    try:
        return isinstance(text, str) and datetime.fromisoformat(text) == value
    except (ValueError, TypeError):  # TypeError: a naive time compared with an aware one
        return False
