"""The audit log: one append-only entry per decision, chained per episode with sha256.

An entry's ``payload`` is the canonical JSON (sorted keys, no spaces) of everything the decision
did and why: actor, both times, definition version, event id, facts recorded, transitions,
rules fired with evidence and citations, refusals, timers and tasks. ``hash`` is
sha256(previous hash + payload). Entry ``seq`` of an episode equals the episode version it
produced, so a chain is complete when its seqs run 1..n with no gap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from pathway.model import Decision

GENESIS = "0" * 64


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


def entry_for(
    decision: Decision, recorded_at: datetime, extra: dict[str, Any] | None = None
) -> AuditRecord:
    """Build the audit entry of a decision, chained to the episode's current head; ``extra``
    adds sections of its own (a migration's changes) to the hashed payload."""
    ep, event = decision.episode, decision.event
    before = decision.episode_before
    body: dict[str, Any] = {
        "episode_id": ep.id,
        "seq": ep.version,
        "event_id": event.event_id,
        "kind": event.kind,
        "actor": event.actor,
        "at": event.at,
        "recorded_at": recorded_at,
        "definition_version": ep.definition_version,
        "state_from": before.state if before else None,
        "state_to": ep.state,
        "transitions": decision.transitions,
        "rules": decision.fired,
        "refused": decision.refused,
        "timers_set": decision.timers_set,
        "timers_cancelled": [t.key for t in decision.timers_cancelled],
        "tasks_opened": decision.tasks_opened,
        "tasks_closed": [
            {"key": t.key, "status": t.status, "note": t.note} for t in decision.tasks_closed
        ],
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
    reason = getattr(event, "reason", None) or getattr(event, "action", None)
    if reason:
        body["reason"] = reason
    if getattr(event, "because_of", None):
        body["because_of"] = event.because_of  # type: ignore[attr-defined]
    if extra:
        body.update(extra)
    payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    prev = before.audit_hash if before else GENESIS
    return AuditRecord(
        episode_id=ep.id,
        seq=ep.version,
        event_id=event.event_id,
        kind=event.kind,
        actor=event.actor,
        at=event.at,
        recorded_at=recorded_at,
        state_from=body["state_from"],
        state_to=ep.state,
        payload=payload,
        prev_hash=prev,
        hash=chain_hash(prev, payload),
    )


def chain_hash(prev_hash: str, payload: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + payload).hexdigest()


def verify_chain(
    episode_id: str, records: Iterable[AuditRecord], head: tuple[int, str] | None = None
) -> ChainCheck:
    """Recompute the chain in seq order; name the first entry that is missing, moved or altered.

    ``head`` is the episode row's (version, audit hash): a chain cut short at its end is caught
    because it no longer reaches the head the episode records.
    """
    prev, n = GENESIS, 0
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
        if chain_hash(prev, rec.payload) != rec.hash:
            return ChainCheck(
                episode_id,
                False,
                n,
                n,
                f"entry {n} was altered (its hash does not match its content)",
            )
        if not _columns_match(rec, episode_id, n):
            return ChainCheck(
                episode_id, False, n, n, f"entry {n}: its columns disagree with its hashed content"
            )
        prev = rec.hash
    if head is not None and (n, prev) != head:
        return ChainCheck(
            episode_id,
            False,
            n,
            n + 1,
            f"entry {n + 1} is missing: the episode is at version {head[0]} but the chain ends at entry {n}",
        )
    return ChainCheck(episode_id, True, n)


def _columns_match(rec: AuditRecord, episode_id: str, seq: int) -> bool:
    """The indexed columns say what the hashed payload says (canonical JSON: exact substrings)."""
    p = rec.payload
    return (
        rec.episode_id == episode_id
        and b'"seq":%d,' % seq in p
        and b'"episode_id":%b,' % _json_string(episode_id) in p
        and b'"state_to":%b,' % _json_string(rec.state_to) in p
        and b'"event_id":%b,' % _json_string(rec.event_id) in p
    )


def _json_string(value: str) -> bytes:
    """The string as canonical JSON writes it; plain ids skip the encoder."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return b'"%b"' % value.encode()
    return orjson.dumps(value)
