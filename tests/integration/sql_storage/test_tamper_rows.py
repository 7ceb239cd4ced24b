"""Editing the rows the audit log does not guard is caught: ``audit verify`` rebuilds them.

The append-only triggers stay on: every edit here is to ``episodes``, ``observations``,
``timers`` or ``tasks``, which the triggers do not cover. ``carepath audit verify`` must exit 1
naming the episode and what differs; ``--chain-only`` must still pass wherever the chain itself
is intact (only the episode's version and hash head are part of the chain check), which proves
that it is the rows step that caught the edit. ``KINDS`` is the list of kinds tried.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from pathway import usecases
from pathway.model import Booking
from storage.database import create_engine_for
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory
from tests.conftest import _admin, _database
from tests.support.episode_driver import DEFS, day, in_care

EP = "ep-1"
_copies = itertools.count(1)


def course(make_uow: SqlUnitOfWorkFactory, episode_id: str) -> None:
    """In care, a review, timers fired and pending, tasks open and one done with a note."""
    c = in_care(make_uow, episode_id)
    c.observe({"pain_score": 5}, 2)
    c.advance(30)  # T-CALCITONIN-END and FU-REASSESS fire: in reassessment, 4 timers pending
    c.observe({"pain_score": 3}, 31)  # observed in a review state: remembered
    usecases.update_task(
        c.uow, DEFS, episode_id, "WU-MRI@2", "done", note="seen",
        at=day(31), now=day(31), actor="nurse", event_id=f"{episode_id}/task-1",
    )  # fmt: skip
    booking = Booking(
        f"{episode_id}/book-1", day(31), "nurse", "book", "FU-3MONTH", date(2026, 6, 5)
    )
    usecases.handle(c.uow, DEFS, episode_id, booking, day(31))  # the 3-month decision's appointment


@pytest.fixture(scope="module")
def _built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two courses, built once on SQLite: each test edits a copy."""
    path = tmp_path_factory.mktemp("rows") / "template.db"
    made = uow_factory(f"sqlite:///{path}")
    course(made, EP)
    course(made, "ep-2")  # an untouched neighbour
    made.dispose()
    return path


