"""The scenario library cross-checks the engine against PROTOCOL.md.

Every file in ``tests/scenarios`` is a patient episode whose ``expect`` blocks were derived from
the clinical specification by reasoning, not copied from engine output. Replaying them pins the
behaviour; the coverage test keeps the library honest as the definition grows; the CLI tests pin
the replay contract of SCENARIOS.md (exit codes, one-line errors, JSON shape).

The ``expect`` format can only say "this fired"; what must *not* fire, the exact timers fired,
and the errors a step must report are pinned in the tables below, keyed by file and step.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from carepath.replay.runner import ReplayResult, replay
from carepath.replay.scenario import Scenario, load_scenario
from pathway.definition import Definition, load_definition, shipped_definition_files
from pathway.usecases import DefinitionRegistry
from tests.support.protocol import REPOSITORY, SCENARIO_DIR, protocol_file

EXAMPLE_COPY = SCENARIO_DIR / "scenarios_md_example.json"
SCENARIO_FILES = sorted(p for p in SCENARIO_DIR.iterdir() if p.suffix in (".json", ".yaml", ".yml"))
FLS = "fracture-liaison"
FLS_FILES = [p for p in SCENARIO_FILES if p.name.startswith("fls_")]

OUTPUT_KEYS = {"scenario", "definition", "steps", "final_state", "audit_verified"}
STEP_KEYS = {
    "step",
    "day",
    "kind",
    "state",
    "rules",
    "refused",
    "error",
    "timers_fired",
    "transitions",
}
EXAMPLE_STEP0_RULES = [
    "IN-PRESENTED",
    "WU-MRI",
    "WU-NEURO",
    "WU-OSTEO",
    "WU-MALIG",
    "WU-MRI-CONTRAST",
]

# Steps that must report an error (every other step must report none). Advance steps on a
# terminal episode are exempt: "time passing changes nothing" does not say whether it is refused.
EXPECTED_ERRORS: dict[str, dict[int, str]] = {
    "tx_neuro_motor_deficit_at_intake.json": {
        1: "EpisodeClosed",
        2: "EpisodeClosed",
        3: "EpisodeClosed",
    },
    "closed_declined_during_workup_then_events_refused.json": {
        2: "EpisodeClosed",
        3: "EpisodeClosed",
    },
    "unknown_close_reason_and_request_action_are_invalid.json": {
        1: "InvalidRequest",
        2: "InvalidRequest",
    },
    "invalid_observations_mid_episode_store_nothing.json": {
        i: "InvalidObservation" for i in range(2, 8)
    },
    # fracture-liaison (FLS.md)
    "fls_not_eligible_age_49.json": {1: "EpisodeClosed"},
    "fls_not_eligible_high_energy_trauma.json": {1: "EpisodeClosed"},
    "fls_invalid_observations_and_requests_store_nothing.json": {
        **{i: "InvalidObservation" for i in range(1, 6)},
        6: "InvalidRequest",
        7: "InvalidRequest",
    },
}

# Rules that must NOT be in a step's ``rules`` (boundaries, cancelled timers, refusals).
NOT_FIRED: dict[tuple[str, int], tuple[str, ...]] = {
    ("tx_neuro_motor_deficit_at_intake.json", 0): ("IN-PRESENTED", "WU-MRI", "WU-NEURO"),
    ("tx_multi_two_levels_at_intake.json", 0): ("IN-PRESENTED",),
    ("tx_instab_collapse_51_percent_at_workup.json", 1): ("WU-COMPLETE", "CC-CALCITONIN"),
    ("collapse_50_percent_stays_in_conservative_care.json", 1): ("TX-INSTAB",),
    ("tx_neuro_and_instab_at_first_review.yaml", 2): (
        "RA-CONTINUE",
        "PM-REFERRAL",
        "RA-RESOLVED",
        "RA-OSTEO-PENDING",
    ),
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 1): ("FU-INTAKE-OVERDUE",),
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 2): ("FU-WORKUP-OVERDUE",),
    ("workup_mri_and_ct_contraindicated_needs_imaging_review.json", 0): (
        "WU-MRI",
        "WU-MRI-CONTRAST",
        "WU-MALIG",
    ),
    ("workup_mri_and_ct_contraindicated_needs_imaging_review.json", 1): ("WU-COMPLETE",),
    ("workup_mri_and_ct_contraindicated_needs_imaging_review.json", 3): (
        "CC-NSAID-CAUTION",
        "CC-NSAID-AVOID",
    ),
    ("workup_mri_contraindicated_ct_and_malignancy_screen.json", 0): (
        "WU-MRI",
        "WU-MRI-CONTRAST",
        "WU-IMAGING-REVIEW",
    ),
    ("wu_malig_age_50_first_fracture_not_screened.json", 0): (
        "WU-MALIG",
        "WU-MRI-CONTRAST",
        "WU-CT",
    ),
    ("wu_malig_age_50_first_fracture_not_screened.json", 1): (
        "CC-DXA",
        "CC-NSAID-CAUTION",
        "CC-NSAID-AVOID",
    ),
    ("wu_malig_age_51_first_fracture_screened.json", 0): ("WU-CT",),
    ("nsaid_age_64_egfr_30_full_analgesia.json", 0): (
        "CC-NSAID-CAUTION",
        "CC-NSAID-AVOID",
        "WU-MALIG",
    ),
    ("nsaid_caution_age_65.json", 0): ("CC-NSAID-AVOID",),
    ("nsaid_avoid_anticoagulated_45_year_old.json", 1): ("CC-NSAID-CAUTION",),
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 1): (
        "T-CALCITONIN-END",
        "FU-REASSESS",
    ),
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 3): (
        "FU-OSTEO-REFERRAL",
        "FU-REASSESS-OVERDUE",
    ),
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 5): ("RA-RESOLVED",),
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 6): ("FU-REIMAGE",),
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 8): ("FU-3MONTH",),
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 10): ("FU-REASSESS-OVERDUE",),
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 12): ("DR-PAIN", "DR-DEFORM"),
    ("review_pain_4_continues_with_pain_referral.json", 3): ("RA-RESOLVED", "RA-OSTEO-PENDING"),
    ("review_pain_4_continues_with_pain_referral.json", 4): (
        "FU-OSTEO-REFERRAL",
        "FU-REASSESS-OVERDUE",
    ),
    ("review_pain_4_continues_with_pain_referral.json", 6): ("RA-RESOLVED", "RA-CONTINUE"),
    ("review_pain_3_resolved_discharge_blocked_until_osteo_care.json", 2): (
        "RA-RESOLVED",
        "RA-CONTINUE",
        "PM-REFERRAL",
    ),
    ("review_pain_3_resolved_discharge_blocked_until_osteo_care.json", 3): ("RA-RESOLVED",),
    ("osteo_referral_escalates_when_only_treatment_started.json", 1): (
        "DR-EARLY-REVIEW",
        "RA-RESOLVED",
    ),
    ("osteo_referral_escalates_when_only_treatment_started.json", 3): ("FU-REASSESS-OVERDUE",),
    ("kyphoplasty_refused_until_care_day_90_then_granted.json", 6): (
        "AUG-KYPHOPLASTY",
        "FU-3MONTH",
    ),
    ("kyphoplasty_refused_without_symptoms_after_3_months.json", 3): ("AUG-KYPHOPLASTY",),
    ("vertebroplasty_refused_in_every_open_state.json", 0): ("AUG-NO-VERTEBROPLASTY",),
    ("vertebroplasty_refused_in_every_open_state.json", 2): ("AUG-NO-VERTEBROPLASTY",),
    ("vertebroplasty_refused_in_every_open_state.json", 4): ("AUG-NO-VERTEBROPLASTY",),
    ("vertebroplasty_refused_in_every_open_state.json", 6): ("AUG-NO-VERTEBROPLASTY",),
    ("dr_pain_6_at_3_months_continues_then_7_to_augmentation.json", 2): (
        "FU-OSTEO-REFERRAL",
        "FU-REASSESS-OVERDUE",
    ),
    ("dr_pain_6_at_3_months_continues_then_7_to_augmentation.json", 3): (
        "DR-PAIN",
        "PM-REFERRAL",
        "FU-REASSESS-OVERDUE",
    ),
    ("dr_pain_6_at_3_months_continues_then_7_to_augmentation.json", 4): ("FU-NEXT-REVIEW",),
    ("dr_pain_improving_9_to_8_continues_then_unchanged_8_refers.json", 2): (
        "DR-PAIN",
        "PM-REFERRAL",
    ),
    ("dr_pain_improving_9_to_8_continues_then_unchanged_8_refers.json", 4): (
        "FU-REASSESS-OVERDUE",
    ),
    ("delayed_referral_deformity_despite_low_pain.json", 2): (
        "PM-REFERRAL",
        "DR-EARLY-REVIEW",
        "RA-RESOLVED",
        "RA-OSTEO-PENDING",
    ),
    ("delayed_referral_deformity_despite_low_pain.json", 3): ("DR-DEFORM", "FU-REIMAGE"),
    ("delayed_referral_deformity_despite_low_pain.json", 5): ("RA-RESOLVED", "DR-EARLY-REVIEW"),
    ("delayed_referral_pulmonary_dysfunction_with_severe_pain.json", 3): ("DR-PULM",),
    ("early_pulmonary_finding_at_first_review_continues_care.json", 3): (
        "RA-RESOLVED",
        "PM-REFERRAL",
        "DR-PULM",
    ),
    ("early_pulmonary_finding_at_first_review_continues_care.json", 4): ("DR-EARLY-REVIEW",),
    ("early_pulmonary_finding_at_first_review_continues_care.json", 5): ("FU-REIMAGE",),
    ("kyphoplasty_granted_from_conservative_care_after_3_month_review.json", 2): (
        "PM-REFERRAL",
        "DR-PAIN",
    ),
    ("intake_waits_for_fracture_levels.json", 0): ("IN-PRESENTED",),
    # fracture-liaison (FLS.md): the day before each boundary, conditions that do not hold
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 2): (
        "FLS-FOLLOWUP-16",
        "FLS-ASSESS-DUE",
        "FLS-DXA-DUE",
    ),
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 3): (
        "FLS-ASSESS-DUE",
        "FLS-DXA-DUE",
    ),
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 4): ("FLS-EXERCISE",),
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 5): ("FLS-FOLLOWUP-52",),
    ("fls_very_high_specialist_referral_pending_escalates.json", 1): (
        "FLS-HIGH",
        "FLS-INTERMEDIATE",
    ),
    ("fls_very_high_specialist_referral_pending_escalates.json", 2): ("FLS-SPECIALIST-PENDING",),
    ("fls_very_high_specialist_referral_pending_escalates.json", 4): ("FLS-SPECIALIST-PENDING",),
    ("fls_very_high_specialist_referral_pending_escalates.json", 5): ("FLS-ASSESS-DUE",),
    ("fls_low_risk_lifestyle_advice_with_falls_referral.json", 0): ("FLS-DXA", "FLS-BLOODS"),
    ("fls_low_risk_lifestyle_advice_with_falls_referral.json", 2): (
        "FLS-ASSESS-DUE",
        "FLS-DXA-DUE",
    ),
    ("fls_intermediate_waits_for_bmd_then_high.json", 2): ("FLS-FALLS-REFERRAL",),
    ("fls_intermediate_waits_for_bmd_then_high.json", 3): (
        "FLS-FALLS-REFERRAL",
        "FLS-INTERMEDIATE",
    ),
    ("fls_intermediate_waits_for_bmd_then_high.json", 4): ("FLS-FOLLOWUP-16",),
    ("fls_intermediate_waits_for_bmd_then_high.json", 5): ("FLS-ASSESS-DUE", "FLS-DXA-DUE"),
    ("fls_intermediate_waits_for_bmd_then_high.json", 6): ("FLS-EXERCISE",),
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 0): ("FLS-LOW",),
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 1): (
        "FLS-FOLLOWUP-16",
    ),
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 2): (
        "FLS-ASSESS-DUE",
        "FLS-DXA-DUE",
    ),
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 3): (
        "FLS-EXERCISE",
    ),
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 4): (
        "FLS-RECONTACT",
    ),
    ("fls_not_eligible_age_49.json", 0): ("FLS-ELIGIBLE", "FLS-FRAX"),
    ("fls_age_50_identification_overdue_then_eligible.json", 0): (
        "FLS-ELIGIBLE",
        "FLS-NOT-ELIGIBLE",
    ),
    ("fls_age_50_identification_overdue_then_eligible.json", 1): ("FLS-IDENTIFY-OVERDUE",),
    ("fls_late_identified_fracture_100_days_ago.json", 3): ("FLS-FOLLOWUP-16",),
    ("fls_late_identified_fracture_100_days_ago.json", 5): ("FLS-FOLLOWUP-16-OVERDUE",),
    ("fls_late_identified_fracture_100_days_ago.json", 8): ("FLS-FOLLOWUP-52",),
    ("fls_late_identified_fracture_100_days_ago.json", 10): ("FLS-FOLLOWUP-52-OVERDUE",),
    ("fls_lapsed_at_52_weeks_then_restarted.json", 0): ("FLS-DXA", "FLS-BLOODS"),
    ("fls_lapsed_at_52_weeks_then_restarted.json", 1): ("FLS-INTERMEDIATE",),
    ("fls_lapsed_at_52_weeks_then_restarted.json", 6): ("FLS-RECONTACT",),
    ("fls_lapsed_at_52_weeks_then_restarted.json", 8): ("FLS-EXERCISE", "FLS-FOLLOWUP-16"),
    ("fls_lapsed_at_52_weeks_then_restarted.json", 9): ("FLS-FOLLOWUP-52",),
    ("fls_first_follow_up_without_aom_started_decides_nothing.json", 1): ("FLS-ON-TREATMENT",),
    ("fls_first_follow_up_without_aom_started_decides_nothing.json", 3): (
        "FLS-ON-TREATMENT",
        "FLS-NOT-STARTED",
        "FLS-EXERCISE",
    ),
    ("fls_first_follow_up_without_aom_started_decides_nothing.json", 4): (
        "FLS-ON-TREATMENT",
        "FLS-NOT-STARTED",
        "FLS-PERSISTING",
    ),
    ("fls_first_follow_up_without_aom_started_decides_nothing.json", 5): (
        "FLS-FOLLOWUP-16-OVERDUE",
    ),
    ("fls_annual_contact_needs_aom_still_prescribed.json", 3): ("FLS-PERSISTING",),
    ("fls_annual_contact_needs_aom_still_prescribed.json", 4): ("FLS-FOLLOWUP-52",),
    ("fls_annual_contact_needs_aom_still_prescribed.json", 6): (
        "FLS-PERSISTING",
        "FLS-LAPSED",
        "FLS-ON-TREATMENT",
    ),
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 3): (
        "FLS-FOLLOWUP-16",
        "FLS-ASSESS-DUE",
        "FLS-DXA-DUE",
    ),
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 6): (
        "FLS-FOLLOWUP-16",
        "FLS-ASSESS-DUE",
        "FLS-DXA-DUE",
    ),
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 8): ("FLS-FOLLOWUP-52",),
    ("fls_not_started_twice_recontacted_every_28_days.json", 1): ("FLS-SPECIALIST-PENDING",),
    ("fls_not_started_twice_recontacted_every_28_days.json", 4): ("FLS-RECONTACT",),
    ("fls_not_started_twice_recontacted_every_28_days.json", 6): ("FLS-EXERCISE",),
    ("fls_not_started_twice_recontacted_every_28_days.json", 7): ("FLS-RECONTACT",),
    ("fls_not_started_twice_recontacted_every_28_days.json", 9): ("FLS-FOLLOWUP-16-OVERDUE",),
    ("fls_assessment_overdue_at_12_weeks_in_identified_and_assessment.json", 0): ("FLS-ELIGIBLE",),
    ("fls_assessment_overdue_at_12_weeks_in_identified_and_assessment.json", 2): (
        "FLS-ASSESS-DUE",
        "FLS-DXA-DUE",
    ),
    ("fls_assessment_overdue_at_12_weeks_in_identified_and_assessment.json", 6): (
        "FLS-FALLS-REFERRAL",
    ),
}

# The exact ``timers_fired`` of a step: (timer, episode day it was due), in firing order.
TIMERS: dict[tuple[str, int], list[tuple[str, int]]] = {
    ("tx_neuro_motor_deficit_at_intake.json", 1): [],
    ("tx_neuro_motor_deficit_at_intake.json", 3): [],
    ("tx_instab_posterior_column_on_repeat_imaging.json", 2): [],
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 0): [("FU-INTAKE-OVERDUE", 1)],
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 1): [],
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 2): [],
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 3): [("FU-WORKUP-OVERDUE", 5)],
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 4): [],
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 5): [
        ("T-CALCITONIN-END", 34),
        ("FU-REASSESS", 34),
    ],
    ("intake_and_workup_overdue_then_lost_to_follow_up.json", 6): [],
    ("workup_mri_and_ct_contraindicated_needs_imaging_review.json", 2): [("FU-WORKUP-OVERDUE", 3)],
    ("workup_mri_and_ct_contraindicated_needs_imaging_review.json", 3): [],
    ("workup_mri_and_ct_contraindicated_needs_imaging_review.json", 4): [],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 1): [],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 2): [
        ("T-CALCITONIN-END", 28),
        ("FU-REASSESS", 28),
    ],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 3): [],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 4): [
        ("FU-OSTEO-REFERRAL", 42),
        ("FU-REASSESS-OVERDUE", 42),
    ],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 6): [],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 7): [("FU-REIMAGE", 56)],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 8): [],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 9): [("FU-3MONTH", 90)],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 10): [],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 11): [
        ("FU-REASSESS-OVERDUE", 104)
    ],
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 12): [],
    ("review_pain_4_continues_with_pain_referral.json", 4): [("FU-OSTEO-REFERRAL", 43)],
    ("review_pain_4_continues_with_pain_referral.json", 5): [("FU-REIMAGE", 57)],
    ("review_pain_3_resolved_discharge_blocked_until_osteo_care.json", 4): [
        ("FU-OSTEO-REFERRAL", 43),
        ("FU-REASSESS-OVERDUE", 43),
    ],
    ("closed_declined_during_workup_then_events_refused.json", 2): [],
    ("closed_declined_during_workup_then_events_refused.json", 3): [],
    ("closed_deceased_in_reassessment.json", 3): [],
    ("kyphoplasty_refused_until_care_day_90_then_granted.json", 6): [
        ("FU-OSTEO-REFERRAL", 43),
        ("FU-REIMAGE", 57),
    ],
    ("kyphoplasty_refused_until_care_day_90_then_granted.json", 7): [("FU-3MONTH", 91)],
    ("kyphoplasty_refused_without_symptoms_after_3_months.json", 2): [
        ("FU-OSTEO-REFERRAL", 42),
        ("FU-REIMAGE", 56),
    ],
    ("kyphoplasty_refused_without_symptoms_after_3_months.json", 3): [("FU-3MONTH", 90)],
    ("unattended_until_day_100_late_timers_then_augmentation.json", 2): [
        ("T-CALCITONIN-END", 29),
        ("FU-REASSESS", 29),
        ("FU-OSTEO-REFERRAL", 43),
        ("FU-REASSESS-OVERDUE", 43),
        ("FU-REIMAGE", 57),
        ("FU-3MONTH", 91),
    ],
    ("dr_pain_6_at_3_months_continues_then_7_to_augmentation.json", 2): [
        ("FU-OSTEO-REFERRAL", 42),
        ("FU-REIMAGE", 56),
        ("FU-3MONTH", 90),
    ],
    ("dr_pain_6_at_3_months_continues_then_7_to_augmentation.json", 4): [],
    ("dr_pain_6_at_3_months_continues_then_7_to_augmentation.json", 5): [("FU-NEXT-REVIEW", 120)],
    ("dr_pain_6_at_3_months_continues_then_7_to_augmentation.json", 6): [],
    ("dr_pain_improving_9_to_8_continues_then_unchanged_8_refers.json", 2): [
        ("FU-OSTEO-REFERRAL", 42),
        ("FU-REIMAGE", 56),
        ("FU-3MONTH", 90),
    ],
    ("dr_pain_improving_9_to_8_continues_then_unchanged_8_refers.json", 3): [
        ("FU-NEXT-REVIEW", 123)
    ],
    ("dr_pain_improving_9_to_8_continues_then_unchanged_8_refers.json", 4): [],
    ("dr_pain_improving_9_to_8_continues_then_unchanged_8_refers.json", 5): [
        ("FU-REASSESS-OVERDUE", 137)
    ],
    ("delayed_referral_deformity_despite_low_pain.json", 3): [
        ("FU-OSTEO-REFERRAL", 42),
        ("FU-REIMAGE", 56),
    ],
    ("early_pulmonary_finding_at_first_review_continues_care.json", 4): [("FU-OSTEO-REFERRAL", 43)],
    ("early_pulmonary_finding_at_first_review_continues_care.json", 5): [
        ("FU-REIMAGE", 57),
        ("FU-3MONTH", 91),
    ],
    ("scenarios_md_example.json", 3): [("T-CALCITONIN-END", 29), ("FU-REASSESS", 29)],
    ("scenarios_md_example.json", 4): [],
    ("kyphoplasty_granted_from_conservative_care_after_3_month_review.json", 2): [
        ("FU-OSTEO-REFERRAL", 42),
        ("FU-REIMAGE", 56),
        ("FU-3MONTH", 90),
    ],
    ("kyphoplasty_granted_from_conservative_care_after_3_month_review.json", 4): [],
    ("intake_waits_for_fracture_levels.json", 2): [("FU-WORKUP-OVERDUE", 3)],
    ("intake_waits_for_fracture_levels.json", 4): [],
    # fracture-liaison (FLS.md). Starts are 09:00 UTC, so a timer due at 00:00 UTC of a fracture
    # day is due on the episode day before it (15:00); ties fire in the order they were set.
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 2): [],
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 3): [
        ("FLS-ASSESS-DUE", 73),
        ("FLS-DXA-DUE", 73),
        ("FLS-FOLLOWUP-16", 73),
    ],
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 5): [],
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 6): [
        ("FLS-FOLLOWUP-52", 353)
    ],
    ("fls_very_high_specialist_referral_pending_escalates.json", 2): [],
    ("fls_very_high_specialist_referral_pending_escalates.json", 3): [
        ("FLS-SPECIALIST-PENDING", 33)
    ],
    ("fls_very_high_specialist_referral_pending_escalates.json", 5): [
        ("FLS-ASSESS-DUE", 80),
        ("FLS-DXA-DUE", 80),
        ("FLS-FOLLOWUP-16", 80),
    ],
    ("fls_low_risk_lifestyle_advice_with_falls_referral.json", 2): [],
    ("fls_intermediate_waits_for_bmd_then_high.json", 4): [],
    ("fls_intermediate_waits_for_bmd_then_high.json", 5): [
        ("FLS-ASSESS-DUE", 76),
        ("FLS-DXA-DUE", 76),
        ("FLS-FOLLOWUP-16", 76),
    ],
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 1): [],
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 4): [],
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 5): [
        ("FLS-RECONTACT", 88)
    ],
    ("fls_not_eligible_age_49.json", 2): [],
    ("fls_age_50_identification_overdue_then_eligible.json", 1): [],
    ("fls_age_50_identification_overdue_then_eligible.json", 2): [("FLS-IDENTIFY-OVERDUE", 7)],
    ("fls_late_identified_fracture_100_days_ago.json", 1): [
        ("FLS-ASSESS-DUE", 0),
        ("FLS-DXA-DUE", 0),
    ],
    ("fls_late_identified_fracture_100_days_ago.json", 3): [],
    ("fls_late_identified_fracture_100_days_ago.json", 4): [("FLS-FOLLOWUP-16", 31)],
    ("fls_late_identified_fracture_100_days_ago.json", 5): [],
    ("fls_late_identified_fracture_100_days_ago.json", 6): [("FLS-FOLLOWUP-16-OVERDUE", 59)],
    ("fls_late_identified_fracture_100_days_ago.json", 8): [],
    ("fls_late_identified_fracture_100_days_ago.json", 9): [("FLS-FOLLOWUP-52", 263)],
    ("fls_late_identified_fracture_100_days_ago.json", 10): [],
    ("fls_late_identified_fracture_100_days_ago.json", 11): [("FLS-FOLLOWUP-52-OVERDUE", 291)],
    ("fls_lapsed_at_52_weeks_then_restarted.json", 2): [
        ("FLS-ASSESS-DUE", 76),
        ("FLS-DXA-DUE", 76),
        ("FLS-FOLLOWUP-16", 76),
    ],
    ("fls_lapsed_at_52_weeks_then_restarted.json", 4): [("FLS-FOLLOWUP-52", 356)],
    ("fls_lapsed_at_52_weeks_then_restarted.json", 6): [],
    ("fls_lapsed_at_52_weeks_then_restarted.json", 7): [("FLS-RECONTACT", 393)],
    ("fls_lapsed_at_52_weeks_then_restarted.json", 9): [],
    ("fls_lapsed_at_52_weeks_then_restarted.json", 10): [("FLS-FOLLOWUP-52", 479)],
    ("fls_first_follow_up_without_aom_started_decides_nothing.json", 5): [],
    ("fls_first_follow_up_without_aom_started_decides_nothing.json", 6): [
        ("FLS-FOLLOWUP-16-OVERDUE", 97)
    ],
    ("fls_annual_contact_needs_aom_still_prescribed.json", 4): [],
    ("fls_annual_contact_needs_aom_still_prescribed.json", 5): [("FLS-FOLLOWUP-52", 360)],
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 3): [],
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 6): [],
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 8): [],
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 9): [("FLS-FOLLOWUP-52", 353)],
    ("fls_not_started_twice_recontacted_every_28_days.json", 1): [("FLS-SPECIALIST-PENDING", 28)],
    ("fls_not_started_twice_recontacted_every_28_days.json", 4): [],
    ("fls_not_started_twice_recontacted_every_28_days.json", 5): [("FLS-RECONTACT", 93)],
    ("fls_not_started_twice_recontacted_every_28_days.json", 7): [],
    ("fls_not_started_twice_recontacted_every_28_days.json", 8): [("FLS-RECONTACT", 121)],
    ("fls_not_started_twice_recontacted_every_28_days.json", 9): [],
    ("fls_not_started_twice_recontacted_every_28_days.json", 10): [
        ("FLS-FOLLOWUP-16-OVERDUE", 149)
    ],
    ("fls_assessment_overdue_at_12_weeks_in_identified_and_assessment.json", 1): [
        ("FLS-IDENTIFY-OVERDUE", 7)
    ],
    ("fls_assessment_overdue_at_12_weeks_in_identified_and_assessment.json", 2): [],
    ("fls_assessment_overdue_at_12_weeks_in_identified_and_assessment.json", 3): [
        ("FLS-ASSESS-DUE", 27),
        ("FLS-DXA-DUE", 27),
    ],
}

# The exact ``transitions`` of a step: (from, to, the set of rules that caused it), in order.
TRANSITIONS: dict[tuple[str, int], list[tuple[str, str, frozenset[str]]]] = {
    ("care_timeline_boundaries_day_27_28_41_42_55_56_89_90.json", 0): [
        ("intake", "workup", frozenset({"IN-PRESENTED"})),
        ("workup", "conservative_care", frozenset({"WU-COMPLETE"})),
    ],
    ("tx_multi_and_neuro_high_energy_fall.json", 0): [
        ("intake", "immediate_transfer", frozenset({"TX-MULTI", "TX-NEURO"})),
    ],
    ("unattended_until_day_100_late_timers_then_augmentation.json", 2): [
        ("conservative_care", "reassessment", frozenset({"FU-REASSESS"})),
        ("reassessment", "augmentation_consideration", frozenset({"DR-PAIN"})),
    ],
    ("dr_pain_improving_9_to_8_continues_then_unchanged_8_refers.json", 2): [
        ("conservative_care", "reassessment", frozenset({"FU-3MONTH"})),
        ("reassessment", "conservative_care", frozenset({"RA-CONTINUE"})),
    ],
    ("kyphoplasty_refused_until_care_day_90_then_granted.json", 7): [
        ("conservative_care", "reassessment", frozenset({"FU-3MONTH"})),
        ("reassessment", "augmentation_consideration", frozenset({"AUG-KYPHOPLASTY"})),
    ],
    ("kyphoplasty_granted_from_conservative_care_after_3_month_review.json", 3): [
        ("conservative_care", "augmentation_consideration", frozenset({"AUG-KYPHOPLASTY"})),
    ],
    # fracture-liaison (FLS.md)
    ("fls_low_risk_medication_recommended_not_started_recontacted_declined.json", 0): [
        ("identified", "assessment", frozenset({"FLS-ELIGIBLE"})),
        ("assessment", "treatment", frozenset({"FLS-HIGH"})),
    ],
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 3): [
        ("treatment", "first_follow_up", frozenset({"FLS-FOLLOWUP-16"})),
    ],
    ("fls_high_risk_on_medication_at_16_and_52_weeks_completed.json", 7): [
        ("annual_follow_up", "completed", frozenset({"FLS-PERSISTING"})),
    ],
    ("fls_very_high_specialist_referral_pending_escalates.json", 7): [
        ("monitoring", "closed", frozenset({"FLS-CLOSE"})),
    ],
    ("fls_not_eligible_age_49.json", 0): [
        ("identified", "not_eligible", frozenset({"FLS-NOT-ELIGIBLE"})),
    ],
    ("fls_high_energy_found_during_assessment.json", 1): [
        ("assessment", "not_eligible", frozenset({"FLS-NOT-ELIGIBLE"})),
    ],
    ("fls_lapsed_at_52_weeks_then_restarted.json", 5): [
        ("annual_follow_up", "treatment", frozenset({"FLS-LAPSED"})),
    ],
    ("fls_lapsed_at_52_weeks_then_restarted.json", 7): [
        ("treatment", "first_follow_up", frozenset({"FLS-RECONTACT"})),
    ],
    ("fls_first_follow_up_without_aom_started_decides_nothing.json", 3): [],
    ("fls_first_follow_up_without_aom_started_decides_nothing.json", 4): [],
    ("fls_annual_contact_needs_aom_still_prescribed.json", 6): [],
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 2): [],
    ("fls_corrected_fracture_date_re_times_pending_timers.json", 5): [],
}

# The ``enrolled`` of a step (SCENARIOS.md: present only when non-empty), from FLS-ENROL-SPINE:
# an L1-L2 episode of a patient aged 50 or more first entering conservative_care, or entering
# immediate_transfer with neither high-energy trauma nor a suspected pathologic fracture.
ENROL = [{"pathway": FLS, "rule": "FLS-ENROL-SPINE"}]
ENROLLED: dict[tuple[str, int], list[dict[str, str]]] = {
    ("scenarios_md_example.json", 0): [],
    ("scenarios_md_example.json", 1): ENROL,
    ("wu_malig_age_50_first_fracture_not_screened.json", 1): ENROL,
    ("nsaid_avoid_anticoagulated_45_year_old.json", 1): [],
    ("tx_multi_two_levels_at_intake.json", 0): ENROL,
    ("tx_multi_and_neuro_high_energy_fall.json", 0): [],
    ("tx_neuro_motor_deficit_at_intake.json", 0): [],
    ("tx_malig_pathologic_fracture_found_at_workup.json", 1): [],
    ("tx_instab_posterior_column_on_repeat_imaging.json", 0): ENROL,
    ("tx_instab_posterior_column_on_repeat_imaging.json", 1): [],  # one per L1-L2 episode
}

TERMINAL_STATES = (
    "immediate_transfer",
    "delayed_referral",
    "augmentation_consideration",
    "discharged",
    "closed",
    "lifestyle_advice",
    "completed",
    "not_eligible",
)


@cache
def definition() -> Definition:
    return load_definition()


@cache
def scenario(name: str) -> Scenario:
    return load_scenario(SCENARIO_DIR / name)


@cache
def registry() -> DefinitionRegistry:
    """Every shipped definition, as ``carepath replay`` loads them (so enrolments happen)."""
    return DefinitionRegistry([load_definition(p) for p in shipped_definition_files()])


@cache
def replayed(name: str) -> ReplayResult:
    """Each file is replayed once, in process, and shared by every test that reads it."""
    return replay(scenario(name), registry())


def steps(name: str) -> list[dict[str, Any]]:
    return replayed(name).output["steps"]


# Checks where the engine disagrees with the specification: kept as the spec says, reported.
# Known engine/spec disagreements, each a strict xfail naming the PROTOCOL.md sentence (none now).
DISCREPANCIES: dict[tuple[str, str, int], str] = {}


def by_file(table: dict[tuple[str, int], Any], check: str) -> list[Any]:
    """One test case per (file, step); a known discrepancy is a strict xfail with its reason."""
    return [
        pytest.param(
            f,
            s,
            v,
            id=f"{f}:step{s}",
            marks=[pytest.mark.xfail(strict=True, reason=DISCREPANCIES[(check, f, s)])]
            if (check, f, s) in DISCREPANCIES
            else [],
        )
        for (f, s), v in table.items()
    ]


# --- (a) every scenario file replays as the specification says ---------------------------------


def test_library_has_at_least_30_scenarios_and_one_yaml() -> None:
    """The brief asks for a library broad enough to review the pathway, in both accepted formats."""
    assert len(SCENARIO_FILES) >= 30
    assert any(p.suffix in (".yaml", ".yml") for p in SCENARIO_FILES)


@pytest.mark.parametrize("name", [p.name for p in SCENARIO_FILES])
def test_scenario_meets_its_expectations_with_a_verified_audit(name: str) -> None:
    result = replayed(name)
    assert result.failures == (), "\n".join(result.failures)
    assert result.output["audit_verified"] is True
    assert result.output["scenario"] == scenario(name).name


@pytest.mark.parametrize("name", [p.name for p in SCENARIO_FILES])
def test_replay_output_has_exactly_the_keys_of_scenarios_md(name: str) -> None:
    """Reviewers' tooling reads this JSON: no key may be missing, none may be added."""
    output = replayed(name).output
    json.dumps(output)  # serialisable as is
    assert set(output) == OUTPUT_KEYS
    assert set(output["definition"]) == {"id", "version"}
    assert len(output["steps"]) == len(scenario(name).events)
    for index, step in enumerate(output["steps"]):
        assert set(step) - {"enrolled"} == STEP_KEYS
        if "enrolled" in step:  # only when non-empty
            assert step["enrolled"] and all(set(e) == {"pathway", "rule"} for e in step["enrolled"])
        assert step["step"] == index
        assert step["day"] == scenario(name).events[index].day
        assert step["kind"] == scenario(name).events[index].kind
        assert all(isinstance(r, str) for r in step["rules"] + step["refused"])
        assert step["error"] is None or set(step["error"]) == {"type", "message"}
        assert all(set(t) == {"timer", "due_day"} for t in step["timers_fired"])
        assert all(set(t) == {"from", "to", "rules"} for t in step["transitions"])
    assert output["final_state"] == output["steps"][-1]["state"]


