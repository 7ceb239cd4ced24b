"""Verifying a chain ``entry_for`` just made hashes nothing again, and nothing else is trusted.

A record still holding the very key, previous hash, payload and hash objects ``entry_for``
hashed is verified from those (an in-memory replay's chain: one pass, no second HMAC); any
record read back, replaced, reassigned or checked under another key is recomputed, so every
tamper is still named at its entry.
"""

from __future__ import annotations

import dataclasses

import pytest

from pathway.audit import AuditKey, AuditRecord, verify_chain
from pathway.compiled import compiled_modules
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork
from tests.support.episode_driver import in_care

KEY = AuditKey(bytes(range(32)))


def chain() -> tuple[list[AuditRecord], tuple[int, str]]:
    store = InMemoryStore(audit_key=KEY)
    course = in_care(lambda: InMemoryUnitOfWork(store), "ep-1")
    for d, pain in ((2, 7), (3, 6), (4, 5)):
        course.observe({"pain_score": pain}, d)
    episode = store.episodes["ep-1"]
    return list(store.audit["ep-1"]), (episode.version, episode.audit_hash)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the HMACs ``verify_chain`` computes (after the chain was written)."""
    if "pathway.audit" in compiled_modules():  # compiled, it calls chain_hash directly
        pytest.skip("a compiled pathway.audit cannot be patched")
    calls = [0]
    real = AuditKey.chain_hash

    def counted(self: AuditKey, prev: str, payload: bytes) -> str:
        calls[0] += 1
        return real(self, prev, payload)

    monkeypatch.setattr(AuditKey, "chain_hash", counted)
    return calls


def test_an_unaltered_in_memory_chain_verifies_without_hashing_again(hashed: list[int]) -> None:
    records, head = chain()
    hashed[0] = 0
    check = verify_chain("ep-1", records, head, key=KEY, columns=False)
    assert (check.ok, check.entries, check.head_hash) == (True, 5, head[1])
    assert hashed[0] == 0


def test_a_record_read_back_or_copied_is_hashed_again(hashed: list[int]) -> None:
    records, head = chain()
    copies = [dataclasses.replace(r) for r in records]  # as a store reads them: no seal
    hashed[0] = 0
    assert verify_chain("ep-1", copies, head, key=KEY).ok
    assert hashed[0] == 5


@pytest.mark.parametrize("field", ["payload", "hash", "prev_hash"])
def test_a_sealed_record_altered_in_place_is_named_at_its_entry(field: str) -> None:
    records, head = chain()
    rec = records[2]
    if field == "payload":
        rec.payload = rec.payload.replace(b'"pain_score":7', b'"pain_score":2')
    elif field == "hash":
        rec.hash = "0" * 64
    else:
        rec.prev_hash = "f" * 64
    check = verify_chain("ep-1", records, head, key=KEY, columns=False)
    assert (check.ok, check.bad_seq) == (False, 3)


def test_a_sealed_payload_reassigned_an_equal_copy_is_recomputed_and_still_verifies() -> None:
    records, head = chain()
    records[2].payload = bytes(bytearray(records[2].payload))  # equal bytes, another object
    assert verify_chain("ep-1", records, head, key=KEY, columns=False).ok


def test_a_sealed_chain_checked_under_another_key_is_named_at_its_first_entry() -> None:
    records, head = chain()
    check = verify_chain("ep-1", records, head, key=AuditKey(b"\xff" * 32), columns=False)
    assert (check.ok, check.bad_seq) == (False, 1)


def test_a_key_with_the_same_secret_but_another_object_recomputes(hashed: list[int]) -> None:
    records, head = chain()
    hashed[0] = 0
    assert verify_chain("ep-1", records, head, key=AuditKey(bytes(range(32))), columns=False).ok
    assert hashed[0] == 5
