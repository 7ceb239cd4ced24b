"""A year of demo history: a few hundred generated patients per pathway, so the audit shows
every band and run charts with a real shape.

Why generated: the curated patients (``carepath.demo``) show each stage once; a clinical audit
needs volume (numerators and denominators by month). Each generated patient is a script of the
same commands the curated ones play (``carepath.demo_play``), through the real use cases, with
its timers fired at their due times. Openings (L1–L2) and fractures (fracture liaison) fall
over the 12 months before the load; the L1–L2 patients aged 50 or more enrol fracture liaison
episodes on the way, which then play a generated FLS script too.

Compliance is chosen per measure and drifts over the months (``ON_TIME``): each measure of
PROTOCOL.md and FLS.md "Measures" has its own on-time rate, from its rate 12 months ago to its
rate last month, so some run red, some amber, some green, and some cross a band. The rates are
the chance that a step falls inside its measure's window; where a step misses, it is recorded
late (or not at all), as a busy service would. Seeded: the same cohort on every load.
"""

from __future__ import annotations

import random
from typing import Any

from carepath.demo_history_fls import fls_patient, fls_script
from carepath.demo_play import Patient, Step
from carepath.replay.cohort import patient as random_profile

SPINE_PATIENTS = 300
FLS_PATIENTS = 200
SEED = 20260301
YEAR = 365.0

# measure → (on-time rate 12 months ago, rate last month), as in PROTOCOL.md and FLS.md.
ON_TIME: dict[str, tuple[float, float]] = {
    "M-WORKUP-3D": (0.97, 0.86),  # green, slipping
    "M-REVIEW-6W": (0.55, 0.95),  # amber → green
    "M-OSTEO-6W": (0.15, 0.60),  # red → amber
    "M-DXA-6W": (0.60, 0.78),  # amber
    "M-DECISION-3M": (0.80, 0.55),  # green → amber
    "M-REIMAGE-8W": (0.25, 0.45),  # red
    "FLS-KPI-ASSESSED-12W": (0.65, 0.95),  # amber → green
    "FLS-KPI-DXA-12W": (0.25, 0.85),  # red → amber → green
    "FLS-KPI-FALLS": (0.90, 0.97),  # green
    "FLS-KPI-MONITORED-16W": (0.60, 0.80),  # amber
    "FLS-KPI-STARTED-16W": (0.35, 0.55),  # red → amber
    "FLS-KPI-EXERCISE-16W": (0.15, 0.40),  # red
}
FIRST = ["Ada", "Basil", "Cora", "Dov", "Edna", "Fergus", "Gwen", "Hugo", "Iris", "Jonas",
         "Kit", "Lena", "Milo", "Nell", "Otto", "Pia", "Quinn", "Rosa", "Saul", "Tess"]  # fmt: skip
LAST = ["Abbott", "Bristow", "Calder", "Dene", "Ellery", "Forde", "Garland", "Hale", "Ingram",
        "Jessop", "Keane", "Lowry", "Marchant", "Noble", "Orme", "Pryce", "Rook", "Sadler",
        "Thorne", "Vale"]  # fmt: skip


class Compliance:
    """Whether a patient's step is on time for a measure: its rate at the anchor's month."""

    def __init__(self, rng: random.Random, anchor_days_ago: float) -> None:
        self.rng = rng
        self.progress = min(1.0, max(0.0, 1 - anchor_days_ago / YEAR))  # 0 a year ago, 1 now

    def on(self, measure: str) -> bool:
        start, end = ON_TIME[measure]
        return self.rng.random() < start + (end - start) * self.progress