@pytest.mark.parametrize("name", [p.name for p in SCENARIO_FILES])
def test_errors_occur_exactly_where_expected_and_change_nothing(name: str) -> None:
    """A refused event reports its error, leaves the state as it was, and the replay goes on."""
    expected = EXPECTED_ERRORS.get(name, {})
    previous = registry().current_for(scenario(name).pathway).initial_state
    for step in steps(name):
        index = step["step"]
        if index in expected:
            assert step["error"] is not None, (
                f"step {index}: expected {expected[index]}, got no error"
            )
            assert step["error"]["type"] == expected[index], f"step {index}"
            assert step["error"]["message"]
            assert step["state"] == previous, f"step {index}: state changed on an error"
            assert step["transitions"] == [] and step["refused"] == [], f"step {index}"
        elif not (step["kind"] == "advance" and previous in TERMINAL_STATES):
            assert step["error"] is None, f"step {index}: unexpected error {step['error']}"
        previous = step["state"]
    assert len(steps(name)) == len(scenario(name).events)  # the replay went on to the end


@pytest.mark.parametrize(("name", "index", "absent"), by_file(NOT_FIRED, "not_fired"))
def test_rule_does_not_fire_across_its_boundary(
    name: str, index: int, absent: tuple[str, ...]
) -> None:
    fired = steps(name)[index]["rules"]
    assert not set(absent) & set(fired), (
        f"step {index}: {sorted(set(absent) & set(fired))} fired: {fired}"
    )


