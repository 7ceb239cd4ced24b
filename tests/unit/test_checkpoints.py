"""Signed checkpoints: written whole, outside the database, refused when altered or signed by
another key; and written by the scheduler on its own schedule."""

from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from carepath.checkpoints import (
    Checkpoint,
    CheckpointError,
    Signer,
    database_identity,
    latest_checkpoint,
    read_checkpoint,
    write_checkpoint,
)

T = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
DB = "sqlite:////srv/carepath/carepath.db"


def checkpoint(at: datetime = T, episodes: int = 2) -> Checkpoint:
    return Checkpoint(
        DB, at, "0123456789abcdef", episodes, {"ep-1": (5, "a" * 64), "ep-2": (2, "b" * 64)}
    )


def test_a_checkpoint_round_trips_and_the_newest_is_found(tmp_path: Path) -> None:
    signer = Signer(tmp_path / "config")
    assert stat.S_IMODE((tmp_path / "config" / "checkpoint-signing.key").stat().st_mode) == 0o600
    assert (
        (tmp_path / "config" / "checkpoint-signing.pub")
        .read_bytes()
        .startswith(b"-----BEGIN PUBLIC KEY")
    )
    write_checkpoint(checkpoint(), signer, tmp_path / "cps")
    newer = write_checkpoint(checkpoint(T.replace(hour=10), 3), signer, tmp_path / "cps")
    write_checkpoint(
        Checkpoint("sqlite:////other.db", T.replace(hour=11), "k", 9, {}), signer, tmp_path / "cps"
    )
    found = latest_checkpoint(tmp_path / "cps", DB, signer)
    assert found is not None and found.path == newer
    assert (found.at, found.episodes, found.heads["ep-1"]) == (T.replace(hour=10), 3, (5, "a" * 64))
    assert latest_checkpoint(tmp_path / "none", DB, signer) is None


def test_writing_the_same_checkpoint_twice_writes_one_file(tmp_path: Path) -> None:
    signer = Signer(tmp_path)
    assert write_checkpoint(checkpoint(), signer, tmp_path / "cps") == write_checkpoint(
        checkpoint(), signer, tmp_path / "cps"
    )
    assert len(list((tmp_path / "cps").iterdir())) == 1


def test_an_explicit_file_name_is_used_as_is(tmp_path: Path) -> None:
    signer = Signer(tmp_path)
    path = write_checkpoint(checkpoint(), signer, tmp_path / "offsite" / "today.json")
    assert path == tmp_path / "offsite" / "today.json"
    assert read_checkpoint(path, signer, DB).episodes == 2


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(episodes=1),
        lambda c: c.update(heads=[["ep-1", 5, "a" * 64]]),
        lambda c: c.update(at="2027-01-01T00:00:00+00:00"),
    ],
    ids=["count", "heads", "time"],
)
def test_an_edited_checkpoint_fails_its_signature(tmp_path: Path, edit) -> None:  # noqa: ANN001
    signer = Signer(tmp_path)
    path = write_checkpoint(checkpoint(), signer, tmp_path / "cps")
    document = orjson.loads(path.read_bytes())
    edit(document["checkpoint"])
    path.write_bytes(orjson.dumps(document))
    with pytest.raises(CheckpointError, match="its signature does not verify"):
        latest_checkpoint(tmp_path / "cps", DB, signer)


def test_a_checkpoint_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    path = write_checkpoint(checkpoint(), Signer(tmp_path / "intruder"), tmp_path / "cps")
    with pytest.raises(CheckpointError, match="not signed by this configuration"):
        read_checkpoint(path, Signer(tmp_path / "ours"))


def test_the_database_identity_has_no_password() -> None:
    identity = database_identity("postgresql+psycopg://app:secret@db.example:5433/carepath")
    assert identity == "postgresql://app@db.example:5433/carepath"
    assert database_identity("sqlite:///relative.db").startswith("sqlite:////")


class IdleWorker:
    def sweep(self, now: datetime) -> int:
        return 0

    def heartbeat(self, now: datetime) -> None: ...

    def stop(self) -> None: ...

    def close(self, now: datetime) -> None: ...


def test_the_scheduler_writes_checkpoints_on_its_interval() -> None:
    from scheduler.service import SchedulerService

    written = threading.Event()
    times: list[datetime] = []

    def write(now: datetime) -> str:
        times.append(now)
        if len(times) >= 2:
            written.set()
        return "checkpoint.json"

    service = SchedulerService(IdleWorker(), interval=60, checkpoint=write, checkpoint_every=0.05)
    service.start()
    try:
        assert written.wait(60), times  # a hang guard
    finally:
        service.stop()
    assert times[0].tzinfo is not None


def test_a_failing_checkpoint_does_not_stop_the_scheduler(caplog: pytest.LogCaptureFixture) -> None:
    from scheduler.service import SchedulerService

    calls = threading.Event()

    def broken(now: datetime) -> None:
        calls.set()
        raise CheckpointError("not checkpointing a broken audit log: episode ep-1: ...")

    service = SchedulerService(IdleWorker(), interval=60, checkpoint=broken, checkpoint_every=0.05)
    service.start()
    try:
        assert calls.wait(60)  # a hang guard
    finally:
        service.stop()
    assert "audit checkpoint failed" in caplog.text


def test_a_chain_whose_episode_row_is_gone_is_named() -> None:
    """On SQLite without foreign keys, an episode row can go while its audit entries stay."""
    from carepath.audit_verify import verify_database
    from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork
    from tests.support.episode_driver import in_care

    store = InMemoryStore()
    in_care(lambda: InMemoryUnitOfWork(store), "ep-1")
    in_care(lambda: InMemoryUnitOfWork(store), "ep-2")
    assert verify_database(InMemoryUnitOfWork(store), None).ok
    del store.episodes["ep-2"]
    report = verify_database(InMemoryUnitOfWork(store), None)
    assert [(f.episode_id, f.problem) for f in report.findings] == [
        ("ep-2", "it has audit entries but no episode row (deleted)")
    ]
