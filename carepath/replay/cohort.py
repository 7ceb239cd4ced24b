"""Generate a realistic cohort of scenario files, for the benchmarks and the demo history.

The mix, per 100 patients: ~60 resolve at the 4–6 week review and are discharged, ~10 are
transferred (deficit or instability found at workup), ~10 have osteoporosis care pending at
the first review, ~15 reach the 3-month decision (referral, kyphoplasty, or another review),
~5 are closed (lost to follow-up, declined). Deterministic for a given seed.

`write_fls_cohort` does the same for the fracture liaison pathway (FLS.md, `"pathway":
"fracture-liaison"`), per 100 patients: ~5 not eligible (high-energy, or age corrected to under
50); ~10 low risk → lifestyle advice; ~4 closed during the assessment; ~8 intermediate, BMD
measured, then high; ~7 very high with a specialist referral; ~66 high (a few intermediate with
medication recommended). Of the ~81 who enter treatment, ~4 are closed before the 16-week
contact, ~8 have not started medication at it and are re-contacted 28 days later, ~6 have
lapsed at 52 weeks (medication review, re-contacted, then persisting), and the rest (~63) are
on medication at 16 weeks and still prescribed at 52 weeks (completed). Each file has a `start` and a `fracture_date` 0–35 days before it (patients are found
after the fracture), so the fracture-day timers fall on different episode days.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson


def patient(rng: random.Random) -> dict[str, Any]:
    return {
        "age": rng.randint(45, 95),
        "sex": rng.choice(["female", "male"]),
        "first_fracture": rng.random() < 0.7,
        "egfr": rng.randint(20, 110),
        "anticoagulated": rng.random() < 0.1,
    }


def scenario(i: int, rng: random.Random) -> dict[str, Any]:
    level = rng.choice(["L1", "L2"])
    events: list[dict[str, Any]] = [
        {
            "day": 0,
            "observe": {
                "fracture_levels": [level],
                "pain_score": rng.randint(5, 9),
                "high_energy_trauma": False,
            },
        },
    ]
    workup = {
        "mri_done": True,
        "vertebral_collapse_pct": rng.randint(5, 45),
        "posterior_column_involvement": False,
        "alignment_abnormality": False,
        "neuro_exam_done": True,
        "neuro_deficit_motor": False,
    }
    roll = rng.random()
    if roll < 0.10:
        workup["vertebral_collapse_pct"] = rng.randint(51, 80) if rng.random() < 0.5 else 30
        workup["neuro_deficit_sensory"] = workup["vertebral_collapse_pct"] == 30
        events.append({"day": 1, "observe": workup})
        events.append({"day": 5, "advance": True})
        return {"name": f"cohort-{i}-transfer", "patient": patient(rng), "events": events}
    events.append({"day": 1, "observe": workup})
    if rng.random() < 0.2:
        events.append({"day": rng.randint(3, 20), "request": "vertebroplasty"})
    if roll < 0.70:
        events.append(
            {
                "day": rng.randint(29, 40),
                "observe": {
                    "pain_score": rng.randint(0, 3),
                    "dxa_done": True,
                    "osteoporosis_treatment_started": True,
                },
            }
        )
    elif roll < 0.80:
        events.append({"day": rng.randint(29, 35), "observe": {"pain_score": 2}})
        events.append(
            {
                "day": rng.randint(45, 60),
                "observe": {"dxa_done": True, "osteoporosis_referral_placed": True},
            }
        )
    elif roll < 0.95:
        events.append(
            {
                "day": rng.randint(29, 40),
                "observe": {"pain_score": rng.randint(5, 7), "dxa_done": True},
            }
        )
        outcome = rng.random()
        if outcome < 0.4:
            events.append({"day": rng.randint(92, 100), "observe": {"pain_score": 8}})
        elif outcome < 0.7:
            events.append(
                {
                    "day": rng.randint(92, 100),
                    "observe": {"pain_score": 5, "kyphosis_progression": True},
                }
            )
        else:
            events.append({"day": rng.randint(92, 100), "observe": {"pain_score": 5}})
            events.append({"day": 125, "request": "kyphoplasty"})
    else:
        events.append(
            {"day": rng.randint(21, 60), "close": rng.choice(["lost_to_follow_up", "declined"])}
        )
    events.append({"day": 150, "advance": True})
    return {"name": f"cohort-{i}", "patient": patient(rng), "events": events}


def write_cohort(directory: Path, n: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = directory / f"patient_{i:05d}.json"
        path.write_bytes(orjson.dumps(scenario(i, rng)))
        paths.append(path)
    return paths


FLS_CLOSE_REASONS = ["declined", "lost_to_follow_up", "deceased", "moved_away"]


def fls_scenario(i: int, rng: random.Random) -> dict[str, Any]:
    """One fracture liaison episode; `day` is whole days since opening, never backwards."""
    start = datetime(2025, 1, 6, 9, tzinfo=UTC) + timedelta(days=rng.randint(0, 540))
    lag = rng.randint(0, 35)  # fracture day = episode day + lag
    fracture_date = (start - timedelta(days=lag)).date().isoformat()
    site = rng.choice(["spine", "hip", "wrist", "wrist", "humerus", "pelvis", "other"])
    falls_high = rng.random() < 0.35
    patient: dict[str, Any] = {
        "age": rng.randint(50, 95),
        "sex": rng.choice(["female", "female", "male"]),
        "fracture_date": fracture_date,
        "fracture_site": site,
    }
    events: list[dict[str, Any]] = []
    roll = rng.random()
    name = f"fls-{i}"

    if roll < 0.05:  # not eligible: high-energy trauma, or the age corrected to under 50
        if rng.random() < 0.5:
            events.append({"day": 0, "observe": {"high_energy_trauma": True}})
        else:
            events.append({"day": 0, "observe": {"high_energy_trauma": False}})
            events.append({"day": rng.randint(1, 10), "observe": {"age": rng.randint(40, 49)}})
        return _fls_file(f"{name}-not-eligible", start, patient, events)

    events.append({"day": 0, "observe": {"high_energy_trauma": False}})
    day = rng.randint(2, 14)
    if rng.random() < 0.4:  # DXA and bloods reported before the risk is assessed
        events.append(
            {"day": day, "observe": {"dxa_done": True, "secondary_causes_screened": True}}
        )
        day += rng.randint(3, 10)
    assess: dict[str, Any] = {
        "falls_assessment_done": True,
        "falls_risk_high": falls_high,
        "dxa_done": True,
        "secondary_causes_screened": True,
    }

    if roll < 0.15:  # low risk → lifestyle advice (terminal)
        assess["risk_category"] = "low"
        events.append({"day": day, "observe": assess})
        return _fls_file(f"{name}-low", start, patient, events)
    if roll < 0.19:  # closed during the assessment
        events.append({"day": day, "close": rng.choice(FLS_CLOSE_REASONS)})
        return _fls_file(f"{name}-closed", start, patient, events)

    if roll < 0.27:  # intermediate: BMD measured, category recalculated as high
        assess["risk_category"] = "intermediate"
        events.append({"day": day, "observe": assess})
        day += rng.randint(14, 40)
        events.append({"day": day, "observe": {"risk_category": "high", "dxa_done": True}})
        kind = "intermediate-high"
    elif roll < 0.34:  # very high → treatment with a specialist referral
        assess["risk_category"] = "very_high"
        events.append({"day": day, "observe": assess})
        events.append(
            {"day": day + rng.randint(5, 40), "observe": {"specialist_referral_placed": True}}
        )
        kind = "very-high"
    else:
        assess["risk_category"] = "high"
        if rng.random() < 0.1:
            assess["risk_category"] = "intermediate"
            assess["aom_recommended"] = True
        events.append({"day": day, "observe": assess})
        kind = "high"
    treatment_day = day

    # FLS-FOLLOWUP-16: the later of fracture day 84 and 28 days after entering treatment.
    day = max(events[-1]["day"], 84 - lag, treatment_day + 28)
    follow = rng.random()
    if follow < 0.05:  # closed while waiting for the first follow-up
        close_day = max(events[-1]["day"] + 1, day - rng.randint(1, 20))
        events.append({"day": close_day, "close": rng.choice(FLS_CLOSE_REASONS)})
        return _fls_file(f"{name}-{kind}-closed", start, patient, events)
    day += rng.randint(1, 21)
    if follow < 0.15:  # medication not started: re-contacted 28 days later
        events.append({"day": day, "observe": {"aom_started": False}})
        day += 28 + rng.randint(1, 10)
        kind += "-not-started"
    first = {"aom_started": True}
    if falls_high and rng.random() < 0.6:
        first["exercise_started"] = True
    events.append({"day": day, "observe": first})
    monitoring_day = day

    # FLS-FOLLOWUP-52: the later of fracture day 364 and 84 days after entering monitoring.
    day = max(364 - lag, monitoring_day + 84) + rng.randint(1, 21)
    if 0.15 <= follow < 0.23:  # lapsed: medication review, re-contacted, back on treatment
        events.append({"day": day, "observe": {"aom_still_prescribed": False}})
        day += 28 + rng.randint(1, 10)
        events.append({"day": day, "observe": {"aom_started": True}})
        day = max(364 - lag, day + 84) + rng.randint(1, 21)
        kind += "-lapsed"
    events.append({"day": day, "observe": {"aom_still_prescribed": True}})
    return _fls_file(f"{name}-{kind}", start, patient, events)


def _fls_file(
    name: str, start: datetime, patient: dict[str, Any], events: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "pathway": "fracture-liaison",
        "start": start.isoformat().replace("+00:00", "Z"),
        "patient": patient,
        "events": events,
    }


def write_fls_cohort(directory: Path, n: int, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = directory / f"fls_{i:05d}.json"
        path.write_bytes(orjson.dumps(fls_scenario(i, rng)))
        paths.append(path)
    return paths