@pytest.mark.parametrize(("name", "index", "timers"), by_file(TIMERS, "timers"))
def test_timers_fire_on_their_day_in_definition_order(
    name: str, index: int, timers: list[tuple[str, int]]
) -> None:
    fired = [(t["timer"], t["due_day"]) for t in steps(name)[index]["timers_fired"]]
    assert fired == timers


@pytest.mark.parametrize(("name", "index", "expected"), by_file(TRANSITIONS, "transitions"))
def test_transitions_name_the_rules_that_caused_them(
    name: str, index: int, expected: list[tuple[str, str, frozenset[str]]]
) -> None:
    got = [(t["from"], t["to"], frozenset(t["rules"])) for t in steps(name)[index]["transitions"]]
    assert got == expected


@pytest.mark.parametrize(("name", "index", "expected"), by_file(ENROLLED, "enrolled"))
def test_enrolments_are_reported_in_the_step_that_triggers_them(
    name: str, index: int, expected: list[dict[str, str]]
) -> None:
    assert steps(name)[index].get("enrolled", []) == expected


@pytest.mark.parametrize("name", [p.name for p in SCENARIO_FILES])
def test_at_most_one_enrolment_per_episode_and_none_from_fls_episodes(name: str) -> None:
    enrolled = [e for step in steps(name) for e in step.get("enrolled", [])]
    assert len(enrolled) <= (0 if scenario(name).pathway == FLS else 1), enrolled


