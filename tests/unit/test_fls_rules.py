"""One or more tests per rule id of FLS.md (the fracture liaison pathway), each boundary pinned on
both sides, written from the specification.

Episodes run through the real use cases on an in-memory unit of work (``tests.support.pathway_runs``).
``FlsRun``'s day is the *fracture* day: with ``fracture_date`` = ``FRACTURE_DATE``, day 84.0 is
00:00 UTC of fracture day 84 ("at fracture day N" in FLS.md) and 3.375 is 09:00 on day 3.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pathway.errors import EpisodeClosed, InvalidObservation, InvalidRequest
from pathway.model import CANCELLED, FIRED, OPEN, PENDING, RESOLVED, Task, Timer
from tests.support.pathway_runs import (
    FLS,
    FRACTURE_DATE,
    FRACTURE_MIDNIGHT,
    PRESENTATION,
    WORKUP_DONE,
    FlsRun,
    Run,
    shipped_registry,
)
from tests.support.protocol import PROTOCOL_DIR, protocol_file

FLS_MD = PROTOCOL_DIR / "FLS.md"

PROFILE: dict[str, Any] = {"age": 70, "sex": "female"}
DATED: dict[str, Any] = {"fracture_date": FRACTURE_DATE, "fracture_site": "wrist"}
FALLS_LOW: dict[str, Any] = {"falls_assessment_done": True, "falls_risk_high": False}
FALLS_HIGH: dict[str, Any] = {"falls_assessment_done": True, "falls_risk_high": True}
ORDERS = ["FLS-FRAX", "FLS-DXA", "FLS-FALLS", "FLS-BLOODS"]


# -- drivers ---------------------------------------------------------------------------------


def fired(applied: Any) -> list[str]:
    return applied.decision.rule_ids if applied.decision else []


def fired_in(applied_list: list[Any]) -> list[str]:
    return [rid for a in applied_list for rid in fired(a)]


def timers(run: FlsRun, rule_id: str, status: str | None = None) -> list[Timer]:
    return [
        t
        for t in run.episode.timers
        if t.rule_id == rule_id and (status is None or t.status == status)
    ]


def tasks(run: FlsRun, rule_id: str, status: str | None = None) -> list[Task]:
    return [
        t
        for t in run.episode.tasks
        if t.rule_id == rule_id and (status is None or t.status == status)
    ]


def at_day(day: float) -> datetime:
    return FRACTURE_MIDNIGHT + timedelta(days=day)


def opened(facts: dict[str, Any] | None = None, *, day: float = 3.375) -> FlsRun:
    """Opened on fracture day 3 at 09:00 with age, sex and the fracture date: in assessment."""
    run = FlsRun.open({**PROFILE, **DATED, **(facts or {})}, day=day)
    return run


def assessing(**facts: Any) -> FlsRun:
    run = opened(facts)
    assert run.state == "assessment", run.state
    return run


def treated(risk: str = "high", *, day: float = 10.375, **facts: Any) -> FlsRun:
    """In treatment since ``day`` (first entry), decided by a ``risk`` category."""
    run = assessing()
    run.observe({"risk_category": risk, **FALLS_LOW, **facts}, day=day)
    assert run.state == "treatment", run.state
    return run


def in_first_follow_up(**facts: Any) -> FlsRun:
    """Treatment from fracture day 10; the 16-week window opened at 00:00 of day 84."""
    run = treated(**facts)
    run.advance(84)
    assert run.state == "first_follow_up", run.state
    return run


def in_monitoring(*, day: float = 90.375, **facts: Any) -> FlsRun:
    run = in_first_follow_up(**facts)
    run.observe({"aom_started": True}, day=day)
    assert run.state == "monitoring", run.state
    return run


def in_annual_follow_up(**facts: Any) -> FlsRun:
    """Monitoring from fracture day 90; the 52-week window opened at 00:00 of day 364."""
    run = in_monitoring(**facts)
    run.advance(364)
    assert run.state == "annual_follow_up", run.state
    return run


# -- the rule set against FLS.md -------------------------------------------------------------


def fls_md_rule_refs() -> dict[str, tuple[str, ...]]:
    """Rule id → refs from FLS.md's rule tables (those whose last column is ``refs``)."""
    out: dict[str, tuple[str, ...]] = {}
    has_refs = False
    for line in FLS_MD.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            has_refs = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "id":
            has_refs = cells[-1] == "refs"
            continue
        row = re.fullmatch(r"(FLS(?:-[A-Z0-9]+)+)", cells[0])
        if has_refs and row:
            out[row.group(1)] = tuple(r.strip().strip("*") for r in cells[-1].split(","))
    return out


def _need_fls_md() -> None:
    protocol_file("FLS.md")  # skipped, naming the path, when it is not beside the checkout


def test_definition_has_exactly_the_27_rule_ids_of_fls_md_with_their_refs() -> None:
    _need_fls_md()
    spec = fls_md_rule_refs()
    assert len(spec) == 27, sorted(spec)
    rules = FlsRun().definition.rules
    assert set(rules) == set(spec), (sorted(set(spec) - set(rules)), sorted(set(rules) - set(spec)))
    for rid, refs in spec.items():
        assert rules[rid].refs == refs, rid


def fls_md_measure_ids() -> list[str]:
    """The ids of FLS.md's measures table (the one whose header is id | numerator | ...)."""
    out: list[str] = []
    in_measures = False
    for line in FLS_MD.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            in_measures = False
        elif cells[:2] == ["id", "numerator"]:
            in_measures = True
        elif in_measures and re.fullmatch(r"FLS-KPI(?:-[A-Z0-9]+)+", cells[0]):
            out.append(cells[0])
    return out


