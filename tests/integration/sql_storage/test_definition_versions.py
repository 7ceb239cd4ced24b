"""Definition versions on SQLite and PostgreSQL: stored, reloaded, run, and migrated to.

The cohort test builds 1,000 running and ended episodes in mixed states on the shipped
version, then migrates them to a version that moves FU-REASSESS from 28 to 35 days, drops
FU-REIMAGE, renames ``reassessment`` to ``review`` and tightens TX-INSTAB (collapse > 40 %).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from pathway import usecases
from pathway.audit import verify_chain
from pathway.definition import DEFAULT_DEFINITION, Definition, compile_definition, load_definition
from pathway.errors import InvalidDefinition
from pathway.migration.usecases import MIGRATED, TERMINAL, WOULD_MIGRATE, migrate_all
from pathway.model import PENDING
from pathway.usecases import DefinitionRegistry
from scheduler.worker import TimerWorker
from storage.definitions import registry_for, stored_versions
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
PRESENTATION = {"fracture_levels": ["L1"], "pain_score": 6}
WORKUP = {"mri_done": True, "neuro_exam_done": True, "vertebral_collapse_pct": 20}
RENAMED = {"reassessment": "review"}
A = load_definition()


def version_b() -> Definition:
    """FU-REASSESS 28 → 35 days, no FU-REIMAGE, reassessment → review, collapse > 40 % transfers."""
    text_ = DEFAULT_DEFINITION.read_text().replace('"reassessment"', '"review"')
    doc = orjson.loads(text_)
    doc["timers"]["FU-REASSESS"]["days"] = 35
    del doc["timers"]["FU-REIMAGE"], doc["rules"]["FU-REIMAGE"]
    doc["states"]["conservative_care"]["timers"].remove("FU-REIMAGE")
    del doc["measures"]["M-REIMAGE-8W"]  # a measure naming an unknown rule does not load
    doc["rules"]["TX-INSTAB"]["when"]["any"][1][">"] = 40
    return compile_definition(doc)


B = version_b()


@pytest.fixture
def factory(database_url: str) -> Any:
    made = uow_factory(database_url)
    yield made
    made.dispose()


# -- the registry ------------------------------------------------------------------------------


def test_the_current_document_is_recorded_once_and_every_version_reloads(factory: Any) -> None:
    first = registry_for(factory, A)
    assert first.versions() == [A.version]
    registry_for(factory, A)  # a second process with the same file records nothing new
    later = registry_for(factory, B)  # the file changed
    assert later.current is B and sorted(later.versions()) == sorted([A.version, B.version])
    assert later.get(A.version).document == A.document
    with factory.engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM definitions")).scalar_one() == 2


def test_a_version_recorded_after_a_process_started_is_found_by_it(factory: Any) -> None:
    running = registry_for(factory, A)
    registry_for(factory, B)  # another process, started on the edited file
    assert running.get(B.version).version == B.version
    with pytest.raises(InvalidDefinition, match="is not loaded"):
        running.get("l1-l2-compression-fracture@000000000000")


def test_a_stored_document_that_was_altered_is_refused(factory: Any) -> None:
    registry_for(factory, A)
    altered = copy.deepcopy(dict(A.document))
    altered["timers"] = {**altered["timers"], "FU-REIMAGE": {"days": 1}}  # not a window's
    with factory.engine.begin() as db:
        db.execute(
            text("UPDATE definitions SET document = :d"), {"d": orjson.dumps(altered).decode()}
        )
    with pytest.raises(InvalidDefinition, match=f"stored definition {A.version}: .*compiles to"):
        registry_for(factory, B)


# -- old versions keep running, until migrated ------------------------------------------------


def open_in_care(factory: Any, registry: DefinitionRegistry, eid: str, care_day: float,
                 now: datetime = NOW) -> None:  # fmt: skip
    at = now - timedelta(days=care_day)
    usecases.open_episode(
        factory(), registry, {**PRESENTATION, **WORKUP},
        at=at, now=at, actor="nurse", episode_id=eid,
    )  # fmt: skip


def test_an_episode_of_the_old_version_keeps_running_after_the_file_changes(factory: Any) -> None:
    open_in_care(factory, registry_for(factory, A), "old", care_day=29)
    restarted = registry_for(factory, B)  # every process restarted on the edited file
    assert TimerWorker(factory, restarted).sweep(NOW) == 2  # day 28, by A's numbers, not B's
    assert factory().get_episode("old").state == "reassessment"  # B has no such state
    usecases.observe(factory(), restarted, "old", {"pain_score": 5}, at=NOW, now=NOW, actor="dr")
    episode = factory().get_episode("old")
    assert (episode.state, episode.definition_version) == ("conservative_care", A.version)
    report = migrate_all(factory, restarted, B.version, RENAMED,
                         now=NOW, actor="m")  # fmt: skip
    assert report.counts() == {MIGRATED: 1}
    fresh = uow_factory(str(factory.engine.url.render_as_string(hide_password=False)))
    assert fresh().get_episode("old").definition_version == B.version  # on disk, not in a cache
    fresh.dispose()


# -- 1,000 episodes --------------------------------------------------------------------------


def build_cohort(factory: SqlUnitOfWorkFactory, registry: DefinitionRegistry) -> dict[str, str]:
    """1,000 episodes, each opened on A and left in the state named beside its id."""
    kinds: dict[str, str] = {}
    uow = factory()
    for i in range(1000):
        eid, group = f"ep-{i:04d}", i % 10
        if group == 0:
            kind, facts, ago = "intake", {"age": 70}, 0.1
        elif group == 1:
            kind, facts, ago = "workup", PRESENTATION, 1
        elif group in (2, 3, 4, 5):
            transfers = i % 7 == 0
            kind = "transfers" if transfers else "care"
            facts = {**PRESENTATION, **WORKUP, "vertebral_collapse_pct": 45 if transfers else 20}
            ago = 1 + i % 25
        elif group in (6, 7):
            kind, facts, ago = "review", {**PRESENTATION, **WORKUP}, 29 + i % 12
        elif group == 8:
            kind, facts, ago = "closed", {**PRESENTATION, **WORKUP}, 5
        else:
            kind, facts, ago = "ended", {**PRESENTATION, "neuro_deficit_motor": True}, 3
        at = NOW - timedelta(days=ago, seconds=i)
        usecases.open_episode(uow, registry, facts, at=at, now=at, actor="n", episode_id=eid)
        if kind == "review":
            usecases.fire_due_timers(uow, registry, NOW, episode_id=eid)
        if kind == "closed":
            usecases.close(uow, registry, eid, "declined", at=at, now=at, actor="n")
        kinds[eid] = kind
    return kinds


def database_picture(factory: SqlUnitOfWorkFactory) -> tuple[dict[str, int], list[tuple]]:
    """Row counts of every table, and each episode's version, pin, state and chain head."""
    with factory.engine.connect() as db:
        counts = {
            t: db.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("episodes", "observations", "timers", "tasks", "audit_log")
        }
        rows = db.execute(
            text(
                "SELECT id, version, definition_version, state, audit_hash FROM episodes ORDER BY id"
            )
        ).all()
    return counts, [tuple(r) for r in rows]