def test_tables_name_only_existing_files_and_steps() -> None:
    """A renamed scenario must not silently drop the checks keyed to it."""
    keys = [(f, s) for f, errs in EXPECTED_ERRORS.items() for s in errs]
    keys += list(NOT_FIRED) + list(TIMERS) + list(TRANSITIONS) + list(ENROLLED)
    for name, index in keys:
        assert (SCENARIO_DIR / name).exists(), name
        assert 0 <= index < len(scenario(name).events), f"{name}: step {index}"


# --- (b) the library covers the whole definition ------------------------------------------------


def expectations() -> Iterator[tuple[Scenario, Any]]:
    for path in SCENARIO_FILES:
        s = scenario(path.name)
        for x in s.expect:
            yield s, x


def test_every_rule_of_the_definition_is_named_in_an_expectation() -> None:
    named = {r for _, x in expectations() for r in (*x.rules, *x.refused)}
    missing = sorted(set(definition().rules) - named)
    assert not missing, f"rules no scenario expects: {missing}"
    assert len(definition().rules) == 39


def test_every_state_is_an_expected_state() -> None:
    named = {x.state for _, x in expectations() if x.state}
    assert not set(definition().states) - named, sorted(set(definition().states) - named)


def test_every_close_reason_closes_an_episode_in_some_scenario() -> None:
    reasons = {
        s.events[x.step].value
        for s, x in expectations()
        if s.events[x.step].kind == "close" and x.state == "closed" and "ADM-CLOSE" in x.rules
    }
    assert reasons == set(definition().close.reasons)


