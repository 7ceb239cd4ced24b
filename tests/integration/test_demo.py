"""The demo cohort on both pathways: every FLS state, the overdue and escalated ones, the FLS
episodes the L1–L2 demo patients enrol (linked both ways), idempotent, audit chains intact; and
its year of generated history: a few hundred episodes a pathway, every month of the last 12,
with compliance that differs by measure and drifts over the months."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from carepath.bootstrap import current_definitions, open_database
from carepath.demo import cohort, episode_id_of, load_demo
from carepath.demo_history import FLS_PATIENTS, SPINE_PATIENTS, history_cohort
from pathway.audit import verify_chain
from pathway.model import Episode
from pathway.usecases import DefinitionRegistry
from tests.support.protocol import REPOSITORY

FLS, SPINE = "fracture-liaison", "l1-l2-compression-fracture"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Demo:
    url: str
    definitions: DefinitionRegistry
    episodes: dict[str, Episode]
    seconds: float

    def pathway(self, episode: Episode) -> str:
        return self.definitions.get(episode.definition_version).id

    def of(self, pathway: str) -> list[Episode]:
        return [e for e in self.episodes.values() if self.pathway(e) == pathway]


def _episodes(url: str) -> dict[str, Episode]:
    factory = open_database(url)
    try:
        with factory() as uow:
            return {i: uow.get_episode(i) for i in uow.episode_ids()}
    finally:
        factory.dispose()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    definitions = DefinitionRegistry(current_definitions())
    started = time.perf_counter()
    load_demo(url, definitions, NOW)
    seconds = time.perf_counter() - started
    yield Demo(url, definitions, _episodes(url), seconds)


def _escalated(episode: Episode) -> set[str]:
    return {t.rule_id for t in episode.open_escalations()}


def test_every_fls_state_holds_an_episode(demo: Demo) -> None:
    states = {e.state for e in demo.of(FLS)}
    assert states == set(demo.definitions.current_for(FLS).states)


@pytest.mark.parametrize(
    ("state", "rules"),
    [
        ("identified", {"FLS-IDENTIFY-OVERDUE"}),
        ("assessment", {"FLS-ASSESS-DUE", "FLS-DXA-DUE"}),
        ("treatment", {"FLS-SPECIALIST-PENDING"}),
        ("first_follow_up", {"FLS-FOLLOWUP-16-OVERDUE"}),
        ("annual_follow_up", {"FLS-FOLLOWUP-52-OVERDUE"}),
    ],
)
def test_some_fls_episodes_are_overdue_or_escalated(
    demo: Demo, state: str, rules: set[str]
) -> None:
    assert any(_escalated(e) & rules for e in demo.of(FLS) if e.state == state)


def test_fls_episodes_are_also_on_time(demo: Demo) -> None:
    for state in ("identified", "assessment", "treatment", "first_follow_up", "monitoring"):
        assert any(not _escalated(e) for e in demo.of(FLS) if e.state == state), state


def test_every_open_fls_episode_waits_on_a_timer_or_an_escalation(demo: Demo) -> None:
    definition = demo.definitions.current_for(FLS)
    for e in demo.of(FLS):
        if not definition.is_terminal(e.state):
            pending = [t for t in e.timers if t.status == "pending"]
            assert pending or _escalated(e), e.patient_ref


def test_l1_l2_patients_of_50_or_more_enrol_fls_episodes_linked_both_ways(demo: Demo) -> None:
    enrolled: list[Episode] = []
    for source in demo.of(SPINE):
        links = [link for link in source.links if link.relation == "enrolled"]
        for link in links:
            target = demo.episodes[link.episode_id]
            assert demo.pathway(target) == FLS and link.pathway == FLS
            assert target.patient_ref == source.patient_ref and target.label == source.label
            (back,) = target.links
            assert (back.relation, back.episode_id, back.pathway) == (
                "enrolled_from",
                source.id,
                SPINE,
            )
            assert target.fact("fracture_date") == source.opened_at.date().isoformat()
            enrolled.append(target)
        if source.patient_ref == "DEMO-0017":  # aged 45, in conservative care: not enrolled
            assert source.state == "conservative_care" and not links
    assert len(enrolled) >= 10
    assert {e.state for e in enrolled} >= {"assessment", "treatment", "first_follow_up"}
    assert any(_escalated(e) for e in enrolled)
    sources = {link.episode_id for e in enrolled for link in e.links}
    assert episode_id_of("DEMO-0013") in sources  # enrolled from an immediate transfer


def test_a_second_load_creates_nothing_and_changes_nothing(demo: Demo) -> None:
    again = load_demo(demo.url, demo.definitions, NOW + timedelta(minutes=5))
    assert again.loaded.created == 0
    assert again.loaded.present == len(demo.episodes) > len(cohort())
    after = _episodes(demo.url)
    assert {i: e.version for i, e in after.items()} == {
        i: e.version for i, e in demo.episodes.items()
    }


def test_every_audit_chain_verifies(demo: Demo) -> None:
    factory = open_database(demo.url)
    try:
        with factory() as uow:
            for episode in demo.episodes.values():
                records = uow.audit_records(episode.id)
                check = verify_chain(
                    episode.id,
                    records,
                    (episode.version, episode.audit_hash),
                    key=uow.audit_key,
                )
                assert check.ok, check
    finally:
        factory.dispose()


def test_the_curated_patients_are_all_there_beside_a_few_hundred_generated_a_pathway(
    demo: Demo,
) -> None:
    refs = {e.patient_ref for e in demo.episodes.values()}
    assert {p.ref for p in cohort()} <= refs
    curated = {episode_id_of(p.ref) for p in cohort()}
    for pathway in (SPINE, FLS):
        generated = [e for e in demo.of(pathway) if e.patient_ref.startswith("DEMO-H")]
        assert 300 <= len(generated) <= 600, pathway
    enrolled = [e for e in demo.of(FLS) if e.links and e.id not in curated]
    assert len([e for e in enrolled if e.patient_ref.startswith("DEMO-H0")]) >= 150


def _anchor(episode: Episode) -> datetime:
    """The month a measure files an episode under: its opening, or (FLS) its fracture date."""
    fracture = episode.fact("fracture_date")
    if episode.pathway == FLS and fracture is not None:
        return datetime.fromisoformat(str(fracture)).replace(tzinfo=UTC)
    return episode.opened_at


def test_the_history_fills_each_of_the_last_12_months_on_both_pathways(demo: Demo) -> None:
    months = [(NOW - timedelta(days=30.4 * k)).strftime("%Y-%m") for k in range(1, 13)]
    for pathway in (SPINE, FLS):
        per_month = Counter(_anchor(e).strftime("%Y-%m") for e in demo.of(pathway))
        assert all(per_month[m] >= 12 for m in months), (pathway, per_month)


def _rate(episodes: list[Episode], fact: str, start: Callable[[Episode], datetime | None],
          days: int) -> tuple[float, int]:  # fmt: skip
    """The share of episodes whose ``fact`` was recorded within ``days`` of ``start`` (of those
    whose window had closed by NOW): a stand-in for the measures, from the facts alone."""
    met = total = 0
    for e in episodes:
        begun = start(e)
        if begun is None or begun + timedelta(days=days) > NOW or e.closed_reason:
            continue
        value = e.facts.get(fact)
        total += 1
        met += value is not None and value.at <= begun + timedelta(days=days)
    return met / total, total


def _fracture_day_0(e: Episode) -> datetime | None:
    return _anchor(e) if e.fact("risk_category") is not None or e.state != "identified" else None


def test_compliance_differs_by_measure_and_drifts_over_the_months(demo: Demo) -> None:
    fls = [e for e in demo.of(FLS) if e.patient_ref.startswith("DEMO-H")]
    dxa, n = _rate(fls, "dxa_done", _fracture_day_0, 85)  # FLS-KPI-DXA-12W
    assessed, _ = _rate(fls, "risk_category", _fracture_day_0, 85)  # FLS-KPI-ASSESSED-12W
    assert n >= 200 and dxa < 0.65 < assessed
    split = NOW - timedelta(days=182)
    early, _ = _rate([e for e in fls if _anchor(e) < split], "dxa_done", _fracture_day_0, 85)
    late, _ = _rate([e for e in fls if _anchor(e) >= split], "dxa_done", _fracture_day_0, 85)
    assert late > early + 0.1  # the DXA rate improves over the year


def test_the_history_is_the_same_on_every_load() -> None:
    assert history_cohort() == history_cohort()
    assert len({p.ref for p in history_cohort()}) == SPINE_PATIENTS + FLS_PATIENTS


def test_demo_patients_are_fictional_and_named_so(demo: Demo) -> None:
    refs = [p.ref for p in cohort()]
    assert len(set(refs)) == len(refs) and all(r.startswith("DEMO-") for r in refs)
    assert {p.pathway for p in cohort()} == {None, FLS}


def test_no_module_of_the_demo_grows_past_300_lines() -> None:
    root = REPOSITORY / "carepath"
    for name in (
        "demo.py",
        "demo_fls.py",
        "demo_play.py",
        "demo_history.py",
        "demo_history_fls.py",
    ):
        assert len((root / name).read_text(encoding="utf-8").splitlines()) <= 300, name