def test_the_definition_declares_the_measures_of_fls_md() -> None:
    _need_fls_md()
    ids = fls_md_measure_ids()
    assert len(ids) == 8, ids
    document = FlsRun().definition.document
    declared = document.get("measures", {})
    assert set(ids) <= set(declared if isinstance(declared, dict) else [])
    assert [m.id for m in FlsRun().definition.measures] == ids


def test_every_ref_is_a_source_of_fls_md() -> None:
    definition = FlsRun().definition
    assert set(definition.references) == {"S", "K", "N", "B", "Decision"}
    assert definition.id == FLS
    assert definition.initial_state == "identified"


# -- FLS-ENROL-SPINE ---------------------------------------------------------------------------


@pytest.mark.parametrize(("age", "enrolled"), [(49, False), (50, True)])
def test_enrol_spine_from_l1_l2_conservative_care_from_age_50(age: int, enrolled: bool) -> None:
    run = Run.open({"age": age, "sex": "male"}, registry=shipped_registry())
    applied = run.observe({**PRESENTATION, **WORKUP_DONE})
    assert run.state == "conservative_care"
    fls = [e for e in run.uow.store.episodes.values() if e.pathway == FLS]
    assert bool(fls) is enrolled
    assert applied.enrolled == (((FLS, "FLS-ENROL-SPINE"),) if enrolled else ())
    if enrolled:
        (ep,) = fls
        assert ep.fact("fracture_site") == "spine"
        assert ep.fact("fracture_date") == run.at(0).date().isoformat()
        assert ep.fact("age") == 50 and ep.fact("sex") == "male"
        assert ep.state == "assessment"  # aged 50, dated, not known to be high-energy


# -- identification ---------------------------------------------------------------------------


@pytest.mark.parametrize("high_energy", [None, False])
def test_eligible_at_50_dated_and_not_high_energy_enters_assessment_with_its_orders(
    high_energy: bool | None,
) -> None:
    facts = {} if high_energy is None else {"high_energy_trauma": high_energy}
    run = FlsRun.open({"age": 50, **DATED, **facts}, day=3.375)
    assert run.state == "assessment"
    assert fired(run.history[0]) == ["FLS-ELIGIBLE", *ORDERS]
    assert sorted(t.rule_id for t in run.open_tasks()) == sorted(ORDERS)


def test_age_49_is_not_eligible() -> None:
    run = FlsRun.open({"age": 49, **DATED}, day=3.375)
    assert run.state == "not_eligible"
    assert fired(run.history[0]) == ["FLS-NOT-ELIGIBLE"]
    assert run.episode.pending_timers() == []


def test_age_49_is_not_eligible_even_without_a_fracture_date() -> None:
    run = FlsRun.open({"age": 49}, day=3.375)
    assert run.state == "not_eligible"
    assert "FLS-NOT-ELIGIBLE" in fired(run.history[0])


def test_high_energy_trauma_is_not_eligible() -> None:
    run = FlsRun.open({**PROFILE, **DATED, "high_energy_trauma": True}, day=3.375)
    assert run.state == "not_eligible"
    assert fired(run.history[0]) == ["FLS-NOT-ELIGIBLE"]


def test_eligibility_waits_for_the_fracture_date_and_for_the_age() -> None:
    run = FlsRun.open({"sex": "female", "fracture_site": "hip"}, day=3.375)
    assert run.state == "identified"
    assert fired(run.observe({"age": 80}, day=4)) == []
    assert run.state == "identified"
    applied = run.observe({"fracture_date": FRACTURE_DATE}, day=5)
    assert run.state == "assessment"
    assert fired(applied)[:1] == ["FLS-ELIGIBLE"]


@pytest.mark.parametrize(
    "correction", [{"age": 49}, {"high_energy_trauma": True}], ids=["age_49", "high_energy"]
)
def test_not_eligible_on_a_correction_during_the_assessment(correction: dict[str, Any]) -> None:
    run = assessing()
    applied = run.observe(correction, day=5)
    assert run.state == "not_eligible"
    assert fired(applied) == ["FLS-NOT-ELIGIBLE"]
    assert run.episode.pending_timers() == []


def test_not_eligible_wins_over_a_deciding_assessment() -> None:
    run = assessing()
    run.observe({"age": 45, "risk_category": "high", **FALLS_LOW}, day=5)
    assert run.state == "not_eligible"


def test_identify_overdue_7_days_after_opening_not_before() -> None:
    run = FlsRun.open({"sex": "female"}, day=3.375)
    assert fired_in(run.advance(10.374)) == []
    assert fired_in(run.advance(10.375)) == ["FLS-IDENTIFY-OVERDUE"]
    (task,) = run.open_tasks("FLS-IDENTIFY-OVERDUE")
    assert task.kind == "escalation"
    run.observe({"age": 70, "fracture_date": FRACTURE_DATE}, day=11)
    assert run.state == "assessment"
    assert tasks(run, "FLS-IDENTIFY-OVERDUE", OPEN) == []  # scoped to identified


def test_identify_overdue_timer_cancelled_when_identified_is_left() -> None:
    run = FlsRun.open({"sex": "female"}, day=3.375)
    run.observe({"age": 70, "fracture_date": FRACTURE_DATE}, day=5)
    assert timers(run, "FLS-IDENTIFY-OVERDUE", CANCELLED)
    assert fired_in(run.advance(30)) == []


# -- assessment orders ------------------------------------------------------------------------


