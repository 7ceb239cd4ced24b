"""The five safety properties of PROTOCOL.md, over random event sequences (hypothesis).

Each example opens an episode with a random profile and plays up to 14 events (observations
drawn from the vocabulary with valid values, requests, closes, plain waits) on days 0–200,
firing timers as the clock advances. Every decision — commands and timer firings — is checked.
The transfer criteria are restated here from PROTOCOL.md, independently of the definition file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pathway.errors import EpisodeClosed
from pathway.model import PENDING, Decision, Episode
from pathway.vocabulary import FactSpec
from tests.support.pathway_runs import PRESENTATION, Run, at_three_month_review, definition, in_care

DEFN = definition()
SPECS = DEFN.vocabulary.facts
TERMINAL = {s for s, d in DEFN.states.items() if d.terminal}
DEFICITS = (
    "neuro_deficit_motor",
    "neuro_deficit_sensory",
    "bowel_bladder_dysfunction",
    "radicular_symptoms",
)
LAST_DAY = 200

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def transfer_rules(facts: dict[str, Any]) -> set[str]:
    """PROTOCOL.md's TX table, restated: which transfer rules these facts fire."""
    fired = set()
    if any(facts.get(f) is True for f in DEFICITS):
        fired.add("TX-NEURO")
    collapse = facts.get("vertebral_collapse_pct")
    if (
        facts.get("posterior_column_involvement") is True
        or facts.get("alignment_abnormality") is True
        or (collapse is not None and collapse > 50)
    ):
        fired.add("TX-INSTAB")
    if facts.get("pathologic_fracture_suspected") is True:
        fired.add("TX-MALIG")
    if len(facts.get("fracture_levels") or ()) > 1 or facts.get("high_energy_trauma") is True:
        fired.add("TX-MULTI")
    return fired


# -- strategies ------------------------------------------------------------------------------


def value_of(spec: FactSpec) -> st.SearchStrategy[Any]:
    """Any valid value of a fact, from its spec in the definition's vocabulary."""
    if spec.kind == "boolean":
        return st.booleans()
    if spec.kind == "integer":
        return st.integers(int(spec.minimum or 0), int(spec.maximum or 0))
    if spec.kind == "number":
        lo, hi = spec.minimum or 0, spec.maximum or 0
        return st.one_of(st.integers(int(lo), int(hi)), st.floats(lo, hi, allow_nan=False))
    if spec.kind == "enum":
        return st.sampled_from(spec.values)
    return st.lists(
        st.sampled_from(spec.values),
        min_size=spec.min_items or 1,
        max_size=spec.max_items or 1,
        unique=True,
    )


# Facts that fire no transfer rule when they take these values: most observations keep the
# episode alive, so that sequences reach the later states.
SAFE: dict[str, st.SearchStrategy[Any]] = {
    **{name: value_of(spec) for name, spec in SPECS.items()},
    **{
        f: st.just(False)
        for f in (
            *DEFICITS,
            "posterior_column_involvement",
            "alignment_abnormality",
            "pathologic_fracture_suspected",
            "high_energy_trauma",
        )
    },
    "vertebral_collapse_pct": st.one_of(st.integers(0, 50), st.floats(0, 50)),
    "fracture_levels": st.lists(
        st.sampled_from(SPECS["fracture_levels"].values), min_size=1, max_size=1
    ),
}
ANY: dict[str, st.SearchStrategy[Any]] = {name: value_of(spec) for name, spec in SPECS.items()}


def some_facts(
    pool: dict[str, st.SearchStrategy[Any]], most: int
) -> st.SearchStrategy[dict[str, Any]]:
    names = st.lists(st.sampled_from(sorted(pool)), min_size=1, max_size=most, unique=True)
    return names.flatmap(lambda ns: st.fixed_dictionaries({n: pool[n] for n in ns}))


