"""The demo cohort's fracture liaison patients (fictional): every FLS state, some overdue.

Played like the L1–L2 patients (``carepath.demo_play``). The clock of this pathway is the
fracture, so each patient gives its fracture date as days before the load (``dates``) and the
episode is opened some days later, as a liaison service finds its patients: the 12-, 16- and
52-week timers then fall where they would have. The L1–L2 demo patients aged 50 or more enrol
further FLS episodes themselves (``carepath.demo``); the steps they play there are here too.
"""

from __future__ import annotations

from typing import Any

from carepath.demo_play import Patient, Step

FLS = "fracture-liaison"
ORDERS = ("FLS-FRAX", "FLS-DXA", "FLS-FALLS", "FLS-BLOODS")  # the assessment's orders
WORKED_UP = {"falls_assessment_done": True, "dxa_done": True, "secondary_causes_screened": True}


def _assessed(day: float, category: str, **more: Any) -> tuple[Step, Step]:
    """The assessment's orders done, then on ``day`` its results recorded: it decides."""
    facts = {"risk_category": category, **WORKED_UP, "falls_risk_high": False, **more}
    return (day - 0.01, "done", ORDERS), (day, "observe", facts)


def _fls(
    ref: str,
    label: str,
    fracture_days_ago: float,
    found_days_after: float,
    facts: dict[str, Any],
    *steps: Step,
) -> Patient:
    """A patient found ``found_days_after`` the fracture; steps are days after that opening."""
    return Patient(
        ref, label, fracture_days_ago - found_days_after, {"fracture_site": "wrist", **facts},
        steps, pathway=FLS, dates={"fracture_date": fracture_days_ago},
    )  # fmt: skip


def _who(age: int, sex: str, **more: Any) -> dict[str, Any]:
    return {"age": age, "sex": sex, **more}


def fls_cohort() -> list[Patient]:
    """The FLS patients, by state: identified, assessment, treatment, the two follow-ups,
    monitoring, then the ended ones."""
    f, w = _fls, _who
    hip, humerus, spine = ({"fracture_site": site} for site in ("hip", "humerus", "spine"))
    return [
        # identified: fracture date not yet confirmed, 9 days on (FLS-IDENTIFY-OVERDUE fired)
        Patient(
            "DEMO-F001",
            "Agnes Lindqvist",
            9,
            w(77, "female", fracture_site="wrist"),
            pathway=FLS,
        ),
        # identified: referred from the emergency department, age not yet recorded
        Patient(
            "DEMO-F002",
            "Bernard Okafor",
            1.5,
            {"sex": "male", **hip},
            pathway=FLS,
            dates={"fracture_date": 3},
        ),
        # assessment, found 98 days after the fracture: FLS-ASSESS-DUE and FLS-DXA-DUE at once
        f(
            "DEMO-F003",
            "Clara Fitzgerald",
            110,
            98,
            w(68, "female"),
            (3, "observe", {"falls_assessment_done": True, "secondary_causes_screened": True}),
            (3.01, "done", ("FLS-FALLS", "FLS-BLOODS")),
        ),
        # assessment: intermediate risk, waiting for BMD (FLS-INTERMEDIATE), falls risk high
        f(
            "DEMO-F004",
            "Desmond Achebe",
            30,
            10,
            w(63, "male", **humerus),
            *_assessed(6, "intermediate", falls_risk_high=True),
        ),
        # treatment: very high risk, no specialist referral 28 days on (FLS-SPECIALIST-PENDING)
        f("DEMO-F005", "Eleanor Voss", 70, 8, w(84, "female", **hip), *_assessed(4, "very_high")),
        # treatment: high risk, waiting for the 16-week contact
        f(
            "DEMO-F006",
            "Felix Moreau",
            40,
            5,
            w(71, "male", fracture_site="pelvis"),
            *_assessed(5, "high"),
        ),
        # treatment again: medication not started at the first contact (FLS-NOT-STARTED)
        f(
            "DEMO-F007",
            "Irene Szabo",
            110,
            5,
            w(76, "female"),
            *_assessed(4, "high"),
            (85, "observe", {"aom_started": False}),
        ),
        # first follow-up since fracture day 84 (FLS-FOLLOWUP-16-OVERDUE fired at day 112)
        f("DEMO-F008", "Gloria Mensah", 150, 10, w(79, "female"), *_assessed(6, "high")),
        # first follow-up, 8 days in
        f("DEMO-F009", "Henry Blackwood", 92, 7, w(66, "male", **humerus), *_assessed(5, "high")),
        # monitoring: medication started at the 16-week contact
        f(
            "DEMO-F010",
            "Joseph Amari",
            200,
            5,
            w(74, "male", **spine),
            *_assessed(5, "high"),
            (90, "observe", {"aom_started": True, "exercise_started": True}),
        ),
        # annual follow-up, 36 days in (FLS-FOLLOWUP-52-OVERDUE fired at fracture day 392)
        f(
            "DEMO-F011",
            "Katherine Olsen",
            400,
            5,
            w(81, "female", **hip),
            *_assessed(5, "high"),
            (86, "observe", {"aom_started": True}),
        ),
        # completed: still on medication at 52 weeks
        f(
            "DEMO-F012",
            "Lionel Hartmann",
            380,
            8,
            w(69, "male"),
            *_assessed(5, "high"),
            (80, "observe", {"aom_started": True}),
            (364, "observe", {"aom_still_prescribed": True}),
        ),
        # lifestyle advice: low risk
        f("DEMO-F013", "Miriam Castell", 25, 5, w(56, "female"), *_assessed(8, "low")),
        # not eligible: under 50
        f("DEMO-F014", "Nathan Quist", 10, 5, w(46, "male")),
        # closed: declined during the assessment
        f("DEMO-F015", "Olive Pemberton", 50, 5, w(73, "female", **hip), (10, "close", "declined")),
    ]


# Steps on the FLS episodes some L1–L2 demo patients enrol (days after the L1–L2 opening).
ENROLLED_HIGH: tuple[Step, ...] = _assessed(7, "high")
ENROLLED_VERY_HIGH: tuple[Step, ...] = (
    *_assessed(12, "very_high"),
    (20, "observe", {"specialist_referral_placed": True}),
)