def test_frax_and_falls_always_dxa_and_bloods_only_when_not_yet_done() -> None:
    run = opened({"dxa_done": True, "secondary_causes_screened": True})
    assert run.state == "assessment"
    assert fired(run.history[0]) == ["FLS-ELIGIBLE", "FLS-FRAX", "FLS-FALLS"]
    run = opened({"dxa_done": False, "secondary_causes_screened": False})
    assert fired(run.history[0]) == ["FLS-ELIGIBLE", *ORDERS]
    assert {t.kind for t in run.open_tasks()} == {"order"}


# -- deciding the assessment ------------------------------------------------------------------


@pytest.mark.parametrize(
    "facts",
    [
        {"risk_category": "high"},
        {"falls_assessment_done": True},
        {"risk_category": "high", "falls_assessment_done": False},
    ],
    ids=["no_falls_assessment", "no_risk_category", "falls_assessment_false"],
)
def test_assessment_decides_only_with_a_risk_category_and_falls_assessed(
    facts: dict[str, Any],
) -> None:
    run = assessing()
    applied = run.observe(facts, day=5)
    assert run.state == "assessment"
    assert fired(applied) == []


def test_very_high_goes_to_treatment_with_a_specialist_referral_task() -> None:
    run = assessing()
    applied = run.observe({"risk_category": "very_high", **FALLS_LOW}, day=10.375)
    assert run.state == "treatment"
    assert "FLS-VERY-HIGH" in fired(applied) and "FLS-HIGH" not in fired(applied)
    (task,) = run.open_tasks("FLS-VERY-HIGH")
    assert task.kind == "task" and "specialist" in task.text


def test_very_high_comes_first_even_with_medication_recommended() -> None:
    run = assessing()
    applied = run.observe(
        {"risk_category": "very_high", "aom_recommended": True, **FALLS_LOW}, day=10.375
    )
    assert fired(applied) == ["FLS-VERY-HIGH"]
    assert run.state == "treatment"


@pytest.mark.parametrize(
    "facts",
    [
        {"risk_category": "high"},
        {"risk_category": "low", "aom_recommended": True},
        {"risk_category": "intermediate", "aom_recommended": True},
        {"risk_category": "intermediate", "bmd_impractical": True},
    ],
    ids=["high", "low_recommended", "intermediate_recommended", "intermediate_bmd_impractical"],
)
def test_high_goes_to_treatment(facts: dict[str, Any]) -> None:
    run = assessing()
    applied = run.observe({**facts, **FALLS_LOW}, day=10.375)
    assert run.state == "treatment"
    assert fired(applied) == ["FLS-HIGH"]
    assert applied.decision.transitions[0].rules == ("FLS-HIGH",)


def test_low_with_bmd_impractical_is_still_low() -> None:
    run = assessing()
    applied = run.observe({"risk_category": "low", "bmd_impractical": True, **FALLS_LOW}, day=5)
    assert run.state == "lifestyle_advice"
    assert fired(applied) == ["FLS-LOW"]


@pytest.mark.parametrize("recommended", [None, False])
def test_low_goes_to_lifestyle_advice_with_a_hand_over_task(recommended: bool | None) -> None:
    run = assessing()
    facts = {} if recommended is None else {"aom_recommended": recommended}
    applied = run.observe({"risk_category": "low", **FALLS_LOW, **facts}, day=5)
    assert run.state == "lifestyle_advice"
    assert fired(applied) == ["FLS-LOW"]
    (task,) = [t for t in applied.decision.tasks_opened if t.rule_id == "FLS-LOW"]
    assert "5 years" in task.text
    assert run.episode.pending_timers() == []


def test_intermediate_waits_in_assessment_with_one_bmd_task_while_open() -> None:
    run = assessing()
    first = run.observe({"risk_category": "intermediate", **FALLS_LOW}, day=5)
    assert run.state == "assessment"
    assert fired(first) == ["FLS-INTERMEDIATE"]
    second = run.observe({"secondary_causes_screened": True}, day=6)  # decides again
    assert fired(second) == ["FLS-INTERMEDIATE"]
    assert run.state == "assessment"
    assert len(tasks(run, "FLS-INTERMEDIATE")) == 1
    assert [t.rule_id for t in second.decision.tasks_opened] == []
    run.update_task("FLS-INTERMEDIATE")
    third = run.observe({"aom_recommended": False}, day=7)
    assert fired(third) == ["FLS-INTERMEDIATE"]
    assert len(tasks(run, "FLS-INTERMEDIATE", OPEN)) == 1  # done, so asked for again


def test_intermediate_then_a_new_category_high_goes_to_treatment() -> None:
    run = assessing()
    run.observe({"risk_category": "intermediate", **FALLS_LOW}, day=5)
    applied = run.observe({"risk_category": "high", "dxa_done": True}, day=30)
    assert run.state == "treatment"
    assert fired(applied) == ["FLS-HIGH"]


def test_falls_referral_on_the_first_deciding_assessment_with_high_falls_risk() -> None:
    run = assessing()
    applied = run.observe({"risk_category": "high", **FALLS_HIGH}, day=10.375)
    assert fired(applied) == ["FLS-HIGH", "FLS-FALLS-REFERRAL"]
    (task,) = run.open_tasks("FLS-FALLS-REFERRAL")
    assert task.kind == "task"


def test_no_falls_referral_when_falls_risk_is_not_high() -> None:
    run = assessing()
    applied = run.observe({"risk_category": "low", **FALLS_LOW}, day=5)
    assert "FLS-FALLS-REFERRAL" not in fired(applied)