pain = st.integers(0, 10)
presentation = st.fixed_dictionaries(
    {"fracture_levels": SAFE["fracture_levels"], "pain_score": pain}
)
workup = st.fixed_dictionaries(
    {"mri_done": st.sampled_from([True, True, True, False]), "neuro_exam_done": st.just(True)},
    optional={
        "ct_done": st.booleans(),
        "pain_score": pain,
        "vertebral_collapse_pct": SAFE["vertebral_collapse_pct"],
    },
)
observations = st.one_of(
    presentation,
    workup,
    st.fixed_dictionaries({"pain_score": pain}),
    st.fixed_dictionaries(
        {"pain_score": pain},
        optional={
            "dxa_done": st.booleans(),
            "osteoporosis_treatment_started": st.booleans(),
            "osteoporosis_referral_placed": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"pain_score": pain},
        optional={
            "kyphosis_progression": st.booleans(),
            "significant_deformity": st.booleans(),
            "pulmonary_dysfunction": st.booleans(),
            "neuro_exam_done": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"pain_score": st.integers(0, 3), "dxa_done": st.just(True)},
        optional={
            "osteoporosis_treatment_started": st.booleans(),
            "osteoporosis_referral_placed": st.booleans(),
        },
    ),
    some_facts(SAFE, 4),
)
observations = st.one_of(*[observations] * 6, some_facts(ANY, 3))
commands = st.one_of(
    st.tuples(st.just("observe"), observations),
    st.tuples(st.just("observe"), observations),
    st.tuples(st.just("observe"), observations),
    st.tuples(st.just("request"), st.sampled_from(["vertebroplasty", "kyphoplasty"])),
    st.tuples(st.just("advance"), st.none()),
)
step = st.tuples(st.integers(0, 40), commands)
close = st.tuples(
    st.integers(0, 60), st.tuples(st.just("close"), st.sampled_from(DEFN.close.reasons))
)
# Most plans record a presentation and a workup first, so that they reach care and beyond.
start = st.one_of(
    st.tuples(
        st.tuples(st.integers(0, 2), st.tuples(st.just("observe"), presentation)),
        st.tuples(st.integers(0, 4), st.tuples(st.just("observe"), workup)),
    ).map(list),
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 2), st.tuples(st.just("observe"), presentation)),
            st.tuples(st.integers(0, 4), st.tuples(st.just("observe"), workup)),
        ),
        max_size=3,
    ),
)
# Some plans close the episode, then keep sending events to it.
ending = st.one_of(
    st.just([]),
    st.just([]),
    st.just([]),
    st.builds(lambda c, more: [c, *more], close, st.lists(step, max_size=2)),
)
steps = st.builds(lambda a, b, c: a + b + c, start, st.lists(step, min_size=2, max_size=18), ending)
profiles = st.fixed_dictionaries(
    {}, optional={name: value_of(spec) for name, spec in SPECS.items() if spec.group == "profile"}
)
opening = st.one_of(
    profiles, profiles, profiles, st.builds(lambda p, x: {**p, **x}, profiles, some_facts(ANY, 3))
)
TRANSFER_FINDINGS: list[dict[str, Any]] = [
    *({f: True} for f in DEFICITS),
    {"posterior_column_involvement": True},
    {"alignment_abnormality": True},
    {"pathologic_fracture_suspected": True},
    {"high_energy_trauma": True},
]
transfer_findings = st.one_of(
    st.sampled_from(TRANSFER_FINDINGS),
    st.fixed_dictionaries(
        {
            "vertebral_collapse_pct": st.one_of(
                st.integers(51, 100), st.floats(50, 100, exclude_min=True)
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "fracture_levels": st.lists(
                st.sampled_from(SPECS["fracture_levels"].values),
                min_size=2,
                max_size=10,
                unique=True,
            )
        }
    ),
)
with_transfer = st.builds(lambda x, t: {**x, **t}, some_facts(ANY, 3), transfer_findings)


# -- checks ----------------------------------------------------------------------------------


def facts_of(episode: Episode) -> dict[str, Any]:
    return {name: fv.value for name, fv in episode.facts.items()}


def check_decision(d: Decision) -> None:
    """Properties 2–5 on one decision (a command or a timer firing)."""
    ep, facts = d.episode, facts_of(d.episode)
    # 2. vertebroplasty is never recommended
    assert "AUG-NO-VERTEBROPLASTY" not in d.rule_ids
    assert not any("vertebroplasty" in t.text.lower() for t in d.tasks_opened)
    arrived = {t.dest for t in d.transitions}
    # 3. no discharge without osteoporosis evaluation and treatment or referral
    if "discharged" in arrived:
        assert facts.get("dxa_done") is True
        assert (
            facts.get("osteoporosis_treatment_started") is True
            or facts.get("osteoporosis_referral_placed") is True
        )
    # 4. no augmentation before care day 90 or with a neurological deficit
    if "augmentation_consideration" in arrived:
        assert ep.care_started_at is not None
        assert d.event.at - ep.care_started_at >= timedelta(days=90)
        assert not any(facts.get(f) is True for f in DEFICITS)
        assert facts.get("neuro_exam_done") is True
    # 5. every live episode shows as due or overdue; a terminal one has no timers
    pending = [t for t in ep.timers if t.status == PENDING]
    if ep.state in TERMINAL:
        assert pending == []
    else:
        assert pending or ep.open_escalations(), f"{ep.state} has no timer nor escalation"


def play(opening_facts: dict[str, Any], plan: list[tuple[int, tuple[str, Any]]]) -> Run:
    """Play the plan, checking every decision and the command-level properties on the way."""
    run = Run.open(opening_facts)
    first = run.decisions[0]
    if transfer_rules(opening_facts):  # 1. at opening too
        assert first.episode.state == "immediate_transfer"
        assert set(first.transitions[-1].rules) == transfer_rules(opening_facts)
    else:
        assert first.episode.state != "immediate_transfer"
    check_decision(first)
    for delta, (kind, arg) in plan:
        seen = len(run.history)
        run.advance(min(run.day + delta, LAST_DAY))
        for applied in run.history[seen:]:
            check_decision(applied.decision)
        if kind == "advance":
            continue
        before = run.episode
        if before.state in TERMINAL:
            snapshot = run.snapshot()
            try:
                getattr(run, kind)(arg)
            except EpisodeClosed:
                assert run.snapshot() == snapshot
                continue
            raise AssertionError(f"{kind} accepted on a {before.state} episode")
        d = getattr(run, kind)(arg).decision
        check_decision(d)
        if kind == "observe":  # 1. a transfer finding transfers, in this decision
            expected = transfer_rules({**facts_of(before), **arg})
            if expected:
                assert d.episode.state == "immediate_transfer"
                assert d.transitions[-1].dest == "immediate_transfer"
                assert set(d.transitions[-1].rules) == expected
                assert expected <= set(d.rule_ids)
            else:
                assert d.episode.state != "immediate_transfer"
        if kind == "request" and arg == "vertebroplasty":  # 2. every request refused
            assert d.refused_ids == ["AUG-NO-VERTEBROPLASTY"]
            assert d.transitions == [] and d.episode.state == before.state
    seen = len(run.history)
    run.advance(LAST_DAY)
    for applied in run.history[seen:]:
        check_decision(applied.decision)
    event(f"final state: {run.state}")
    return run


@SETTINGS
@given(opening, steps)
def test_safety_properties_hold_on_random_event_sequences(
    opening_facts: dict[str, Any], plan: list[tuple[int, tuple[str, Any]]]
) -> None:
    play(opening_facts, plan)


LIVE: dict[str, Callable[[], Run]] = {
    "intake": lambda: Run.open({"age": 70}),
    "workup": lambda: in_workup_run(),
    "conservative_care": lambda: in_care({"age": 70}),
    "reassessment (first window)": lambda: in_care_then(28),
    "reassessment (3-month)": lambda: at_three_month_review({"age": 70}),
}


def in_workup_run() -> Run:
    run = Run.open({"age": 70})
    run.observe(PRESENTATION)
    return run


def in_care_then(day: int) -> Run:
    run = in_care({"age": 70})
    run.advance(day)
    return run


@SETTINGS
@given(st.sampled_from(sorted(LIVE)), with_transfer)
def test_transfer_finding_transfers_from_every_live_state(
    state: str, facts: dict[str, Any]
) -> None:
    run = LIVE[state]()
    assert run.state == state.split(" ")[0]
    d = run.observe(facts).decision
    assert d.episode.state == "immediate_transfer"
    assert set(d.transitions[-1].rules) == transfer_rules(facts)
    check_decision(d)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(opening, steps)
def test_same_inputs_give_the_same_decisions(
    opening_facts: dict[str, Any], plan: list[tuple[int, tuple[str, Any]]]
) -> None:
    def replay() -> Run:
        run = Run.open(opening_facts)
        for delta, (kind, arg) in plan:
            run.advance(min(run.day + delta, LAST_DAY))
            if kind == "advance":
                continue
            with contextlib.suppress(EpisodeClosed):
                getattr(run, kind)(arg)
        run.advance(LAST_DAY)
        return run

    a, b = replay(), replay()
    assert [x.outcome for x in a.history] == [y.outcome for y in b.history]
    assert [(r.payload, r.hash) for r in a.audit] == [(r.payload, r.hash) for r in b.audit]
    assert a.episode == b.episode
