"""Tampering with the audit chain, as the database's owner could, is caught by ``audit verify``.

Each test writes two episodes under a fixed audit key, takes a signed checkpoint (``carepath
audit checkpoint``), tampers in SQL — with the append-only triggers still on where the edit
passes them (an INSERT, an UPDATE of the episode row), with them dropped where it needs that —
and runs the real ``carepath audit verify --chain-only`` (and the default run), which must exit
1 naming the episode and the kind of damage. ``KINDS`` lists them for the closing table.

Row tampering (the episode's state, facts, timers, tasks, observations against a replay of its
log) is tested beside this, in its own module; ``test_tamper.py`` pins the triggers themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from pathway.audit import AuditKey, AuditRecord, plain_chain_hash
from storage.columns import postgres_time, sqlite_time
from storage.database import create_engine_for
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory
from tests.support.episode_driver import in_care

SECRET = bytes(range(32))
KEY = AuditKey(SECRET)
OTHER_KEY = AuditKey(b"\x5a" * 32)
DROP_TRIGGERS = {
    "sqlite": ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
    "postgresql": [
        "DROP TRIGGER audit_log_no_change ON audit_log",
        "DROP TRIGGER audit_log_no_truncate ON audit_log",
    ],
}


@dataclass
class World:
    factory: SqlUnitOfWorkFactory
    config: Path
    intruder: Engine  # every right (PostgreSQL: the superuser), as the tampering needs

    @property
    def dialect(self) -> str:
        return self.factory.engine.dialect.name

    def sql(self, statement: str, **params: Any) -> None:
        with self.intruder.begin() as db:
            db.execute(text(statement), params)

    def raw(self, statement: str) -> None:
        with self.intruder.begin() as db:
            db.exec_driver_sql(statement)

    def drop_triggers(self) -> None:
        with self.intruder.begin() as db:
            for statement in DROP_TRIGGERS[self.dialect]:
                db.exec_driver_sql(statement)

    def records(self, episode_id: str = "ep-1") -> list[AuditRecord]:
        with self.factory() as uow:
            return uow.audit_records(episode_id)

    def time(self, value: Any) -> Any:
        return sqlite_time(value) if self.dialect == "sqlite" else postgres_time(value)


def run_cli(*args: str) -> Any:
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def world(
    database_url: str, database_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", database_url)
    monkeypatch.setenv("CAREPATH_AUDIT_KEY", SECRET.hex())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CAREPATH_CHECKPOINT_DIR", raising=False)
    factory = uow_factory(database_url, KEY)
    course = in_care(factory, "ep-1")
    for d, pain in ((2, 7), (3, 6), (4, 5)):
        course.observe({"pain_score": pain}, d)  # entries 1..5
    in_care(factory, "ep-2")  # entries 1..2
    written = run_cli("audit", "checkpoint")
    assert written.exit_code == 0, written.output
    intruder = create_engine_for(database_admin_url)
    yield World(factory, tmp_path / "config" / "carepath", intruder)
    intruder.dispose()
    factory.dispose()


def caught(*problems: str, episode: str | None = "ep-1") -> None:
    """Both runs of ``audit verify`` exit 1, naming the episode first and every problem."""
    for args in (["--chain-only"], []):
        result = run_cli("audit", "verify", *args)
        assert result.exit_code == 1, result.output
        first = result.output.splitlines()[0]
        if episode is not None:
            assert first.startswith(f"episode {episode}: "), result.output
        for problem in problems:
            assert problem in result.output, result.output


# -- the kinds ------------------------------------------------------------------------------

KINDS: list[str] = []  # the closing note's table: every kind below, each caught


def kind(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(test: Callable[..., None]) -> Callable[..., None]:
        KINDS.append(name)
        return test

    return register


def test_an_untouched_database_verifies_against_its_checkpoint(world: World) -> None:
    result = run_cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "2 episode(s), 7 entries, checked against the checkpoint of" in result.output


@kind("payload edited (triggers dropped)")
def test_a_payload_edit(world: World) -> None:
    world.drop_triggers()
    world.raw(
        "UPDATE audit_log SET payload = replace(payload, '\"pain_score\":6', "
        "'\"pain_score\":2') WHERE episode_id = 'ep-1' AND seq = 4"
    )
    caught("entry 4 was altered (its hash does not match its content under the audit key)")


COLUMN_EDITS = {
    "actor": ("'intruder'", None),
    "kind": ("'close'", None),
    "state_from": ("'discharged'", None),
    "at": (":t", timedelta(days=-30)),
    "recorded_at": (":t", timedelta(days=30)),
}


KINDS.extend(f"the {column} column edited (triggers dropped)" for column in COLUMN_EDITS)


@pytest.mark.parametrize("column", list(COLUMN_EDITS))
def test_a_column_edit(world: World, column: str) -> None:
    value, shift = COLUMN_EDITS[column]
    params = {}
    if shift is not None:
        params["t"] = world.time(getattr(world.records()[2], column) + shift)
    world.drop_triggers()
    world.sql(
        f"UPDATE audit_log SET {column} = {value} WHERE episode_id = 'ep-1' AND seq = 3",
        **params,
    )
    caught(f"entry 3: its {column} column disagrees with its hashed content")


def forge_last_entry(world: World, link: Callable[[str, bytes], str]) -> None:
    """A sixth entry appended (the triggers allow INSERT) and the episode row moved to it."""
    last = world.records()[-1]
    body = {**last.body(), "seq": 6, "event_id": "forged-6", "actor": "intruder"}
    body["state_from"] = body["state_to"]
    payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    forged = link(last.hash, payload)
    world.sql(
        "INSERT INTO audit_log (episode_id, seq, event_id, kind, actor, at, recorded_at, "
        "state_from, state_to, definition_version, payload, prev_hash, hash) VALUES ('ep-1', 6, "
        "'forged-6', :kind, 'intruder', :at, :rec, :st, :st, :dv, :payload, :prev, :hash)",
        kind=last.kind,
        at=world.time(last.at),
        rec=world.time(last.recorded_at),
        st=last.state_to,
        dv=body["definition_version"],
        payload=payload.decode() if world.dialect == "postgresql" else payload,
        prev=last.hash,
        hash=forged,
    )
    world.sql("UPDATE episodes SET version = 6, audit_hash = :h WHERE id = 'ep-1'", h=forged)


@kind("forged last entry with a correct plain sha256, episode row moved to it (triggers on)")
def test_a_forged_last_entry_with_a_plain_hash(world: World) -> None:
    forge_last_entry(world, plain_chain_hash)
    caught("entry 6 is not keyed: its hash is a plain sha256 of its content")


@kind("forged last entry with a correct HMAC under another key, episode moved (triggers on)")
def test_a_forged_last_entry_under_another_key(world: World) -> None:
    forge_last_entry(world, OTHER_KEY.chain_hash)
    caught("entry 6 was altered (its hash does not match its content under the audit key)")


def recompute(world: World, link: Callable[[str, bytes], str]) -> None:
    """Entry 4 edited, then entries 1..5 relinked with ``link`` and the episode moved."""
    world.drop_triggers()
    prev = "0" * 64
    for rec in world.records():
        payload = rec.payload
        if rec.seq == 4:
            payload = payload.replace(b'"pain_score":6', b'"pain_score":2')
        new = link(prev, payload)
        world.sql(
            "UPDATE audit_log SET payload = :p, prev_hash = :prev, hash = :h "
            "WHERE episode_id = 'ep-1' AND seq = :seq",
            p=payload.decode() if world.dialect == "postgresql" else payload,
            prev=prev,
            h=new,
            seq=rec.seq,
        )
        prev = new
    world.sql("UPDATE episodes SET audit_hash = :h WHERE id = 'ep-1'", h=prev)


@kind("whole chain recomputed with plain sha256 after an edit (triggers dropped)")
def test_a_chain_recomputed_with_plain_sha256(world: World) -> None:
    recompute(world, plain_chain_hash)
    caught("entry 1 is not keyed")


@kind("whole chain recomputed with the stolen key after an edit (triggers dropped)")
def test_a_chain_recomputed_with_the_key_itself(world: World) -> None:
    recompute(world, KEY.chain_hash)
    caught("entry 5 differs from the checkpoint's (the chain was rewritten)")


@kind("last entry deleted and the episode row rewound to the one before (triggers dropped)")
def test_the_last_entry_deleted_and_the_episode_rewound(world: World) -> None:
    fourth = world.records()[3]
    world.drop_triggers()
    world.sql("DELETE FROM audit_log WHERE episode_id = 'ep-1' AND seq = 5")
    world.sql(
        "UPDATE episodes SET version = 4, audit_hash = :h, state = :s WHERE id = 'ep-1'",
        h=fourth.hash,
        s=fourth.state_to,
    )
    caught("the chain ends at entry 4 but the checkpoint saw entry 5 (cut short or rewound)")


@kind("a chain cut short: its last two entries deleted (triggers dropped)")
def test_a_chain_cut_short(world: World) -> None:
    world.drop_triggers()
    world.sql("DELETE FROM audit_log WHERE episode_id = 'ep-1' AND seq >= 4")
    caught("the chain ends at entry 3 but the checkpoint saw entry 5")


@kind("a whole episode deleted from every table (triggers dropped)")
def test_a_whole_episode_deleted_from_every_table(world: World) -> None:
    world.drop_triggers()
    for table in ("audit_log", "observations", "timers", "tasks"):
        world.sql(f"DELETE FROM {table} WHERE episode_id = 'ep-2'")
    world.sql("DELETE FROM episodes WHERE id = 'ep-2'")
    caught(
        "the checkpoint of",
        "saw its chain at entry 2; the episode is gone",
        "1 episode(s) in the database",
        "saw 2: episodes were deleted",
        episode="ep-2",
    )


@kind("the checkpoint file edited (its signature no longer verifies)")
def test_an_edited_checkpoint(world: World) -> None:
    (path,) = (world.config / "checkpoints").glob("*.json")
    document = orjson.loads(path.read_bytes())
    document["checkpoint"]["heads"] = [h for h in document["checkpoint"]["heads"] if h[0] != "ep-2"]
    document["checkpoint"]["episodes"] = 1
    path.write_bytes(orjson.dumps(document))
    caught("its signature does not verify", episode=None)


@kind("verified under another key than the chains were written with")
def test_another_key(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_AUDIT_KEY", (b"\x5a" * 32).hex())
    caught(
        "entry 1 was altered",
        f"taken under audit key {KEY.id}, the configured key is {OTHER_KEY.id}",
    )


def test_a_checkpoint_is_refused_over_a_broken_chain(world: World) -> None:
    """A checkpoint never blesses damage: it verifies first."""
    forge_last_entry(world, plain_chain_hash)
    result = run_cli("audit", "checkpoint")
    assert result.exit_code == 1
    assert "not checkpointing a broken audit log: episode ep-1: entry 6 is not keyed" in (
        result.output
    )
    assert len(list((world.config / "checkpoints").glob("*.json"))) == 1


def test_a_checkpoint_kept_elsewhere_is_read_from_there(world: World, tmp_path: Path) -> None:
    offsite = tmp_path / "offsite"
    assert run_cli("audit", "checkpoint", "--to", str(offsite)).exit_code == 0
    forge_last_entry(world, plain_chain_hash)
    world.drop_triggers()
    world.sql("DELETE FROM audit_log WHERE episode_id = 'ep-1' AND seq >= 5")
    fourth = world.records()[3]
    world.sql("UPDATE episodes SET version = 4, audit_hash = :h WHERE id = 'ep-1'", h=fourth.hash)
    for directory in (offsite, world.config / "checkpoints"):
        result = run_cli("audit", "verify", "--chain-only", "--checkpoints", str(directory))
        assert result.exit_code == 1
        assert "the chain ends at entry 4 but the checkpoint saw entry 5" in result.output


def test_the_scheduler_job_writes_a_checkpoint_verify_then_uses(world: World) -> None:
    from datetime import UTC, datetime

    from carepath.audit_verify import checkpoint_writer
    from carepath.settings import Settings

    path = checkpoint_writer(Settings.from_env(), world.factory)(datetime.now(UTC))
    assert path.parent == world.config / "checkpoints"
    assert len(list(path.parent.glob("*.json"))) == 2
    in_care(world.factory, "ep-3")  # written after it: verified, not yet anchored
    result = run_cli("audit", "verify", "--chain-only")
    assert result.exit_code == 0, result.output
    assert "3 episode(s), 9 entries, checked against the checkpoint of" in result.output


def test_the_kinds_are_listed() -> None:
    assert len(KINDS) == 15, KINDS
