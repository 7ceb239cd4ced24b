"""Migrating running episodes to a new definition version, on the in-memory unit of work.

Each new version here is the shipped document with one edit; the episodes are built through
the real use cases (``tests.pathway_helpers``) on the shipped version, then migrated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest

from pathway import usecases
from pathway.audit import process_key, verify_chain
from pathway.definition import DEFAULT_DEFINITION, Definition, compile_definition
from pathway.errors import InvalidRequest
from pathway.migration.plan import MissingStateMapping, migration_decision, plan_migration
from pathway.migration.usecases import (
    CURRENT,
    MIGRATED,
    TERMINAL,
    WOULD_MIGRATE,
    EpisodeMigration,
    fire_due_in_memory,
    migrate_all,
    migration_entry,
)
from pathway.migration.usecases import migrate_episode as migrate_use_case
from pathway.model import CANCELLED, FIRED, PENDING, Timer
from pathway.unit_of_work import InMemoryUnitOfWork
from pathway.usecases import DefinitionRegistry
from tests.support.pathway_runs import PRESENTATION, START, WORKUP_DONE, Run, day_at, in_care

BASE: dict[str, Any] = orjson.loads(DEFAULT_DEFINITION.read_bytes())
RENAMED = {"reassessment": "review"}


def variant(*edits: Callable[[dict[str, Any]], None]) -> Definition:
    doc = copy.deepcopy(BASE)
    for edit in edits:
        edit(doc)
    return compile_definition(doc)


def days(timer: str, n: int) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc["timers"][timer].update(days=n)


def remove_reimage(doc: dict[str, Any]) -> None:
    del doc["timers"]["FU-REIMAGE"], doc["rules"]["FU-REIMAGE"]
    doc["states"]["conservative_care"]["timers"].remove("FU-REIMAGE")
    del doc["measures"]["M-REIMAGE-8W"]  # a measure naming an unknown rule does not load


def rename_reassessment(doc: dict[str, Any]) -> None:
    text = orjson.dumps(doc).decode().replace('"reassessment"', '"review"')
    doc.clear()
    doc.update(orjson.loads(text))


def new_timer(rid: str, n: int, state: str, *, bound: bool) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc["rules"][rid] = {
            "title": rid,
            "refs": ["Decision"],
            "action": {"kind": "escalation", "text": rid},
        }
        doc["timers"][rid] = {"days": n, "state_bound": bound}
        doc["states"][state]["timers"].append(rid)

    return edit


def collapse_over(pct: int) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc["rules"]["TX-INSTAB"]["when"]["any"][1][">"] = pct

    return edit


def migrate(run: Run, new: Definition, state_map: dict[str, str] | None = None, *,
            dry_run: bool = False) -> EpisodeMigration:  # fmt: skip
    """Migrate the run's episode at its current day; the run then works on both versions."""
    run.registry = DefinitionRegistry(new, [run.definition])
    return migrate_use_case(
        run.uow, run.registry, run.episode_id, new.version, state_map or {},
        now=run.at(), actor="migrator", dry_run=dry_run,
    )  # fmt: skip


def pending(run: Run, rule: str) -> Timer:
    (timer,) = [t for t in run.episode.timers if t.rule_id == rule and t.status == PENDING]
    return timer


def timers_by_key(run: Run) -> dict[str, Timer]:
    return {t.key: t for t in run.episode.timers}


def assert_chain_intact(run: Run) -> None:
    ep = run.episode
    check = verify_chain(ep.id, run.audit, (ep.version, ep.audit_hash), key=process_key())
    assert check.ok, check.problem


# -- timers ----------------------------------------------------------------------------------


def test_reassessment_moved_from_28_to_35_days_is_retimed_from_care_start() -> None:
    run = in_care()
    run.advance(10)
    before = timers_by_key(run)
    old_key = pending(run, "FU-REASSESS").key
    result = migrate(run, variant(days("FU-REASSESS", 35)))
    assert result.status == MIGRATED
    ep = run.episode
    assert ep.definition_version == result.to_version != result.from_version
    assert pending(run, "FU-REASSESS").due_at == day_at(35)
    assert timers_by_key(run)[old_key].status == CANCELLED
    for key, timer in before.items():  # every other timer untouched, same key, same due time
        if key != old_key:
            assert timers_by_key(run)[key] == timer
    (retimed,) = result.changes["retimed"]
    assert (retimed["rule"], retimed["due"], retimed["new_due"]) == (
        "FU-REASSESS", day_at(28).isoformat(), day_at(35).isoformat(),
    )  # fmt: skip
    entry = run.audit[-1]
    assert entry.kind == "migrate" and entry.seq == ep.version
    body = entry.body()
    assert body["migration"]["from_version"] == result.from_version
    assert body["migration"]["to_version"] == body["definition_version"] == result.to_version
    assert_chain_intact(run)
    run.advance(34)
    assert run.state == "conservative_care" and "FU-REASSESS" not in run.fired()
    run.advance(35)
    assert run.state == "reassessment"


