"""How ``replay --database`` verifies what it stored, and how it splits a cohort into chunks:
a chunk's chains read back in two statements (``storage.bulk_load.stored_chains``, the same
rows as one episode at a time, on both databases), each checked against the chain the replay
decided, whose links ``entry_for`` sealed (no HMAC computed again) — or, when that chain does
not link up as sealed, every stored entry hashed again; and the chunk sizes the workers take."""

from __future__ import annotations

from typing import Any

import pytest

from carepath.replay import decided as decided_module
from carepath.replay import grouped
from carepath.replay.grouped import chunk_sizes, replay_grouped
from carepath.replay.scenario import load_scenario
from pathway.audit import AuditKey
from storage.bulk_load import stored_chains
from storage.unit_of_work import uow_factory
from tests.support.episode_driver import DEFS
from tests.support.protocol import SCENARIO_DIR

L1_L2 = [
    s for s in (load_scenario(p) for p in sorted(SCENARIO_DIR.glob("*.json"))) if s.pathway is None
][:6]


def test_a_chunks_chains_read_at_once_are_those_read_one_episode_at_a_time(
    database_url: str,
) -> None:
    factory = uow_factory(database_url)
    got = replay_grouped(L1_L2, DEFS, factory)
    assert all(r.output["audit_verified"] for r in got)
    held = factory.connections.take()
    try:
        backend, db = factory.connections.backend, held[1]
        ids = [row[0] for row in db.execute(backend.queries.episode_ids, {}).fetchall()]
        assert len(ids) >= len(L1_L2)
        at_once = stored_chains(backend, db, [*ids, "no-such-episode"])
        for episode_id in ids:
            q = backend.queries
            rows = db.execute(q.audit_records, {"id": episode_id}).fetchall()
            head = tuple(db.execute(q.episode_head, {"id": episode_id}).fetchone())
            assert rows
            assert [tuple(r) for r in at_once[episode_id][0]] == [tuple(r) for r in rows]
            assert at_once[episode_id][1] == head
        assert at_once["no-such-episode"] == ([], None)
        assert stored_chains(backend, db, []) == {}
    finally:
        factory.connections.give(held)
    factory.dispose()


def hashes_while_verifying(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many HMACs the writer's check of the stored chains computes (the replay's own,
    while deciding, are not counted)."""
    counted = [0]
    verifying = [False]
    real_hash, real_verify = AuditKey.chain_hash, grouped._verify_all

    def chain_hash(self: AuditKey, prev: str, payload: bytes) -> str:
        counted[0] += verifying[0]
        return real_hash(self, prev, payload)

    def verify_all(*args: Any) -> None:
        verifying[0] = True
        try:
            real_verify(*args)
        finally:
            verifying[0] = False

    monkeypatch.setattr(AuditKey, "chain_hash", chain_hash)
    monkeypatch.setattr(grouped, "_verify_all", verify_all)
    return counted


def test_stored_rows_equal_to_a_sealed_chain_are_verified_without_hashing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted = hashes_while_verifying(monkeypatch)
    factory = uow_factory("sqlite://")
    got = replay_grouped(L1_L2[:3], DEFS, factory)
    assert [r.output["audit_verified"] for r in got] == [True] * 3
    assert counted[0] == 0
    factory.dispose()


def test_a_chain_that_does_not_link_up_as_sealed_has_every_stored_entry_hashed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NotLinked:
        ok = False

    monkeypatch.setattr(decided_module, "verify_chain", lambda *a, **k: NotLinked())
    counted = hashes_while_verifying(monkeypatch)
    factory = uow_factory("sqlite://")
    got = replay_grouped(L1_L2[:3], DEFS, factory)
    assert [r.output["audit_verified"] for r in got] == [True] * 3  # the stored rows do
    assert counted[0] >= 3  # each chain's entries, hashed from the stored payloads
    factory.dispose()


def test_a_stored_hash_that_was_not_written_is_not_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = grouped.stored_chains

    def last_hash_edited(*args: Any) -> Any:
        chains = real(*args)
        for episode_id, (rows, head) in chains.items():
            edited = list(rows[-1])
            edited[11] = "0" * 64
            chains[episode_id] = ([*rows[:-1], tuple(edited)], (head[0], "0" * 64))
        return chains

    monkeypatch.setattr(grouped, "stored_chains", last_hash_edited)
    factory = uow_factory("sqlite://")
    got = replay_grouped(L1_L2[:2], DEFS, factory)
    assert [r.output["audit_verified"] for r in got] == [False, False]
    factory.dispose()


@pytest.mark.parametrize("total", [1, 5, 199, 200, 2_000, 10_001])
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_chunk_sizes_cover_the_cohort_once_in_order(total: int, workers: int) -> None:
    sizes = chunk_sizes(total, grouped.PER_TRANSACTION, workers)
    assert sum(sizes) == total and all(sizes)
    assert max(sizes) <= grouped.PER_TRANSACTION


def test_one_process_writes_chunks_of_per_transaction() -> None:
    assert chunk_sizes(1_000, 250, 1) == [250, 250, 250, 250]
    assert chunk_sizes(600, 250, 1) == [250, 250, 100]


def test_workers_begin_with_a_short_chunk_and_end_with_a_shrinking_tail() -> None:
    sizes = chunk_sizes(2_000, 250, 2)
    assert sizes[0] == grouped.TAIL_CHUNK < sizes[1] == 250
    tail = sizes[sizes.index(max(sizes)) :]
    assert tail == sorted(tail, reverse=True)
    assert all(size >= grouped.TAIL_CHUNK for size in sizes[:-1])
    assert len(sizes) >= grouped.CHUNKS_PER_WORKER * 2
