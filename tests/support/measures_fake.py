"""A stand-in for ``carepath.measures`` while it is built on another branch (delete at merge).

The dashboard and the FHIR export are built against the measures module's interface:
``pathway_reports(wiring, *, pathway, month_from, month_to, as_of) -> list[dict]`` (the JSON
contract of issue 10, item 2) and ``measure_episodes(wiring, *, pathway, measure_id, failing,
month_from, month_to, as_of) -> list[dict]``. This fake answers hand-written reports for both
shipped pathways, with every band (red, amber, green, amber at exactly 50 % and 80 %) and a
measure with a zero denominator (ratio and band null), and records each call so that tests can
check what the pages asked for.

``install(monkeypatch)`` puts it in ``sys.modules`` as ``carepath.measures``; at merge, point
the tests at the real module and a cohort instead, and delete this file.
"""

from __future__ import annotations

import sys
import types
from datetime import datetime
from typing import Any

from carepath.demo_play import episode_id_of

L1L2 = "l1-l2-compression-fracture"
FLS = "fracture-liaison"
MONTHS = ("2025-10", "2025-11", "2025-12", "2026-01", "2026-02")

# (id, title, by month as (numerator, denominator) for MONTHS)
_L1L2_MEASURES = (
    ("M-WORKUP-3D", "Work-up decided within 3 days", ((4, 4), (5, 5), (3, 4), (6, 6), (4, 5))),
    ("M-REVIEW-6W", "First review by care day 42", ((2, 4), (1, 3), (2, 4), (1, 2), (0, 1))),
    ("M-OSTEO-6W", "Osteoporosis care by care day 42", ((1, 4), (1, 3), (0, 4), (1, 2), (0, 1))),
    ("M-DXA-6W", "DXA by care day 42", ((3, 4), (3, 3), (3, 4), (2, 2), (1, 1))),
    ("M-DECISION-3M", "Decision at 3 months", ((0, 0), (0, 0), (0, 0), (0, 0), (0, 0))),
    ("M-REIMAGE-8W", "Re-imaging within 14 days", ((1, 2), (2, 2), (1, 1), (0, 1), (0, 0))),
)
_FLS_MEASURES = (
    ("FLS-KPI-ASSESSED-12W", "Assessed by week 12", ((8, 9), (9, 10), (7, 8), (9, 9), (6, 7))),
    ("FLS-KPI-DXA-12W", "DXA by week 12", ((3, 9), (4, 10), (2, 8), (5, 9), (3, 7))),
    ("FLS-KPI-FALLS", "Falls assessment", ((6, 9), (7, 10), (5, 8), (7, 9), (5, 7))),
    ("FLS-KPI-RECOMMENDED", "Treatment recommended", ((4, 8), (5, 9), (4, 7), (4, 9), (3, 6))),
    ("FLS-KPI-MONITORED-16W", "Monitored by week 16", ((3, 4), (4, 5), (3, 4), (3, 4), (3, 3))),
    (
        "FLS-KPI-STARTED-16W",
        "Treatment started by week 16",
        ((2, 4), (2, 5), (2, 4), (2, 4), (2, 3)),
    ),
    (
        "FLS-KPI-EXERCISE-16W",
        "Exercise started by week 16",
        ((1, 3), (1, 2), (0, 2), (1, 3), (0, 2)),
    ),
    ("FLS-KPI-PERSISTING-52W", "Persisting at 52 weeks", ((0, 0),) * 5),
)
VERSIONS = {L1L2: "l1-l2-compression-fracture@fake", FLS: "fracture-liaison@fake"}
TITLES = {L1L2: _L1L2_MEASURES, FLS: _FLS_MEASURES}


def band(numerator: int, denominator: int) -> str | None:
    if denominator == 0:
        return None
    share = numerator / denominator
    return "red" if share < 0.5 else "amber" if share <= 0.8 else "green"


def _measure(mid: str, title: str, months: tuple[tuple[int, int], ...]) -> dict[str, Any]:
    num, den = sum(n for n, _ in months), sum(d for _, d in months)
    return {
        "id": mid,
        "title": title,
        "numerator": num,
        "denominator": den,
        "ratio": None if den == 0 else num / den,
        "band": band(num, den),
        "by_month": [
            {"month": m, "numerator": n, "denominator": d}
            for m, (n, d) in zip(MONTHS, months, strict=True)
        ],
    }