@pytest.fixture(scope="module")
def _built_postgres(postgres_url: str, _postgres_template: str) -> Iterator[str]:
    name = f"carepath_rows_{os.getpid()}"
    _admin(
        postgres_url,
        f"DROP DATABASE IF EXISTS {name}",
        f"CREATE DATABASE {name} TEMPLATE {_postgres_template}",
    )
    made = uow_factory(_database(postgres_url, name))
    course(made, EP)
    course(made, "ep-2")
    made.dispose()
    yield name
    _admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlUnitOfWorkFactory]:
    """A copy of the built database, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "carepath.db"
        shutil.copyfile(request.getfixturevalue("_built"), path)
        url = f"sqlite:///{path}"
    else:
        server = request.getfixturevalue("postgres_url")
        template = request.getfixturevalue("_built_postgres")
        name = f"carepath_rows_{os.getpid()}_{next(_copies)}"
        _admin(server, f"CREATE DATABASE {name} TEMPLATE {template}")
        url = _database(server, name)
    made = uow_factory(url)
    yield made
    made.dispose()
    if request.param == "postgres":
        _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_verify(factory: SqlUnitOfWorkFactory, *args: str) -> Any:
    from carepath.cli import _register_groups, app

    _register_groups()
    url = factory.engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(app, ["audit", "verify", *args], env={"CAREPATH_DATABASE_URL": url})


def sql(
    factory: SqlUnitOfWorkFactory, statement: str, params: dict[str, Any] | None = None
) -> None:
    with factory.engine.begin() as db:
        db.exec_driver_sql(statement, params or {})


def edit_json(
    factory: SqlUnitOfWorkFactory, table: str, column: str, where: str, change: Callable[[Any], Any]
) -> None:
    """Rewrite a JSON column in Python (text on SQLite, json on PostgreSQL)."""
    with factory.engine.begin() as db:
        value = db.exec_driver_sql(f"SELECT {column} FROM {table} WHERE {where}").scalar_one()
        value = orjson.loads(value) if isinstance(value, str) else value
        cast = "CAST(%(v)s AS json)" if factory.engine.dialect.name == "postgresql" else "?"
        params: Any = {"v": orjson.dumps(change(value)).decode()}
        if factory.engine.dialect.name != "postgresql":
            params = (params["v"],)
        db.exec_driver_sql(f"UPDATE {table} SET {column} = {cast} WHERE {where}", params)


def _facts(facts: dict[str, Any]) -> dict[str, Any]:
    facts["pain_score"]["value"] = 0
    return facts


# kind → (the edit of episode ep, the words the report must contain, does --chain-only catch it too)
KINDS: dict[str, tuple[Callable[[SqlUnitOfWorkFactory, str], None], str, bool]] = {
    "episode state": (lambda f, ep: sql(f, f"UPDATE episodes SET state = 'discharged' WHERE id = '{ep}'"), "state is 'discharged', expected 'reassessment'", False),
    "episode closed (status)": (lambda f, ep: sql(f, f"UPDATE episodes SET closed_reason = 'deceased' WHERE id = '{ep}'"), "closed_reason is 'deceased', expected None", False),
    "episode version": (lambda f, ep: sql(f, f"UPDATE episodes SET version = version + 1 WHERE id = '{ep}'"), "version is 9, expected 8", True),
    "episode hash head": (lambda f, ep: sql(f, f"UPDATE episodes SET audit_hash = '{'0' * 64}' WHERE id = '{ep}'"), "audit_hash is", True),
    "episode label": (lambda f, ep: sql(f, f"UPDATE episodes SET label = 'other' WHERE id = '{ep}'"), "label is 'other', expected 'L1 fracture'", False),
    "episode owner": (lambda f, ep: sql(f, f"UPDATE episodes SET owner = 'mallory' WHERE id = '{ep}'"), "owner is 'mallory', expected None", False),
    "episode appointment": (lambda f, ep: sql(f, f"UPDATE episodes SET appointment_on = '2026-06-10' WHERE id = '{ep}'"), "appointment_on is '2026-06-10', expected '2026-06-05'", False),
    "episode patient_ref": (lambda f, ep: sql(f, f"UPDATE episodes SET patient_ref = 'MRN-2' WHERE id = '{ep}'"), "patient_ref is 'MRN-2', expected 'MRN-1'", False),
    "episode pathway": (lambda f, ep: sql(f, f"UPDATE episodes SET pathway = 'fracture-liaison' WHERE id = '{ep}'"), "pathway is 'fracture-liaison'", False),
    "episode definition version": (lambda f, ep: sql(f, f"UPDATE episodes SET definition_version = 'x@1' WHERE id = '{ep}'"), "definition_version is 'x@1'", False),
    "episode state entry time": (lambda f, ep: sql(f, f"UPDATE episodes SET state_entered_at = opened_at WHERE id = '{ep}'"), "state_entered_at is", False),
    "episode care start": (lambda f, ep: sql(f, f"UPDATE episodes SET care_started_at = NULL WHERE id = '{ep}'"), "care_started_at is None", False),
    "episode next due (hidden from the scheduler)": (lambda f, ep: sql(f, f"UPDATE episodes SET next_due_at = NULL WHERE id = '{ep}'"), "next_due_at is None", False),
    "episode facts": (lambda f, ep: edit_json(f, "episodes", "facts", f"id = '{ep}'", _facts), "facts: pain_score: value is 0, expected 3", False),
    "episode remembered": (lambda f, ep: edit_json(f, "episodes", "remembered", f"id = '{ep}'", lambda r: {**r, "pain_score": 9}), "remembered is", False),
    "episode links": (lambda f, ep: edit_json(f, "episodes", "links", f"id = '{ep}'", lambda r: [*r, ["x", "fracture-liaison", "R", "enrolled"]]), "links is", False),
    "pending timers deleted": (lambda f, ep: sql(f, f"DELETE FROM timers WHERE episode_id = '{ep}' AND status = 'pending'"), "timers: FU-OSTEO-REFERRAL@2 is missing (expected pending, due 2026-04-13T09:00:00Z)", False),
    "timer due time moved": (lambda f, ep: sql(f, f"UPDATE timers SET due_at = (SELECT opened_at FROM episodes WHERE id = '{ep}') WHERE episode_id = '{ep}' AND key = 'FU-3MONTH@2'"), "timers: FU-3MONTH@2: due_at is", False),
    "fired timer set back to pending": (lambda f, ep: sql(f, f"UPDATE timers SET status = 'pending', fired_at = NULL WHERE episode_id = '{ep}' AND key = 'FU-REASSESS@2'"), "timers: FU-REASSESS@2: status is 'pending', expected 'fired'", False),
    "timer inserted": (lambda f, ep: sql(f, f"INSERT INTO timers (episode_id, key, rule_id, due_at, status, \"order\", position) SELECT id, 'FU-X@9', 'FU-3MONTH', opened_at, 'pending', 1, 99 FROM episodes WHERE id = '{ep}'"), "timers: FU-X@9 is not in the audit log", False),
    "observation edited": (lambda f, ep: edit_json(f, "observations", "facts", f"episode_id = '{ep}' AND seq = 3", lambda o: {**o, "pain_score": 9}), "observations: 3: facts is", False),
    "observation actor edited": (lambda f, ep: sql(f, f"UPDATE observations SET actor = 'mallory' WHERE episode_id = '{ep}' AND seq = 3"), "observations: 3: actor is 'mallory', expected 'doctor'", False),
    "observation deleted": (lambda f, ep: sql(f, f"DELETE FROM observations WHERE episode_id = '{ep}' AND seq = 3"), "observations: 3 is missing", False),
    "observation inserted": (lambda f, ep: sql(f, f"INSERT INTO observations (episode_id, seq, id, facts, at, recorded_at, actor, source) SELECT id, 4, 'forged', facts, opened_at, opened_at, 'x', 'user' FROM episodes WHERE id = '{ep}'"), "observations: 4 is not in the audit log", False),
    "task status changed": (lambda f, ep: sql(f, f"UPDATE tasks SET status = 'done' WHERE episode_id = '{ep}' AND key = 'CC-DXA@2'"), "tasks: CC-DXA@2: status is 'done', expected 'open'", False),
    "task note changed": (lambda f, ep: sql(f, f"UPDATE tasks SET note = 'forged' WHERE episode_id = '{ep}' AND key = 'WU-MRI@2'"), "tasks: WU-MRI@2: note is 'forged', expected 'seen'", False),
    "task deleted": (lambda f, ep: sql(f, f"DELETE FROM tasks WHERE episode_id = '{ep}' AND key = 'CC-BRACE@2'"), "tasks: CC-BRACE@2 is missing", False),
    "task inserted": (lambda f, ep: sql(f, f"INSERT INTO tasks (episode_id, key, rule_id, kind, text, created_at, status, position) SELECT id, 'X@9', 'CC-DXA', 'order', 'forged', opened_at, 'open', 99 FROM episodes WHERE id = '{ep}'"), "tasks: X@9 is not in the audit log", False),
}  # fmt: skip


def _episode_of(kind: str) -> str:
    return f"ep-k{list(KINDS).index(kind):02d}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def tampered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One database per backend, one episode per kind each edited its own way, an untouched
    one beside them; ``audit verify`` run once with and once without ``--chain-only``."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('kinds') / 'carepath.db'}"
    else:
        server = request.getfixturevalue("postgres_url")
        template = request.getfixturevalue("_postgres_template")
        name = f"carepath_rows_kinds_{os.getpid()}"
        _admin(
            server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name} TEMPLATE {template}"
        )
        url = _database(server, name)
    made = uow_factory(url)
    for kind in KINDS:
        course(made, _episode_of(kind))
    course(made, "ep-untouched")
    for kind, (edit, _, _) in KINDS.items():
        edit(made, _episode_of(kind))
    outputs = run_verify(made), run_verify(made, "--chain-only")
    made.dispose()
    yield outputs
    if request.param == "postgres":
        _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_edited_row_is_caught_by_verify_and_not_by_the_chain(tampered: Any, kind: str) -> None:
    full, chain = tampered
    _, words, chain_catches = KINDS[kind]
    episode = _episode_of(kind)
    assert full.exit_code == 1, full.output
    assert f"episode {episode}: {words}" in full.output
    assert "ep-untouched" not in full.output + chain.output
    assert chain.exit_code == 1  # the version and hash-head kinds break the chain check
    assert (f"episode {episode}: " in chain.output) == chain_catches, chain.output
    assert "rows:" not in chain.output  # --chain-only skips the rows step


def test_every_edited_episode_is_counted_and_the_untouched_one_is_not(tampered: Any) -> None:
    full, _ = tampered
    assert f"rows: {len(KINDS) + 1} episode(s), {len(KINDS)} differ" in full.output


def test_untouched_rows_verify_and_say_so(factory: SqlUnitOfWorkFactory) -> None:
    full = run_verify(factory)
    assert full.exit_code == 0, full.output
    assert "rows: 2 episode(s), all equal their audit logs" in full.output


def test_one_episode_is_checked_alone(factory: SqlUnitOfWorkFactory) -> None:
    sql(factory, "UPDATE episodes SET state = 'discharged' WHERE id = 'ep-2'")
    assert run_verify(factory, "--episode", EP).exit_code == 0
    alone = run_verify(factory, "--episode", "ep-2")
    assert alone.exit_code == 1 and "episode ep-2: state is 'discharged'" in alone.output


def test_rows_left_behind_by_a_deleted_episode_row_are_named(
    database_url: str, database_admin_url: str
) -> None:
    """An episode row deleted (foreign keys off, as an intruder with the file can) leaves its
    log and rows: the rows step names the episode, read through the id ranges."""
    made = uow_factory(database_url)
    try:
        for n in range(5):
            course(made, f"ep-{n}")
        if made.engine.dialect.name == "postgresql":  # as the superuser: the app role may not
            admin = create_engine_for(database_admin_url)
            with admin.begin() as db:
                db.exec_driver_sql("SET session_replication_role = replica")  # FKs off
                db.exec_driver_sql("DELETE FROM episodes WHERE id = 'ep-2'")
            admin.dispose()
        else:
            raw = sqlite3.connect(made.engine.url.database, isolation_level=None)
            raw.execute("PRAGMA foreign_keys = OFF")
            raw.execute("DELETE FROM episodes WHERE id = 'ep-2'")
            raw.close()
        from storage.audit_rows import verify_uow_rows

        uow = made()
        with uow:
            report = verify_uow_rows(uow, DEFS.get, chunk=2)
        assert report is not None and report.broken == 1
        assert report.differences[0].message.startswith("episode ep-2: the episode row is missing")
    finally:
        made.dispose()


# -- no false alarms ---------------------------------------------------------------------------

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def version_b() -> Any:
    """The L1–L2 pathway with FU-REASSESS at 35 days and ``reassessment`` renamed ``review``."""
    from pathway.definition import DEFAULT_DEFINITION, compile_definition

    doc = orjson.loads(DEFAULT_DEFINITION.read_text().replace('"reassessment"', '"review"'))
    doc["timers"]["FU-REASSESS"]["days"] = 35
    return compile_definition(doc)


def test_many_replayed_episodes_of_both_pathways_verify_clean(
    database_url: str, tmp_path: Path
) -> None:
    """Every scenario file and a generated cohort of both pathways (enrolments and their
    cascade closes, date corrections re-timing timers, refusals, closes), tasks marked done,
    then every running L1–L2 episode migrated to a new version: not one false alarm."""
    import sys
    from datetime import UTC, datetime

    from carepath.bootstrap import current_definitions
    from carepath.replay.runner import replay_many
    from carepath.replay.scenario import load_scenario
    from pathway.migration.usecases import migrate_all
    from storage.audit_rows import verify_uow_rows
    from storage.definitions import registry_for

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    from cohort import write_cohort, write_fls_cohort

    files = sorted(SCENARIOS.glob("*.json"))
    files += write_cohort(tmp_path / "l1", 30, seed=3) + write_fls_cohort(
        tmp_path / "fls", 30, seed=3
    )
    made = uow_factory(database_url)
    try:
        registry = registry_for(made, current_definitions())
        results = replay_many([load_scenario(str(f)) for f in files], registry, made)
        assert all(r.output["audit_verified"] for r in results)
        uow = made()
        with uow:  # 40 running episodes with an open first task (ids sort by time: not ids[:40])
            ids, open_tasks = uow.episode_ids(), []
            for eid in ids:
                episode = uow.get_episode(eid)
                if registry.get(episode.definition_version).is_terminal(episode.state):
                    continue
                open_tasks += [
                    (eid, t.key, t.created_at) for t in episode.tasks[:1] if t.status == "open"
                ]
                if len(open_tasks) == 40:
                    break
        assert open_tasks
        for n, (eid, key, at) in enumerate(open_tasks):
            usecases.update_task(
                uow, registry, eid, key, "done" if n % 2 else "not_done", note=f"note {n}",
                at=max(at, uow.get_episode(eid).state_entered_at), now=datetime(2027, 1, 1, tzinfo=UTC),
                actor="nurse", event_id=f"task-{n}",
            )  # fmt: skip
        b = version_b()
        migrated = registry_for(made, [b, *(d for d in current_definitions() if d.id != b.id)])
        report = migrate_all(
            made, migrated, b.version, {"reassessment": "review"},
            now=datetime(2027, 1, 2, tzinfo=UTC), actor="admin",
        )  # fmt: skip
        assert report.counts().get("migrated", 0) > 0, report.summary()
        with made.engine.connect() as db:
            kinds = {k for (k,) in db.exec_driver_sql("SELECT DISTINCT kind FROM audit_log")}
            retimed = db.execute(
                text("SELECT count(*) FROM audit_log WHERE payload LIKE :p"),
                {"p": "%timers_retimed%"},
            ).scalar_one()
        assert {
            "open",
            "observe",
            "request",
            "close",
            "task",
            "timer",
            "migrate",
            "link",
        } <= kinds | {"link"}
        assert retimed > 0
        for chunk in (7, 2000):  # chunk boundaries anywhere
            with uow:
                rows = verify_uow_rows(uow, migrated.get, chunk=chunk)
            assert rows is not None and rows.episodes == len(ids)
            assert rows.differences == [] and rows.ok
    finally:
        made.dispose()
    full = run_verify(made)
    assert full.exit_code == 0, full.output
    assert f"rows: {len(ids)} episode(s), all equal their audit logs" in full.output


def test_the_chains_checked_on_the_same_stream_agree_with_the_chain_step(
    factory: SqlUnitOfWorkFactory,
) -> None:
    from storage.audit_rows import stream_chains

    def checks() -> list[Any]:
        uow = factory()
        with uow:
            return list(
                stream_chains(
                    uow.connection(), factory.engine.dialect.name, key=uow.audit_key, chunk=1
                )
            )

    assert [(c.episode_id, c.ok, c.entries) for c in checks()] == [(EP, True, 8), ("ep-2", True, 8)]
    sql(factory, f"UPDATE episodes SET version = 6 WHERE id = '{EP}'")
    (bad,) = [c for c in checks() if not c.ok]
    assert bad.episode_id == EP and "episode is at version 6" in bad.problem