def test_falls_referral_once_per_episode_even_after_its_task_is_done() -> None:
    run = assessing()
    first = run.observe({"risk_category": "intermediate", **FALLS_HIGH}, day=5)
    assert fired(first) == ["FLS-INTERMEDIATE", "FLS-FALLS-REFERRAL"]
    run.update_task("FLS-FALLS-REFERRAL")
    second = run.observe({"secondary_causes_screened": True}, day=6)
    assert fired(second) == ["FLS-INTERMEDIATE"]
    third = run.observe({"risk_category": "very_high"}, day=30)
    assert "FLS-FALLS-REFERRAL" not in fired(third)
    assert len(tasks(run, "FLS-FALLS-REFERRAL")) == 1


def test_falls_referral_when_high_falls_risk_first_comes_with_a_later_decision() -> None:
    """Decision (FLS.md unclear): "the first time the assessment decides … with falls_risk_high
    true" is read as the first deciding observation at which the risk is high."""
    run = assessing()
    run.observe({"risk_category": "intermediate", **FALLS_LOW}, day=5)
    applied = run.observe({"falls_risk_high": True}, day=6)
    assert fired(applied) == ["FLS-INTERMEDIATE", "FLS-FALLS-REFERRAL"]


# -- fracture day 84: assessment and DXA due --------------------------------------------------


def test_assess_due_at_fracture_day_84_in_assessment_not_on_day_83() -> None:
    run = assessing()
    run.observe({"risk_category": "intermediate", **FALLS_LOW}, day=5)
    assert "FLS-ASSESS-DUE" not in fired_in(run.advance(83.999))
    assert "FLS-ASSESS-DUE" in fired_in(run.advance(84))
    (task,) = run.open_tasks("FLS-ASSESS-DUE")
    assert task.kind == "escalation" and task.created_at == at_day(84)


def test_assess_due_in_identified_stays_open_into_assessment_and_resolves_on_leaving() -> None:
    run = FlsRun.open({"sex": "male", **DATED}, day=3.375)  # age unknown: still identified
    assert run.state == "identified"
    assert "FLS-ASSESS-DUE" in fired_in(run.advance(84))
    run.observe({"age": 66}, day=85)
    assert run.state == "assessment"
    assert run.open_tasks("FLS-ASSESS-DUE"), "still in assessment: the condition holds"
    run.observe({"risk_category": "high", **FALLS_LOW}, day=86)
    assert run.state == "treatment"
    assert tasks(run, "FLS-ASSESS-DUE", RESOLVED)
    assert run.open_tasks("FLS-ASSESS-DUE") == []


def test_assess_due_does_not_fire_once_the_assessment_has_decided() -> None:
    run = treated(dxa_done=True)
    assert "FLS-ASSESS-DUE" not in fired_in(run.advance(84))
    assert timers(run, "FLS-ASSESS-DUE", FIRED)  # it was set and fired, without escalating
    assert run.open_tasks("FLS-ASSESS-DUE") == []


def test_dxa_due_at_fracture_day_84_when_not_done_and_risk_not_low() -> None:
    run = treated("high")
    assert "FLS-DXA-DUE" not in fired_in(run.advance(83.999))
    assert "FLS-DXA-DUE" in fired_in(run.advance(84))
    (task,) = run.open_tasks("FLS-DXA-DUE")
    assert task.kind == "escalation"
    run.observe({"dxa_done": True}, day=90)
    assert tasks(run, "FLS-DXA-DUE", RESOLVED)


def test_dxa_due_when_the_risk_category_is_still_unknown() -> None:
    run = assessing()
    assert "FLS-DXA-DUE" in fired_in(run.advance(84))


def test_dxa_due_not_when_dxa_done() -> None:
    run = treated("high", dxa_done=True)
    assert "FLS-DXA-DUE" not in fired_in(run.advance(84))


def test_dxa_due_not_when_risk_is_low() -> None:
    run = treated("low", aom_recommended=True)  # low risk, medication recommended: treatment
    assert "FLS-DXA-DUE" not in fired_in(run.advance(84))
    assert run.open_tasks("FLS-DXA-DUE") == []


def test_late_identified_patient_has_its_12_week_timers_due_at_once() -> None:
    """Fracture 100 days before opening: fracture day 84 has passed, so both timers are due at
    the opening's clinical time, fire next, and are late from 00:00 of day 84."""
    run = FlsRun.open({**PROFILE, **DATED}, day=100.375)
    assert run.state == "assessment"
    for rid in ("FLS-ASSESS-DUE", "FLS-DXA-DUE"):
        (timer,) = timers(run, rid)
        assert timer.status == PENDING and timer.due_at == at_day(100.375)
    fired_now = run.advance(100.375)
    assert fired_in(fired_now) == ["FLS-ASSESS-DUE", "FLS-DXA-DUE"]
    lateness = (at_day(100.375) - at_day(84)).total_seconds()
    assert [a.decision.lateness_seconds for a in fired_now] == [lateness, lateness]
    run.observe({"risk_category": "high", **FALLS_LOW}, day=101.375)
    assert run.state == "treatment"
    assert run.open_tasks("FLS-ASSESS-DUE") == []
    assert run.open_tasks("FLS-DXA-DUE")  # still no DXA
    (follow_up,) = timers(run, "FLS-FOLLOWUP-16", PENDING)
    assert follow_up.due_at == at_day(129.375)  # 28 days after entry, day 84 long past


# -- the 16-week follow-up --------------------------------------------------------------------


def test_followup_16_opens_at_fracture_day_84_when_treatment_began_early() -> None:
    run = treated(day=10.375)
    run.advance(83.999)
    assert run.state == "treatment"
    assert "FLS-FOLLOWUP-16" in fired_in(run.advance(84))
    assert run.state == "first_follow_up"


