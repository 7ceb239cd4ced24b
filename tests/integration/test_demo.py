"""The demo cohort on both pathways: every FLS state, the overdue and escalated ones, the FLS
episodes the L1–L2 demo patients enrol (linked both ways), idempotent, audit chains intact."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from carepath.bootstrap import current_definitions, open_database
from carepath.demo import cohort, episode_id_of, load_demo
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


def test_the_demo_loads_fast(demo: Demo) -> None:
    assert demo.seconds < 3


def test_demo_patients_are_fictional_and_named_so(demo: Demo) -> None:
    refs = [p.ref for p in cohort()]
    assert len(set(refs)) == len(refs) and all(r.startswith("DEMO-") for r in refs)
    assert {p.pathway for p in cohort()} == {None, FLS}


def test_no_module_of_the_demo_grows_past_300_lines() -> None:
    root = REPOSITORY / "carepath"
    for name in ("demo.py", "demo_fls.py", "demo_play.py"):
        assert len((root / name).read_text(encoding="utf-8").splitlines()) <= 300, name
