"""The TX check's memo and the review checks' needs (``pathway.work``), and the event-scoped
fast tests (``pathway.criteria``).

An observation of facts the TX check does not read cannot change its result, so the engine
skips the check when it is known false on the very facts map the observation starts from
(``Plan.global_reads``: the facts it reads, or None when it reads anything else). These tests
fail if the memo is stale: if it ignored the observed facts, the facts map it was made on or
the definition version, or served a plan that reads derived values. Event-scoped leaves compiled to
direct closures give exactly the result of the slow path they replace. A review check that
holds only on a fact this very observation recorded (``StatePlan.checks_need``) is not tested,
nor its context built, on an observation of none of them.
"""

from __future__ import annotations

import itertools
import pickle
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pathway.criteria import All, AnyOf, Compare, Context, Not
from pathway.definition import DEFAULT_DEFINITION, Definition, compile_definition
from pathway.engine import decide, open_episode
from pathway.engine_plan import event_needs, plan_of
from pathway.model import Episode, Facts, FactValue, Observe, Open

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
IN_CARE = {
    "age": 70,
    "first_fracture": True,
    "fracture_levels": ["L1"],
    "pain_score": 7,
    "mri_done": True,
    "neuro_exam_done": True,
    "vertebral_collapse_pct": 20,
}
TX_FACTS = {
    "neuro_deficit_motor",
    "neuro_deficit_sensory",
    "bowel_bladder_dysfunction",
    "radicular_symptoms",
    "posterior_column_involvement",
    "vertebral_collapse_pct",
    "alignment_abnormality",
    "pathologic_fracture_suspected",
    "fracture_levels",
    "high_energy_trauma",
}


def document() -> dict[str, Any]:
    return orjson.loads(DEFAULT_DEFINITION.read_bytes())


DEFINITION = compile_definition(document())


def in_care(definition: Definition = DEFINITION) -> Episode:
    decision = open_episode(definition, Open("ev-open", AT, "t", IN_CARE), "ep-1", AT)
    assert decision.episode.state == "conservative_care"
    return decision.episode


def observe(definition: Definition, episode: Episode, facts: dict[str, Any], n: int) -> Episode:
    at = AT + timedelta(hours=n)
    return decide(definition, episode, Observe(f"ev-{n}", at, "t", facts), at).episode


def test_the_plan_knows_the_facts_the_tx_check_reads() -> None:
    assert plan_of(DEFINITION).global_reads == TX_FACTS


def test_a_tx_check_reading_a_derived_value_is_never_skipped() -> None:
    doc = document()
    doc["rules"]["TX-MALIG"]["when"] = {
        "all": [{"fact": "pathologic_fracture_suspected", "is": True}, {"fact": "care_day", ">": 0}]
    }
    definition = compile_definition(doc)
    assert plan_of(definition).global_reads is None
    episode = in_care(definition)
    episode = observe(definition, episode, {"pathologic_fracture_suspected": True}, 1)
    assert episode.state == "conservative_care"  # care day 0: not yet
    later = AT + timedelta(days=2)  # the same facts, a derived value changed: now it applies
    decision = decide(definition, episode, Observe("ev-2", later, "t", {"pain_score": 3}), later)
    assert decision.episode.state == "immediate_transfer"


def test_an_observation_of_a_fact_the_check_reads_is_checked() -> None:
    episode = observe(DEFINITION, in_care(), {"pain_score": 5}, 1)  # clears: memo now known
    episode = observe(DEFINITION, episode, {"pain_score": 4}, 2)  # skipped (a hit)
    assert episode.state == "conservative_care"
    for n, fact in enumerate(sorted(TX_FACTS - {"vertebral_collapse_pct", "fracture_levels"})):
        decision = decide(
            DEFINITION, episode, Observe(f"ev-x{n}", AT + timedelta(hours=3), "t", {fact: True}),
            AT + timedelta(hours=3),
        )  # fmt: skip
        assert decision.episode.state == "immediate_transfer", fact
    moved = observe(DEFINITION, episode, {"vertebral_collapse_pct": 60, "pain_score": 2}, 4)
    assert moved.state == "immediate_transfer"


def test_the_memo_is_of_a_facts_map_not_of_an_episode() -> None:
    episode = observe(DEFINITION, in_care(), {"pain_score": 5}, 1)
    observe(DEFINITION, episode, {"pain_score": 4}, 2)  # the memo holds episode.facts
    # the same episode (id, version) with other facts, as another process might have read it
    facts = {**episode.facts, "high_energy_trauma": FactValue(True, "ev-elsewhere", AT)}
    other = replace(episode, facts=facts)
    assert observe(DEFINITION, other, {"pain_score": 3}, 3).state == "immediate_transfer"


def test_the_memo_is_of_one_plan() -> None:
    episode = observe(DEFINITION, in_care(), {"pain_score": 5}, 1)  # known clear under DEFINITION
    doc = document()
    doc["rules"]["TX-MALIG"]["when"] = {"fact": "pain_score", ">": 0}  # now reads pain_score
    stricter = compile_definition(doc)
    assert plan_of(stricter).global_reads is not None
    assert "pain_score" in plan_of(stricter).global_reads  # type: ignore[operator]
    doc["rules"]["TX-MALIG"]["when"] = {"fact": "mri_done", "is": True}  # reads a fact known
    other = compile_definition(doc)  # ... and true on these facts, never observed now
    assert observe(other, episode, {"pain_score": 3}, 2).state == "immediate_transfer"