# --- (b') the FLS files cover the whole fracture-liaison definition (FLS.md) --------------------


@cache
def fls_definition() -> Definition:
    return registry().current_for(FLS)


def fls_expectations() -> Iterator[tuple[Scenario, Any]]:
    for path in FLS_FILES:
        s = scenario(path.name)
        for x in s.expect:
            yield s, x


def test_at_least_15_fls_scenarios_all_on_the_fracture_liaison_pathway_with_a_start() -> None:
    assert len(FLS_FILES) >= 15
    for path in FLS_FILES:
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert raw["pathway"] == FLS and "start" in raw, path.name
        assert replayed(path.name).output["definition"]["id"] == FLS


def test_every_fls_rule_is_named_in_an_fls_expectation_or_reported_as_an_enrolment() -> None:
    named = {r for _, x in fls_expectations() for r in (*x.rules, *x.refused)}
    named |= {e["rule"] for enrolled in ENROLLED.values() for e in enrolled}  # FLS-ENROL-SPINE
    missing = sorted(set(fls_definition().rules) - named)
    assert not missing, f"FLS rules no scenario expects: {missing}"
    assert len(fls_definition().rules) == 27


def test_every_fls_state_is_an_expected_state_of_an_fls_scenario() -> None:
    named = {x.state for _, x in fls_expectations() if x.state}
    missing = set(fls_definition().states) - named
    assert not missing, sorted(missing)


