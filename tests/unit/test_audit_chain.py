"""The keyed chain, pinned: a known-hash vector, relinking under the wrong hash, every column.

``hash`` = HMAC-SHA256(key, prev_hash + payload). Replacing it by sha256(payload), by
sha256(prev_hash + payload), or by an HMAC without ``prev_hash`` fails the vector; a forger who
rewrites entry k and relinks entry k+1 without the key is named at entry k.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from pathway.audit import AuditKey, AuditRecord, entry_for, plain_chain_hash, verify_chain
from pathway.model import Close, Decision, Episode
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork
from tests.support.episode_driver import in_care

SECRET = bytes(range(32))
KEY = AuditKey(SECRET)
T = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
VECTOR_PAYLOAD = (
    b'{"actor":"coordinator-1","at":"2026-03-01T09:30:00+00:00","definition_version":"vector@1",'
    b'"episode_id":"ep-vector","event_id":"ev-close-1","kind":"close","reason":"declined",'
    b'"recorded_at":"2026-03-01T09:31:00+00:00","refused":[],"rules":[],"seq":2,'
    b'"state_from":"intake","state_to":"closed","tasks_closed":[],"tasks_opened":[],'
    b'"timers_cancelled":[],"timers_set":[],"transitions":[]}'
)
VECTOR_HASH = "fe932a6e33f3900f833f37419840b466ca0f31c021db3af553e4eaa8322c58a3"


def vector_entry() -> AuditRecord:
    before = Episode(
        "ep-vector", "vector@1", "intake", T, T, version=1, audit_hash="ab" * 32
    )  # a fixed previous head
    after = Episode("ep-vector", "vector@1", "closed", T, T, version=2, closed_reason="declined")
    decision = Decision(Close("ev-close-1", T, "coordinator-1", "declined"), before, after)
    return entry_for(decision, T + timedelta(minutes=1), key=KEY)


def test_a_fixed_decision_under_a_fixed_key_gives_the_pinned_payload_and_hash() -> None:
    entry = vector_entry()
    assert entry.payload == VECTOR_PAYLOAD
    assert entry.prev_hash == "ab" * 32
    assert entry.hash == VECTOR_HASH
    # the same, computed without carepath: HMAC-SHA256(key, prev_hash + payload)
    mac = hmac.new(SECRET, ("ab" * 32).encode() + VECTOR_PAYLOAD, hashlib.sha256)
    assert mac.hexdigest() == VECTOR_HASH
    assert plain_chain_hash("ab" * 32, VECTOR_PAYLOAD) != VECTOR_HASH


def test_the_key_id_names_the_key_without_revealing_it() -> None:
    assert KEY.id == hmac.new(SECRET, b"carepath audit key id", hashlib.sha256).hexdigest()[:16]
    assert SECRET.hex() not in repr(KEY) and KEY.id in repr(KEY)
    assert AuditKey(bytes(range(1, 33))).id != KEY.id


def test_a_key_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes, got 16"):
        AuditKey(bytes(16))


def chain() -> tuple[list[AuditRecord], tuple[int, str]]:
    store = InMemoryStore(audit_key=KEY)
    course = in_care(lambda: InMemoryUnitOfWork(store), "ep-1")
    for d, pain in ((2, 7), (3, 6), (4, 5)):
        course.observe({"pain_score": pain}, d)  # entries 1..5
    episode = store.episodes["ep-1"]
    return list(store.audit["ep-1"]), (episode.version, episode.audit_hash)


def test_an_untouched_keyed_chain_verifies_and_reports_its_head() -> None:
    records, head = chain()
    check = verify_chain("ep-1", records, head, key=KEY)
    assert (check.ok, check.entries, check.head_hash) == (True, 5, head[1])


def test_the_same_chain_under_another_key_is_named_at_its_first_entry() -> None:
    records, head = chain()
    check = verify_chain("ep-1", records, head, key=AuditKey(bytes(range(1, 33))))
    assert (check.ok, check.bad_seq) == (False, 1)
    assert "entry 1 was altered" in check.problem and "audit key" in check.problem


def relinked(records: list[AuditRecord], k: int, link) -> list[AuditRecord]:  # noqa: ANN001
    """Entry k rewritten and k+1..n relinked with ``link(prev, payload)``: the whole tail."""
    out = list(records)
    forged = out[k - 1].payload.replace(b'"pain_score":6', b'"pain_score":2')
    assert forged != out[k - 1].payload
    out[k - 1] = dataclasses.replace(out[k - 1], payload=forged)
    prev = out[k - 2].hash
    for i in range(k - 1, len(out)):
        out[i] = dataclasses.replace(out[i], prev_hash=prev, hash=link(prev, out[i].payload))
        prev = out[i].hash
    return out


WRONG = AuditKey(b"\xff" * 32)


@pytest.mark.parametrize(
    ("link", "why"),
    [
        (plain_chain_hash, "is not keyed: its hash is a plain sha256"),
        (WRONG.chain_hash, "was altered (its hash does not match its content under the audit key)"),
    ],
    ids=["plain-sha256", "hmac-under-another-key"],
)
def test_entry_k_rewritten_and_k_plus_1_relinked_is_named_at_k(link, why: str) -> None:  # noqa: ANN001
    records, (_, head_hash) = chain()
    forged = relinked(records, 4, link)
    # the episode row moved to the forged head too: only the key tells
    check = verify_chain("ep-1", forged, (5, forged[-1].hash), key=KEY)
    assert (check.ok, check.bad_seq) == (False, 4)
    assert f"entry 4 {why}" in check.problem
    assert forged[-1].hash != head_hash


def test_entry_k_relinked_with_the_right_key_is_caught_only_by_an_anchor() -> None:
    """With the key itself stolen, a recomputed chain verifies alone: a checkpoint's head
    (``anchor``) still names it."""
    records, (_, head_hash) = chain()
    forged = relinked(records, 4, KEY.chain_hash)
    assert verify_chain("ep-1", forged, (5, forged[-1].hash), key=KEY).ok
    check = verify_chain("ep-1", forged, (5, forged[-1].hash), key=KEY, anchor=(5, head_hash))
    assert (check.ok, check.bad_seq) == (False, 5)
    assert "entry 5 differs from the checkpoint's" in check.problem


def test_a_chain_shorter_than_its_anchor_is_named() -> None:
    records, head = chain()
    check = verify_chain(
        "ep-1", records[:3], (3, records[2].hash), key=KEY, anchor=(5, head[1])
    )  # rewound: last two entries deleted and the episode row moved back
    assert (check.ok, check.bad_seq) == (False, 4)
    assert "the chain ends at entry 3 but the checkpoint saw entry 5" in check.problem


COLUMNS = [
    ("actor", "someone-else"),
    ("kind", "close"),
    ("at", T - timedelta(days=400)),
    ("recorded_at", T + timedelta(days=400)),
    ("state_from", "discharged"),
    ("state_from", None),
    ("state_to", "discharged"),
    ("event_id", "ev-other"),
]


@pytest.mark.parametrize(("column", "value"), COLUMNS, ids=[f"{c}={v}" for c, v in COLUMNS])
def test_every_column_is_checked_against_the_hashed_content(column: str, value: object) -> None:
    records, head = chain()
    records[2] = dataclasses.replace(records[2], **{column: value})
    check = verify_chain("ep-1", records, head, key=KEY)
    assert (check.ok, check.bad_seq) == (False, 3)
    assert check.problem == f"entry 3: its {column} column disagrees with its hashed content"


def test_a_column_set_to_a_value_found_nested_in_the_payload_is_still_caught() -> None:
    """``"at":`` also occurs inside evidence or facts: the check then parses the payload."""
    records, head = chain()
    rec = records[2]
    body = orjson.loads(rec.payload)
    body["rules"] = [{"at": "1999-01-01T00:00:00+00:00", "actor": "someone-else"}]
    payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    store = [*records[:2], dataclasses.replace(rec, payload=payload)]
    store[2] = dataclasses.replace(store[2], hash=KEY.chain_hash(store[2].prev_hash, payload))
    assert verify_chain("ep-1", store, None, key=KEY).ok  # the nested copies change nothing
    for column, value in (
        ("at", datetime(1999, 1, 1, tzinfo=UTC)),
        ("actor", "someone-else"),
    ):
        tampered = [*store[:2], dataclasses.replace(store[2], **{column: value})]
        check = verify_chain("ep-1", tampered, None, key=KEY)
        assert check.problem == f"entry 3: its {column} column disagrees with its hashed content"