def test_followup_16_never_sooner_than_28_days_after_treatment_began() -> None:
    run = treated(day=70.375)
    run.advance(98.374)
    assert run.state == "treatment"
    run.advance(98.375)
    assert run.state == "first_follow_up"


def test_followup_16_overdue_at_fracture_day_112_not_111() -> None:
    run = in_first_follow_up()
    assert "FLS-FOLLOWUP-16-OVERDUE" not in fired_in(run.advance(111.999))
    assert "FLS-FOLLOWUP-16-OVERDUE" in fired_in(run.advance(112))
    (task,) = run.open_tasks("FLS-FOLLOWUP-16-OVERDUE")
    assert task.kind == "escalation"
    run.observe({"aom_started": True}, day=113)
    assert run.state == "monitoring"
    assert run.open_tasks("FLS-FOLLOWUP-16-OVERDUE") == []  # scoped to first_follow_up


def test_followup_16_overdue_cancelled_when_the_contact_is_made_in_time() -> None:
    run = in_first_follow_up()
    run.observe({"aom_started": True}, day=90)
    assert timers(run, "FLS-FOLLOWUP-16-OVERDUE", CANCELLED)
    assert "FLS-FOLLOWUP-16-OVERDUE" not in fired_in(run.advance(200))


def test_on_treatment_at_the_first_follow_up_goes_to_monitoring() -> None:
    run = in_first_follow_up()
    applied = run.observe({"aom_started": True}, day=90.375)
    assert fired(applied) == ["FLS-ON-TREATMENT"]
    assert run.state == "monitoring"


def test_a_first_follow_up_without_aom_started_decides_nothing_whatever_was_said_before() -> None:
    run = treated()
    run.observe({"aom_started": True}, day=40)  # in treatment: not a follow-up contact
    assert run.state == "treatment"
    run.advance(84)
    assert run.state == "first_follow_up"
    applied = run.observe({"exercise_started": True, "falls_risk_high": True}, day=90)
    assert fired(applied) == []
    assert run.state == "first_follow_up"
    assert run.episode.fact("exercise_started") is True  # its facts are recorded


def test_not_started_at_the_first_follow_up_goes_back_to_treatment_with_a_task() -> None:
    run = in_first_follow_up()
    applied = run.observe({"aom_started": False}, day=90.375)
    assert fired(applied) == ["FLS-NOT-STARTED"]
    assert run.state == "treatment"
    (task,) = run.open_tasks("FLS-NOT-STARTED")
    assert task.kind == "task"
    (recontact,) = timers(run, "FLS-RECONTACT", PENDING)
    assert recontact.due_at == at_day(118.375)
    assert timers(run, "FLS-FOLLOWUP-16", PENDING) == []  # only on the first entry


def test_recontact_28_days_later_not_27_and_every_28_days_until_started() -> None:
    run = in_first_follow_up()
    run.observe({"aom_started": False}, day=90.375)
    run.advance(118.374)
    assert run.state == "treatment"
    assert fired_in(run.advance(118.375)) == ["FLS-RECONTACT"]
    assert run.state == "first_follow_up"
    run.observe({"aom_started": False}, day=120.375)
    assert run.state == "treatment"
    run.advance(148.374)
    assert run.state == "treatment"
    run.advance(148.375)
    assert run.state == "first_follow_up"
    run.observe({"aom_started": True}, day=150)
    assert run.state == "monitoring"
    assert [rid for rid in run.fired() if rid == "FLS-FOLLOWUP-16"] == ["FLS-FOLLOWUP-16"]


def test_27_and_28_days_in_first_follow_up_entered_by_recontact() -> None:
    run = in_first_follow_up()
    run.observe({"aom_started": False}, day=90.375)
    run.advance(118.375)
    assert run.state == "first_follow_up"
    assert "FLS-FOLLOWUP-16-OVERDUE" not in fired_in(run.advance(146.374))
    assert "FLS-FOLLOWUP-16-OVERDUE" in fired_in(run.advance(146.375))


def test_a_patient_who_declines_medication_is_closed_as_declined() -> None:
    run = in_first_follow_up()
    run.observe({"aom_started": False}, day=90.375)
    applied = run.close("declined", day=91)
    assert fired(applied) == ["FLS-CLOSE"]
    assert run.state == "closed"
    assert run.episode.pending_timers() == []


@pytest.mark.parametrize("aom_started", [True, False])
def test_exercise_task_when_a_deciding_first_follow_up_finds_high_falls_risk(
    aom_started: bool,
) -> None:
    run = in_first_follow_up(falls_risk_high=True)
    applied = run.observe({"aom_started": aom_started}, day=90.375)
    decided = "FLS-ON-TREATMENT" if aom_started else "FLS-NOT-STARTED"
    assert fired(applied) == [decided, "FLS-EXERCISE"]
    (task,) = run.open_tasks("FLS-EXERCISE")
    assert task.kind == "task"


def test_no_exercise_task_when_exercise_started_or_falls_risk_not_high() -> None:
    run = in_first_follow_up(falls_risk_high=True)
    applied = run.observe({"aom_started": True, "exercise_started": True}, day=90.375)
    assert fired(applied) == ["FLS-ON-TREATMENT"]
    run = in_first_follow_up()  # falls risk recorded false
    applied = run.observe({"aom_started": True}, day=90.375)
    assert fired(applied) == ["FLS-ON-TREATMENT"]


