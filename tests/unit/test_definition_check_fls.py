"""The exhaustive check on the fracture-liaison definition, and the seeded mistakes it catches.

FLS.md's rules as written break two of its own properties after a correction on the way (an
age corrected under 50 during follow-up, medication recorded as not started while
monitoring): the shipped definition adds a guard for each (``still_eligible`` on the routes
back to treatment, ``aom_started`` on FLS-PERSISTING), and ``test_unguarded_...`` pin that
without them the check finds both. As for the L1–L2 pathway (``test_definition_check.py``),
each seeded mistake edits the document the way a careless change would and expects the
property it breaks, with a counterexample that the real replay reproduces.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from carepath.replay.runner import replay
from carepath.replay.scenario import parse_scenario
from pathway import checking
from pathway.checking.abstraction import Abstraction
from pathway.checking.explore import CheckReport, Violation, check_definition
from pathway.definition import (
    SHIPPED_DEFINITIONS,
    Definition,
    compile_definition,
    load_definition,
    shipped_definition_files,
)
from pathway.usecases import DefinitionRegistry

Doc = dict[str, Any]
FLS = SHIPPED_DEFINITIONS / "fracture_liaison.json"


@cache
def shipped_report() -> CheckReport:
    return check_definition(load_definition(FLS))


def unguarded(doc: Doc) -> None:
    """FLS.md's rules as written, without the two guards the shipped definition adds: a
    follow-up contact may send a patient back to ``treatment`` whatever the age recorded
    since (FLS-P3), and FLS-PERSISTING reads only this contact's ``aom_still_prescribed``
    (FLS-P2)."""
    for state in ("first_follow_up", "annual_follow_up"):
        for route in doc["states"][state]["routes"]:
            route.pop("when", None)
    doc["rules"]["FLS-PERSISTING"]["when"] = doc["rules"]["FLS-PERSISTING"]["when"]["all"][0]


def mutated(mutate: Callable[[Doc], None]) -> Definition:
    doc = copy.deepcopy(orjson.loads(FLS.read_bytes()))
    mutate(doc)
    return compile_definition(doc)


@cache
def unguarded_report() -> CheckReport:
    return check_definition(mutated(unguarded))


def violation(report: CheckReport, prop: str) -> Violation:
    found = [v for v in report.violations if v.property == prop]
    assert found, f"expected a {prop} violation, got {[v.property for v in report.violations]}"
    return found[0]


def replay_counterexample(
    definition: Definition, v: Violation, edit: Callable[[Doc], None] | None = None
) -> dict[str, Any]:
    """Replay the counterexample (optionally edited) on the mutated definition; its last step
    is in the violating state with the rules the check saw (the file's own ``expect``)."""
    assert v.scenario is not None and v.path
    scenario = copy.deepcopy(v.scenario)
    assert scenario.pop("pathway") == "fracture-liaison"
    if edit is not None:
        edit(scenario)
    result = replay(parse_scenario(orjson.dumps(scenario)), DefinitionRegistry(definition))
    assert result.failures == (), result.failures
    (expect,) = scenario["expect"]
    assert expect["step"] == len(scenario["events"]) - 1
    return result.output["steps"][expect["step"]]


# --- the shipped definition ---------------------------------------------------------------


def test_shipped_fls_definition_keeps_its_six_properties() -> None:
    report = shipped_report()
    assert report.ok, [f"{v.property}: {v.message}" for v in report.violations]


def test_unguarded_fls_breaks_fls_p3_when_age_is_corrected_under_50_during_treatment() -> None:
    """FLS-NOT-ELIGIBLE routes only from ``identified`` and ``assessment``: without the
    ``still_eligible`` guard, an age corrected to 49 in ``treatment`` stays, and
    FLS-NOT-STARTED takes the episode back into ``treatment`` with a recorded age under 50."""
    definition = mutated(unguarded)
    v = violation(unguarded_report(), "FLS-P3")
    assert "age < 50 (is 49)" in v.message
    step = replay_counterexample(definition, v)
    assert step["state"] == "treatment" and "FLS-NOT-STARTED" in step["rules"]


def test_unguarded_fls_breaks_fls_p2_when_aom_started_is_recorded_false_while_monitoring() -> None:
    """Reading only this contact's ``aom_still_prescribed``, while FLS-P2 also asks for
    ``aom_started`` true: recorded false in ``monitoring``, it would be completed anyway."""
    definition = mutated(unguarded)
    v = violation(unguarded_report(), "FLS-P2")
    assert "aom_started is true (is False)" in v.message
    step = replay_counterexample(definition, v)
    assert step["state"] == "completed" and "FLS-PERSISTING" in step["rules"]


def test_shipped_fls_reaches_every_state_and_fires_every_rule_but_its_enrolment() -> None:
    report = shipped_report()
    assert report.complete and report.states_explored > 1000
    assert report.violations == []
    # fired from the L1–L2 pathway's transitions, never by an event of this one: not required
    assert report.enrolment_rules == ["FLS-ENROL-SPINE"]
    assert report.pruned_facts == ["fracture_site", "sex"]


def test_fracture_day_regions_come_from_the_timers_date_anchors() -> None:
    a = Abstraction(load_definition(FLS))
    (clock,) = [c for c in a.clocks if c.date_fact == "fracture_date"]
    assert clock.starts == (84, 364)  # FLS-ASSESS-DUE, FLS-DXA-DUE, FLS-FOLLOWUP-16; -52
    assert shipped_report().witnesses["fracture_date"] == [0, 84, 364]
    assert {"fracture_date": 364} in a.openings  # a patient found a year after the fracture


# --- seeded mistakes ----------------------------------------------------------------------


def high_also_matches_low(doc: Doc) -> None:
    doc["rules"]["FLS-HIGH"]["when"]["any"][0] = {"fact": "risk_category", "in": ["high", "low"]}


def test_low_risk_sent_to_treatment_leaves_lifestyle_advice_unreached() -> None:
    """FLS.md declares no property about low risk in ``treatment``: this mistake is caught by
    the whole-walk checks (FLS-LOW can never fire, ``lifestyle_advice`` is never reached)."""
    report = check_definition(mutated(high_also_matches_low))
    messages = {v.message for v in report.violations}
    assert "state 'lifestyle_advice' never reached" in messages
    assert "rule FLS-LOW never fired or refused" in messages


def test_low_risk_to_treatment_is_an_fls_p6_counterexample() -> None:
    """A subtler slip (low risk with a high falls risk treated) leaves every state reachable
    and breaks none of FLS.md's five; the definition's sixth property (entering
    ``treatment`` from the assessment) finds it with a counterexample."""

    def mutate(doc: Doc) -> None:
        doc["rules"]["FLS-HIGH"]["when"]["any"].append(
            {
                "all": [
                    {"fact": "risk_category", "==": "low"},
                    {"fact": "falls_risk_high", "is": True},
                ]
            }
        )

    definition = mutated(mutate)
    v = violation(check_definition(definition, first=True), "FLS-P6")
    step = replay_counterexample(definition, v)
    assert step["state"] == "treatment" and "FLS-HIGH" in step["rules"]


@pytest.mark.parametrize(
    "criterion",
    [None, {"fact": "aom_started", "scope": "event", "is": True}],
    ids=["dropped", "on-aom_started"],
)
def test_completed_without_aom_still_prescribed_is_an_fls_p2_counterexample(
    criterion: Doc | None,
) -> None:
    def mutate(doc: Doc) -> None:
        rule = doc["rules"]["FLS-PERSISTING"]
        if criterion is None:
            del rule["when"]
        else:
            rule["when"] = criterion

    definition = mutated(mutate)
    v = violation(check_definition(definition, first=True), "FLS-P2")
    assert "aom_still_prescribed is true" in v.message
    step = replay_counterexample(definition, v)
    assert step["state"] == "completed" and "FLS-PERSISTING" in step["rules"]


def eligible_from(age: int, *rules: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        if "FLS-ELIGIBLE" in rules:
            doc["rules"]["FLS-ELIGIBLE"]["when"]["all"][0] = {"fact": "age", ">=": age}
        if "FLS-NOT-ELIGIBLE" in rules:
            doc["rules"]["FLS-NOT-ELIGIBLE"]["when"]["any"][0] = {"fact": "age", "<": age}

    return mutate


def test_eligibility_at_40_lets_a_45_year_old_into_treatment_an_fls_p3_counterexample() -> None:
    definition = mutated(eligible_from(40, "FLS-ELIGIBLE", "FLS-NOT-ELIGIBLE"))
    v = violation(check_definition(definition, first=True), "FLS-P3")
    assert "age < 50" in v.message
    assert v.scenario is not None
    assert (
        40
        <= next(e["observe"]["age"] for e in v.scenario["events"] if "age" in e.get("observe", {}))
        < 50
    )
    step = replay_counterexample(definition, v)
    assert step["state"] == "treatment"

    def aged_45(scenario: Doc) -> None:
        for event in scenario["events"]:
            if "age" in event.get("observe", {}):
                event["observe"]["age"] = 45

    assert replay_counterexample(definition, v, aged_45)["state"] == "treatment"


def test_eligible_at_40_alone_is_masked_by_not_eligible_which_routes_first() -> None:
    """FLS-NOT-ELIGIBLE (age < 50) is the first route of ``identified`` and ``assessment``, so
    lowering FLS-ELIGIBLE's threshold alone lets no one under 50 in: the check finds nothing."""
    assert check_definition(mutated(eligible_from(40, "FLS-ELIGIBLE"))).ok


def test_first_follow_up_without_its_overdue_timer_is_an_fls_p4_counterexample() -> None:
    def mutate(doc: Doc) -> None:
        doc["states"]["first_follow_up"]["timers"].remove("FLS-FOLLOWUP-16-OVERDUE")
        del doc["timers"]["FLS-FOLLOWUP-16-OVERDUE"]  # else the definition does not load:
        del doc["rules"]["FLS-FOLLOWUP-16-OVERDUE"]  # a timer, a rule nothing uses
        for rule in ("FLS-FOLLOWUP-16", "FLS-RECONTACT"):  # and windows it closes
            del doc["windows"][rule]

    definition = mutated(mutate)
    v = violation(check_definition(definition, first=True), "FLS-P4")
    assert "'first_follow_up'" in v.message
    step = replay_counterexample(definition, v)
    assert step["state"] == "first_follow_up"
    assert "FLS-FOLLOWUP-16" in [t["timer"] for t in step["timers_fired"]]


def test_very_high_without_its_referral_task_is_an_fls_p5_counterexample() -> None:
    definition = mutated(lambda doc: doc["rules"]["FLS-VERY-HIGH"].pop("action"))
    v = violation(check_definition(definition, first=True), "FLS-P5")
    step = replay_counterexample(definition, v)
    assert step["state"] == "treatment" and "FLS-VERY-HIGH" in step["rules"]


def test_the_checker_names_nothing_of_either_shipped_pathway() -> None:
    """No fact, rule, state, request, close reason or derived value of a shipped definition
    appears in ``pathway/checking``: the checker reads everything off the definition."""
    names: set[str] = set()
    for path in shipped_definition_files():
        d = load_definition(path)
        names |= {*d.vocabulary.facts, *d.rules, *d.states, *d.derived, *d.requests}
        names |= set(d.close.reasons)
    for source in (Path(checking.__file__).parent).glob("*.py"):
        text = source.read_text(encoding="utf-8")
        found = [n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]
        assert not found, f"{source.name} names {sorted(found)}"


def test_the_walk_fires_the_fracture_day_timers_on_each_of_their_anchors() -> None:
    """Every part of a "later of" timer wins in some explored case, and a late-identified
    patient's fracture-day timers fire at once (due when set)."""
    from pathway.checking.explore import _Walk

    walk = _Walk(load_definition(FLS))
    seen: set[tuple[str, str]] = set()
    judge = walk.monitor.violations

    def spy(decision: Any) -> Any:
        t = decision.timer_fired
        if t is not None and t.set_at is not None:
            spec = walk.definition.timers[t.rule_id]
            won = [p for p in spec.due if p.due(t.set_at, decision.episode.facts) == t.due_at]
            seen.add((t.rule_id, won[0].date_fact or "set" if won else "at once"))
        return judge(decision)

    walk.monitor.violations = spy  # type: ignore[method-assign]
    walk.run(500_000)
    for timer in ("FLS-FOLLOWUP-16", "FLS-FOLLOWUP-52"):
        assert {(timer, "fracture_date"), (timer, "set")} <= seen, sorted(seen)
    assert ("FLS-ASSESS-DUE", "at once") in seen and ("FLS-ASSESS-DUE", "fracture_date") in seen
