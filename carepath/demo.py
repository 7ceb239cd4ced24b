"""A demo cohort: fictional patients at every stage of both pathways, some of them overdue.

Each patient is a script of real commands (open, observe, request, close) at clinical times in
the past, run through the ordinary use cases, with every timer fired at its due time as a
running scheduler would have fired it. So the worklist, the timelines and the audit chains are
exactly what the system would hold after those weeks, and the timers still ahead are really
pending: the embedded scheduler fires them when they come due.

Both pathways: the L1–L2 patients here, the fracture liaison ones in ``carepath.demo_fls``, and
the FLS episodes the L1–L2 patients aged 50 or more enrol on their way (the machinery that plays
them all is ``carepath.demo_play``). Behind them, a year of generated patients on both pathways
(``carepath.demo_history``), loaded in batched transactions, gives the clinical audit volume.

Loading twice changes nothing: each patient has a fixed episode id (from its demo reference)
and a patient already present is skipped, with what it enrolled; every command has a fixed
event id besides.
Tokens are different: a token's secret is shown once and never stored, so each load creates
a fresh admin and coordinator token to print, and revokes the demo tokens of earlier loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from carepath.demo_fls import ENROLLED_HIGH, ENROLLED_VERY_HIGH, fls_cohort
from carepath.demo_history import history_cohort
from carepath.demo_play import Loaded, Patient, Step, episode_id_of, load_batched, load_patients
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import DefinitionRegistry

if TYPE_CHECKING:
    from storage.access import TokenStore

__all__ = ["DemoLoad", "Loaded", "Patient", "cohort", "episode_id_of", "load_cohort", "load_demo"]

PRESENT = {"fracture_levels": ["L1"], "pain_score": 7}
WORKUP_DONE = {"mri_done": True, "vertebral_collapse_pct": 20, "neuro_exam_done": True}
OSTEO_CARE = {"dxa_done": True, "osteoporosis_treatment_started": True}
REFERRED = {"osteoporosis_referral_placed": True}
STARTED: Step = (1.02, "done", ("WU-", "CC-"))  # workup orders done, conservative care started


def _profile(age: int, sex: str, **more: Any) -> dict[str, Any]:
    return {"age": age, "sex": sex, "first_fracture": True, **more}


def _care(
    care_day: float, facts: dict[str, Any], *steps: Step
) -> tuple[float, dict[str, Any], tuple[Step, ...]]:
    """Presented on day 0 and worked up on day 1: opened ``care_day + 1`` days ago."""
    routine: list[Step] = [(0.05, "observe", PRESENT), (1, "observe", WORKUP_DONE), STARTED]
    if care_day > 29.5:
        routine.append((29.5, "done", ("T-CALCITONIN-END",)))
    return care_day + 1, facts, (*routine, *steps)


def cohort() -> list[Patient]:
    """The demo patients (fictional): the L1–L2 ones, then those of the fracture liaison
    pathway (``carepath.demo_fls``)."""
    return [*spine_cohort(), *fls_cohort()]


def spine_cohort() -> list[Patient]:
    """The L1–L2 patients, most urgent stages first. Those aged 50 or more who reach
    conservative care or an immediate transfer enrol an FLS episode as they do."""
    p, f = Patient, _profile
    return [
        p("DEMO-0001", "Harriet Ames", 0.1, f(81, "female")),
        p("DEMO-0002", "Walter Brandt", 3.2, f(69, "male")),
        p("DEMO-0003", "Nora Castillo", 1.2, f(74, "female"), ((0.1, "observe", PRESENT),)),
        p("DEMO-0004", "Elsie Dunmore", 5.0, f(88, "female"), ((0.2, "observe", PRESENT),)),
        p("DEMO-0005", "Frank Oduya", *_care(10, f(77, "male", egfr=25))),
        p("DEMO-0006", "Grace Holloway", *_care(27.6, f(64, "female"), (2, "observe", REFERRED))),
        p(
            "DEMO-0007",
            "Ivan Petrov",
            *_care(31, f(70, "male"), (5, "observe", OSTEO_CARE | REFERRED)),
        ),
        p(
            "DEMO-0008",
            "June Kowalski",
            *_care(45, f(79, "female"), (6, "observe", OSTEO_CARE | REFERRED)),
            enrolled=ENROLLED_HIGH,
        ),
        p(
            "DEMO-0009",
            "Leonard Marsh",
            *_care(46, f(83, "male"), (30, "observe", {"pain_score": 5})),
        ),
        p(
            "DEMO-0010",
            "Mabel Nguyen",
            *_care(
                60,
                f(76, "female", anticoagulated=True),
                (20, "observe", OSTEO_CARE | REFERRED),
                (31, "observe", {"pain_score": 5}),
                (40, "request", "vertebroplasty"),
            ),
        ),
        p(
            "DEMO-0011",
            "Oscar Reyes",
            *_care(
                89.6,
                f(71, "male"),
                (10, "observe", OSTEO_CARE | REFERRED),
                (30, "observe", {"pain_score": 4}),
            ),
            enrolled=ENROLLED_HIGH,
        ),
        p(
            "DEMO-0012",
            "Pearl Sandoval",
            *_care(
                40, f(68, "female"), (10, "observe", OSTEO_CARE), (31, "observe", {"pain_score": 2})
            ),
        ),
        p(
            "DEMO-0013",
            "Rupert Tan",
            3,
            f(66, "male"),
            ((0.1, "observe", PRESENT), (1, "observe", {"neuro_deficit_motor": True})),
        ),
        p(
            "DEMO-0014",
            "Sylvia Underhill",
            *_care(
                95,
                f(80, "female"),
                (10, "observe", OSTEO_CARE | REFERRED),
                (30, "observe", {"pain_score": 5}),
                (93, "observe", {"pain_score": 5, "significant_deformity": True}),
            ),
        ),
        p("DEMO-0015", "Thomas Vance", 6, f(72, "male"), ((2, "close", "lost_to_follow_up"),)),
        p(
            "DEMO-0016",
            "Una Whitaker",
            *_care(
                93,
                f(73, "female"),
                (10, "observe", OSTEO_CARE | REFERRED),
                (30, "observe", {"pain_score": 5}),
                (92, "observe", {"pain_score": 8}),
            ),
            enrolled=ENROLLED_VERY_HIGH,
        ),
        p(
            "DEMO-0017",
            "Victor Yates",
            *_care(14, f(45, "male"), (3, "observe", {"pain_score": 6})),
        ),
    ]


def load_cohort(
    make_uow: Callable[[], UnitOfWork],
    definitions: DefinitionRegistry,
    now: datetime,
    patients: list[Patient] | None = None,
) -> Loaded:
    """Load the patients (default: the whole cohort) not yet present; see the docstring."""
    return load_patients(make_uow, definitions, now, patients if patients is not None else cohort())


def issue_demo_tokens(store: TokenStore, now: datetime) -> dict[str, str]:
    """A fresh admin and coordinator token (secrets returned); earlier demo tokens revoked.

    Names are ``demo-<role>``, then ``demo-<role>-2``, ``-3``…: a token name is never reused,
    because the audit log names the token that acted."""
    existing = store.list()
    secrets: dict[str, str] = {}
    for role in ("coordinator", "admin"):
        base = f"demo-{role}"
        numbers = []
        for token in existing:
            match = re.fullmatch(rf"{base}(?:-(\d+))?", token.name)
            if match is None:
                continue
            numbers.append(int(match.group(1) or 1))
            if token.revoked_at is None:
                store.revoke(token.id, now)
        name = f"{base}-{max(numbers) + 1}" if numbers else base
        _, secrets[role] = store.create(name, role, now)
    return secrets


@dataclass(frozen=True, slots=True)
class DemoLoad:
    loaded: Loaded
    tokens: dict[str, str]  # role → secret, shown once


def load_demo(
    database_url: str,
    definitions: DefinitionRegistry,
    now: datetime,
    *,
    history: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> DemoLoad:
    """Load the cohort into ``database_url`` (migrated if new) and issue the demo tokens; with
    ``history``, the year of generated patients too (``carepath.demo_history``), its patients
    counted by ``progress(done, total)``."""
    from carepath.bootstrap import open_database
    from storage.access import TokenStore

    factory = open_database(database_url)
    try:
        loaded = load_cohort(factory, definitions, now)
        if history:
            more = load_batched(factory, definitions, now, history_cohort(), progress=progress)
            loaded = Loaded(loaded.created + more.created, loaded.present + more.present)
        tokens = issue_demo_tokens(TokenStore(factory.connections), now)
    finally:
        factory.dispose()
    return DemoLoad(loaded, tokens)