def history_cohort(
    spine: int = SPINE_PATIENTS, fls: int = FLS_PATIENTS, seed: int = SEED
) -> list[Patient]:
    """The generated patients: the L1–L2 ones (with the FLS scripts of those they enrol), then
    the fracture liaison ones found directly. Fictional, with refs ``DEMO-H…``."""
    rng = random.Random(seed)
    people = [_spine_patient(n, rng) for n in range(spine)]
    return people + [fls_patient(n, rng, _name(rng)) for n in range(fls)]


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _spine_patient(n: int, rng: random.Random) -> Patient:
    days_ago = rng.uniform(3, YEAR - 1)
    c = Compliance(rng, days_ago)
    steps: list[Step] = [
        (0.05, "observe", {"fracture_levels": [rng.choice(["L1", "L2"])],
                           "pain_score": rng.randint(5, 9), "high_energy_trauma": False}),
    ]  # fmt: skip
    start = 1.0 if c.on("M-WORKUP-3D") else rng.uniform(3.2, 6)  # care day 0
    workup = {"mri_done": True, "vertebral_collapse_pct": rng.randint(5, 45),
              "posterior_column_involvement": False, "alignment_abnormality": False,
              "neuro_exam_done": True, "neuro_deficit_motor": False}  # fmt: skip
    roll = rng.random()
    if roll < 0.07:  # instability found at workup: immediate transfer
        workup["vertebral_collapse_pct"] = rng.randint(55, 80)
    steps.append((start, "observe", workup))
    if roll >= 0.07:
        steps += [(start + 0.02, "done", ("WU-", "CC-"))]
        steps += _care(rng, c, start, roll)
    profile = random_profile(rng)
    enrolled = fls_script(rng, Compliance(rng, days_ago), fracture_day_found=start)
    steps = [s for s in steps if s[0] < days_ago - 0.01]  # what has happened by now
    return Patient(
        f"DEMO-H{n:04d}", _name(rng), days_ago, profile, tuple(steps),
        enrolled=tuple(s for s in enrolled if s[0] < days_ago - 0.01),
    )  # fmt: skip


def _care(rng: random.Random, c: Compliance, start: float, roll: float) -> list[Step]:
    """Conservative care from care day 0 (episode day ``start``): the osteoporosis care, the
    4–6 week review, and for those not resolved by then re-imaging and the 3-month decision."""
    steps: list[Step] = []
    if rng.random() < 0.15:
        steps.append((start + rng.uniform(2, 20), "request", "vertebroplasty"))  # refused
    if roll >= 0.93:  # ended early
        reason = (
            "entered_in_error" if roll >= 0.99 else rng.choice(["lost_to_follow_up", "declined"])
        )
        return [*steps, (start + rng.uniform(8, 60), "close", reason)]
    dxa, osteo = c.on("M-DXA-6W"), c.on("M-OSTEO-6W")
    early: dict[str, Any] = {"dxa_done": True} if dxa else {}
    if osteo:
        early |= {"osteoporosis_treatment_started": True, "osteoporosis_referral_placed": True}
    elif rng.random() < 0.5:
        early["osteoporosis_treatment_started"] = True  # the referral still missing
    if early:
        steps.append((start + rng.uniform(5, 27), "observe", early))
    missing = {"dxa_done": True, "osteoporosis_treatment_started": True,
               "osteoporosis_referral_placed": True}  # fmt: skip
    missing = {k: v for k, v in missing.items() if k not in early}
    review = start + (rng.uniform(29, 41.5) if c.on("M-REVIEW-6W") else rng.uniform(43, 58))
    late_osteo = start + max(review - start + rng.uniform(1, 10), 43 + rng.uniform(0, 15))
    resolved = roll < 0.62
    pain = rng.randint(0, 3) if resolved else rng.randint(4, 6)
    first = {"pain_score": pain} | (missing if review - start >= 42 else {})
    steps.append((review, "observe", first))
    if "dxa_done" in first or not missing:
        missing = {}
    if missing:  # recorded late (a review in reassessment, an update in conservative care)
        steps.append((late_osteo, "observe", missing))
    if resolved:
        return steps
    reimage = c.on("M-REIMAGE-8W")
    steps.append((start + (rng.uniform(56.5, 69.5) if reimage else rng.uniform(71, 88)),
                  "observe", {"mri_done": True}))  # fmt: skip
    decision = start + (
        rng.uniform(90.5, 103.5) if c.on("M-DECISION-3M") else rng.uniform(105, 125)
    )
    outcome = rng.random()
    if outcome < 0.5:
        facts: dict[str, Any] = {"pain_score": rng.randint(0, 2)}
    elif outcome < 0.75:
        facts = {"pain_score": 8}
    else:
        facts = {"pain_score": 5, "kyphosis_progression": True}
    return [*steps, (decision, "observe", facts)]