def test_a_thousand_running_episodes_migrate_audited_with_timers_recomputed(
    factory: SqlUnitOfWorkFactory,
) -> None:
    kinds = build_cohort(factory, registry_for(factory, A))
    registry = registry_for(factory, B)
    make_uow = factory
    before = database_picture(factory)

    dry = migrate_all(make_uow, registry, B.version, RENAMED, now=NOW, actor="m", dry_run=True)
    assert database_picture(factory) == before
    assert dry.counts() == {WOULD_MIGRATE: 800, TERMINAL: 200}

    report = migrate_all(make_uow, registry, B.version, RENAMED, now=NOW, actor="m")
    assert report.counts() == {MIGRATED: 800, TERMINAL: 200}
    assert [e.changes for e in report.episodes] == [e.changes for e in dry.episodes]

    counts, rows = database_picture(factory)
    assert counts["episodes"] == 1000 and counts["audit_log"] == before[0]["audit_log"] + 800
    old = {r[0]: r for r in before[1]}
    fresh = uow_factory(factory.engine.url.render_as_string(hide_password=False))
    uow = fresh()
    with uow:
        for eid, version, pinned, state, _ in rows:
            ended = kinds[eid] in ("closed", "ended")
            assert (pinned, version) == (
                (A.version, old[eid][1]) if ended else (B.version, old[eid][1] + 1)
            )
            episode, records = uow.get_episode(eid), uow.audit_records(eid)
            check = verify_chain(
                eid, records, (episode.version, episode.audit_hash), key=uow.audit_key
            )
            assert check.ok, check.problem
            assert [r.kind for r in records].count("migrate") == (0 if ended else 1)
            check_migrated(kinds[eid], episode, state)
    fresh.dispose()


