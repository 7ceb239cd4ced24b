"""The chain hash computed from the key's precomputed pads is HMAC-SHA256 exactly (RFC 2104):
for keys of every length the standard library's ``hmac`` treats differently (shorter than the
block, exactly the block, longer, which is hashed first), and payloads from empty to large."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pathway.audit import GENESIS, AuditKey


@pytest.mark.parametrize("length", [32, 63, 64, 65, 200])
@pytest.mark.parametrize("payload", [b"", b"{}", b"x" * 2400, bytes(range(256)) * 40])
def test_the_chain_hash_is_hmac_sha256_of_the_previous_hash_and_the_payload(
    length: int, payload: bytes
) -> None:
    secret = bytes((7 * i + 3) % 256 for i in range(length))
    key = AuditKey(secret)
    for prev in (GENESIS, "ab" * 32):
        expected = hmac.new(secret, prev.encode() + payload, hashlib.sha256).hexdigest()
        assert key.chain_hash(prev, payload) == expected


def test_hashing_an_entry_leaves_the_key_fit_for_the_next() -> None:
    key = AuditKey(b"k" * 32)
    first = key.chain_hash(GENESIS, b"one")
    key.chain_hash(GENESIS, b"two")
    assert key.chain_hash(GENESIS, b"one") == first
