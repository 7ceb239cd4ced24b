"""One or more tests per rule id of PROTOCOL.md, each boundary pinned on both sides.

Episodes run through the real use cases on an in-memory unit of work (``pathway_helpers``).
``in_care`` enters conservative_care on day 0, so in those tests episode day = care day.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from pathway.engine import decide
from pathway.model import CANCELLED, FIRED, PENDING, Decision, FactValue, Request
from tests.support.pathway_runs import (
    OSTEO_CARE_IN_PLACE,
    PRESENTATION,
    WORKUP_DONE,
    Run,
    at_three_month_review,
    day_at,
    definition,
    in_care,
)
from tests.support.protocol import protocol_file

_ID = r"[A-Z]+(?:-[A-Z0-9]+)+"


def protocol_refs() -> dict[str, tuple[str, ...]]:
    """Rule id → refs, read from PROTOCOL.md's tables (ADM-CLOSE, from its paragraph, has none);
    the "Measures" section that ends the page lists quality measures (M-…), not rules."""
    out: dict[str, tuple[str, ...]] = {}
    for line in protocol_file("PROTOCOL.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## Measures"):
            break
        row = re.match(rf"^\| ({_ID}) \|", line)
        if row:
            last = line.strip().strip("|").split("|")[-1]
            out[row.group(1)] = tuple(r.strip().strip("*") for r in last.split(","))
        para = re.match(rf"^({_ID}): ", line)
        if para:
            out[para.group(1)] = ()
    return out


def step_rules(applied_list: list[Any]) -> list[str]:
    return [rid for a in applied_list if a.decision for rid in a.decision.rule_ids]


def audited(record: Any) -> list[dict[str, Any]]:
    """The rule firings an audit entry records: fired rules, then refusals."""
    body = record.body()
    return [*body["rules"], *(r["firing"] for r in body["refused"])]


def task_rules(decision: Decision) -> list[str]:
    return [t.rule_id for t in decision.tasks_opened]


def in_workup(profile: dict[str, Any] | None = None, **extra: Any) -> tuple[Run, Decision]:
    run = Run.open(profile)
    decision = run.observe({**PRESENTATION, **extra}).decision
    assert run.state == "workup"
    return run, decision


def in_review(profile: dict[str, Any] | None = None, *, pain: int = 6) -> Run:
    """In care since day 0, in the first review window since day 28, no review yet."""
    run = in_care(profile, pain=pain)
    run.advance(28)
    assert run.state == "reassessment"
    return run


# -- the rule set ----------------------------------------------------------------------------


def test_definition_has_exactly_the_39_rule_ids_of_the_protocol() -> None:
    ids = set(protocol_refs())
    assert len(ids) == 39
    assert set(definition().rules) == ids


def test_each_rule_cites_the_references_protocol_gives_it() -> None:
    defn = definition()
    for rid, refs in protocol_refs().items():
        if refs:  # ADM-CLOSE has no refs in PROTOCOL.md
            assert defn.rules[rid].refs == refs, rid


# -- immediate transfer ----------------------------------------------------------------------

DEFICITS = [
    "neuro_deficit_motor",
    "neuro_deficit_sensory",
    "bowel_bladder_dysfunction",
    "radicular_symptoms",
]


@pytest.mark.parametrize("fact", DEFICITS)
def test_any_neurological_deficit_transfers_immediately(fact: str) -> None:
    run = in_care()
    decision = run.observe({fact: True}, day=3).decision
    assert run.state == "immediate_transfer"
    assert "TX-NEURO" in decision.rule_ids
    assert [(t.source, t.dest) for t in decision.transitions] == [
        ("conservative_care", "immediate_transfer")
    ]


def test_neurological_findings_recorded_false_do_not_transfer() -> None:
    run = in_care()
    decision = run.observe({f: False for f in DEFICITS}, day=3).decision
    assert run.state == "conservative_care"
    assert "TX-NEURO" not in decision.rule_ids


def test_collapse_of_51_percent_transfers_immediately() -> None:
    run = in_care()
    decision = run.observe({"vertebral_collapse_pct": 51}, day=2).decision
    assert run.state == "immediate_transfer"
    assert decision.rule_ids[:1] == ["TX-INSTAB"]


def test_collapse_just_over_50_percent_transfers_immediately() -> None:
    run = in_care()
    run.observe({"vertebral_collapse_pct": 50.5}, day=2)
    assert run.state == "immediate_transfer"


def test_collapse_of_exactly_50_percent_does_not_transfer() -> None:
    run = in_care()
    decision = run.observe({"vertebral_collapse_pct": 50}, day=2).decision
    assert run.state == "conservative_care"
    assert "TX-INSTAB" not in decision.rule_ids


@pytest.mark.parametrize("fact", ["posterior_column_involvement", "alignment_abnormality"])
def test_instability_on_imaging_transfers_immediately(fact: str) -> None:
    run = in_care()
    decision = run.observe({fact: True}, day=2).decision
    assert run.state == "immediate_transfer"
    assert "TX-INSTAB" in decision.rule_ids


def test_suspected_pathologic_fracture_transfers_immediately() -> None:
    run = in_care()
    decision = run.observe({"pathologic_fracture_suspected": True}, day=2).decision
    assert run.state == "immediate_transfer"
    assert "TX-MALIG" in decision.rule_ids


def test_fractures_at_two_levels_transfer_immediately() -> None:
    run = in_care()
    decision = run.observe({"fracture_levels": ["L1", "L2"]}, day=2).decision
    assert run.state == "immediate_transfer"
    assert "TX-MULTI" in decision.rule_ids


def test_fracture_at_one_level_does_not_transfer() -> None:
    run = in_care()
    decision = run.observe({"fracture_levels": ["L2"], "high_energy_trauma": False}, day=2).decision
    assert run.state == "conservative_care"
    assert not {"TX-MULTI", "TX-NEURO", "TX-INSTAB", "TX-MALIG"} & set(decision.rule_ids)


def test_high_energy_trauma_transfers_immediately() -> None:
    run = in_care()
    decision = run.observe({"high_energy_trauma": True}, day=2).decision
    assert run.state == "immediate_transfer"
    assert "TX-MULTI" in decision.rule_ids


def to_intake() -> Run:
    return Run.open({"age": 70})


def to_workup() -> Run:
    return in_workup({"age": 70})[0]


def to_care() -> Run:
    return in_care({"age": 70})


def to_review() -> Run:
    return in_review({"age": 70})


LIVE_STATES: dict[str, Callable[[], Run]] = {
    "intake": to_intake,
    "workup": to_workup,
    "conservative_care": to_care,
    "reassessment": to_review,
}


@pytest.mark.parametrize("state", LIVE_STATES)
def test_transfer_rule_fires_from_every_non_terminal_state(state: str) -> None:
    run = LIVE_STATES[state]()
    assert run.state == state
    decision = run.observe({"radicular_symptoms": True}, day=run.day).decision
    assert run.state == "immediate_transfer"
    assert decision.transitions[-1].dest == "immediate_transfer"
    assert decision.transitions[-1].rules == ("TX-NEURO",)


def test_transfer_facts_given_at_opening_transfer_in_the_opening_decision() -> None:
    run = Run.open(
        {"age": 60, "fracture_levels": ["L1"], "pain_score": 5, "high_energy_trauma": True}
    )
    assert run.state == "immediate_transfer"
    assert "TX-MULTI" in run.decisions[0].rule_ids


def test_facts_given_at_opening_are_evaluated_like_an_observation() -> None:
    run = Run.open({"age": 66, **PRESENTATION, **WORKUP_DONE})
    opening = run.decisions[0]
    assert run.state == "conservative_care"
    assert [t.dest for t in opening.transitions] == ["workup", "conservative_care"]
    assert {"IN-PRESENTED", "WU-COMPLETE", "CC-NSAID-CAUTION"} <= set(opening.rule_ids)
    assert [o.id for o in run.observations] == [opening.event.event_id]


def test_every_transfer_rule_that_fires_is_listed_and_audited() -> None:
    run = in_care()
    decision = run.observe(
        {
            "neuro_deficit_motor": True,
            "vertebral_collapse_pct": 70,
            "pathologic_fracture_suspected": True,
            "fracture_levels": ["L1", "L3"],
        },
        day=4,
    ).decision
    tx = {"TX-NEURO", "TX-INSTAB", "TX-MALIG", "TX-MULTI"}
    assert tx <= set(decision.rule_ids)
    assert set(decision.transitions[0].rules) == tx
    assert tx <= {r["rule_id"] for r in audited(run.audit[-1])}


# -- intake ----------------------------------------------------------------------------------


def test_presentation_recorded_moves_intake_to_workup() -> None:
    run = Run.open({"age": 60})
    decision = run.observe(PRESENTATION).decision
    assert run.state == "workup"
    assert decision.transitions[0].rules == ("IN-PRESENTED",)


@pytest.mark.parametrize("facts", [{"fracture_levels": ["L1"]}, {"pain_score": 5}])
def test_half_a_presentation_keeps_the_episode_in_intake(facts: dict[str, Any]) -> None:
    run = Run.open({"age": 60})
    decision = run.observe(facts).decision
    assert run.state == "intake"
    assert "IN-PRESENTED" not in decision.rule_ids


def test_presentation_completed_over_two_observations_moves_to_workup() -> None:
    run = Run.open({"age": 60})
    run.observe({"fracture_levels": ["L1"]}, day=0.1)
    run.observe({"pain_score": 5}, day=0.2)
    assert run.state == "workup"


def test_presentation_with_a_transfer_rule_goes_from_intake_straight_to_transfer() -> None:
    run = Run.open({"age": 60})
    decision = run.observe({**PRESENTATION, "alignment_abnormality": True}).decision
    assert run.state == "immediate_transfer"
    assert [(t.source, t.dest) for t in decision.transitions] == [("intake", "immediate_transfer")]


def test_intake_still_open_one_day_after_opening_escalates() -> None:
    run = Run.open({"age": 60})
    assert step_rules(run.advance(0.99)) == []
    assert step_rules(run.advance(1)) == ["FU-INTAKE-OVERDUE"]
    (task,) = run.open_tasks("FU-INTAKE-OVERDUE")
    assert task.kind == "escalation"


def test_intake_overdue_timer_is_cancelled_when_intake_is_left() -> None:
    run = Run.open({"age": 60})
    run.observe(PRESENTATION, day=0.5)
    assert "FU-INTAKE-OVERDUE" not in step_rules(run.advance(5))
    (timer,) = [t for t in run.episode.timers if t.rule_id == "FU-INTAKE-OVERDUE"]
    assert timer.status == CANCELLED


def test_intake_escalation_closes_when_intake_is_left() -> None:
    run = Run.open({"age": 60})
    run.advance(1)
    run.observe(PRESENTATION, day=1.5)
    assert run.open_tasks("FU-INTAKE-OVERDUE") == []


# -- workup ----------------------------------------------------------------------------------


def test_workup_orders_mri_neuro_exam_and_osteoporosis_evaluation() -> None:
    _, decision = in_workup({"age": 40})
    assert {"WU-MRI", "WU-NEURO", "WU-OSTEO"} <= set(decision.rule_ids)
    assert {"WU-MRI", "WU-NEURO", "WU-OSTEO"} <= set(task_rules(decision))
    assert not {"WU-CT", "WU-MALIG", "WU-MRI-CONTRAST", "WU-IMAGING-REVIEW"} & set(
        decision.rule_ids
    )


def test_mri_contraindicated_orders_ct_instead_of_mri() -> None:
    _, decision = in_workup({"age": 40, "mri_contraindicated": True})
    assert "WU-CT" in decision.rule_ids
    assert "WU-MRI" not in decision.rule_ids
    assert "WU-IMAGING-REVIEW" not in decision.rule_ids


@pytest.mark.parametrize(
    "profile",
    [
        {"unexplained_weight_loss": True},
        {"history_of_cancer": True},
        {"age": 51, "first_fracture": True},
        {"failure_to_improve": True},
    ],
)
def test_malignancy_feature_orders_rule_out_and_contrast_mri(profile: dict[str, Any]) -> None:
    _, decision = in_workup(profile)
    assert {"WU-MALIG", "WU-MRI-CONTRAST"} <= set(decision.rule_ids)


def test_age_50_with_first_fracture_does_not_order_malignancy_rule_out() -> None:
    _, decision = in_workup({"age": 50, "first_fracture": True})
    assert "WU-MALIG" not in decision.rule_ids
    assert "WU-MRI-CONTRAST" not in decision.rule_ids


def test_age_51_without_first_fracture_does_not_order_malignancy_rule_out() -> None:
    _, decision = in_workup({"age": 51, "first_fracture": False})
    assert "WU-MALIG" not in decision.rule_ids


def test_malignancy_suspected_with_mri_contraindicated_orders_no_contrast_mri() -> None:
    _, decision = in_workup({"history_of_cancer": True, "mri_contraindicated": True})
    assert {"WU-MALIG", "WU-CT"} <= set(decision.rule_ids)
    assert "WU-MRI-CONTRAST" not in decision.rule_ids


def test_workup_rules_are_evaluated_once_on_entering_workup() -> None:
    run, _ = in_workup({"age": 40})
    decision = run.observe({"history_of_cancer": True}, day=0.5).decision
    assert run.state == "workup"
    assert decision.rule_ids == []


def test_mri_and_ct_both_contraindicated_asks_for_clinician_review_and_waits() -> None:
    run, decision = in_workup({"mri_contraindicated": True, "ct_contraindicated": True})
    assert {"WU-IMAGING-REVIEW", "WU-CT"} <= set(decision.rule_ids)
    assert run.open_tasks("WU-IMAGING-REVIEW")[0].kind == "task"
    run.observe({"neuro_exam_done": True}, day=1)
    assert run.state == "workup"
    run.observe({"ct_done": True}, day=2)
    assert run.state == "conservative_care"


def test_only_mri_contraindicated_needs_no_imaging_review() -> None:
    _, decision = in_workup({"mri_contraindicated": True, "ct_contraindicated": False})
    assert "WU-IMAGING-REVIEW" not in decision.rule_ids


def test_imaging_read_and_neuro_exam_done_complete_the_workup() -> None:
    run, _ = in_workup()
    decision = run.observe({"ct_done": True, "neuro_exam_done": True}, day=1).decision
    assert run.state == "conservative_care"
    assert decision.transitions[0].rules == ("WU-COMPLETE",)


@pytest.mark.parametrize(
    "facts",
    [
        {"mri_done": True},
        {"neuro_exam_done": True},
        {"mri_done": False, "ct_done": False, "neuro_exam_done": True},
    ],
)
def test_workup_is_not_complete_without_imaging_and_neuro_exam(facts: dict[str, Any]) -> None:
    run, _ = in_workup()
    decision = run.observe(facts, day=1).decision
    assert run.state == "workup"
    assert "WU-COMPLETE" not in decision.rule_ids


def test_workup_completed_with_a_transfer_finding_transfers_instead() -> None:
    run, _ = in_workup()
    decision = run.observe({**WORKUP_DONE, "vertebral_collapse_pct": 60}, day=1).decision
    assert run.state == "immediate_transfer"
    assert "WU-COMPLETE" not in decision.rule_ids


def test_workup_still_open_three_days_after_it_started_escalates() -> None:
    run = Run.open({"age": 60})
    run.observe(PRESENTATION, day=1)  # workup starts on episode day 1
    assert "FU-WORKUP-OVERDUE" not in step_rules(run.advance(3.99))
    assert step_rules(run.advance(4)) == ["FU-WORKUP-OVERDUE"]
    assert run.open_tasks("FU-WORKUP-OVERDUE")[0].kind == "escalation"


def test_workup_overdue_timer_is_cancelled_when_workup_completes() -> None:
    run, _ = in_workup()
    run.observe(WORKUP_DONE, day=2)
    assert "FU-WORKUP-OVERDUE" not in step_rules(run.advance(10))


def test_one_observation_takes_intake_through_workup_to_conservative_care() -> None:
    run = Run.open({"age": 60})
    decision = run.observe({**PRESENTATION, **WORKUP_DONE}).decision
    assert [(t.source, t.dest, t.rules) for t in decision.transitions] == [
        ("intake", "workup", ("IN-PRESENTED",)),
        ("workup", "conservative_care", ("WU-COMPLETE",)),
    ]
    assert {"WU-MRI", "WU-NEURO", "WU-OSTEO", "CC-CALCITONIN", "CC-BRACE"} <= set(decision.rule_ids)
    assert run.episode.care_started_at == day_at(0)


# -- conservative care -----------------------------------------------------------------------


def care_entry(profile: dict[str, Any] | None = None, **extra: Any) -> Decision:
    return in_care(profile, **extra).decisions[-1]


def test_entering_care_orders_calcitonin_analgesia_bracing_and_dxa() -> None:
    decision = care_entry({"age": 40})
    assert {"CC-CALCITONIN", "CC-ANALGESIA", "CC-BRACE", "CC-DXA"} <= set(decision.rule_ids)
    assert {"CC-CALCITONIN", "CC-ANALGESIA", "CC-BRACE", "CC-DXA"} <= set(task_rules(decision))
    assert not {"CC-NSAID-CAUTION", "CC-NSAID-AVOID"} & set(decision.rule_ids)


def test_age_65_gets_nsaids_with_caution() -> None:
    decision = care_entry({"age": 65})
    assert "CC-NSAID-CAUTION" in decision.rule_ids
    assert "CC-NSAID-CAUTION" in task_rules(decision)
    assert "CC-ANALGESIA" not in task_rules(decision)


def test_age_64_gets_no_nsaid_caution() -> None:
    decision = care_entry({"age": 64})
    assert "CC-NSAID-CAUTION" not in decision.rule_ids


def test_egfr_29_avoids_nsaids() -> None:
    decision = care_entry({"age": 40, "egfr": 29})
    assert "CC-NSAID-AVOID" in decision.rule_ids


def test_egfr_just_under_30_avoids_nsaids() -> None:
    assert "CC-NSAID-AVOID" in care_entry({"egfr": 29.9}).rule_ids


def test_egfr_30_does_not_avoid_nsaids() -> None:
    decision = care_entry({"age": 40, "egfr": 30})
    assert "CC-NSAID-AVOID" not in decision.rule_ids


@pytest.mark.parametrize("fact", ["anticoagulated", "prior_gi_bleed"])
def test_anticoagulation_or_prior_gi_bleed_avoids_nsaids(fact: str) -> None:
    assert "CC-NSAID-AVOID" in care_entry({fact: True}).rule_ids


def test_avoid_wins_over_caution_in_the_recommended_analgesia() -> None:
    decision = care_entry({"age": 70, "egfr": 25})
    assert {"CC-ANALGESIA", "CC-NSAID-CAUTION", "CC-NSAID-AVOID"} <= set(decision.rule_ids)
    analgesia = [
        t for t in decision.tasks_opened if t.rule_id.startswith(("CC-ANALGESIA", "CC-NSAID"))
    ]
    assert [t.rule_id for t in analgesia] == ["CC-NSAID-AVOID"]
    assert "acetaminophen only" in analgesia[0].text


def test_dxa_already_done_orders_no_dxa() -> None:
    decision = care_entry(dxa_done=True)
    assert "CC-DXA" not in decision.rule_ids


def test_care_orders_are_evaluated_once_on_entering_care() -> None:
    run = in_care({"age": 40})
    decision = run.observe({"age": 70, "egfr": 20}, day=5).decision
    assert decision.rule_ids == []
    assert decision.tasks_opened == []


def test_observation_in_care_moves_nowhere_even_when_resolved() -> None:
    run = in_care()
    decision = run.observe({"pain_score": 1, **OSTEO_CARE_IN_PLACE}, day=10).decision
    assert run.state == "conservative_care"
    assert decision.transitions == []


# -- follow-up timeline ----------------------------------------------------------------------


def test_care_day_27_has_neither_calcitonin_end_nor_reassessment() -> None:
    run = in_care()
    assert step_rules(run.advance(27.99)) == []
    assert run.state == "conservative_care"


def test_care_day_28_stops_calcitonin_then_opens_reassessment() -> None:
    run = in_care()
    fired = run.advance(28)
    assert step_rules(fired) == ["T-CALCITONIN-END", "FU-REASSESS"]
    assert run.state == "reassessment"
    assert run.open_tasks("T-CALCITONIN-END")[0].kind == "task"
    assert fired[1].decision.transitions[0].rules == ("FU-REASSESS",)


def test_care_days_count_from_entry_into_conservative_care() -> None:
    run = Run.open({"age": 60})
    run.observe(PRESENTATION, day=0)
    run.observe(WORKUP_DONE, day=2)  # care day 0 = episode day 2
    assert step_rules(run.advance(29.99)) == []
    assert step_rules(run.advance(30)) == ["T-CALCITONIN-END", "FU-REASSESS"]


def test_care_day_90_criteria_count_from_entry_into_care_not_from_opening() -> None:
    run = Run.open({"age": 60})
    run.observe(PRESENTATION, day=0)
    run.observe(WORKUP_DONE, day=5)  # care day 0 = episode day 5
    run.advance(94.99)  # episode day 94 = care day 89: still in the first review window
    assert run.state == "reassessment"
    assert run.request("kyphoplasty").decision.refused_ids == ["AUG-KYPHOPLASTY"]
    decision = run.observe({"significant_deformity": True}, day=94.99).decision
    assert "DR-DEFORM" not in decision.rule_ids
    assert "DR-EARLY-REVIEW" in decision.rule_ids
    assert run.state == "conservative_care"


def test_reassessment_still_open_on_care_day_42_escalates() -> None:
    run = in_review(OSTEO_CARE_IN_PLACE | {"osteoporosis_referral_placed": True})
    assert step_rules(run.advance(41.99)) == []
    assert step_rules(run.advance(42)) == ["FU-REASSESS-OVERDUE"]
    (task,) = run.open_tasks("FU-REASSESS-OVERDUE")
    assert task.kind == "escalation"


def test_reassessment_overdue_is_cancelled_by_a_review() -> None:
    run = in_review()
    run.observe({"pain_score": 5}, day=35)
    assert "FU-REASSESS-OVERDUE" not in step_rules(run.advance(60))


def test_reassessment_overdue_counts_14_days_from_the_three_month_window() -> None:
    run = at_three_month_review()
    assert "FU-REASSESS-OVERDUE" not in step_rules(run.advance(103.99))
    assert step_rules(run.advance(104)) == ["FU-REASSESS-OVERDUE"]


def test_reassessment_escalation_closes_when_reassessment_is_left() -> None:
    run = in_review()
    run.advance(42)
    run.observe({"pain_score": 5}, day=43)
    assert run.state == "conservative_care"
    assert run.open_tasks("FU-REASSESS-OVERDUE") == []


def test_late_timers_fire_in_due_order_and_record_how_late() -> None:
    run = in_care()
    fired = run.advance(100)  # nothing ran between day 0 and day 100
    order = [a.decision.timer_fired.rule_id for a in fired]
    dues = [a.decision.timer_fired.due_at for a in fired]
    assert dues == sorted(dues), order
    assert fired[0].decision.lateness_seconds == 72 * 86400


@pytest.mark.parametrize("sweeps", [[28, 42], [100]])
def test_timers_due_at_the_same_moment_fire_in_definition_order(sweeps: list[int]) -> None:
    run = in_care()
    fired = [a for day in sweeps for a in run.advance(day)]
    at_42 = [
        a.decision.timer_fired.rule_id for a in fired if a.decision.timer_fired.due_at == day_at(42)
    ]
    assert at_42 == ["FU-OSTEO-REFERRAL", "FU-REASSESS-OVERDUE"]
    at_28 = [
        a.decision.timer_fired.rule_id for a in fired if a.decision.timer_fired.due_at == day_at(28)
    ]
    assert at_28 == ["T-CALCITONIN-END", "FU-REASSESS"]


def test_late_timers_fired_in_one_sweep_all_fire_with_their_due_lateness() -> None:
    run = in_care()
    fired = run.advance(100)
    got = sorted(a.decision.timer_fired.rule_id for a in fired)
    assert got == sorted(
        [
            "T-CALCITONIN-END",
            "FU-REASSESS",
            "FU-OSTEO-REFERRAL",
            "FU-REASSESS-OVERDUE",
            "FU-REIMAGE",
            "FU-3MONTH",
        ]
    )
    for a in fired:
        d = a.decision
        assert d.lateness_seconds == (day_at(100) - d.timer_fired.due_at).total_seconds()


@pytest.mark.parametrize(
    "osteo", [{}, {"osteoporosis_treatment_started": True}, {"osteoporosis_referral_placed": True}]
)
def test_osteoporosis_care_incomplete_on_care_day_42_escalates(osteo: dict[str, Any]) -> None:
    run = in_care(**osteo)
    assert "FU-OSTEO-REFERRAL" not in step_rules(run.advance(41.99))
    assert "FU-OSTEO-REFERRAL" in step_rules(run.advance(42))
    assert run.open_tasks("FU-OSTEO-REFERRAL")[0].kind == "escalation"


def test_osteoporosis_treatment_and_referral_in_place_on_day_42_do_not_escalate() -> None:
    run = in_care()
    run.observe(
        {"osteoporosis_treatment_started": True, "osteoporosis_referral_placed": True}, day=20
    )
    fired = run.advance(42)
    assert "FU-OSTEO-REFERRAL" not in step_rules(fired)
    assert "FU-OSTEO-REFERRAL" in [a.decision.timer_fired.rule_id for a in fired]
    assert run.open_tasks("FU-OSTEO-REFERRAL") == []


def test_pain_4_on_care_day_56_orders_repeat_imaging() -> None:
    run = in_care(pain=4)
    assert "FU-REIMAGE" not in step_rules(run.advance(55.99))
    assert "FU-REIMAGE" in step_rules(run.advance(56))
    assert run.open_tasks("FU-REIMAGE")[0].kind == "task"


def test_pain_3_on_care_day_56_orders_no_repeat_imaging() -> None:
    run = in_care(pain=3)
    fired = run.advance(56)
    assert "FU-REIMAGE" in [a.decision.timer_fired.rule_id for a in fired]
    assert "FU-REIMAGE" not in step_rules(fired)


def test_care_day_90_opens_the_three_month_review() -> None:
    run = in_care()
    run.advance(28)
    run.observe({"pain_score": 5}, day=30)
    assert run.state == "conservative_care"
    assert "FU-3MONTH" not in step_rules(run.advance(89.99))
    assert run.state == "conservative_care"
    fired = run.advance(90)
    assert step_rules(fired) == ["FU-3MONTH"]
    assert run.state == "reassessment"
    assert fired[0].decision.transitions[0].rules == ("FU-3MONTH",)


def test_three_month_timer_fires_without_moving_an_episode_already_in_review() -> None:
    run = in_review()
    fired = run.advance(90)
    three = [a.decision for a in fired if a.decision.timer_fired.rule_id == "FU-3MONTH"]
    assert three[0].rule_ids == ["FU-3MONTH"]
    assert three[0].transitions == []
    assert run.state == "reassessment"


# -- reassessment outcomes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "osteo",
    [
        {"dxa_done": True, "osteoporosis_treatment_started": True},
        {"dxa_done": True, "osteoporosis_referral_placed": True},
    ],
)
def test_pain_3_with_osteoporosis_care_in_place_discharges(osteo: dict[str, Any]) -> None:
    run = in_review()
    decision = run.observe({"pain_score": 3, **osteo}, day=30).decision
    assert run.state == "discharged"
    assert decision.transitions[0].rules == ("RA-RESOLVED",)


def test_pain_4_with_osteoporosis_care_in_place_is_not_resolved() -> None:
    run = in_review()
    decision = run.observe({"pain_score": 4, **OSTEO_CARE_IN_PLACE}, day=30).decision
    assert run.state == "conservative_care"
    assert "RA-RESOLVED" not in decision.rule_ids
    assert "RA-CONTINUE" in decision.rule_ids


@pytest.mark.parametrize(
    "finding", ["kyphosis_progression", "significant_deformity", "pulmonary_dysfunction"]
)
def test_low_pain_with_a_deformity_finding_is_not_resolved(finding: str) -> None:
    run = in_review()
    decision = run.observe({"pain_score": 1, finding: True, **OSTEO_CARE_IN_PLACE}, day=30).decision
    assert run.state == "conservative_care"
    assert "RA-RESOLVED" not in decision.rule_ids


@pytest.mark.parametrize(
    "osteo",
    [
        {},
        {"dxa_done": True},
        {"osteoporosis_treatment_started": True},
        {"dxa_done": False, "osteoporosis_referral_placed": True},
    ],
)
def test_resolved_without_osteoporosis_care_blocks_discharge(osteo: dict[str, Any]) -> None:
    run = in_review()
    decision = run.observe({"pain_score": 2, **osteo}, day=30).decision
    assert run.state == "reassessment"
    assert "RA-OSTEO-PENDING" in decision.rule_ids
    assert run.open_tasks("RA-OSTEO-PENDING")[0].kind == "task"
    assert decision.transitions == []


def test_next_review_with_osteoporosis_care_in_place_discharges_after_a_block() -> None:
    run = in_review()
    run.observe({"pain_score": 2}, day=30)
    decision = run.observe(OSTEO_CARE_IN_PLACE, day=33).decision
    assert run.state == "discharged"
    assert "RA-RESOLVED" in decision.rule_ids


def test_review_before_day_90_with_pain_4_continues_care_and_refers_to_pain_management() -> None:
    run = in_review()
    decision = run.observe({"pain_score": 4}, day=30).decision
    assert run.state == "conservative_care"
    assert decision.transitions[0].rules == ("RA-CONTINUE",)
    assert "PM-REFERRAL" in decision.rule_ids
    assert run.open_tasks("PM-REFERRAL")[0].kind == "task"


def test_review_before_day_90_with_pain_3_makes_no_pain_referral() -> None:
    run = in_review()
    decision = run.observe({"pain_score": 3, "kyphosis_progression": True}, day=30).decision
    assert run.state == "conservative_care"  # not resolved: the deformity finding
    assert "RA-CONTINUE" in decision.rule_ids
    assert "PM-REFERRAL" not in decision.rule_ids


def test_continuing_care_before_day_90_keeps_the_timeline_running() -> None:
    run = in_review(pain=5)
    decision = run.observe({"pain_score": 5}, day=30).decision
    assert decision.timers_set == []  # no FU-NEXT-REVIEW before the 3-month decision
    assert not [r for r in decision.rule_ids if r.startswith("CC-")]  # care is not restarted
    pending = {t.rule_id for t in run.episode.timers if t.status == PENDING}
    assert {"FU-OSTEO-REFERRAL", "FU-REIMAGE", "FU-3MONTH"} <= pending


def test_every_observation_in_reassessment_is_a_review() -> None:
    run = in_review(pain=2)
    decision = run.observe({"dxa_done": True}, day=30).decision  # pain 2 is in force
    assert "RA-OSTEO-PENDING" in decision.rule_ids


def test_review_on_care_day_89_with_pain_8_continues_care() -> None:
    run = in_review(pain=8)
    decision = run.observe({"pain_score": 8}, day=89.99).decision
    assert run.state == "conservative_care"
    assert {"RA-CONTINUE", "PM-REFERRAL"} <= set(decision.rule_ids)
    assert "DR-PAIN" not in decision.rule_ids


def test_review_on_care_day_90_with_pain_7_not_lower_than_before_considers_kyphoplasty() -> None:
    run = at_three_month_review(pain=6)
    decision = run.observe({"pain_score": 7}, day=90).decision
    assert run.state == "augmentation_consideration"
    assert decision.transitions[0].rules == ("DR-PAIN",)


def test_review_after_day_90_with_pain_6_continues_care() -> None:
    run = at_three_month_review(pain=6)
    decision = run.observe({"pain_score": 6}, day=91).decision
    assert run.state == "conservative_care"
    assert "DR-PAIN" not in decision.rule_ids
    assert decision.transitions[0].rules == ("RA-CONTINUE",)


def test_pain_7_lower_than_at_the_previous_review_is_not_worsening() -> None:
    run = at_three_month_review(pain=8)
    decision = run.observe({"pain_score": 7}, day=91).decision
    assert "DR-PAIN" not in decision.rule_ids
    assert run.state == "conservative_care"


def test_pain_7_with_no_previous_review_is_enough_for_dr_pain() -> None:
    run = in_review(pain=9)
    run.advance(91)  # never reviewed: still in the first window
    decision = run.observe({"pain_score": 7}, day=91).decision
    assert "DR-PAIN" in decision.rule_ids
    assert run.state == "augmentation_consideration"


def test_previous_review_pain_is_the_pain_in_force_at_that_review() -> None:
    run = in_review(pain=8)
    run.observe({"dxa_done": True}, day=30)  # a review; the sticky pain 8 is its pain
    run.advance(90)
    decision = run.observe({"pain_score": 7}, day=91).decision
    assert "DR-PAIN" not in decision.rule_ids


@pytest.mark.parametrize(
    "finding,rule",
    [
        ("significant_deformity", "DR-DEFORM"),
        ("kyphosis_progression", "DR-DEFORM"),
        ("pulmonary_dysfunction", "DR-PULM"),
    ],
)
def test_deformity_or_pulmonary_finding_on_care_day_90_refers(finding: str, rule: str) -> None:
    run = at_three_month_review()
    decision = run.observe({finding: True}, day=90).decision
    assert run.state == "delayed_referral"
    assert decision.transitions[0].rules == (rule,)


@pytest.mark.parametrize(
    "finding", ["significant_deformity", "kyphosis_progression", "pulmonary_dysfunction"]
)
def test_deformity_or_pulmonary_finding_on_care_day_89_asks_for_early_review(finding: str) -> None:
    run = in_review()
    decision = run.observe({finding: True}, day=89.99).decision
    assert run.state == "conservative_care"
    assert not {"DR-DEFORM", "DR-PULM"} & set(decision.rule_ids)
    assert "DR-EARLY-REVIEW" in decision.rule_ids
    assert "RA-CONTINUE" in decision.rule_ids


def test_deformity_refers_even_when_pain_is_low() -> None:
    run = at_three_month_review()
    decision = run.observe(
        {"pain_score": 1, "kyphosis_progression": True, **OSTEO_CARE_IN_PLACE}, day=90
    ).decision
    assert run.state == "delayed_referral"
    assert "RA-RESOLVED" not in decision.rule_ids


def test_deformity_referral_also_reports_dr_pain_when_it_holds() -> None:
    run = at_three_month_review(pain=6)
    decision = run.observe({"pain_score": 8, "significant_deformity": True}, day=90).decision
    assert run.state == "delayed_referral"
    assert {"DR-DEFORM", "DR-PAIN"} <= set(decision.rule_ids)
    assert decision.transitions[0].rules == ("DR-DEFORM",)


def test_continuing_care_after_day_90_schedules_the_next_review_28_days_later() -> None:
    run = at_three_month_review(pain=6)
    decision = run.observe({"pain_score": 6}, day=95).decision
    assert [t.rule_id for t in decision.timers_set] == ["FU-NEXT-REVIEW"]
    assert step_rules(run.advance(122.99)) == []
    assert run.state == "conservative_care"
    fired = run.advance(123)
    assert step_rules(fired) == ["FU-NEXT-REVIEW"]
    assert run.state == "reassessment"
    assert fired[0].decision.transitions[0].rules == ("FU-NEXT-REVIEW",)
    assert "FU-REASSESS-OVERDUE" in [t.rule_id for t in fired[0].decision.timers_set]


def test_early_deformity_finding_in_care_asks_for_clinician_review_without_moving() -> None:
    run = in_care()
    decision = run.observe({"kyphosis_progression": True}, day=10).decision
    assert decision.rule_ids == ["DR-EARLY-REVIEW"]
    assert decision.transitions == []
    assert run.open_tasks("DR-EARLY-REVIEW")[0].kind == "task"


def test_early_review_needs_the_finding_recorded_true_in_this_observation() -> None:
    run = in_care()
    assert run.observe({"significant_deformity": False}, day=10).decision.rule_ids == []
    run.observe({"significant_deformity": True}, day=11)
    assert "DR-EARLY-REVIEW" not in run.observe({"pain_score": 5}, day=12).decision.rule_ids


def test_deformity_finding_in_care_after_day_90_asks_for_no_early_review() -> None:
    run = at_three_month_review(pain=6)
    run.observe({"pain_score": 6}, day=91)
    assert run.state == "conservative_care"
    decision = run.observe({"pulmonary_dysfunction": True}, day=95).decision
    assert "DR-EARLY-REVIEW" not in decision.rule_ids
    assert run.state == "conservative_care"


# -- the order of a review -------------------------------------------------------------------


def test_review_order_1_transfer_beats_deformity_referral() -> None:
    run = at_three_month_review()
    decision = run.observe(
        {"significant_deformity": True, "vertebral_collapse_pct": 60}, day=90
    ).decision
    assert run.state == "immediate_transfer"
    assert "DR-DEFORM" not in decision.rule_ids


def test_review_order_2_deformity_referral_beats_resolution() -> None:
    run = at_three_month_review()
    run.observe({"pain_score": 0, "pulmonary_dysfunction": True, **OSTEO_CARE_IN_PLACE}, day=90)
    assert run.state == "delayed_referral"


def test_review_order_3_resolution_beats_continuing_care_before_day_90() -> None:
    run = in_review()
    decision = run.observe({"pain_score": 3, **OSTEO_CARE_IN_PLACE}, day=60).decision
    assert run.state == "discharged"
    assert "RA-CONTINUE" not in decision.rule_ids


def test_review_order_3_osteoporosis_block_beats_continuing_care_after_day_90() -> None:
    run = at_three_month_review()
    decision = run.observe({"pain_score": 3}, day=90).decision
    assert run.state == "reassessment"
    assert decision.rule_ids == ["RA-OSTEO-PENDING"]


def test_review_order_4_severe_pain_before_day_90_only_continues_care() -> None:
    run = in_review(pain=9)
    decision = run.observe({"pain_score": 10}, day=60).decision
    assert run.state == "conservative_care"
    assert set(decision.rule_ids) == {"RA-CONTINUE", "PM-REFERRAL"}


def test_review_order_5_severe_worsening_pain_at_day_90_beats_continuing_care() -> None:
    run = at_three_month_review(pain=8)
    decision = run.observe({"pain_score": 9}, day=90).decision
    assert run.state == "augmentation_consideration"
    assert "RA-CONTINUE" not in decision.rule_ids


def test_review_order_6_otherwise_continues_care_with_a_next_review() -> None:
    run = at_three_month_review(pain=5)
    decision = run.observe({"pain_score": 5}, day=90).decision
    assert run.state == "conservative_care"
    assert decision.rule_ids == ["RA-CONTINUE"]
    assert [t.rule_id for t in decision.timers_set] == ["FU-NEXT-REVIEW"]


# -- vertebral augmentation ------------------------------------------------------------------


@pytest.mark.parametrize("state", LIVE_STATES)
def test_vertebroplasty_request_is_refused_and_changes_nothing_else(state: str) -> None:
    run = LIVE_STATES[state]()
    before = run.episode
    decision = run.request("vertebroplasty", day=run.day).decision
    assert decision.refused_ids == ["AUG-NO-VERTEBROPLASTY"]
    assert decision.rule_ids == []
    assert decision.transitions == [] and decision.tasks_opened == [] and decision.timers_set == []
    assert run.state == state
    after = run.episode
    assert (after.facts, after.timers, after.tasks) == (before.facts, before.timers, before.tasks)
    (refusal,) = audited(run.audit[-1])
    assert refusal["rule_id"] == "AUG-NO-VERTEBROPLASTY"
    assert refusal["citations"] == [definition().references[r] for r in ("4", "1")]
    # pinned: a request refused on every request says so (its evidence is never empty), and
    # the definition turning "refused_by" into an ordinary rule would show other evidence
    assert refusal["evidence"] == [
        {
            "test": "vertebroplasty is refused on every request",
            "observed": "vertebroplasty",
            "observation_id": None,
            "held": True,
        }
    ]


def test_kyphoplasty_request_on_care_day_90_with_pain_4_is_granted() -> None:
    run = at_three_month_review(pain=4)
    decision = run.request("kyphoplasty", day=90).decision
    assert run.state == "augmentation_consideration"
    assert decision.transitions[0].rules == ("AUG-KYPHOPLASTY",)
    assert decision.refused_ids == []


def test_kyphoplasty_request_on_care_day_89_is_refused() -> None:
    run = in_review(pain=6)
    decision = run.request("kyphoplasty", day=89.99).decision
    assert decision.refused_ids == ["AUG-KYPHOPLASTY"]
    assert "AUG-KYPHOPLASTY" not in decision.rule_ids
    assert run.state == "reassessment"


def test_kyphoplasty_request_with_pain_3_is_refused() -> None:
    run = at_three_month_review(pain=6)
    run.observe({"pain_score": 3}, day=90)  # resolved, osteoporosis care pending: stays
    assert run.state == "reassessment"
    decision = run.request("kyphoplasty", day=91).decision
    assert decision.refused_ids == ["AUG-KYPHOPLASTY"]
    assert run.state == "reassessment"


def test_kyphoplasty_request_from_conservative_care_after_day_90_is_granted() -> None:
    run = at_three_month_review(pain=6)
    run.observe({"pain_score": 6}, day=91)
    assert run.state == "conservative_care"
    run.request("kyphoplasty", day=92)
    assert run.state == "augmentation_consideration"


def test_kyphoplasty_request_without_a_completed_neuro_exam_is_refused() -> None:
    run = at_three_month_review(pain=6)
    run.observe({"neuro_exam_done": False}, day=91)
    decision = run.request("kyphoplasty", day=92).decision
    assert decision.refused_ids == ["AUG-KYPHOPLASTY"]
    assert run.state == "conservative_care"


def test_kyphoplasty_request_with_a_neurological_deficit_is_refused() -> None:
    # A deficit transfers at once, so build the snapshot the criterion must still refuse.
    run = at_three_month_review(pain=6)
    ep = run.episode
    facts = {**ep.facts, "neuro_deficit_sensory": FactValue(True, "ev-x", day_at(90))}
    episode = dataclasses.replace(ep, facts=facts)
    decision = decide(
        run.definition, episode, Request("ev-k", day_at(95), "dr", "kyphoplasty"), day_at(95)
    )
    assert decision.refused_ids == ["AUG-KYPHOPLASTY"]
    assert decision.episode.state == "reassessment"


@pytest.mark.parametrize("state", ["intake", "workup"])
def test_kyphoplasty_request_before_conservative_care_is_refused(state: str) -> None:
    run = LIVE_STATES[state]()
    decision = run.request("kyphoplasty", day=run.day).decision
    assert decision.refused_ids == ["AUG-KYPHOPLASTY"]
    assert run.state == state


# -- administrative --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason", ["declined", "lost_to_follow_up", "deceased", "entered_in_error"]
)
@pytest.mark.parametrize("state", LIVE_STATES)
def test_close_with_a_valid_reason_closes_from_any_live_state(state: str, reason: str) -> None:
    run = LIVE_STATES[state]()
    decision = run.close(reason, day=run.day).decision
    assert run.state == "closed"
    assert run.episode.closed_reason == reason
    assert decision.rule_ids == ["ADM-CLOSE"]
    assert decision.transitions[0].rules == ("ADM-CLOSE",)
    assert [t for t in run.episode.timers if t.status == PENDING] == []


def test_time_passing_changes_nothing_on_a_terminal_episode() -> None:
    run = in_care()
    run.close("declined", day=5)
    before = run.snapshot()
    assert run.advance(400) == []
    assert run.snapshot() == before


# -- evidence and citations ------------------------------------------------------------------


def test_evidence_names_the_observed_value_and_its_observation() -> None:
    run = in_care()
    applied = run.observe({"vertebral_collapse_pct": 51}, day=2, event_id="obs-collapse")
    (firing,) = [f for f in applied.decision.fired if f.rule_id == "TX-INSTAB"]
    held = [e for e in firing.evidence if e.held]
    assert [(e.observed, e.observation_id) for e in held] == [(51, "obs-collapse")]
    assert "vertebral_collapse_pct" in held[0].test and "50" in held[0].test
    entry = next(r for r in audited(run.audit[-1]) if r["rule_id"] == "TX-INSTAB")
    assert {
        "test": held[0].test,
        "observed": 51,
        "observation_id": "obs-collapse",
        "held": True,
    } in entry["evidence"]


def test_evidence_of_a_sticky_fact_names_the_earlier_observation() -> None:
    run = Run.open({"age": 70})
    opening_id = run.history[0].outcome.event_id
    decision = run.observe({**PRESENTATION, **WORKUP_DONE}, day=0).decision
    (firing,) = [f for f in decision.fired if f.rule_id == "CC-NSAID-CAUTION"]
    assert [(e.observed, e.observation_id) for e in firing.evidence] == [(70, opening_id)]


def test_evidence_of_a_timer_rule_names_the_value_in_force() -> None:
    run = in_care(pain=5)
    obs_id = run.observe({"pain_score": 4}, day=50).outcome.event_id
    fired = run.advance(56)
    (firing,) = [f for a in fired for f in a.decision.fired if f.rule_id == "FU-REIMAGE"]
    assert [(e.observed, e.observation_id) for e in firing.evidence] == [(4, obs_id)]


def _every_rule_runs() -> list[Run]:
    """Episodes that between them fire or refuse every one of the 39 rules."""
    runs = [Run.open({"age": 70})]
    runs[0].advance(1)  # FU-INTAKE-OVERDUE
    r, _ = in_workup(
        {
            "age": 70,
            "egfr": 20,
            "mri_contraindicated": True,
            "ct_contraindicated": True,
            "history_of_cancer": True,
        }
    )
    r.advance(3)  # WU-CT, WU-IMAGING-REVIEW, FU-WORKUP-OVERDUE
    runs.append(r)
    r, _ = in_workup({"history_of_cancer": True})  # WU-MRI, WU-MRI-CONTRAST, WU-MALIG ...
    r.observe(
        {
            **WORKUP_DONE,
            "neuro_deficit_motor": True,
            "vertebral_collapse_pct": 80,
            "pathologic_fracture_suspected": True,
            "high_energy_trauma": True,
        },
        day=1,
    )
    runs.append(r)
    r = in_care({"age": 70, "egfr": 20}, pain=5)  # CC-*
    r.observe({"kyphosis_progression": True}, day=10)  # DR-EARLY-REVIEW
    r.request("vertebroplasty", day=11)
    r.advance(60)  # T-CALCITONIN-END, FU-REASSESS, -OVERDUE, FU-OSTEO-REFERRAL, FU-REIMAGE
    r.observe({"pain_score": 2, "kyphosis_progression": False}, day=61)  # RA-OSTEO-PENDING
    r.observe({"pain_score": 5}, day=62)  # RA-CONTINUE, PM-REFERRAL
    r.advance(90)  # FU-3MONTH
    r.observe({"pain_score": 5}, day=91)  # FU-NEXT-REVIEW set
    r.advance(119)  # FU-NEXT-REVIEW
    r.observe({"pain_score": 8, "pulmonary_dysfunction": True}, day=120)  # DR-PULM, DR-PAIN
    runs.append(r)
    r = at_three_month_review(pain=5)
    r.request("kyphoplasty", day=91)  # AUG-KYPHOPLASTY
    runs.append(r)
    r = at_three_month_review(pain=5)
    r.observe({"significant_deformity": True}, day=91)  # DR-DEFORM
    runs.append(r)
    r = in_review()
    r.observe({"pain_score": 1, **OSTEO_CARE_IN_PLACE}, day=30)  # RA-RESOLVED
    runs.append(r)
    r = in_care()
    r.close("deceased", day=3)  # ADM-CLOSE
    runs.append(r)
    return runs


def test_every_rule_firing_carries_its_citations() -> None:
    defn = definition()
    refs = protocol_refs()
    seen: set[str] = set()
    for run in _every_rule_runs():
        for decision, record in zip(run.decisions, run.audit, strict=True):
            firings = [*decision.fired, *(r.firing for r in decision.refused)]
            for firing, entry in zip(firings, audited(record), strict=True):
                seen.add(firing.rule_id)
                expected = refs[firing.rule_id] or defn.rules[firing.rule_id].refs
                assert firing.refs == expected, firing.rule_id
                assert firing.citations == tuple(defn.references[r] for r in expected)
                assert all(firing.citations), firing.rule_id
                assert entry["rule_id"] == firing.rule_id
                assert entry["citations"] == list(firing.citations)
    assert seen == set(refs)  # every rule was checked


def test_audit_payload_round_trips_the_citations_as_json() -> None:
    run = in_care()
    body = orjson.loads(run.audit[-1].payload)
    calcitonin = next(r for r in body["rules"] if r["rule_id"] == "CC-CALCITONIN")
    assert calcitonin["refs"] == ["4", "1", "2", "3"]
    assert len(calcitonin["citations"]) == 4


def test_timers_set_at_care_entry_are_pending_and_fire_once() -> None:
    run = in_care()
    run.advance(200)
    statuses = {t.rule_id: t.status for t in run.episode.timers}
    assert statuses["T-CALCITONIN-END"] == FIRED
    assert statuses["FU-3MONTH"] == FIRED
    assert step_rules(run.advance(300)) == []
