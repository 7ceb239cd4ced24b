"""``replay --database`` decides its scenarios in memory and writes their rows in bulk
(``carepath.replay.grouped``, ``storage.bulk_load``): every table holds exactly what the SQL
unit of work writes decision by decision, the output is the in-memory replay's, one COMMIT per
chunk with one savepoint per scenario, and a scenario that fails writes nothing while the
others land."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from carepath.audit_verify import verify_database
from carepath.replay import decided as decided_module
from carepath.replay import grouped
from carepath.replay.cohort import write_cohort
from carepath.replay.grouped import replay_decision_by_decision, replay_grouped
from carepath.replay.runner import replay_many
from carepath.replay.scenario import load_scenario
from pathway import usecases
from pathway.definition import load_definition, shipped_definition_files
from pathway.errors import InvalidScenario, PathwayError
from pathway.notifications import EVENT_TYPES
from pathway.usecases import DefinitionRegistry
from storage.audit_rows import verify_uow_rows
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory
from storage.webhooks import Subscription, WebhookStore
from tests.support.episode_driver import DEFS
from tests.support.protocol import REPOSITORY, SCENARIO_DIR

# Every shipped pathway: the default pathway's files then enrol into the others (more episodes,
# links and notices than a scenario alone writes).
SHIPPED = DefinitionRegistry([load_definition(p) for p in shipped_definition_files()])
SCENARIOS = [
    load_scenario(p) for p in sorted(SCENARIO_DIR.glob("*")) if p.suffix in (".json", ".yaml")
]
L1_L2 = [s for s in SCENARIOS if s.pathway is None]
# Columns the database fills from its own clock (the outbox's due time): legitimately apart.
CLOCK_COLUMNS = {"webhook_messages": {"created_at", "next_attempt_at"}}


def counted_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The use cases draw event and episode ids from a counter (restarted on each call)."""
    counter = itertools.count()
    monkeypatch.setattr(usecases, "new_event_id", lambda now=None: f"event-{next(counter)}")
    monkeypatch.setattr(usecases, "time_ordered_id", lambda now: f"ep-{next(counter)}")


@pytest.fixture(params=["sqlite", "postgres"])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh, empty databases of one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
        return
    from storage.roles import role_url
    from tests.conftest import ROLES, TEST_PASSWORD, _admin, _database

    first = request.getfixturevalue("fresh_postgres_url")
    server = request.getfixturevalue("postgres_url")
    template = request.getfixturevalue("_postgres_template")
    name = f"carepath_test_{os.getpid()}_replay_b"
    _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(server, f"CREATE DATABASE {name} TEMPLATE {template}")
    yield first, role_url(_database(server, name), ROLES.app, TEST_PASSWORD)
    _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def table_rows(factory: SqlUnitOfWorkFactory) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted, without the columns the database's clock fills."""
    meta = MetaData()
    with warnings.catch_warnings():  # expression indexes: not reflected, and not compared
        warnings.simplefilter("ignore")
        meta.reflect(factory.engine)
    found = {}
    with factory.engine.connect() as connection:
        for name, table in meta.tables.items():
            columns = [c for c in table.columns if c.name not in CLOCK_COLUMNS.get(name, ())]
            rows = connection.execute(select(*columns)).fetchall()
            found[name] = sorted((tuple(r) for r in rows), key=repr)
    return found


def subscribe(factory: SqlUnitOfWorkFactory) -> None:
    """A webhook subscription to every notice type, so that the outbox is written."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    WebhookStore(factory).add(
        Subscription(
            "sub-1", "https://example.test/hook", EVENT_TYPES, True, "secret", at, "test", None
        )
    )


def test_bulk_replay_stores_every_row_the_sql_unit_of_work_stores(
    two_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    by_decision, bulk = (uow_factory(url) for url in two_urls)
    for factory in (by_decision, bulk):
        subscribe(factory)
    counted_ids(monkeypatch)
    expected = replay_decision_by_decision(SCENARIOS, SHIPPED, by_decision, per_transaction=4)
    counted_ids(monkeypatch)
    got = replay_grouped(SCENARIOS, SHIPPED, bulk, per_transaction=4)

    assert [r.output for r in got] == [r.output for r in expected]
    assert all(r.output["audit_verified"] for r in got)
    want, have = table_rows(by_decision), table_rows(bulk)
    assert want["webhook_messages"] and len(want["episodes"]) > len(SCENARIOS)  # enrolments
    assert have == want
    by_decision.dispose()
    bulk.dispose()


def test_no_subscription_no_outbox_statement_and_the_same_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    by_decision = uow_factory(f"sqlite:///{tmp_path / 'a.db'}")
    bulk = uow_factory(f"sqlite:///{tmp_path / 'b.db'}")
    counted_ids(monkeypatch)
    replay_decision_by_decision(SCENARIOS, SHIPPED, by_decision)
    counted_ids(monkeypatch)
    seen = statements(bulk)
    replay_grouped(SCENARIOS, SHIPPED, bulk)
    assert not any(s.startswith("INSERT INTO webhook_messages") for s in seen)
    assert table_rows(bulk) == table_rows(by_decision)


def statements(factory: SqlUnitOfWorkFactory) -> list[str]:
    """Every statement the factory's (SQLite) connections run from now on."""
    seen: list[str] = []
    held = factory.connections.take()
    held[1].connection.set_trace_callback(seen.append)
    factory.connections.give(held)
    return seen