def test_a_shortened_timer_already_past_falls_due_at_the_migration_not_before() -> None:
    run = in_care()
    run.advance(10)
    result = migrate(run, variant(days("FU-REASSESS", 7)))
    assert pending(run, "FU-REASSESS").due_at == day_at(10)
    assert "past: due at the migration" in result.changes["retimed"][0]["why"]
    (fired,) = [a for a in run.advance(10) if a.decision.timer_fired.rule_id == "FU-REASSESS"]
    assert fired.decision.event.at == day_at(10) and run.state == "reassessment"


def test_a_timer_the_new_version_removes_is_cancelled() -> None:
    run = in_care()
    run.advance(10)
    key = pending(run, "FU-REIMAGE").key
    result = migrate(run, variant(remove_reimage))
    assert timers_by_key(run)[key].status == CANCELLED
    assert [c["rule"] for c in result.changes["cancelled"]] == ["FU-REIMAGE"]
    assert run.audit[-1].body()["timers_cancelled"] == [key]
    run.advance(60)  # FU-REIMAGE (day 56) never fires; the rest of the timeline does
    assert "FU-REIMAGE" not in run.fired()


def test_a_state_bound_timer_is_retimed_from_state_entry() -> None:
    run = in_care()
    run.advance(30)
    assert run.state == "reassessment" and run.episode.state_entered_at == day_at(28)
    migrate(run, variant(days("FU-REASSESS-OVERDUE", 21)))
    timer = pending(run, "FU-REASSESS-OVERDUE")
    assert (timer.due_at, timer.state) == (day_at(49), "reassessment")


def test_fired_timers_stay_fired_and_are_not_set_again() -> None:
    run = in_care()
    run.advance(30)  # T-CALCITONIN-END and FU-REASSESS fired on day 28
    fired = {t.key: t for t in run.episode.timers if t.status == FIRED}
    result = migrate(run, variant(days("T-CALCITONIN-END", 35), days("FU-REASSESS", 35)))
    assert {k: timers_by_key(run)[k] for k in fired} == fired
    assert result.changes["retimed"] == result.changes["added"] == []


def test_the_time_a_timer_was_set_is_state_entry_or_care_start() -> None:
    run = in_care()
    run.advance(30)
    ep, defn = run.episode, run.definition
    for t in ep.pending_timers():
        set_at = t.due_at - defn.timers[t.rule_id].delay
        assert set_at == (ep.state_entered_at if t.state else ep.care_started_at), t


def test_a_new_care_timer_is_set_only_when_its_time_is_still_ahead() -> None:
    new = variant(new_timer("FU-DAY-14", 14, "conservative_care", bound=False))
    early, late = in_care(), in_care()
    early.advance(10)
    late.advance(20)
    result = migrate(early, new)
    timer = pending(early, "FU-DAY-14")
    assert (timer.due_at, timer.state) == (day_at(14), None)
    assert [c["rule"] for c in result.changes["added"]] == ["FU-DAY-14"]
    result = migrate(late, new)
    assert not [t for t in late.episode.timers if t.rule_id == "FU-DAY-14"]
    assert [c["rule"] for c in result.changes["not_set"]] == ["FU-DAY-14"]


def test_a_new_state_bound_timer_is_set_from_state_entry_when_still_ahead() -> None:
    new = variant(new_timer("FU-REVIEW-NUDGE", 3, "reassessment", bound=True))
    run = in_care()
    run.advance(29)
    migrate(run, new)
    timer = pending(run, "FU-REVIEW-NUDGE")
    assert (timer.due_at, timer.state) == (day_at(31), "reassessment")
    run.observe({"pain_score": 5}, day=30)  # continue care: the nudge goes with the state
    assert run.state == "conservative_care"
    assert timers_by_key(run)[timer.key].status == CANCELLED


def test_a_version_that_changes_no_number_only_repins() -> None:
    run = in_care()
    run.advance(10)
    before = run.episode.timers
    result = migrate(run, variant(lambda doc: doc.update(title="L1–L2, revised wording")))
    assert run.episode.timers == before
    assert all(result.changes[k] == [] for k in ("retimed", "added", "cancelled", "not_set"))


# -- states ----------------------------------------------------------------------------------


def test_a_state_the_new_version_lacks_needs_a_mapping_naming_it() -> None:
    run = in_care()
    run.advance(30)
    before = run.snapshot()
    with pytest.raises(MissingStateMapping, match=r"no state 'reassessment' .*review") as err:
        migrate(run, variant(rename_reassessment))
    assert err.value.states == ["conservative_care", "intake", "review", "workup"]
    assert run.snapshot() == before