def test_no_exercise_task_on_a_first_follow_up_that_does_not_decide() -> None:
    run = in_first_follow_up(falls_risk_high=True)
    applied = run.observe({"falls_assessment_done": True}, day=90.375)
    assert fired(applied) == []


# -- the 52-week follow-up --------------------------------------------------------------------


def test_followup_52_opens_at_fracture_day_364_not_363() -> None:
    run = in_monitoring()
    run.advance(363.999)
    assert run.state == "monitoring"
    assert "FLS-FOLLOWUP-52" in fired_in(run.advance(364))
    assert run.state == "annual_follow_up"


def test_followup_52_never_sooner_than_84_days_after_entering_monitoring() -> None:
    run = in_first_follow_up()
    run.observe({"aom_started": False}, day=90.375)
    for day in (118.375, 146.375, 174.375, 202.375, 230.375, 258.375, 286.375):
        run.advance(day)
        assert run.state == "first_follow_up", day
        run.observe({"aom_started": day == 286.375}, day=day)
    assert run.state == "monitoring"  # entered on fracture day 286.375
    run.advance(370.374)
    assert run.state == "monitoring"
    run.advance(370.375)
    assert run.state == "annual_follow_up"


def test_followup_52_overdue_after_28_days_in_annual_follow_up_not_27() -> None:
    run = in_annual_follow_up()
    assert "FLS-FOLLOWUP-52-OVERDUE" not in fired_in(run.advance(391.999))
    assert "FLS-FOLLOWUP-52-OVERDUE" in fired_in(run.advance(392))
    assert run.open_tasks("FLS-FOLLOWUP-52-OVERDUE")
    run.observe({"aom_still_prescribed": True}, day=393)
    assert run.state == "completed"
    assert run.open_tasks("FLS-FOLLOWUP-52-OVERDUE") == []


def test_persisting_at_52_weeks_completes_with_a_hand_over_to_primary_care() -> None:
    run = in_annual_follow_up()
    applied = run.observe({"aom_still_prescribed": True}, day=370)
    assert fired(applied) == ["FLS-PERSISTING"]
    assert run.state == "completed"
    assert [t.rule_id for t in applied.decision.tasks_opened] == ["FLS-PERSISTING"]
    assert run.episode.pending_timers() == []


def test_an_annual_follow_up_without_aom_still_prescribed_decides_nothing() -> None:
    run = in_monitoring()
    run.observe({"aom_still_prescribed": True}, day=200)  # in monitoring: not the contact
    run.advance(364)
    applied = run.observe({"aom_started": True, "exercise_started": True}, day=370)
    assert fired(applied) == []
    assert run.state == "annual_follow_up"


def test_lapsed_at_52_weeks_back_to_treatment_then_recontacted_and_monitored_again() -> None:
    run = in_annual_follow_up()
    applied = run.observe({"aom_still_prescribed": False}, day=370.375)
    assert fired(applied) == ["FLS-LAPSED"]
    assert run.state == "treatment"
    assert run.open_tasks("FLS-LAPSED")
    run.advance(398.374)
    assert run.state == "treatment"
    assert fired_in(run.advance(398.375)) == ["FLS-RECONTACT"]
    assert run.state == "first_follow_up"
    run.observe({"aom_started": True}, day=400.375)
    assert run.state == "monitoring"
    (annual,) = timers(run, "FLS-FOLLOWUP-52", PENDING)
    assert annual.due_at == at_day(484.375)  # day 364 has passed: 84 days after re-entry


# -- the specialist referral of a very high risk ---------------------------------------------


def very_high(**facts: Any) -> FlsRun:
    run = assessing()
    run.observe({"risk_category": "very_high", **FALLS_LOW, **facts}, day=10.375)
    assert run.state == "treatment"
    return run


def test_specialist_pending_28_days_after_very_high_not_27() -> None:
    run = very_high()
    assert "FLS-SPECIALIST-PENDING" not in fired_in(run.advance(38.374))
    assert "FLS-SPECIALIST-PENDING" in fired_in(run.advance(38.375))
    (task,) = run.open_tasks("FLS-SPECIALIST-PENDING")
    assert task.kind == "escalation"


@pytest.mark.parametrize("fact", ["specialist_referral_placed", "specialist_referral_declined"])
def test_specialist_pending_closes_when_either_referral_fact_is_recorded_true(fact: str) -> None:
    run = very_high()
    run.advance(38.375)
    run.observe({fact: False}, day=40)
    assert run.open_tasks("FLS-SPECIALIST-PENDING")
    run.observe({fact: True}, day=41)
    assert run.open_tasks("FLS-SPECIALIST-PENDING") == []
    assert tasks(run, "FLS-SPECIALIST-PENDING", RESOLVED)


@pytest.mark.parametrize("fact", ["specialist_referral_placed", "specialist_referral_declined"])
def test_specialist_pending_does_not_escalate_once_either_is_recorded(fact: str) -> None:
    run = very_high()
    run.observe({fact: True}, day=20)
    assert "FLS-SPECIALIST-PENDING" not in fired_in(run.advance(60))


def test_no_specialist_pending_timer_for_high_risk() -> None:
    run = treated("high")
    assert timers(run, "FLS-SPECIALIST-PENDING") == []


# -- a corrected fracture date ----------------------------------------------------------------


