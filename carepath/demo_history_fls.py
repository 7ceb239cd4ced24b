"""The generated fracture liaison scripts of the demo history (``carepath.demo_history``).

A script is days after the fracture (fracture day 0 = the ``fracture_date``): a patient found
directly is opened some days after it; an episode enrolled from the L1–L2 pathway has the L1–L2
opening as its fracture date, so its steps are days after that opening too. Each step's timing
is on time or late for its measure (FLS.md "Measures") as ``Compliance`` draws it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from carepath.demo_fls import FLS, ORDERS
from carepath.demo_play import Patient, Step

if TYPE_CHECKING:
    from carepath.demo_history import Compliance

SITES = ["hip", "wrist", "wrist", "humerus", "pelvis", "spine", "other"]


def fls_patient(n: int, rng: random.Random, label: str) -> Patient:
    """A patient found by the liaison service 0–35 days after a fracture in the last year."""
    from carepath.demo_history import YEAR, Compliance

    fracture_ago = rng.uniform(8, YEAR - 1)
    found = min(rng.uniform(0, 35), fracture_ago - 4)
    facts = {"age": rng.randint(50, 95), "sex": rng.choice(["female", "female", "male"]),
             "fracture_site": rng.choice(SITES)}  # fmt: skip
    script = fls_script(rng, Compliance(rng, fracture_ago), fracture_day_found=found)
    eligible = (found + 0.05, "observe", {"high_energy_trauma": False})
    steps = [(d - found, kind, value) for d, kind, value in (eligible, *script)]
    return Patient(
        f"DEMO-HF{n:04d}", label, fracture_ago - found, facts,
        tuple(s for s in steps if s[0] < fracture_ago - found - 0.01),
        pathway=FLS, dates={"fracture_date": fracture_ago},
    )  # fmt: skip


def fls_script(rng: random.Random, c: Compliance, fracture_day_found: float) -> list[Step]:
    """Assessment, DXA, treatment and the 16-week contact, in fracture days (not yet cut at
    the load's now: the caller keeps what has happened by then)."""
    found = fracture_day_found
    steps: list[Step] = []
    on_time = found + 2 <= 83
    assessed = found + (rng.uniform(2, 83 - found) if c.on("FLS-KPI-ASSESSED-12W") and on_time
                        else rng.uniform(max(86, found + 2) - found, 125 - found))  # fmt: skip
    dxa_on = c.on("FLS-KPI-DXA-12W") and on_time
    dxa_day = found + rng.uniform(1.5, 83 - found) if dxa_on else rng.uniform(86, 118)
    falls_done = c.on("FLS-KPI-FALLS")
    falls_high = rng.random() < 0.35
    roll = rng.random()
    category = ("low" if roll < 0.12 else "intermediate" if roll < 0.2
                else "very_high" if roll < 0.28 else "high")  # fmt: skip
    facts: dict[str, Any] = {"risk_category": category, "falls_assessment_done": falls_done,
                             "falls_risk_high": falls_high, "secondary_causes_screened": True}  # fmt: skip
    steps.append((dxa_day, "observe", {"dxa_done": True}))  # before or after the decision
    steps += [(assessed - 0.01, "done", ORDERS), (assessed, "observe", facts)]
    if not falls_done:  # the assessment cannot decide: recorded late, or the patient declines
        if rng.random() < 0.5:
            return [*steps, (assessed + rng.uniform(10, 40), "close", "declined")]
        return [
            *steps,
            (assessed + rng.uniform(10, 40), "observe", {"falls_assessment_done": True}),
        ]
    if category == "low":
        return steps
    treated = assessed
    if category == "intermediate":  # BMD measured, then high
        treated = max(assessed, dxa_day) + rng.uniform(1, 10)
        steps.append((treated, "observe", {"risk_category": "high"}))
    if category == "very_high":
        steps.append(
            (treated + rng.uniform(5, 40), "observe", {"specialist_referral_placed": True})
        )
    if rng.random() < 0.04:
        return [*steps, (treated + rng.uniform(5, 60), "close",
                         rng.choice(["declined", "lost_to_follow_up", "deceased"]))]  # fmt: skip
    window = max(84.0, treated + 28)  # FLS-FOLLOWUP-16 opens the first follow-up
    contact = window + (rng.uniform(0.5, max(1.0, 111.5 - window))
                        if c.on("FLS-KPI-MONITORED-16W") and window < 111 else rng.uniform(29, 45))  # fmt: skip
    started = c.on("FLS-KPI-STARTED-16W")
    first: dict[str, Any] = {"aom_started": started}
    if falls_high and c.on("FLS-KPI-EXERCISE-16W"):
        first["exercise_started"] = True
    steps.append((contact, "observe", first))
    if not started:  # FLS-NOT-STARTED: re-contacted 28 days later, then on medication
        steps.append((contact + 28 + rng.uniform(1, 10), "observe", {"aom_started": True}))
    return steps
