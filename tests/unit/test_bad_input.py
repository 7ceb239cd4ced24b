"""Bad input is refused with an error that explains itself, and changes nothing.

Also: repeated event ids and timers are no-ops, and the audit chain catches tampering.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pathway import usecases
from pathway.audit import process_key, verify_chain
from pathway.errors import (
    EpisodeClosed,
    EpisodeNotFound,
    InvalidObservation,
    InvalidRequest,
    PathwayError,
)
from pathway.model import PENDING
from tests.support.pathway_runs import START, Run, in_care

# (facts, fact named in the error, value named, words of what was expected)
MALFORMED: dict[str, tuple[Any, str, Any, str]] = {
    "unknown_fact": ({"pain_level": 3}, "pain_level", 3, "vocabulary"),
    "bool_for_integer": ({"pain_score": True}, "pain_score", True, "whole number from 0 to 10"),
    "float_for_integer": ({"pain_score": 5.5}, "pain_score", 5.5, "whole number from 0 to 10"),
    "string_for_integer": ({"age": "70"}, "age", "70", "whole number from 18 to 120"),
    "string_for_number": ({"egfr": "45"}, "egfr", "45", "number from 0 to 200"),
    "bool_for_number": (
        {"vertebral_collapse_pct": False},
        "vertebral_collapse_pct",
        False,
        "number from 0 to 100",
    ),
    "nan_for_number": ({"egfr": float("nan")}, "egfr", None, "number from 0 to 200"),
    "int_for_boolean": ({"dxa_done": 1}, "dxa_done", 1, "true or false"),
    "string_for_boolean": ({"mri_done": "true"}, "mri_done", "true", "true or false"),
    "unknown_enum_value": ({"sex": "f"}, "sex", "f", "female, male, other, unknown"),
    "pain_above_range": ({"pain_score": 11}, "pain_score", 11, "0 to 10"),
    "pain_below_range": ({"pain_score": -1}, "pain_score", -1, "0 to 10"),
    "age_above_range": ({"age": 121}, "age", 121, "18 to 120"),
    "egfr_above_range": ({"egfr": 200.5}, "egfr", 200.5, "0 to 200"),
    "collapse_above_range": (
        {"vertebral_collapse_pct": 101},
        "vertebral_collapse_pct",
        101,
        "0 to 100",
    ),
    "duplicate_fracture_level": (
        {"fracture_levels": ["L1", "L1"]},
        "fracture_levels",
        ["L1", "L1"],
        "'L1' is duplicated",
    ),
    "empty_fracture_levels": ({"fracture_levels": []}, "fracture_levels", [], "1–10"),
    "too_many_fracture_levels": (
        {"fracture_levels": [f"T{i}" for i in range(1, 12)]},
        "fracture_levels",
        [f"T{i}" for i in range(1, 12)],
        "1–10",
    ),
    "unknown_fracture_level": (
        {"fracture_levels": ["L6"]},
        "fracture_levels",
        ["L6"],
        "'L6' is not one",
    ),
    "string_for_list": ({"fracture_levels": "L1"}, "fracture_levels", "L1", "list"),
    "non_dict_list": (["pain_score", 3], "facts", ["pain_score", 3], "object mapping fact names"),
    "non_dict_string": ("pain_score=3", "facts", "pain_score=3", "object mapping fact names"),
    "non_dict_none": (None, "facts", None, "object mapping fact names"),
    "empty_dict": ({}, "facts", {}, "at least one fact"),
    "bad_fact_among_good": (
        {"pain_score": 2, "dxa_done": True, "egfr": "low"},
        "egfr",
        "low",
        "number from 0 to 200",
    ),
}

KEY = process_key()  # the in-memory unit of work's key


def assert_explains(exc: PathwayError, name: str, value: Any, expected: str) -> None:
    message = str(exc)
    assert repr(name) in message or name in message, message
    if value is not None:
        assert repr(value) in message, message
    assert expected in message, message


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_observation_is_refused_naming_fact_value_and_expectation(case: str) -> None:
    facts, name, value, expected = MALFORMED[case]
    run = in_care()
    before = run.snapshot()
    with pytest.raises(InvalidObservation) as info:
        run.observe(facts, day=3)
    assert info.value.fact == name
    assert_explains(info.value, name, value, expected)
    assert run.snapshot() == before


@pytest.mark.parametrize(
    "case", ["bool_for_integer", "age_above_range", "unknown_fact", "duplicate_fracture_level"]
)
def test_malformed_facts_at_opening_store_no_episode(case: str) -> None:
    facts, name, value, expected = MALFORMED[case]
    with pytest.raises(InvalidObservation) as info:
        Run.open(facts)
    assert_explains(info.value, name, value, expected)


@pytest.mark.parametrize("facts", [[], "", 0])
def test_non_mapping_facts_at_opening_are_refused(facts: Any) -> None:
    run = Run()
    with pytest.raises(InvalidObservation) as info:
        usecases.open_episode(run.uow, run.registry, facts, at=START, now=START, actor="a")
    assert info.value.fact == "facts"
    assert run.uow.store.episodes == {}


def test_age_under_18_is_refused_at_opening() -> None:
    run = Run()
    with pytest.raises(InvalidObservation) as info:
        usecases.open_episode(run.uow, run.registry, {"age": 17}, at=START, now=START, actor="a")
    assert info.value.fact == "age"
    assert_explains(info.value, "age", 17, "18 to 120")
    assert run.uow.store.episodes == {} and run.uow.store.audit == {}
    assert run.uow.store.outcomes == {}


def test_unknown_request_action_is_refused() -> None:
    run = in_care()
    before = run.snapshot()
    with pytest.raises(InvalidRequest) as info:
        run.request("surgery", day=2)
    assert info.value.field == "action"
    assert_explains(info.value, "action", "surgery", "vertebroplasty, kyphoplasty")
    assert run.snapshot() == before


@pytest.mark.parametrize("reason", ["bored", "", "Declined"])
def test_unknown_close_reason_is_refused(reason: str) -> None:
    run = in_care()
    before = run.snapshot()
    with pytest.raises(InvalidRequest) as info:
        run.close(reason, day=2)
    assert info.value.field == "reason"
    assert_explains(
        info.value, "reason", reason, "declined, lost_to_follow_up, deceased, entered_in_error"
    )
    assert run.snapshot() == before


def terminal(how: str) -> Run:
    run = in_care()
    if how == "closed":
        run.close("lost_to_follow_up", day=2)
    else:
        run.observe({"neuro_deficit_motor": True}, day=2)
    assert run.state == how
    return run


@pytest.mark.parametrize("how", ["closed", "immediate_transfer"])
@pytest.mark.parametrize(
    "event",
    [
        ("observe", {"pain_score": 3}),
        ("request", "kyphoplasty"),
        ("request", "vertebroplasty"),
        ("close", "declined"),
    ],
)
def test_any_event_on_a_terminal_episode_is_refused(how: str, event: tuple[str, Any]) -> None:
    run = terminal(how)
    before = run.snapshot()
    kind, arg = event
    with pytest.raises(EpisodeClosed) as info:
        getattr(run, kind)(arg, day=3)
    assert info.value.state == how
    assert run.episode_id in str(info.value) and repr(how) in str(info.value)
    assert "non-terminal" in str(info.value)
    assert run.snapshot() == before


@pytest.mark.parametrize("command", ["observe", "request", "close"])
def test_unknown_episode_id_is_refused(command: str) -> None:
    run = in_care()
    before = run.snapshot()
    args: dict[str, Any] = {
        "observe": {"pain_score": 3},
        "request": "vertebroplasty",
        "close": "declined",
    }
    with pytest.raises(EpisodeNotFound) as info:
        getattr(usecases, command)(
            run.uow, run.registry, "no-such-episode", args[command], at=START, now=START, actor="a"
        )
    assert "'no-such-episode'" in str(info.value) and "existing episode" in str(info.value)
    assert run.snapshot() == before


# -- idempotency -----------------------------------------------------------------------------


def test_same_event_id_twice_returns_the_first_outcome_and_writes_nothing() -> None:
    run = in_care()
    first = run.observe({"pain_score": 4}, day=3, event_id="same")
    before = run.snapshot()
    again = run.observe({"pain_score": 9, "vertebral_collapse_pct": 80}, day=4, event_id="same")
    assert again.decision is None
    assert again.outcome.repeated is True
    assert dataclasses.replace(again.outcome, repeated=False) == first.outcome
    assert run.snapshot() == before
    assert run.episode.fact("pain_score") == 4


def test_an_event_refused_as_bad_input_does_not_use_up_its_event_id() -> None:
    run = in_care()
    with pytest.raises(InvalidObservation):
        run.observe({"pain_score": 12}, day=3, event_id="retry")
    applied = run.observe({"pain_score": 2}, day=3, event_id="retry")
    assert applied.decision is not None and not applied.outcome.repeated
    assert run.episode.fact("pain_score") == 2


def test_repeated_refused_request_is_audited_once() -> None:
    run = in_care()
    run.request("vertebroplasty", day=1, event_id="vp")
    n = len(run.audit)
    again = run.request("vertebroplasty", day=1, event_id="vp")
    assert again.outcome.repeated and again.outcome.refused == ("AUG-NO-VERTEBROPLASTY",)
    assert len(run.audit) == n


def test_repeated_open_event_opens_one_episode() -> None:
    run = Run()
    a = usecases.open_episode(
        run.uow, run.registry, {"age": 60}, at=START, now=START, actor="a", event_id="open-1"
    )
    b = usecases.open_episode(
        run.uow, run.registry, {"age": 61}, at=START, now=START, actor="a", event_id="open-1"
    )
    assert b.outcome.repeated and b.outcome.episode_id == a.outcome.episode_id
    assert len(run.uow.store.episodes) == 1
    assert run.uow.store.episodes[a.outcome.episode_id].fact("age") == 60


def test_firing_a_timer_twice_fires_it_once() -> None:
    run = in_care()
    timer = next(t for t in run.episode.timers if t.rule_id == "T-CALCITONIN-END")
    now = timer.due_at
    first = usecases.fire_timer(
        run.uow, run.registry, run.episode_id, timer.key, timer.due_at, now=now
    )
    before = run.snapshot()
    second = usecases.fire_timer(
        run.uow, run.registry, run.episode_id, timer.key, timer.due_at, now=now
    )
    assert first.decision is not None and first.decision.rule_ids == ["T-CALCITONIN-END"]
    assert second.decision is None
    assert run.snapshot() == before
    assert len(run.open_tasks("T-CALCITONIN-END")) == 1


def test_sweeping_twice_fires_nothing_the_second_time() -> None:
    run = in_care()
    assert len(run.advance(60)) > 0
    before = run.snapshot()
    assert run.advance(60) == []
    assert run.snapshot() == before


def test_cancelled_timer_fired_late_changes_nothing() -> None:
    run = Run.open({"age": 60})
    run.observe({"fracture_levels": ["L1"], "pain_score": 5}, day=0.5)
    timer = next(t for t in run.episode.timers if t.rule_id == "FU-INTAKE-OVERDUE")
    assert timer.status != PENDING
    before = run.snapshot()
    applied = usecases.fire_timer(
        run.uow, run.registry, run.episode_id, timer.key, timer.due_at, now=timer.due_at
    )
    assert applied.decision is None
    assert run.snapshot() == before


# -- the audit chain -------------------------------------------------------------------------


def real_episode() -> Run:
    run = in_care({"age": 70, "egfr": 25})
    run.request("vertebroplasty", day=3)
    run.observe({"pain_score": 5}, day=20)
    run.advance(45)
    run.observe({"pain_score": 4}, day=46)
    assert len(run.audit) >= 8
    return run


def head(run: Run) -> tuple[int, str]:
    return run.episode.version, run.episode.audit_hash


def test_audit_chain_of_a_real_episode_verifies() -> None:
    run = real_episode()
    check = verify_chain(run.episode_id, run.audit, head=head(run), key=KEY)
    assert check.ok and check.entries == run.episode.version == len(run.audit)
    assert check.bad_seq is None


def test_altered_payload_is_caught_naming_the_entry() -> None:
    run = real_episode()
    records = run.audit
    forged = records[3].payload.replace(b'"pain_score":5', b'"pain_score":2')
    assert forged != records[3].payload
    records[3] = dataclasses.replace(records[3], payload=forged)
    check = verify_chain(run.episode_id, records, head=head(run), key=KEY)
    assert not check.ok and check.bad_seq == 4
    assert "entry 4" in check.problem and "altered" in check.problem


def test_altered_payload_with_a_recomputed_hash_breaks_the_next_link() -> None:
    from pathway.audit import chain_hash

    run = real_episode()
    records = run.audit
    forged = records[3].payload.replace(b'"pain_score":5', b'"pain_score":2')
    records[3] = dataclasses.replace(
        records[3], payload=forged, hash=chain_hash(KEY, records[3].prev_hash, forged)
    )
    check = verify_chain(run.episode_id, records, head=head(run), key=KEY)
    assert not check.ok and check.bad_seq == 5 and "entry 5" in check.problem


def test_altered_last_entry_with_a_recomputed_hash_misses_the_head() -> None:
    from pathway.audit import chain_hash

    run = real_episode()
    records = run.audit
    last = records[-1]
    forged = last.payload.replace(b'"pain_score":4', b'"pain_score":1')
    assert forged != last.payload
    records[-1] = dataclasses.replace(
        last, payload=forged, hash=chain_hash(KEY, last.prev_hash, forged)
    )
    assert not verify_chain(run.episode_id, records, head=head(run), key=KEY).ok


def test_deleted_entry_is_caught_naming_the_entry() -> None:
    run = real_episode()
    records = run.audit
    del records[2]  # entry 3
    check = verify_chain(run.episode_id, records, head=head(run), key=KEY)
    assert not check.ok and check.bad_seq == 4
    assert "entry 3 was expected" in check.problem


def test_swapped_entries_are_caught_naming_the_entry() -> None:
    run = real_episode()
    records = run.audit
    records[2], records[3] = records[3], records[2]
    check = verify_chain(run.episode_id, records, head=head(run), key=KEY)
    assert not check.ok and check.bad_seq == 4
    assert "entry 4 found where entry 3 was expected" in check.problem


def test_dropped_tail_entry_is_caught_against_the_head() -> None:
    run = real_episode()
    records = run.audit[:-1]
    check = verify_chain(run.episode_id, records, head=head(run), key=KEY)
    assert not check.ok and check.bad_seq == len(run.audit)
    assert f"entry {len(run.audit)} is missing" in check.problem