def test_corrected_fracture_date_re_times_every_pending_timer_anchored_on_it() -> None:
    run = treated(day=10.375)  # ASSESS-DUE, DXA-DUE, FOLLOWUP-16 all due at day 84
    earlier = (FRACTURE_MIDNIGHT - timedelta(days=10)).date().isoformat()
    applied = run.observe({"fracture_date": earlier}, day=20)
    retimed = applied.decision.timers_retimed
    assert sorted(new.rule_id for _, new in retimed) == [
        "FLS-ASSESS-DUE",
        "FLS-DXA-DUE",
        "FLS-FOLLOWUP-16",
    ]
    for _, new in retimed:
        assert new.due_at == at_day(74)  # fracture day 84 of the corrected date
    body = run.audit[-1].body()
    assert len(body["timers_retimed"]) == 3
    assert len(run.episode.pending_timers()) == 3
    run.advance(73.999)
    assert run.state == "treatment"
    run.advance(74)
    assert run.state == "first_follow_up"


def test_corrected_fracture_date_into_the_past_makes_its_timers_due_at_once() -> None:
    run = treated(day=10.375)
    much_earlier = (FRACTURE_MIDNIGHT - timedelta(days=80)).date().isoformat()
    run.observe({"fracture_date": much_earlier}, day=20.375)  # now fracture day 100
    assert {t.due_at for t in run.episode.pending_timers()} == {at_day(20.375), at_day(38.375)}
    fired_now = fired_in(run.advance(20.375))
    assert "FLS-DXA-DUE" in fired_now
    assert run.state == "treatment"  # FOLLOWUP-16: 28 days after entry still applies


def test_corrected_fracture_date_does_not_re_arm_fired_timers_nor_undo_transitions() -> None:
    run = in_first_follow_up()  # ASSESS-DUE, DXA-DUE and FOLLOWUP-16 fired at day 84
    later = (FRACTURE_MIDNIGHT + timedelta(days=20)).date().isoformat()
    applied = run.observe({"fracture_date": later}, day=90)
    assert run.state == "first_follow_up"
    assert applied.decision.timers_retimed == []
    for rid in ("FLS-ASSESS-DUE", "FLS-DXA-DUE", "FLS-FOLLOWUP-16"):
        assert [t.status for t in timers(run, rid)] == [FIRED], rid
    assert fired_in(run.advance(104.5)) == []  # nothing fires at the corrected day 84


def test_corrected_fracture_date_re_times_the_52_week_timer() -> None:
    run = in_monitoring()
    later = (FRACTURE_MIDNIGHT + timedelta(days=7)).date().isoformat()
    applied = run.observe({"fracture_date": later}, day=100)
    assert [new.rule_id for _, new in applied.decision.timers_retimed] == ["FLS-FOLLOWUP-52"]
    run.advance(370.999)
    assert run.state == "monitoring"
    run.advance(371)
    assert run.state == "annual_follow_up"


# -- bad input --------------------------------------------------------------------------------


def test_an_l1_l2_fact_on_an_fls_episode_is_refused_and_nothing_stored() -> None:
    run = assessing()
    before = run.snapshot()
    with pytest.raises(InvalidObservation):
        run.observe({"pain_score": 6}, day=5)
    with pytest.raises(InvalidObservation):
        run.observe({"risk_category": "high", "fracture_levels": ["L1"]}, day=5)
    assert run.snapshot() == before


def test_a_fracture_date_after_the_observation_is_refused_the_same_day_accepted() -> None:
    run = FlsRun.open({**PROFILE}, day=3.375)
    before = run.snapshot()
    tomorrow = (FRACTURE_MIDNIGHT + timedelta(days=4)).date().isoformat()
    with pytest.raises(InvalidObservation):
        run.observe({"fracture_date": tomorrow}, day=3.5)
    assert run.snapshot() == before
    today = (FRACTURE_MIDNIGHT + timedelta(days=3)).date().isoformat()
    run.observe({"fracture_date": today}, day=3.5)
    assert run.state == "assessment"


@pytest.mark.parametrize("written", ["2026-W01-1", "20260301", "2026-3-1", "2026/03/01"])
def test_a_fracture_date_not_written_yyyy_mm_dd_is_refused(written: str) -> None:
    """A week date such as 2026-W01-1 parses with ``date.fromisoformat`` but is not the
    calendar date the vocabulary promises (a reader would not know 2025-12-29 from it)."""
    run = FlsRun.open({**PROFILE}, day=3.375)
    before = run.snapshot()
    with pytest.raises(InvalidObservation, match="fracture_date"):
        run.observe({"fracture_date": written}, day=3.5)
    assert run.snapshot() == before


def test_a_fracture_date_after_the_opening_is_refused() -> None:
    with pytest.raises(InvalidObservation):
        FlsRun.open({**PROFILE, "fracture_date": "2026-03-10"}, day=3.375)


def test_a_fracture_date_after_the_utc_date_of_a_clinical_time_given_in_another_zone() -> None:
    """The fracture day is counted on UTC dates: 05:00 on 3 March at UTC+10 is still 2 March
    in UTC, so a fracture dated 3 March would be after the observation."""
    from datetime import timezone

    from pathway import usecases

    run = FlsRun.open({**PROFILE}, day=0.5)
    at = datetime(2026, 3, 3, 5, 0, tzinfo=timezone(timedelta(hours=10)))
    assert at.astimezone(UTC).date().isoformat() == "2026-03-02"
    with pytest.raises(InvalidObservation):
        usecases.observe(
            run.uow, run.registry, run.episode_id, {"fracture_date": "2026-03-03"},
            at=at, now=at, actor="t",
        )  # fmt: skip


@pytest.mark.parametrize("value", ["2026-3-2", "02/03/2026", "2026-02-30", 20260302, True, ""])
def test_a_malformed_fracture_date_is_refused(value: Any) -> None:
    run = FlsRun.open({**PROFILE}, day=3.375)
    with pytest.raises(InvalidObservation):
        run.observe({"fracture_date": value}, day=4)


