"""``pathway.explain``: what each episode is waiting for, on every state of both shipped
pathways, and its agreement with the engine: the first candidate that explain says holds is the
one the next observation takes; when none holds, the observation moves nothing."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pathway.engine import decide
from pathway.errors import InvalidObservation
from pathway.explain import explain_episode
from pathway.model import Observe
from pathway.vocabulary import FactSpec
from tests.support.pathway_runs import (
    FRACTURE_DATE,
    OSTEO_CARE_IN_PLACE,
    PRESENTATION,
    FlsRun,
    Run,
    at_three_month_review,
    in_care,
)

FLS_PROFILE: dict[str, Any] = {"age": 70, "sex": "female"}
DATED: dict[str, Any] = {"fracture_date": FRACTURE_DATE, "fracture_site": "wrist"}
FALLS_LOW: dict[str, Any] = {"falls_assessment_done": True, "falls_risk_high": False}


def _reassessment() -> Run:
    run = in_care()
    run.advance(28)
    return run


def _fls_treatment() -> FlsRun:
    run = FlsRun.open({**FLS_PROFILE, **DATED}, day=3.375)
    run.observe({"risk_category": "high", **FALLS_LOW}, day=4)
    return run


def _fls_first_follow_up() -> FlsRun:
    run = _fls_treatment()
    run.advance(90)
    return run


def _fls_monitoring() -> FlsRun:
    run = _fls_first_follow_up()
    run.observe({"aom_started": True}, day=91)
    return run


def _fls_annual() -> FlsRun:
    run = _fls_monitoring()
    run.advance(380)
    return run


def _then(run: Run, facts: dict[str, Any], day: float | None = None) -> Run:
    run.observe(facts, day=day)
    return run


def _closed(run: Run) -> Run:
    run.close("declined")
    return run


DRIVERS = {
    "intake": lambda: Run.open({"age": 70}),
    "workup": lambda: _then(Run.open({"age": 70}), PRESENTATION, 0),
    "conservative_care": in_care,
    "reassessment": _reassessment,
    "immediate_transfer": lambda: _then(
        Run.open({"age": 70}), {**PRESENTATION, "neuro_deficit_motor": True}, 0
    ),
    "delayed_referral": lambda: _then(at_three_month_review(), {"significant_deformity": True}),
    "augmentation_consideration": lambda: _then(at_three_month_review(pain=8), {"pain_score": 8}),
    "discharged": lambda: _then(_reassessment(), {"pain_score": 2, **OSTEO_CARE_IN_PLACE}),
    "closed": lambda: _closed(Run.open({"age": 70})),
    "fls:identified": lambda: FlsRun.open(FLS_PROFILE, day=3.375),
    "fls:assessment": lambda: FlsRun.open({**FLS_PROFILE, **DATED}, day=3.375),
    "fls:treatment": _fls_treatment,
    "fls:first_follow_up": _fls_first_follow_up,
    "fls:monitoring": _fls_monitoring,
    "fls:annual_follow_up": _fls_annual,
    "fls:lifestyle_advice": lambda: _then(
        FlsRun.open({**FLS_PROFILE, **DATED}, day=3.375), {"risk_category": "low", **FALLS_LOW}
    ),
    "fls:completed": lambda: _then(_fls_annual(), {"aom_still_prescribed": True}),
    "fls:not_eligible": lambda: FlsRun.open({"age": 45, "sex": "female", **DATED}, day=3.375),
    "fls:closed": lambda: _closed(FlsRun.open(FLS_PROFILE, day=3.375)),
}


@cache
def driven(name: str) -> Run:
    run = DRIVERS[name]()
    assert run.state == name.removeprefix("fls:"), (name, run.state)
    return run


def explained(name: str, day: float | None = None) -> Any:
    run = driven(name)
    return explain_episode(run.definition, run.episode, run.at(day))


def test_every_state_of_both_pathways_is_driven() -> None:
    l1 = {n for n in DRIVERS if not n.startswith("fls:")}
    fls = {n.removeprefix("fls:") for n in DRIVERS if n.startswith("fls:")}
    assert l1 == set(driven("intake").definition.states)
    assert fls == set(driven("fls:identified").definition.states)


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_explain_lists_every_route_rule_of_the_state_in_engine_order(name: str) -> None:
    run = driven(name)
    d = run.definition
    e = explained(name)
    assert (e.episode, e.pathway, e.state) == (run.episode_id, d.id, run.state)
    if d.is_terminal(run.state):
        assert e.candidates == () and e.timers == ()
        return
    expected = [(rid, r.to) for r in d.global_routes for rid in r.rules]
    expected += [(rid, r.to) for r in d.states[run.state].routes for rid in r.rules]
    assert [(c.rule, c.to) for c in e.candidates] == expected
    assert [c.transfer for c in e.candidates][: len(d.global_routes[0].rules) if d.global_routes else 0] == [True] * (len(d.global_routes[0].rules) if d.global_routes else 0)  # fmt: skip
    assert [(t.rule, t.due_at) for t in e.timers] == [
        (t.rule_id, t.due_at) for t in run.episode.pending_timers()
    ]
    for c in e.candidates:
        assert c.holds == (not c.failing), c  # a candidate fails exactly on its failing leaves


def _candidate(e: Any, rule: str, to: str | None = ...) -> Any:  # type: ignore[assignment]
    found = [c for c in e.candidates if c.rule == rule and (to is ... or c.to == to)]
    assert len(found) == 1, found
    return found[0]


def test_workup_with_imaging_read_waits_for_the_neuro_exam() -> None:
    run = _then(Run.open({"age": 70}), {**PRESENTATION, "mri_done": True}, 0)
    e = explain_episode(run.definition, run.episode, run.at())
    wu = _candidate(e, "WU-COMPLETE").to_dict()
    assert wu == {
        "rule": "WU-COMPLETE",
        "to": "conservative_care",
        "holds": False,
        "failing": [
            {"fact": "neuro_exam_done", "observed": None, "needs": {"op": "is", "value": True}}
        ],
        "missing": ["neuro_exam_done"],
    }
    assert [t.to_dict() for t in e.timers] == [
        {"rule": "FU-WORKUP-OVERDUE", "due_at": run.at(3).isoformat(), "fires_if": None}
    ]


def test_reassessment_at_care_day_95_with_pain_5_fails_dr_pain_on_pain_score() -> None:
    run = at_three_month_review(pain=5)
    e = explain_episode(run.definition, run.episode, run.at(95))
    dr = _candidate(e, "DR-PAIN").to_dict()
    assert dr["holds"] is False and dr["to"] == "augmentation_consideration"
    assert dr["failing"] == [
        {"fact": "pain_score", "observed": 5, "needs": {"op": ">=", "value": 7}}
    ]
    assert dr["missing"] == []
    early, late = [c for c in e.candidates if c.rule == "RA-CONTINUE"]  # on two routes
    assert not early.holds and late.holds
    assert early.failing[0].to_dict() == {
        "fact": "care_day", "observed": 95, "needs": {"op": "<", "value": 90}
    }  # fmt: skip
    assert e.next_move is late


def test_a_negated_leaf_needs_not_its_operator_and_is_never_missing() -> None:
    run = at_three_month_review(pain=8)
    e = explain_episode(
        run.definition, run.episode, run.at(95), {"pain_score": 8, "neuro_deficit_motor": True}
    )
    tx = _candidate(e, "TX-NEURO")
    assert tx.holds and tx.to == "immediate_transfer"
    aug = _candidate(e, "DR-PAIN")  # guarded by AUG-KYPHOPLASTY, which needs neuro intact
    assert [leaf.to_dict() for leaf in aug.failing] == [
        {"fact": "neuro_deficit_motor", "observed": True, "needs": {"op": "not is", "value": True}}
    ]
    assert aug.missing == ()


def test_a_comparison_with_another_value_names_it_and_its_value() -> None:
    run = at_three_month_review(pain=8)  # the day-30 review remembered pain 8
    e = explain_episode(run.definition, run.episode, run.at(95), {"pain_score": 7})
    leaves = [leaf.to_dict() for leaf in _candidate(e, "DR-PAIN").failing]
    assert {"fact": "previous_review_pain", "observed": 8,
            "needs": {"op": "not known", "value": None}} in leaves  # fmt: skip
    assert {"fact": "pain_score", "observed": 7,
            "needs": {"op": ">=", "value": {"var": "previous_review_pain", "value": 8}}} in leaves  # fmt: skip


def test_a_rule_that_reads_this_observation_is_missing_at_rest() -> None:
    e = explained("fls:first_follow_up")
    on = _candidate(e, "FLS-ON-TREATMENT")
    assert on.to == "monitoring" and not on.holds and on.missing == ("aom_started",)
    run = driven("fls:first_follow_up")
    what_if = explain_episode(run.definition, run.episode, run.at(), {"aom_started": True})
    assert _candidate(what_if, "FLS-ON-TREATMENT").holds


def test_a_route_that_moves_nothing_has_no_destination() -> None:
    e = explained("fls:assessment")
    assert _candidate(e, "FLS-INTERMEDIATE").to is None
    assert not e.to_dict()["candidates"][0]["holds"]


def test_a_conditional_timer_says_when_it_fires_in_structure_and_words() -> None:
    e = explained("conservative_care")
    by_rule = {t.rule: t for t in e.timers}
    assert by_rule["FU-REASSESS"].fires_if is None and by_rule["FU-REASSESS"].moves_to == (
        "reassessment"
    )
    fires = by_rule["FU-REIMAGE"].to_dict()["fires_if"]
    assert fires["criterion"] == {"fact": "pain_score", ">=": 4}
    assert fires["text"] == "pain_score >= 4"
    assert fires["holds"] is True and fires["failing"] == [] and fires["missing"] == []
    osteo = by_rule["FU-OSTEO-REFERRAL"].fires_if
    assert osteo is not None and osteo.holds  # nothing recorded: treatment not started
    assert osteo.criterion == {"any": [
        {"not": {"fact": "osteoporosis_treatment_started", "is": True}},
        {"not": {"fact": "osteoporosis_referral_placed", "is": True}},
    ]}  # fmt: skip


def test_a_timer_whose_condition_fails_gives_its_failing_leaves() -> None:
    run = in_care(osteoporosis_treatment_started=True, osteoporosis_referral_placed=True)
    e = explain_episode(run.definition, run.episode, run.at())
    osteo = next(t for t in e.timers if t.rule == "FU-OSTEO-REFERRAL").fires_if
    assert osteo is not None and not osteo.holds
    assert [leaf.op for leaf in osteo.failing] == ["not is", "not is"]


def test_a_state_test_is_a_leaf_on_the_state() -> None:
    e = explained("fls:treatment")
    due = next(t for t in e.timers if t.rule == "FLS-ASSESS-DUE").fires_if
    assert due is not None and not due.holds
    assert due.failing[0].to_dict() == {
        "fact": "state", "observed": "treatment",
        "needs": {"op": "in", "value": ["assessment", "identified"]},
    }  # fmt: skip


# -- agreement with the engine -----------------------------------------------------------------


def _value(spec: FactSpec) -> st.SearchStrategy[Any]:
    if spec.kind == "boolean":
        return st.booleans()
    if spec.kind == "integer":
        return st.integers(int(spec.minimum or 0), int(spec.maximum or 0))
    if spec.kind == "number":
        return st.floats(spec.minimum or 0, spec.maximum or 0, allow_nan=False)
    if spec.kind == "enum":
        return st.sampled_from(spec.values)
    if spec.kind == "list":
        return st.lists(
            st.sampled_from(spec.values),
            min_size=spec.min_items or 0,
            max_size=min(spec.max_items or 3, 3),
            unique=True,
        )
    return st.dates(date(2025, 1, 1), date(2026, 3, 2)).map(date.isoformat)


@st.composite
def observations(draw: Any, name: str) -> tuple[dict[str, Any], float]:
    facts = driven(name).definition.vocabulary.facts
    names = draw(st.lists(st.sampled_from(sorted(facts)), min_size=1, max_size=4, unique=True))
    return {n: draw(_value(facts[n])) for n in names}, draw(st.floats(0, 200))


LIVE = [n for n in sorted(DRIVERS) if not driven(n).definition.is_terminal(driven(n).state)]


@pytest.mark.parametrize("name", LIVE)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_candidate_explain_says_holds_is_the_one_the_engine_takes(name: str, data: Any) -> None:
    run = driven(name)
    d, episode = run.definition, run.episode
    raw, later = data.draw(observations(name))
    at = episode.state_entered_at + timedelta(days=later)
    try:
        facts = d.vocabulary.validate(raw, at)
    except InvalidObservation:
        assume(False)
    predicted = explain_episode(d, episode, at, facts).next_move
    decision = decide(d, episode, Observe("probe", at, "test", facts), at)
    if predicted is None:
        assert decision.transitions == []
        assert not any(r in decision.rule_ids for r in _route_rules(d, episode.state))
        return
    if predicted.to is None:
        assert decision.transitions == [] and predicted.rule in decision.rule_ids
        return
    first = decision.transitions[0]
    assert (first.source, first.dest) == (episode.state, predicted.to)
    assert predicted.rule in first.rules


def _route_rules(d: Any, state: str) -> set[str]:
    """Rules that only a route (never an on-enter, check or also) fires in this state."""
    routes = [*d.global_routes, *d.states[state].routes]
    others = set(d.states[state].checks) | {a for r in routes for a in r.also}
    return {rid for r in routes for rid in r.rules} - others


def test_with_nothing_new_the_explained_move_is_the_engine_s_for_every_state() -> None:
    for name in LIVE:
        run = driven(name)
        d, episode = run.definition, run.episode
        some = next(iter(episode.facts))  # the same value again: nothing changes but the event
        facts = {some: episode.facts[some].value}
        at = episode.state_entered_at
        predicted = explain_episode(d, episode, at, facts).next_move
        decision = decide(d, episode, Observe("probe", at, "test", facts), at)
        if predicted is None or predicted.to is None:
            assert decision.transitions == [], name
        else:
            assert decision.transitions[0].dest == predicted.to, name


# -- agreement on every scenario of the library ------------------------------------------------

SCENARIOS = sorted(
    p for p in (Path(__file__).parents[1] / "scenarios").iterdir() if p.suffix in (".json", ".yaml")
)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_observation_of_every_scenario_does_what_explain_said_before_it(path: Path) -> None:
    from carepath.replay.runner import replay
    from carepath.replay.scenario import load_scenario
    from pathway.unit_of_work import InMemoryUnitOfWork
    from tests.support.pathway_runs import shipped_registry

    made: list[InMemoryUnitOfWork] = []

    def make_uow() -> InMemoryUnitOfWork:
        made.append(InMemoryUnitOfWork())
        return made[-1]

    registry = shipped_registry()
    replay(load_scenario(path), registry, make_uow)
    (uow,) = made
    checked = 0
    for episode_id in uow.store.episodes:  # the scenario's, and any it enrolled
        checked += _check_observations(uow, registry, episode_id)
    assert checked or "invalid" in path.stem or "closed" in path.stem or "tx_" in path.stem


def _check_observations(uow: Any, registry: Any, episode_id: str) -> int:
    """Rebuild the episode from its audit log; before each observation, explain's next move
    must be the engine's."""
    from pathway.engine import open_episode
    from pathway.model import Open
    from tests.support.episode_driver import event_of

    episode = None
    checked = 0
    for record in uow.audit_records(episode_id):
        event = event_of(record)
        definition = registry.get(record.body()["definition_version"])
        if isinstance(event, Open):
            episode = open_episode(definition, event, episode_id, record.recorded_at).episode
            continue
        assert episode is not None
        decision = decide(definition, episode, event, record.recorded_at)
        if isinstance(event, Observe) and not definition.is_terminal(episode.state):
            predicted = explain_episode(definition, episode, event.at, event.facts).next_move
            if predicted is None or predicted.to is None:
                assert decision.transitions == [], (record.seq, predicted)
            else:
                first = decision.transitions[0]
                assert (first.dest, predicted.rule in first.rules) == (predicted.to, True)
            checked += 1
        episode = decision.episode
    return checked


@pytest.mark.parametrize("name", LIVE)
def test_each_pending_timer_fires_its_rule_exactly_when_fires_if_says(name: str) -> None:
    from pathway.model import FireTimer

    run = driven(name)
    d, episode = run.definition, run.episode
    e = explain_episode(d, episode, run.at())
    keys = {t.rule_id: t.key for t in episode.pending_timers()}
    for wait in e.timers:
        due = max(wait.due_at, episode.state_entered_at)
        decision = decide(d, episode, FireTimer("probe", due, "test", keys[wait.rule]), due)
        expected = wait.fires_if is None or wait.fires_if.holds
        if not d.rules[wait.rule].once:
            assert (wait.rule in decision.rule_ids) == expected, (name, wait.rule)
        moved = [(t.source, t.dest) for t in decision.transitions]
        assert moved == ([(episode.state, wait.moves_to)] if wait.moves_to else []), wait.rule
