"""Episodes brought to a review window on either pathway, on any unit of work, for the
appointment tests: an L1–L2 episode in conservative care from T0 (care day 0), and an FLS
episode in treatment from FLS_TREATED (fracture 2026-02-20: fracture day 84 is 2026-05-15)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from pathway import usecases
from pathway.definition import load_definition, shipped_definition_files
from pathway.model import Booking, Episode
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import Applied, DefinitionRegistry

DEFS = DefinitionRegistry([load_definition(f) for f in shipped_definition_files()])
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
L1 = "l1-l2-compression-fracture"
FLS = "fracture-liaison"
L1_OPEN = {
    "age": 78, "sex": "female", "first_fracture": True, "egfr": 45,
    "fracture_levels": ["L1"], "pain_score": 8, "high_energy_trauma": False,
}  # fmt: skip
L1_WORKUP = {
    "mri_done": True, "vertebral_collapse_pct": 25, "posterior_column_involvement": False,
    "alignment_abnormality": False, "neuro_exam_done": True, "neuro_deficit_motor": False,
}  # fmt: skip
FLS_OPEN = {
    "age": 76, "sex": "female", "fracture_date": "2026-02-20", "fracture_site": "wrist",
    "high_energy_trauma": False,
}  # fmt: skip
FLS_ASSESSED = {
    "risk_category": "high", "falls_risk_high": False, "dxa_done": True,
    "secondary_causes_screened": True, "falls_assessment_done": True,
}  # fmt: skip
FLS_TREATED = T0 + timedelta(days=14)
FRACTURE_DAY_0 = date(2026, 2, 20)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def care_day(n: int) -> date:
    return (T0 + timedelta(days=n)).date()


def fracture_day(n: int) -> date:
    return FRACTURE_DAY_0 + timedelta(days=n)


def l1_in_care(uow: UnitOfWork, episode_id: str = "l1-1") -> str:
    usecases.open_episode(
        uow, DEFS, dict(L1_OPEN), at=T0, now=T0, actor="nurse", event_id=f"{episode_id}/o",
        episode_id=episode_id, patient_ref=f"MRN-{episode_id}", pathway=L1,
    )  # fmt: skip
    usecases.observe(
        uow, DEFS, episode_id, dict(L1_WORKUP), at=T0, now=T0, actor="doctor",
        event_id=f"{episode_id}/w",
    )  # fmt: skip
    return episode_id


def fls_in_treatment(uow: UnitOfWork, episode_id: str = "fls-1") -> str:
    usecases.open_episode(
        uow, DEFS, dict(FLS_OPEN), at=T0, now=T0, actor="nurse", event_id=f"{episode_id}/o",
        episode_id=episode_id, patient_ref=f"MRN-{episode_id}", pathway=FLS,
    )  # fmt: skip
    usecases.observe(
        uow, DEFS, episode_id, dict(FLS_ASSESSED), at=FLS_TREATED, now=FLS_TREATED,
        actor="doctor", event_id=f"{episode_id}/a",
    )  # fmt: skip
    return episode_id


def book(
    uow: UnitOfWork, episode_id: str, window: str, on: date | None, *, at: datetime,
    action: str = "book", reason: str | None = None, event_id: str | None = None,
) -> Applied:  # fmt: skip
    """One booking command as the entry points send it (``handle``: due timers fire first)."""
    event = Booking(event_id or usecases.new_event_id(), at, "coord", action, window, on, reason)
    return usecases.handle(uow, DEFS, episode_id, event, at).applied


def advance(uow: UnitOfWork, now: datetime, episode_id: str) -> None:
    usecases.fire_due_timers(uow, DEFS, now, episode_id=episode_id)


def observe(uow: UnitOfWork, episode_id: str, facts: dict[str, Any], at: datetime) -> Applied:
    return usecases.handle(
        uow, DEFS, episode_id,
        usecases.Observe(usecases.new_event_id(), at, "doctor", facts), at,
    ).applied  # fmt: skip


def episode(uow: UnitOfWork, episode_id: str) -> Episode:
    with uow:
        return uow.get_episode(episode_id)