def report(pathway: str, as_of: datetime) -> dict[str, Any]:
    """The hand-written report of one pathway, as ``carepath measures --json`` prints it."""
    outcomes = {
        L1L2: [
            {"state": "discharged", "rule": "FU-DISCHARGE", "episodes": 14},
            {"state": "immediate_transfer", "rule": "TX-MOTOR", "episodes": 3},
            {"state": "delayed_referral", "rule": "FU-REFER", "episodes": 2},
            {"state": "closed", "rule": "CLOSE", "episodes": 1},
        ],
        FLS: [
            {"state": "completed", "rule": "FLS-COMPLETE", "episodes": 9},
            {"state": "not_eligible", "rule": "FLS-NOT-ELIGIBLE", "episodes": 4},
            {"state": "lifestyle_advice", "rule": "FLS-LOW-RISK", "episodes": 6},
        ],
    }[pathway]
    stays = {
        L1L2: [
            {"state": "intake", "episodes": 22, "median_days": 0.5, "p90_days": 1.0},
            {"state": "workup", "episodes": 21, "median_days": 1.5, "p90_days": 4.0},
            {"state": "conservative_care", "episodes": 16, "median_days": 88.0, "p90_days": 97.5},
        ],
        FLS: [
            {"state": "identified", "episodes": 43, "median_days": 3.0, "p90_days": 9.0},
            {"state": "assessment", "episodes": 39, "median_days": 41.0, "p90_days": 80.0},
            {"state": "treatment", "episodes": 19, "median_days": 30.0, "p90_days": 70.0},
        ],
    }[pathway]
    return {
        "pathway": pathway,
        "version": VERSIONS[pathway],
        "from": MONTHS[0],
        "to": MONTHS[-1],
        "as_of": as_of.isoformat(),
        "measures": [_measure(*m) for m in TITLES[pathway]],
        "outcomes": outcomes,
        "time_in_state": stays,
        "refusals": [{"rule": "REQ-MRI", "count": 2}] if pathway == L1L2 else [],
    }


# Episodes behind a measure: real demo-cohort ids, so that the links lead to episode pages.
EPISODES = {
    "M-OSTEO-6W": [
        ("DEMO-0009", "DEMO-0009", False, "no osteoporosis treatment recorded by care day 42"),
        ("DEMO-0010", "DEMO-0010", False, "referral recorded on care day 47"),
        ("DEMO-0007", "DEMO-0007", True, "both recorded on care day 30"),
    ],
    "FLS-KPI-DXA-12W": [
        ("DEMO-F003", "DEMO-F003", False, "DXA recorded on fracture day 97"),
        ("DEMO-F005", "DEMO-F005", True, "DXA recorded on fracture day 40"),
    ],
}
CALLS: list[tuple[str, dict[str, Any]]] = []


def pathway_reports(
    wiring: Any,
    *,
    pathway: str | None,
    month_from: str | None,
    month_to: str | None,
    as_of: datetime,
) -> list[dict[str, Any]]:
    CALLS.append(
        (
            "pathway_reports",
            {"pathway": pathway, "from": month_from, "to": month_to, "as_of": as_of},
        )
    )
    chosen = [p for p in (FLS, L1L2) if pathway in (None, p)]
    return [report(p, as_of) for p in chosen]


def measure_episodes(
    wiring: Any,
    *,
    pathway: str,
    measure_id: str,
    failing: bool,
    month_from: str | None,
    month_to: str | None,
    as_of: datetime,
) -> list[dict[str, Any]]:
    CALLS.append(
        (
            "measure_episodes",
            {"pathway": pathway, "measure": measure_id, "failing": failing, "from": month_from,
             "to": month_to, "as_of": as_of},
        )
    )  # fmt: skip
    rows = [
        {"episode": episode_id_of(ref), "patient_ref": patient, "in_numerator": met, "reason": why}
        for ref, patient, met, why in EPISODES.get(measure_id, [])
    ]
    return [r for r in rows if not (failing and r["in_numerator"])]


def module() -> types.ModuleType:
    """The fake module: the real ``carepath.measures``'s names when it exists (its parsers,
    which ``carepath.api.measures`` imports), with these two functions in place of its own."""
    import importlib

    fake = types.ModuleType("carepath.measures")
    try:
        real = importlib.import_module("carepath.measures")
    except ImportError:
        real = None
    if real is not None and not getattr(real, "IS_FAKE", False):
        fake.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
    fake.IS_FAKE = True  # type: ignore[attr-defined]
    fake.pathway_reports = pathway_reports  # type: ignore[attr-defined]
    fake.measure_episodes = measure_episodes  # type: ignore[attr-defined]
    return fake


def install(monkeypatch: Any) -> None:
    """``carepath.measures`` is this fake for the rest of the test (or fixture)."""
    import carepath

    CALLS.clear()
    fake = module()
    monkeypatch.setitem(sys.modules, "carepath.measures", fake)
    monkeypatch.setattr(carepath, "measures", fake, raising=False)


# -- Definition.measures, as the measures branch declares them ------------------------------


class FakeMeasureDef:
    """The fields of the measures branch's ``pathway.measures.MeasureDef`` that the pages and
    the FHIR export read."""

    def __init__(self, mid: str, title: str, refs: tuple[str, ...]) -> None:
        self.id = mid
        self.title = title
        self.numerator_text = title.lower()
        self.denominator_text = "the eligible episodes"
        self.refs = refs
        self.red_below = 0.5
        self.amber_up_to: float | None = None if mid == "FLS-KPI-RECOMMENDED" else 0.8

    @property
    def description(self) -> str:
        return f"Numerator: {self.numerator_text}. Denominator: {self.denominator_text}."


class WithMeasures:
    """A definition that also declares measures (delegates everything else)."""

    def __init__(self, definition: Any, measures: tuple[FakeMeasureDef, ...]) -> None:
        self._definition = definition
        self.measures = measures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._definition, name)


def with_measures(definition: Any) -> WithMeasures:
    refs = {L1L2: ("3",), FLS: ("K",)}[definition.id]
    return WithMeasures(
        definition, tuple(FakeMeasureDef(m, t, refs) for m, t, _ in TITLES[definition.id])
    )