# -- FLS-CLOSE --------------------------------------------------------------------------------

REASONS = ["declined", "lost_to_follow_up", "deceased", "entered_in_error", "moved_away"]


def in_state(state: str) -> FlsRun:
    if state == "identified":
        return FlsRun.open({"sex": "female"}, day=3.375)
    if state == "assessment":
        return assessing()
    if state == "treatment":
        return treated()
    if state == "first_follow_up":
        return in_first_follow_up()
    if state == "monitoring":
        return in_monitoring()
    return in_annual_follow_up()


@pytest.mark.parametrize(
    ("state", "reason"),
    list(
        zip(
            [
                "identified",
                "assessment",
                "treatment",
                "first_follow_up",
                "monitoring",
                "annual_follow_up",
            ],
            [*REASONS, "declined"],
            strict=True,
        )
    ),
)
def test_close_with_each_reason_from_every_live_state(state: str, reason: str) -> None:
    run = in_state(state)
    applied = run.close(reason, day=run.day + 1)
    assert fired(applied) == ["FLS-CLOSE"]
    assert run.state == "closed"
    assert run.episode.closed_reason == reason
    assert run.episode.pending_timers() == []
    assert run.episode.open_escalations() == []


@pytest.mark.parametrize("reason", ["discharged", "transferred", "", "DECLINED"])
def test_close_with_another_reason_is_refused_and_nothing_stored(reason: str) -> None:
    run = treated()
    before = run.snapshot()
    with pytest.raises(InvalidRequest):
        run.close(reason, day=20)
    assert run.snapshot() == before
    assert run.state == "treatment"


@pytest.mark.parametrize("terminal", ["lifestyle_advice", "not_eligible", "closed", "completed"])
def test_every_terminal_state_refuses_further_events(terminal: str) -> None:
    if terminal == "lifestyle_advice":
        run = assessing()
        run.observe({"risk_category": "low", **FALLS_LOW}, day=5)
    elif terminal == "not_eligible":
        run = FlsRun.open({"age": 49, **DATED}, day=3.375)
    elif terminal == "closed":
        run = treated()
        run.close("moved_away", day=20)
    else:
        run = in_annual_follow_up()
        run.observe({"aom_still_prescribed": True}, day=370)
    assert run.state == terminal
    with pytest.raises(EpisodeClosed):
        run.close("declined", day=run.day + 1)
    with pytest.raises(EpisodeClosed):
        run.observe({"dxa_done": True}, day=run.day + 1)


# -- the fracture-day clock and the safety properties -----------------------------------------


def test_fracture_day_is_the_utc_date_of_the_clinical_time_minus_the_fracture_date() -> None:
    from pathway.work import derived_values

    run = assessing()
    ep = run.episode
    assert derived_values(run.definition, ep, at_day(83.999))["fracture_day"] == 83
    assert derived_values(run.definition, ep, at_day(84))["fracture_day"] == 84
    plus10 = at_day(84.1).astimezone(__import__("datetime").timezone(timedelta(hours=-10)))
    assert derived_values(run.definition, ep, plus10)["fracture_day"] == 84  # UTC date


def test_a_contact_decides_on_its_own_record_even_when_it_repeats_an_older_value() -> None:
    run = treated()
    run.observe({"aom_started": True}, day=40)
    run.advance(84)
    applied = run.observe({"aom_started": True}, day=90)
    assert fired(applied) == ["FLS-ON-TREATMENT"]
    assert run.state == "monitoring"


@pytest.mark.parametrize(
    ("reach", "facts"),
    [
        (in_first_follow_up, {"age": 45, "aom_started": False}),
        (in_annual_follow_up, {"high_energy_trauma": True, "aom_still_prescribed": False}),
    ],
    ids=["not_started_age_45", "lapsed_high_energy"],
)
def test_safety_property_3_no_entry_into_treatment_once_not_eligible(
    reach: Any, facts: dict[str, Any]
) -> None:
    """FLS.md's rules alone would send this contact back to treatment (FLS-NOT-ELIGIBLE
    applies only in identified and assessment): the routes back need ``still_eligible``, so
    the contact decides nothing and the follow-up's overdue timer keeps the episode seen."""
    run = reach()
    state = run.state
    run.observe(facts, day=run.day + 6)
    assert run.state == state
    assert any(t.rule_id.endswith("-OVERDUE") for t in run.episode.pending_timers())


def test_safety_property_2_no_completion_when_medication_is_recorded_as_not_started() -> None:
    """FLS-PERSISTING also needs ``aom_started`` in force (FLS.md's rule reads only the
    contact's ``aom_still_prescribed``; its property 2 asks for both)."""
    run = in_monitoring()
    run.observe({"aom_started": False}, day=200)
    run.advance(364)
    run.observe({"aom_still_prescribed": True}, day=370)
    assert run.state != "completed"


def test_a_request_is_refused_saying_this_pathway_takes_none() -> None:
    run = assessing()
    before = run.snapshot()
    with pytest.raises(InvalidRequest) as refused:
        run.request("vertebroplasty", day=5)
    assert "takes none" in refused.value.message
    assert run.snapshot() == before


def test_a_correction_to_a_fracture_date_after_the_observation_is_refused_timers_untouched() -> (
    None
):
    run = treated(day=10.375)
    before = run.snapshot()
    with pytest.raises(InvalidObservation):
        run.observe({"fracture_date": at_day(11).date().isoformat()}, day=10.5)
    assert run.snapshot() == before
    assert {t.due_at for t in run.episode.pending_timers()} == {at_day(84)}