def test_a_mapped_state_keeps_its_entry_time_and_its_timers_follow_it() -> None:
    run = in_care()
    run.advance(30)
    old_due = pending(run, "FU-REASSESS-OVERDUE").due_at
    result = migrate(run, variant(rename_reassessment), {"reassessment": "review"})
    assert result.changes["state"] == {"from": "reassessment", "to": "review", "mapped": True}
    ep = run.episode
    assert (ep.state, ep.state_entered_at) == ("review", day_at(28))
    timer = pending(run, "FU-REASSESS-OVERDUE")
    assert (timer.state, timer.due_at) == ("review", old_due)
    run.observe({"pain_score": 5}, day=31)  # the renamed state's routes run on the new version
    assert run.state == "conservative_care"
    assert timers_by_key(run)[timer.key].status == CANCELLED
    assert_chain_intact(run)


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"reassessment": "nowhere"}, "NEW one of"),
        ({"reassessment": "discharged"}, "NEW one of"),
        ({"workup": "review", "reassessment": "review"}, "'workup' still exists"),
    ],
)
def test_a_mapping_must_name_a_removed_state_and_a_live_one(
    mapping: dict[str, str], expected: str
) -> None:
    run = in_care()
    run.advance(30)
    before = run.snapshot()
    with pytest.raises(InvalidRequest, match=expected):
        migrate(run, variant(rename_reassessment), mapping)
    assert run.snapshot() == before


# -- transfer, terminal, idempotence, dry run ------------------------------------------------


def test_a_tightened_transfer_criterion_transfers_on_migration() -> None:
    run = in_care(vertebral_collapse_pct=30)
    run.advance(10)
    result = migrate(run, variant(collapse_over(25)))
    ep = run.episode
    assert ep.state == "immediate_transfer"
    assert result.changes["transfer"] == ["TX-INSTAB"] and "TX-INSTAB" in result.changes["rules"]
    assert result.changes["retimed"] == []
    assert not [t for t in ep.timers if t.status == PENDING]
    entry = run.audit[-1].body()
    (rule,) = entry["rules"]
    assert rule["rule_id"] == "TX-INSTAB" and rule["citations"]
    assert any(e["observed"] == 30 and e["held"] for e in rule["evidence"])
    assert entry["transitions"] == [
        {"source": "conservative_care", "dest": "immediate_transfer", "rules": ["TX-INSTAB"]}
    ]
    assert [t.rule_id for t in run.open_tasks()].count("TX-INSTAB") == 1


def test_terminal_episodes_are_not_migrated() -> None:
    run = in_care()
    run.close("declined", day=3)
    before = run.snapshot()
    result = migrate(run, variant(days("FU-REASSESS", 35)))
    assert result.status == TERMINAL and run.snapshot() == before


def test_migrating_again_writes_nothing() -> None:
    run = in_care()
    run.advance(10)
    new = variant(days("FU-REASSESS", 35))
    migrate(run, new)
    before = run.snapshot()
    assert migrate(run, new).status == CURRENT
    assert run.snapshot() == before


def test_a_dry_run_lists_the_changes_of_the_real_run_and_writes_nothing() -> None:
    run = in_care()
    run.advance(10)
    new = variant(days("FU-REASSESS", 35), remove_reimage)
    before = run.snapshot()
    dry = migrate(run, new, dry_run=True)
    assert dry.status == WOULD_MIGRATE and run.snapshot() == before
    real = migrate(run, new)
    assert real.changes == dry.changes


def test_due_timers_fire_under_the_old_version_before_the_migration() -> None:
    run = in_care()  # no one advanced the clock: FU-REASSESS (day 28) is overdue on day 29
    run.day = 29
    new = variant(days("FU-REASSESS", 35))
    dry = migrate(run, new, dry_run=True)
    assert dry.timers_fired_first == 2 and dry.changes["state"]["from"] == "reassessment"
    real = migrate(run, new)
    kinds = [(r.kind, r.body()["definition_version"]) for r in run.audit[-3:]]
    assert kinds == [("timer", real.from_version)] * 2 + [("migrate", real.to_version)]
    assert real.changes == dry.changes and run.state == "reassessment"


def test_catch_up_fires_in_memory_in_due_order() -> None:
    run = in_care()
    episode, fired = fire_due_in_memory(run.definition, run.episode, day_at(60))
    assert fired == 5 and episode.state == "reassessment"  # days 28, 28, 42, 42, 56
    assert run.episode.version == 2  # the stored episode is untouched


def test_plan_refuses_nothing_for_an_episode_already_on_the_version() -> None:
    run = in_care()
    plan = plan_migration(run.episode, run.definition, run.definition, {}, run.at())
    assert plan.skip == CURRENT