def test_every_fls_close_reason_closes_an_fls_episode_in_some_scenario() -> None:
    reasons = {
        s.events[x.step].value
        for s, x in fls_expectations()
        if s.events[x.step].kind == "close" and x.state == "closed" and "FLS-CLOSE" in x.rules
    }
    assert reasons == set(fls_definition().close.reasons)


# --- (c) the worked example of SCENARIOS.md through the real CLI ---------------------------------


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "carepath.cli", "replay", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        timeout=60,
    )


def example_text() -> str:
    """The ```json block of SCENARIOS.md: the worked example of the contract."""
    text = protocol_file("SCENARIOS.md").read_text(encoding="utf-8")
    match = re.search(r"```json\n(.*?)```", text, re.S)
    assert match, "SCENARIOS.md has no ```json block"
    return match.group(1)


def test_example_copy_is_verbatim_from_scenarios_md() -> None:
    assert EXAMPLE_COPY.read_text(encoding="utf-8") == example_text()


def test_worked_example_replays_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "example.json"
    path.write_text(example_text(), encoding="utf-8")
    done = run_cli(path, "--json")
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert output["steps"][0]["rules"] == EXAMPLE_STEP0_RULES
    assert output["audit_verified"] is True


# --- (d) the CLI contract -------------------------------------------------------------------------