def test_one_commit_per_chunk_and_one_savepoint_per_chunk_when_all_goes_well() -> None:
    factory = uow_factory("sqlite://")
    seen = statements(factory)
    replay_grouped(L1_L2[:5], DEFS, factory, per_transaction=2)
    assert seen.count("COMMIT") == 3
    assert seen.count("SAVEPOINT timer") == seen.count("RELEASE timer") == 3
    factory.dispose()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_file_or_patient_writes_nothing_of_its_own_and_the_others_land(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grouped, "PARALLEL_FROM", 0)  # two workers even for five files
    factory = uow_factory(f"sqlite:///{tmp_path / 'replay.db'}")
    bad_file = tmp_path / "broken.json"
    bad_file.write_text("{not json")
    bad_patient = replace(L1_L2[0], patient={"age": "old"}, source="bad-patient.json")
    good = [L1_L2[0].source, L1_L2[1].source, L1_L2[2].source]
    with pytest.raises(InvalidScenario, match="broken.json: not valid JSON"):
        replay_grouped(
            [good[0], str(bad_file), good[1], bad_patient, good[2]], DEFS, factory, 2,
            workers=workers,
        )  # fmt: skip
    uow = factory()
    with uow:
        assert len(uow.episode_ids()) == 3  # those before and after each bad one
    factory.dispose()


def test_a_scenario_whose_rows_cannot_be_written_rolls_back_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factory = uow_factory("sqlite://")
    counted_ids(monkeypatch)
    replay_decision_by_decision(L1_L2[:1], DEFS, factory)  # holds the first scenario's ids
    before = table_rows(factory)
    counted_ids(monkeypatch)  # the first scenario's ids again: its episode is already there
    with pytest.raises(PathwayError, match="not stored"):
        replay_grouped(L1_L2[:3], DEFS, factory)
    after = table_rows(factory)
    assert len(after["episodes"]) == len(before["episodes"]) + 2  # the two others landed
    kept = {repr(row) for row in after["audit_log"]}
    assert all(repr(row) in kept for row in before["audit_log"])  # the first one untouched
    factory.dispose()


def test_a_scenario_that_would_see_the_database_goes_through_the_sql_unit_of_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference, factory = uow_factory("sqlite://"), uow_factory("sqlite://")
    counted_ids(monkeypatch)
    expected = replay_decision_by_decision(L1_L2[:3], DEFS, reference)
    real = decided_module.replay

    def asking_for_the_patient(scenario: Any, definitions: Any, make_uow: Any) -> Any:
        if scenario is L1_L2[1]:
            make_uow().episodes_of_patient("patient-1", "any")
        return real(scenario, definitions, make_uow)

    monkeypatch.setattr(decided_module, "replay", asking_for_the_patient)
    counted_ids(monkeypatch)
    got = replay_grouped(L1_L2[:3], DEFS, factory)
    assert masked([r.output for r in got]) == masked([r.output for r in expected])  # ids: later
    uow = factory()
    with uow:
        assert len(uow.episode_ids()) == 3
    reference.dispose()
    factory.dispose()


def masked(outputs: list[dict[str, Any]]) -> list[str]:
    return [re.sub(r"episode [0-9a-z-]+", "episode <id>", repr(o)) for o in outputs]


def test_workers_write_a_large_cohort_that_verifies_and_rebuilds(
    tmp_path: Path, database_url: str
) -> None:
    paths = [str(p) for p in write_cohort(tmp_path / "cohort", grouped.PARALLEL_FROM)]
    factory = uow_factory(database_url)
    got = replay_grouped(paths, SHIPPED, factory, per_transaction=60, workers=2)
    expected = replay_many([load_scenario(p) for p in paths], SHIPPED)
    assert masked([r.output for r in got]) == masked([r.output for r in expected])
    assert verify_database(factory(), None).ok
    uow = factory()
    with uow:
        rows = verify_uow_rows(uow, SHIPPED.get)
        assert rows is not None and rows.ok and rows.episodes >= len(paths)
    factory.dispose()