# -- old versions keep working; every episode at once ------------------------------------------


def test_an_episode_on_the_old_version_keeps_running_until_migrated() -> None:
    run = in_care()
    new = variant(days("FU-REASSESS", 35))
    run.registry = DefinitionRegistry(new, [run.definition])
    run.advance(28)  # fires under the old numbers, on the old version
    assert run.state == "reassessment"
    run.observe({"pain_score": 5}, day=29)
    assert run.state == "conservative_care"
    assert {r.body()["definition_version"] for r in run.audit} == {run.definition.version}


def _open(uow: InMemoryUnitOfWork, registry: DefinitionRegistry, eid: str, day: float) -> None:
    at = day_at(day)
    usecases.open_episode(uow, registry, {**PRESENTATION, **WORKUP_DONE}, at=at, now=at,
                          actor="t", episode_id=eid)  # fmt: skip


def test_migrate_all_names_every_missing_state_before_writing_anything() -> None:
    uow, old = InMemoryUnitOfWork(), Run().definition
    registry = DefinitionRegistry(old)
    for eid, day in (("a", 0), ("b", -30), ("c", -31)):  # a in care; b, c in reassessment
        _open(uow, registry, eid, day)
    new = variant(rename_reassessment)
    registry = DefinitionRegistry(new, [old])
    before = copy.deepcopy(uow.store)
    with pytest.raises(MissingStateMapping, match=r"'reassessment' \(2 episodes\)"):
        migrate_all(lambda: uow, registry, new.version, {}, now=START, actor="m")
    assert uow.store == before
    report = migrate_all(
        lambda: uow, registry, new.version, {"reassessment": "review"}, now=START, actor="m"
    )
    assert report.counts() == {MIGRATED: 3}
    assert {uow.store.episodes[e].state for e in "bc"} == {"review"}
    assert report.summary().startswith(f"3 episode(s) migrated to {new.version}")
    assert START - timedelta(days=1) < uow.store.audit["a"][-1].at <= START


def test_a_migrate_entry_replays_from_the_log_alone() -> None:
    run = in_care()
    run.advance(30)
    before = run.episode
    migrate(run, variant(rename_reassessment, days("FU-REASSESS-OVERDUE", 21)), RENAMED)
    entry = run.audit[-1]
    m = entry.body()["migration"]
    state_map = {m["state"]["from"]: m["state"]["to"]} if m["state"]["mapped"] else {}
    new = run.registry.get(m["to_version"])
    plan = plan_migration(before, run.registry.get(m["from_version"]), new, state_map, entry.at)
    again = migration_entry(
        migration_decision(plan, entry.actor), plan.changes(), entry.recorded_at, process_key()
    )
    assert (again.payload, again.hash) == (entry.payload, entry.hash)


class _Interrupted(InMemoryUnitOfWork):
    """Before its first commit, another writer records an observation on the episode."""

    interrupted = False

    def commit(self) -> None:
        if self._staged and not _Interrupted.interrupted:
            _Interrupted.interrupted = True
            usecases.observe(InMemoryUnitOfWork(self.store), DefinitionRegistry(Run().definition),
                             "ep-1", {"age": 71}, at=day_at(10), now=day_at(10), actor="other")  # fmt: skip
        super().commit()


def test_an_episode_moved_by_another_writer_meanwhile_is_planned_again() -> None:
    run = in_care()
    run.advance(10)
    new = variant(days("FU-REASSESS", 35))
    registry = DefinitionRegistry(new, [run.definition])
    uow = _Interrupted(run.uow.store)
    report = migrate_all(lambda: uow, registry, new.version, {}, now=day_at(10), actor="m")
    assert report.counts() == {MIGRATED: 1}
    assert [r.kind for r in run.audit[-2:]] == ["observe", "migrate"]
    assert run.episode.fact("age") == 71 and run.episode.definition_version == new.version
    assert_chain_intact(run)


def test_an_episode_pinned_to_a_version_never_stored_fails_alone() -> None:
    uow, old = InMemoryUnitOfWork(), Run().definition
    for eid in ("known", "orphan"):
        _open(uow, DefinitionRegistry(old), eid, 0)
    new = variant(days("FU-REASSESS", 35))
    uow.store.episodes["orphan"].definition_version = "l1-l2-compression-fracture@000000000000"
    registry = DefinitionRegistry(new, [old])
    report = migrate_all(lambda: uow, registry, new.version, {}, now=day_at(1), actor="m")
    assert report.counts() == {MIGRATED: 1, "failed": 1}
    (failed,) = [e for e in report.episodes if e.status == "failed"]
    assert failed.episode_id == "orphan" and "is not loaded" in failed.error