def test_the_memo_is_of_the_very_facts_map() -> None:
    episode = observe(DEFINITION, in_care(), {"pain_score": 5}, 1)
    assert isinstance(episode.facts, Facts) and episode.facts.tx_clear == DEFINITION.version
    # the snapshot given another map (read back from storage, or copied): checked again
    episode.facts = {**episode.facts, "radicular_symptoms": FactValue(True, "ev-x", AT)}
    assert observe(DEFINITION, episode, {"pain_score": 3}, 2).state == "immediate_transfer"


def test_the_memo_is_never_stored_compared_or_shown() -> None:
    episode = observe(DEFINITION, in_care(), {"pain_score": 5}, 1)
    plain = replace(episode, facts=dict(episode.facts))
    assert plain == episode and asdict(plain) == asdict(episode)
    assert "tx_clear" not in repr(episode) and b"tx_clear" not in orjson.dumps(episode.facts)
    assert pickle.loads(pickle.dumps(episode.facts)).tx_clear == DEFINITION.version


def test_event_scoped_leaves_test_as_the_slow_path_does() -> None:
    ops = {"is": [True, False], "==": [1, "a"], ">": [1], "<=": [2], "in": [[1, 2]]}
    values: list[Any] = [None, True, False, 0, 1, 2, 3, "a"]
    for (op, targets), fact, event in itertools.product(ops.items(), values, values):
        for target in targets:
            leaf = Compare("x", op, target, None, False, "event")
            ctx = Context(
                {} if fact is None else {"x": FactValue(fact, "o-1", AT)},
                {} if event is None else {"x": event},
                "o-2",
                {},
            )
            try:
                slow = leaf._holds(ctx, leaf._observed(ctx)[0])
            except TypeError:
                continue  # an order of unlike types: no definition compares those
            assert leaf.test(ctx) is slow, (op, target, fact, event)
            assert leaf.explain(ctx)[0].held is slow


def test_an_any_of_event_flags_tests_as_its_leaves() -> None:
    names = ("a", "b", "c")
    node = AnyOf([Compare(n, "is", True, None, False, "event") for n in names])
    sticky = {n: FactValue(True, "o-1", AT) for n in names}  # sticky facts: never this event's
    for flags in itertools.product([None, True, False, 1], repeat=3):
        event = {n: f for n, f in zip(names, flags, strict=True) if f is not None}
        ctx = Context(sticky, event, "o-2", {})
        assert node.test(ctx) is any(f is True for f in flags), flags


# -- review checks that need this observation's own facts ----------------------------------


def fired(definition: Definition, episode: Episode, facts: dict[str, Any]) -> list[str]:
    at = AT + timedelta(hours=1)
    return decide(definition, episode, Observe("ev-c", at, "t", facts), at).rule_ids


def leaf(name: str, scope: str | None = "event") -> Compare:
    return Compare(name, "is", True, None, False, scope)


def test_a_check_knows_the_event_facts_it_needs() -> None:
    ((rule, need),) = plan_of(DEFINITION).states["conservative_care"].checks_need
    assert rule.id == "DR-EARLY-REVIEW"
    assert need == {"kyphosis_progression", "significant_deformity", "pulmonary_dysfunction"}
    a, b, sticky = leaf("a"), leaf("b"), leaf("s", None)
    assert event_needs(All([sticky, AnyOf([a, b])])) == {"a", "b"}
    assert event_needs(All([a, b])) == {"a"}  # either part's need is the whole's
    assert event_needs(AnyOf([a, sticky])) is None  # the sticky part can hold alone
    assert event_needs(Not(a)) is None
    assert event_needs(sticky) is None


def test_a_check_fires_on_an_observation_of_a_fact_it_needs() -> None:
    episode = in_care()
    assert "DR-EARLY-REVIEW" not in fired(DEFINITION, episode, {"pain_score": 4})
    for flag in ("kyphosis_progression", "significant_deformity", "pulmonary_dysfunction"):
        assert "DR-EARLY-REVIEW" in fired(DEFINITION, episode, {flag: True}), flag


def test_a_check_that_can_hold_without_this_events_facts_is_tested_on_any() -> None:
    doc = document()
    doc["rules"]["DR-EARLY-REVIEW"]["when"] = {
        "any": [
            {"fact": "kyphosis_progression", "scope": "event", "is": True},
            {"fact": "pain_score", ">": 8},
        ]
    }
    definition = compile_definition(doc)
    ((_, need),) = plan_of(definition).states["conservative_care"].checks_need
    assert need is None
    episode = in_care(definition)
    assert "DR-EARLY-REVIEW" in fired(definition, episode, {"pain_score": 9})
    assert "DR-EARLY-REVIEW" not in fired(definition, episode, {"pain_score": 3})