def each_chain(monkeypatch: pytest.MonkeyPatch, edit: Any) -> None:
    """Every chain the replay reads back (``bulk_load.stored_chains``) as ``edit`` leaves it."""
    real = grouped.stored_chains

    def edited(*args: Any) -> Any:
        return {episode_id: edit(*chain) for episode_id, chain in real(*args).items()}

    monkeypatch.setattr(grouped, "stored_chains", edited)


def test_audit_verified_says_what_the_stored_rows_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    def last_entry_lost(records: Any, head: Any) -> Any:
        return records[:-1], head

    each_chain(monkeypatch, last_entry_lost)
    factory = uow_factory("sqlite://")
    got = replay_grouped(L1_L2[:2], DEFS, factory)
    assert [r.output["audit_verified"] for r in got] == [False, False]
    factory.dispose()


def run_replay(cwd: Path, *args: str) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "carepath.cli", "replay", "--json", *args],
        capture_output=True, cwd=cwd, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return re.sub(rb"episode [0-9a-f]{32}", b"episode <id>", done.stdout)  # random ids


def test_replay_database_prints_byte_for_byte_what_the_in_memory_replay_prints(  # but ids
    tmp_path: Path,
) -> None:
    files = [str(p) for p in sorted(SCENARIO_DIR.glob("*.json"))[:12]]
    url = f"sqlite:///{tmp_path / 'replay.sqlite'}"
    assert run_replay(REPOSITORY, "--database", url, *files) == run_replay(
        REPOSITORY, "--workers", "1", *files
    )


def test_replay_database_on_two_workers_prints_what_the_in_memory_replay_prints(
    tmp_path: Path,
) -> None:
    names = [p.name for p in write_cohort(tmp_path, grouped.PARALLEL_FROM)]
    url = f"sqlite:///{tmp_path / 'replay.sqlite'}"
    on_two = run_replay(tmp_path, "--database", url, "--workers", "2", *names)
    assert on_two == run_replay(tmp_path, "--workers", "1", *names)


def test_a_subscription_added_after_the_replay_began_still_gets_its_notices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    by_decision = uow_factory(f"sqlite:///{tmp_path / 'a.db'}")
    bulk = uow_factory(f"sqlite:///{tmp_path / 'b.db'}")
    for factory in (by_decision, bulk):
        subscribe(factory)
    replay_decision_by_decision(SCENARIOS, SHIPPED, by_decision)
    monkeypatch.setattr(grouped, "_subscribed", lambda factory: False)  # none when it began
    got = replay_grouped(SCENARIOS, SHIPPED, bulk, per_transaction=4)
    assert all(r.output["audit_verified"] for r in got)
    want = table_rows(by_decision)["webhook_messages"]
    assert want and len(table_rows(bulk)["webhook_messages"]) == len(want)


@pytest.mark.parametrize("column", [3, 5])  # kind, at: a stored column the payload contradicts
def test_audit_verified_compares_each_stored_column_with_its_payload(
    monkeypatch: pytest.MonkeyPatch, column: int
) -> None:
    def one_column_edited(rows: Any, head: Any) -> Any:
        edited = list(rows[1])
        edited[column] = "2020-01-01T00:00:00.000000Z" if column == 5 else "edited"
        return [rows[0], tuple(edited), *rows[2:]], head

    each_chain(monkeypatch, one_column_edited)
    factory = uow_factory("sqlite://")
    got = replay_grouped(L1_L2[:2], DEFS, factory)
    assert [r.output["audit_verified"] for r in got] == [False, False]
    factory.dispose()


def test_a_stored_payload_that_was_not_written_is_not_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def payload_edited(rows: Any, head: Any) -> Any:
        edited = list(rows[0])
        edited[9] = edited[9].replace('"', "'", 1)
        return [tuple(edited), *rows[1:]], head

    each_chain(monkeypatch, payload_edited)
    factory = uow_factory("sqlite://")
    got = replay_grouped(L1_L2[:2], DEFS, factory)
    assert [r.output["audit_verified"] for r in got] == [False, False]
    factory.dispose()


def test_a_chain_that_does_not_reach_the_episode_rows_head_is_not_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def head_moved(rows: Any, head: Any) -> Any:
        version, audit_hash = head
        return rows, (version + 1, audit_hash)

    each_chain(monkeypatch, head_moved)
    factory = uow_factory("sqlite://")
    got = replay_grouped(L1_L2[:2], DEFS, factory)
    assert [r.output["audit_verified"] for r in got] == [False, False]
    factory.dispose()
