"""Generate a realistic cohort of scenario files for benchmarks.

The mix, per 100 patients: ~60 resolve at the 4–6 week review and are discharged, ~10 are
transferred (deficit or instability found at workup), ~10 have osteoporosis care pending at
the first review, ~15 reach the 3-month decision (referral, kyphoplasty, or another review),
~5 are closed (lost to follow-up, declined). Deterministic for a given seed.
"""

from __future__ import annotations

import random
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