def write(tmp_path: Path, name: str, body: Any) -> Path:
    path = tmp_path / name
    path.write_text(body if isinstance(body, str) else json.dumps(body), encoding="utf-8")
    return path


PRESENT = {"day": 0, "observe": {"fracture_levels": ["L1"], "pain_score": 6}}


def test_failed_expectation_exits_1_and_names_the_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fails.json",
        {"name": "fails", "events": [PRESENT], "expect": [{"step": 0, "state": "discharged"}]},
    )
    done = run_cli(path)
    assert done.returncode == 1
    assert "step 0" in done.stderr and "discharged" in done.stderr


NOT_A_SCENARIO: dict[str, Any] = {
    "bad_json": '{"events": [',
    "unknown_event_kind": {"events": [{"day": 0, "teleport": True}]},
    "days_going_backwards": {"events": [{"day": 3, "advance": True}, {"day": 2, "advance": True}]},
    "observe_not_an_object": {"events": [{"day": 0, "observe": ["pain_score", 6]}]},
    "expect_step_out_of_range": {"events": [PRESENT], "expect": [{"step": 1, "state": "workup"}]},
    "patient_under_18": {"patient": {"age": 17}, "events": [PRESENT]},
}


@pytest.mark.parametrize("case", list(NOT_A_SCENARIO))
def test_a_file_that_is_not_a_scenario_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    path = write(tmp_path, f"{case}.json", NOT_A_SCENARIO[case])
    done = run_cli(path, "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_several_files_print_one_json_array_in_order_and_exit_with_the_worst(
    tmp_path: Path,
) -> None:
    good = write(
        tmp_path,
        "good.json",
        {"name": "good", "events": [PRESENT], "expect": [{"step": 0, "state": "workup"}]},
    )
    bad = write(
        tmp_path,
        "bad.json",
        {"name": "bad", "events": [PRESENT], "expect": [{"step": 0, "state": "closed"}]},
    )
    done = run_cli(bad, good, SCENARIO_DIR / "nsaid_caution_age_65.json", "--json")
    assert done.returncode == 1
    outputs = json.loads(done.stdout)
    assert isinstance(outputs, list)
    assert [o["scenario"] for o in outputs] == [
        "bad",
        "good",
        scenario("nsaid_caution_age_65.json").name,
    ]


def test_one_file_that_is_not_a_scenario_makes_the_whole_call_exit_2(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", {"name": "good", "events": [PRESENT]})
    broken = write(tmp_path, "broken.json", "{")
    done = run_cli(good, broken, "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