def check_migrated(kind: str, episode: Any, state: str) -> None:
    pending = {t.rule_id: t for t in episode.timers if t.status == PENDING}
    assert "FU-REIMAGE" not in pending
    if kind == "care":
        assert state == "conservative_care"
        assert pending["FU-REASSESS"].due_at == episode.care_started_at + timedelta(days=35)
    elif kind == "transfers":
        assert state == "immediate_transfer" and not pending
    elif kind == "review":
        assert state == "review" and pending["FU-REASSESS-OVERDUE"].state == "review"
        assert pending["FU-REASSESS-OVERDUE"].due_at == episode.state_entered_at + timedelta(
            days=14
        )
    elif kind in ("intake", "workup"):
        assert state == kind


# -- the command line ------------------------------------------------------------------------


def run_cli(*args: str) -> Any:
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


def test_the_commands_list_versions_and_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    definition = tmp_path / "pathway.json"
    definition.write_bytes(orjson.dumps(A.document))
    monkeypatch.setenv("CAREPATH_DATABASE_URL", url)
    monkeypatch.setenv("CAREPATH_DEFINITION", str(definition))
    factory = uow_factory(url)
    wall_clock = datetime.now(UTC)  # the command's own clock
    open_in_care(factory, registry_for(factory, A), "ep-1", 30, wall_clock)  # 2 timers due
    factory.dispose()
    definition.write_bytes(orjson.dumps(B.document))  # the file is edited

    shown = run_cli("episode", "show", "ep-1")
    assert shown.exit_code == 0, shown.output
    listed = run_cli("definition", "versions")
    assert f"{A.version}  " in listed.output and "1 episode(s), 1 running" in listed.output
    assert f"{B.version}" in listed.output and "(current)" in listed.output

    missing = run_cli("definition", "migrate", "--to", "current")
    assert missing.exit_code == 2
    assert (
        missing.output.count("\n") == 1 and "no state 'reassessment' (1 episode)" in missing.output
    )

    dry = run_cli(
        "definition", "migrate", "--to", "current", "--map", "reassessment=review", "--dry-run"
    )
    assert dry.exit_code == 0, dry.output
    assert "ep-1  would migrate" in dry.output and "2 due timer(s) fired first" in dry.output
    assert "state reassessment → review" in dry.output and "dry run: nothing written" in dry.output

    done = run_cli(
        "definition", "migrate", "--to", "current", "--map", "reassessment=review", "--json"
    )
    assert done.exit_code == 0, done.output
    body = orjson.loads(done.output)
    assert body["counts"] == {"migrated": 1} and body["episodes"][0]["version"] == 4

    factory = uow_factory(url)
    registry = registry_for(factory, B)
    assert {v.version: v.live for v in stored_versions(factory.engine, registry, A.id)} == {
        A.version: 0, B.version: 1,
    }  # fmt: skip
    factory.dispose()
    assert run_cli("definition", "migrate", "--to", "nope@1").exit_code == 2
