"""FLS-ENROL-SPINE on every unit of work: an L1–L2 decision that opens (or links) a
fracture-liaison episode in its own transaction, tried as an attacker or a flaky network would.

Runs on memory, SQLite and PostgreSQL (``uow_factory``), the races and the scheduler on SQLite
and PostgreSQL (``database_url``). Every episode's audit chain is verified after each test.
"""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pathway import enrolment, usecases
from pathway.audit import verify_chain
from pathway.definition import (
    DEFAULT_DEFINITION,
    compile_definition,
    load_definition,
    shipped_definition_files,
)
from pathway.errors import ConcurrencyConflict, InvalidRequest
from pathway.model import Episode, Observe
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import DefinitionRegistry
from storage.unit_of_work import uow_factory as sql_uow_factory
from tests.support.episode_driver import PRESENTATION, PROFILE, WORKUP
from tests.support.protocol import REPOSITORY, SCENARIO_DIR
from tests.support.racing import ReadThenWait

Factory = Callable[[], UnitOfWork]
L1L2, FLS, RULE = "l1-l2-compression-fracture", "fracture-liaison", "FLS-ENROL-SPINE"
REG = DefinitionRegistry([load_definition(p) for p in shipped_definition_files()])
# 23:30 in New York on 2 March is 04:30 UTC on 3 March: fracture_date is the *UTC* date
T0 = datetime(2026, 3, 3, 4, 30, tzinfo=UTC)
RACE_AT = T0 + timedelta(hours=2)  # before FU-INTAKE-OVERDUE is due: no timer fires first
ENROLLED_STEP = [{"pathway": FLS, "rule": RULE}]
REPO = REPOSITORY
EXAMPLE = SCENARIO_DIR / "scenarios_md_example.json"


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


# -- driving episodes ----------------------------------------------------------------------------


def open_l1(
    make_uow: Factory,
    episode_id: str = "ep-1",
    profile: dict[str, Any] | None = None,
    *,
    patient_ref: str | None = "MRN-1",
    at: datetime = T0,
    registry: DefinitionRegistry = REG,
) -> usecases.Applied:
    return usecases.open_episode(
        make_uow(), registry, dict(PROFILE if profile is None else profile), at=at, now=at,
        actor="nurse", event_id=f"{episode_id}/open", episode_id=episode_id,
        patient_ref=patient_ref, label="L1 fracture",
    )  # fmt: skip


def observe(
    make_uow: Factory, episode_id: str, facts: dict[str, Any], event_id: str, at: datetime,
    now: datetime | None = None,
) -> usecases.Applied:  # fmt: skip
    event = Observe(event_id, at, "doctor", facts)
    return usecases.handle(make_uow(), REG, episode_id, event, now or at).applied


def close(
    make_uow: Factory, episode_id: str, reason: str, at: datetime, now: datetime | None = None
) -> usecases.Applied:
    return usecases.close(
        make_uow(), REG, episode_id, reason, at=at, now=now or at, actor="doctor",
        event_id=f"{episode_id}/close-{reason}",
    )  # fmt: skip


def to_care(
    make_uow: Factory, episode_id: str = "ep-1", at: datetime | None = None
) -> usecases.Applied:
    """Presentation and a complete workup at once: the episode enters conservative_care."""
    applied = observe(
        make_uow, episode_id, {**PRESENTATION, **WORKUP}, f"{episode_id}/care", at or day(2)
    )
    assert applied.outcome.state == "conservative_care"
    return applied


def open_fls(
    make_uow: Factory, episode_id: str, patient_ref: str | None, at: datetime = T0
) -> Episode:
    """A fracture-liaison episode opened directly (another fracture, another clinic)."""
    facts = {"age": 70, "fracture_date": at.date().isoformat(), "fracture_site": "wrist"}
    usecases.open_episode(
        make_uow(), REG, facts, at=at, now=at, actor="fls-nurse", event_id=f"{episode_id}/open",
        episode_id=episode_id, patient_ref=patient_ref, pathway=FLS,
    )  # fmt: skip
    return episode(make_uow, episode_id)


def episode(make_uow: Factory, episode_id: str) -> Episode:
    with make_uow() as uow:
        return uow.get_episode(episode_id)


def episodes(make_uow: Factory, pathway: str) -> list[Episode]:
    with make_uow() as uow:
        found = [uow.get_episode(i) for i in uow.episode_ids()]
    return [e for e in found if e.pathway == pathway]


def audit(make_uow: Factory, episode_id: str) -> list[dict[str, Any]]:
    with make_uow() as uow:
        return [r.body() for r in uow.audit_records(episode_id)]


def all_chains_verify(make_uow: Factory) -> None:
    with make_uow() as uow:
        for episode_id in uow.episode_ids():
            ep = uow.get_episode(episode_id)
            check = verify_chain(
                episode_id,
                uow.audit_records(episode_id),
                (ep.version, ep.audit_hash),
                key=uow.audit_key,
            )
            assert check.ok, (episode_id, check.problem)


def link_dict(episode_id: str, pathway: str, relation: str) -> dict[str, str]:
    return {"episode_id": episode_id, "pathway": pathway, "rule": RULE, "relation": relation}


def the_enrolled(make_uow: Factory, source_id: str = "ep-1") -> Episode:
    """The one FLS episode the source enrolled (its only link)."""
    (link,) = episode(make_uow, source_id).links
    assert (link.pathway, link.rule, link.relation) == (FLS, RULE, "enrolled")
    return episode(make_uow, link.episode_id)


# -- enrolment: when, what, both sides ------------------------------------------------------------


def test_entering_conservative_care_at_78_opens_one_fls_episode_linked_and_audited_both_ways(
    uow_factory: Factory,
) -> None:
    open_l1(uow_factory)
    applied = to_care(uow_factory)

    assert applied.enrolled == ((FLS, RULE),)
    (fls,) = episodes(uow_factory, FLS)
    assert fls is not None and fls.id == enrolment.enrolled_episode_id("ep-1", RULE)
    assert fls.state == "assessment"  # FLS-ELIGIBLE: eligible at once
    assert {n: fv.value for n, fv in fls.facts.items()} == {
        "fracture_site": "spine",
        "fracture_date": "2026-03-03",  # the UTC date of the L1–L2 opening, not of care
        "age": 78,
        "sex": "female",
        "high_energy_trauma": False,
    }
    assert fls.patient_ref == "MRN-1"
    source = episode(uow_factory, "ep-1")
    assert [dataclasses.astuple(k) for k in source.links] == [(fls.id, FLS, RULE, "enrolled")]
    assert [dataclasses.astuple(k) for k in fls.links] == [("ep-1", L1L2, RULE, "enrolled_from")]

    source_entry = audit(uow_factory, "ep-1")[-1]
    assert source_entry["event_id"] == "ep-1/care"
    assert source_entry["links"] == [link_dict(fls.id, FLS, "enrolled")]
    (opening,) = audit(uow_factory, fls.id)
    assert opening["kind"] == "open" and opening["event_id"] == f"enrol:ep-1:{RULE}"
    assert opening["links"] == [link_dict("ep-1", L1L2, "enrolled_from")]
    assert opening["patient_ref"] == "MRN-1" and opening["state_to"] == "assessment"
    with uow_factory() as uow:  # the enrolment's own outcome is recorded, under its derived id
        found = uow.find_outcome(f"enrol:ep-1:{RULE}")
    assert found is not None and found.episode_id == fls.id
    all_chains_verify(uow_factory)


def test_unknown_high_energy_trauma_is_not_copied(uow_factory: Factory) -> None:
    open_l1(uow_factory)
    facts = {k: v for k, v in {**PRESENTATION, **WORKUP}.items() if k != "high_energy_trauma"}
    assert observe(uow_factory, "ep-1", facts, "care", day(1)).outcome.state == "conservative_care"
    fls = the_enrolled(uow_factory)
    assert "high_energy_trauma" not in fls.facts and fls.fact("age") == 78


def test_aged_49_entering_conservative_care_enrols_nobody(uow_factory: Factory) -> None:
    open_l1(uow_factory, profile={**PROFILE, "age": 49})
    assert to_care(uow_factory).enrolled == ()
    assert episodes(uow_factory, FLS) == [] and episode(uow_factory, "ep-1").links == ()
    assert "links" not in audit(uow_factory, "ep-1")[-1]


@pytest.mark.parametrize(
    ("presentation", "enrolled"),
    [
        ({"fracture_levels": ["L1", "L2"], "high_energy_trauma": False}, True),  # TX-MULTI
        ({"fracture_levels": ["L1", "L2"]}, True),  # high-energy unknown: counts as no
        ({"fracture_levels": ["L1"], "high_energy_trauma": True}, False),  # TX-MULTI, high energy
        ({"fracture_levels": ["L1"], "pathologic_fracture_suspected": True}, False),  # TX-MALIG
    ],
    ids=["multi-level", "multi-level-energy-unknown", "high-energy", "pathologic"],
)
def test_immediate_transfer_enrols_only_fragility_fractures(
    uow_factory: Factory, presentation: dict[str, Any], enrolled: bool
) -> None:
    open_l1(uow_factory)
    applied = observe(uow_factory, "ep-1", {**presentation, "pain_score": 8}, "tx", day(1))
    assert applied.outcome.state == "immediate_transfer"
    assert applied.enrolled == (((FLS, RULE),) if enrolled else ())
    assert len(episodes(uow_factory, FLS)) == (1 if enrolled else 0)
    if enrolled:
        assert the_enrolled(uow_factory).state == "assessment"
    all_chains_verify(uow_factory)


def test_immediate_transfer_at_49_enrols_nobody(uow_factory: Factory) -> None:
    open_l1(uow_factory, profile={**PROFILE, "age": 49})
    applied = observe(uow_factory, "ep-1", {"fracture_levels": ["L1", "L2"]}, "tx", day(1))
    assert applied.outcome.state == "immediate_transfer" and episodes(uow_factory, FLS) == []


# -- exactly one, however it is retried -----------------------------------------------------------


def test_reentering_conservative_care_does_not_enrol_again(uow_factory: Factory) -> None:
    open_l1(uow_factory)
    to_care(uow_factory, at=day(0))
    # day 28: FU-REASSESS → reassessment; pain still 8, care day < 90 → RA-CONTINUE
    applied = observe(uow_factory, "ep-1", {"pain_score": 5}, "review", day(29))
    assert ("reassessment", "conservative_care") in [
        (a, b) for a, b, _ in applied.outcome.transitions
    ]
    assert applied.enrolled == ()
    assert len(episodes(uow_factory, FLS)) == 1 and len(episode(uow_factory, "ep-1").links) == 1
    all_chains_verify(uow_factory)


def test_retrying_the_same_command_changes_nothing(uow_factory: Factory) -> None:
    open_l1(uow_factory)
    first = to_care(uow_factory)
    fls = the_enrolled(uow_factory)
    before = (
        episode(uow_factory, "ep-1"),
        fls,
        audit(uow_factory, "ep-1"),
        audit(uow_factory, fls.id),
    )

    again = observe(uow_factory, "ep-1", {**PRESENTATION, **WORKUP}, "ep-1/care", day(2))
    assert again.outcome.repeated and again.decision is None and again.enrolled == ()
    assert again.outcome.version == first.outcome.version
    after = (episode(uow_factory, "ep-1"), episode(uow_factory, fls.id))
    assert after == before[:2]
    assert (audit(uow_factory, "ep-1"), audit(uow_factory, fls.id)) == before[2:]
    assert len(episodes(uow_factory, FLS)) == 1


def test_a_different_event_id_on_the_same_source_never_enrols_twice(uow_factory: Factory) -> None:
    open_l1(uow_factory)
    to_care(uow_factory)
    # the same findings sent again under a new id (a client that lost the answer)
    again = observe(uow_factory, "ep-1", {**PRESENTATION, **WORKUP}, "resent", day(2))
    assert not again.outcome.repeated and again.enrolled == ()
    assert len(episodes(uow_factory, FLS)) == 1
    all_chains_verify(uow_factory)


def test_a_stale_decision_on_the_source_conflicts_and_writes_no_enrolment(
    uow_factory: Factory,
) -> None:
    """Two writers decide on the same source version with different event ids; the second to
    save is refused as a whole: neither its source change nor a second FLS episode is written."""
    open_l1(uow_factory)
    with uow_factory() as uow:
        stale = uow.get_episode("ep-1")
    to_care(uow_factory)

    class Stale:
        def __init__(self, inner: UnitOfWork) -> None:
            self.inner = inner

        def __enter__(self) -> Stale:
            self.inner.__enter__()
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.__exit__(*exc)

        def get_episode(self, episode_id: str) -> Episode:
            return stale if episode_id == "ep-1" else self.inner.get_episode(episode_id)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    with pytest.raises(ConcurrencyConflict):
        usecases.observe(
            Stale(uow_factory()), REG, "ep-1", {**PRESENTATION, **WORKUP},  # type: ignore[arg-type]
            at=day(2), now=day(2), actor="racer", event_id="racer",
        )  # fmt: skip
    assert len(episodes(uow_factory, FLS)) == 1
    with uow_factory() as uow:
        assert uow.find_outcome("racer") is None
    all_chains_verify(uow_factory)


def test_a_client_event_id_in_the_enrolment_namespace_is_refused(uow_factory: Factory) -> None:
    """An attacker pre-empting the enrolment's derived event id would make the real enrolment a
    duplicate event for ever (the source could then never enter care): ``handle`` refuses the
    prefix as it refuses "timer:"."""
    open_l1(uow_factory)
    taken = f"{enrolment.ENROL_EVENT_PREFIX}ep-1:{RULE}"
    for event in (
        Observe(taken, day(1), "mallory", {"pain_score": 3}),
        Observe(usecases.TIMER_EVENT_PREFIX + "ep-1:x", day(1), "mallory", {"pain_score": 3}),
    ):
        with pytest.raises(InvalidRequest):
            usecases.handle(uow_factory(), REG, "ep-1", event, day(1))
    with uow_factory() as uow:
        assert uow.find_outcome(taken) is None
    assert to_care(uow_factory).enrolled == ((FLS, RULE),)


# -- linking instead of opening -------------------------------------------------------------------


def test_a_live_fls_episode_of_the_patient_is_linked_not_duplicated(uow_factory: Factory) -> None:
    live = open_fls(uow_factory, "fls-wrist", "MRN-1")
    open_l1(uow_factory)
    applied = to_care(uow_factory)

    assert applied.enrolled == ()  # linked, not opened
    assert [e.id for e in episodes(uow_factory, FLS)] == ["fls-wrist"]
    source = episode(uow_factory, "ep-1")
    linked = episode(uow_factory, "fls-wrist")
    assert [dataclasses.astuple(k) for k in source.links] == [("fls-wrist", FLS, RULE, "linked")]
    assert [dataclasses.astuple(k) for k in linked.links] == [("ep-1", L1L2, RULE, "linked_from")]
    assert linked.version == live.version + 1 and linked.state == live.state
    assert audit(uow_factory, "ep-1")[-1]["links"] == [link_dict("fls-wrist", FLS, "linked")]
    entry = audit(uow_factory, "fls-wrist")[-1]
    assert entry["kind"] == "link" and entry["event_id"] == f"enrol:ep-1:{RULE}"
    assert entry["links"] == [link_dict("ep-1", L1L2, "linked_from")]
    # re-entering care or retrying links nothing more
    observe(uow_factory, "ep-1", {**PRESENTATION, **WORKUP}, "resent", day(2))
    assert episode(uow_factory, "fls-wrist").version == linked.version
    all_chains_verify(uow_factory)


def test_a_terminal_fls_episode_of_the_patient_is_not_linked_a_new_one_opens(
    uow_factory: Factory,
) -> None:
    open_fls(uow_factory, "fls-old", "MRN-1")
    usecases.close(
        uow_factory(), REG, "fls-old", "declined", at=T0, now=T0, actor="fls", event_id="old-x"
    )
    open_l1(uow_factory)
    assert to_care(uow_factory).enrolled == ((FLS, RULE),)
    assert sorted(e.id for e in episodes(uow_factory, FLS)) == sorted(
        ["fls-old", enrolment.enrolled_episode_id("ep-1", RULE)]
    )
    assert episode(uow_factory, "fls-old").links == ()
    all_chains_verify(uow_factory)


@pytest.mark.parametrize("patient_ref", ["", None])
def test_an_empty_patient_reference_never_links(
    uow_factory: Factory, patient_ref: str | None
) -> None:
    open_fls(uow_factory, "fls-anon", patient_ref)
    open_l1(uow_factory, patient_ref=patient_ref)
    assert to_care(uow_factory).enrolled == ((FLS, RULE),)
    assert episode(uow_factory, "fls-anon").links == ()
    assert len(episodes(uow_factory, FLS)) == 2


def test_another_patients_live_fls_episode_is_not_linked(uow_factory: Factory) -> None:
    open_fls(uow_factory, "fls-other", "MRN-2")
    open_l1(uow_factory)
    assert to_care(uow_factory).enrolled == ((FLS, RULE),)
    assert episode(uow_factory, "fls-other").links == ()


def test_linking_a_live_episode_that_moved_later_than_the_source_event(
    uow_factory: Factory,
) -> None:
    """Regression: the L1–L2 workup findings are recorded a day late (clinical time day 1, now
    day 6) while the FLS episode was opened on day 5. The link on the FLS side used to be
    stamped with the source's clinical time, before the FLS episode's state entry, so the
    engine refused it (InvalidRequest) and with it the clinician's observation; a scheduler
    timer fired late would fail and be parked the same way for ever."""
    open_fls(uow_factory, "fls-wrist", "MRN-1", at=day(5))
    open_l1(uow_factory)
    applied = observe(uow_factory, "ep-1", {**PRESENTATION, **WORKUP}, "late", day(1), now=day(6))
    assert applied.outcome.state == "conservative_care"
    linked = episode(uow_factory, "fls-wrist")
    assert [k.relation for k in linked.links] == ["linked_from"]
    entry = audit(uow_factory, "fls-wrist")[-1]
    assert entry["kind"] == "link" and entry["at"] >= linked.state_entered_at.isoformat()
    all_chains_verify(uow_factory)


# -- closing with the source ----------------------------------------------------------------------


def test_entered_in_error_closes_the_enrolled_episode_too_naming_the_source(
    uow_factory: Factory,
) -> None:
    open_l1(uow_factory)
    to_care(uow_factory)
    fls = the_enrolled(uow_factory)
    close(uow_factory, "ep-1", "entered_in_error", day(3))

    closed = episode(uow_factory, fls.id)
    assert (closed.state, closed.closed_reason) == ("closed", "entered_in_error")
    entry = audit(uow_factory, fls.id)[-1]
    assert entry["kind"] == "close" and entry["reason"] == "entered_in_error"
    assert entry["because_of"] == "ep-1"
    assert entry["event_id"] == f"enrol:{fls.id}:close:ep-1/close-entered_in_error"
    assert audit(uow_factory, "ep-1")[-1]["state_to"] == "closed"
    # retrying the close is a repeat: nothing more on either side
    again = close(uow_factory, "ep-1", "entered_in_error", day(3))
    assert again.outcome.repeated and episode(uow_factory, fls.id).version == closed.version
    all_chains_verify(uow_factory)


def test_closing_for_another_reason_leaves_the_enrolled_episode_open(uow_factory: Factory) -> None:
    open_l1(uow_factory)
    to_care(uow_factory)
    fls = the_enrolled(uow_factory)
    close(uow_factory, "ep-1", "deceased", day(3))
    assert episode(uow_factory, fls.id) == fls


def test_entered_in_error_leaves_a_merely_linked_episode_open(uow_factory: Factory) -> None:
    open_fls(uow_factory, "fls-wrist", "MRN-1")
    open_l1(uow_factory)
    to_care(uow_factory)
    linked = episode(uow_factory, "fls-wrist")
    close(uow_factory, "ep-1", "entered_in_error", day(3))
    assert episode(uow_factory, "fls-wrist") == linked and linked.state == "assessment"


def test_entered_in_error_after_the_enrolled_episode_moved_on(uow_factory: Factory) -> None:
    """Regression: the FLS episode moved to treatment on day 3; the L1–L2 episode is then found
    entered in error and closed with clinical time day 2 (recorded on day 4). The cascade used
    to carry the source's clinical time, before the FLS episode's state entry: the engine
    refused it (InvalidRequest) and so the source could not be closed at all."""
    open_l1(uow_factory)
    to_care(uow_factory, at=day(1))
    fls = the_enrolled(uow_factory)
    moved = observe(
        uow_factory,
        fls.id,
        {"risk_category": "high", "falls_assessment_done": True},
        "fls-1",
        day(3),
    )
    assert moved.outcome.state == "treatment"
    close(uow_factory, "ep-1", "entered_in_error", day(2), now=day(4))
    closed = episode(uow_factory, fls.id)
    assert (closed.state, closed.closed_reason) == ("closed", "entered_in_error")
    assert audit(uow_factory, fls.id)[-1]["because_of"] == "ep-1"
    all_chains_verify(uow_factory)


# -- one transaction: a failed enrolment writes nothing -----------------------------------------


def test_an_enrolment_that_cannot_be_written_takes_the_source_decision_with_it(
    uow_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live FLS episode moved after the enrolment read it: the link conflicts, and the
    source decision that caused it is not written either."""
    open_fls(uow_factory, "fls-wrist", "MRN-1")
    open_l1(uow_factory)
    stale_live(monkeypatch)
    with pytest.raises(ConcurrencyConflict):
        to_care(uow_factory)
    assert episode(uow_factory, "ep-1").state == "intake"
    assert episode(uow_factory, "fls-wrist").links == ()
    with uow_factory() as uow:
        assert uow.find_outcome("ep-1/care") is None


def stale_live(monkeypatch: pytest.MonkeyPatch, times: int | None = None) -> list[str]:
    """The live episode enrolment finds is one version behind the stored one, as if another
    writer had moved it between the read and the write (the first ``times`` reads, or all);
    returns the ids of the episodes so served."""
    found, served = enrolment._live_episode, []

    def behind(*args: Any) -> Episode | None:
        live = found(*args)
        if live is None or (times is not None and len(served) >= times):
            return live
        served.append(live.id)
        return dataclasses.replace(live, version=live.version - 1)

    monkeypatch.setattr(enrolment, "_live_episode", behind)
    return served


# -- two concurrent writers -----------------------------------------------------------------------


def race_into_care(url: str, event_ids: tuple[str, str]) -> tuple[list[Any], list[BaseException]]:
    factory = sql_uow_factory(url)
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def write(event_id: str) -> None:
        try:
            event = Observe(event_id, RACE_AT, f"writer-{event_id}", {**PRESENTATION, **WORKUP})
            uow = ReadThenWait(factory(), barrier, "ep-1")
            results.append(usecases.handle(uow, REG, "ep-1", event, RACE_AT).applied)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(e,)) for e in event_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    factory.dispose()
    return results, errors


@pytest.mark.parametrize("event_ids", [("a", "b"), ("same", "same")], ids=["two-ids", "one-id"])
def test_two_writers_pushing_the_episode_into_care_enrol_once(
    database_url: str, event_ids: tuple[str, str]
) -> None:
    make_uow = sql_uow_factory(database_url)
    open_l1(make_uow)
    results, errors = race_into_care(database_url, event_ids)

    # both read the same version before either saved: one wins, the other conflicts as a whole
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], ConcurrencyConflict), errors[0]
    winners = [r for r in results if not r.outcome.repeated]
    assert len(winners) == 1 and winners[0].enrolled == ((FLS, RULE),)
    (fls,) = episodes(make_uow, FLS)
    source = episode(make_uow, "ep-1")
    assert source.version == 2 and len(source.links) == 1 and source.links[0].episode_id == fls.id
    assert [r["event_id"] for r in audit(make_uow, "ep-1")] == [
        "ep-1/open",
        winners[0].outcome.event_id,
    ]
    assert len(audit(make_uow, fls.id)) == 1

    loser = ({*event_ids} - {winners[0].outcome.event_id}) or {event_ids[0]}
    retried = observe(make_uow, "ep-1", {"pain_score": 6}, loser.pop(), RACE_AT)
    if event_ids[0] == event_ids[1]:
        assert retried.outcome.repeated and retried.outcome.version == 2
    else:  # applied on top of the winner: no lost update, and no second enrolment
        assert retried.outcome.version == 3 and retried.enrolled == ()
        assert episode(make_uow, "ep-1").fact("pain_score") == 6
    assert len(episodes(make_uow, FLS)) == 1
    all_chains_verify(make_uow)
    make_uow.dispose()


RACER = """
import sys
sys.path.insert(0, sys.argv[3])
from tests.integration.sql_storage.test_enrolment import push_into_care_until_done
push_into_care_until_done(sys.argv[1], sys.argv[2])
"""


def push_into_care_until_done(url: str, writer: str) -> None:
    """One racing process: push ep-1 into care under this writer's event id, retrying each
    conflict, and print what it got."""
    from carepath.settings import Settings

    make_uow = sql_uow_factory(url, Settings.from_env().audit_key())  # the suite's key
    conflicts = 0
    while True:
        try:
            applied = observe(make_uow, "ep-1", {**PRESENTATION, **WORKUP}, writer, RACE_AT)
            break
        except ConcurrencyConflict:
            conflicts += 1
    print(orjson.dumps({"enrolled": applied.enrolled, "conflicts": conflicts}).decode())
    make_uow.dispose()


def test_six_processes_pushing_the_episode_into_care_enrol_once(database_url: str) -> None:
    make_uow = sql_uow_factory(database_url)
    open_l1(make_uow)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, database_url, f"proc-{n}", str(REPO)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for n in range(6)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        outputs.append(orjson.loads(out))
    assert sum(1 for o in outputs if o["enrolled"]) == 1
    (fls,) = episodes(make_uow, FLS)
    source = episode(make_uow, "ep-1")
    assert source.version == 7  # open + one decision per process: none lost
    assert [k.episode_id for k in source.links] == [fls.id]
    all_chains_verify(make_uow)
    make_uow.dispose()


# -- replay ---------------------------------------------------------------------------------------


def replay_json(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "carepath.cli", "replay", "--json", *args, str(EXAMPLE)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return orjson.loads(done.stdout)


def test_replay_through_sqlite_reports_the_same_enrolment_as_in_memory() -> None:
    in_memory = [s.get("enrolled") for s in replay_json()["steps"]]
    through_sql = [s.get("enrolled") for s in replay_json("--database", "sqlite://")["steps"]]
    assert through_sql == in_memory
    assert in_memory.count(ENROLLED_STEP) == 1 and in_memory[1] == ENROLLED_STEP
    assert all(e in (None, ENROLLED_STEP) for e in in_memory)


# -- the scheduler ---------------------------------------------------------------------------------


def timed_care_registry() -> DefinitionRegistry:
    """The L1–L2 pathway with one more timer: three days in workup move the episode into
    conservative care (no shipped L1–L2 timer enters care or transfer)."""
    doc = copy.deepcopy(orjson.loads(DEFAULT_DEFINITION.read_bytes()))
    doc["rules"]["FU-TEST-WORKUP-TO-CARE"] = {
        "title": "test: workup presumed complete after three days",
        "refs": ["Decision"],
        "action": {"kind": "escalation", "text": "workup presumed complete"},
    }
    doc["timers"]["FU-TEST-WORKUP-TO-CARE"] = {
        "days": 3, "moves": {"from": ["workup"], "to": "conservative_care"},
    }  # fmt: skip
    doc["states"]["workup"]["timers"].append("FU-TEST-WORKUP-TO-CARE")
    fls = next(d for d in REG.currents() if d.id == FLS)
    return DefinitionRegistry([compile_definition(doc), fls])


@pytest.fixture
def timed(database_url: str) -> Iterator[tuple[Any, DefinitionRegistry]]:
    factory = sql_uow_factory(database_url)
    registry = timed_care_registry()
    open_l1(factory, registry=registry)
    usecases.observe(
        factory(), registry, "ep-1", PRESENTATION, at=T0, now=T0, actor="d", event_id="present"
    )
    assert episode(factory, "ep-1").state == "workup"
    yield factory, registry
    factory.dispose()


def test_a_timer_fired_by_the_scheduler_enrols_in_the_batch_transaction(
    timed: tuple[Any, DefinitionRegistry],
) -> None:
    from scheduler.worker import TimerWorker

    factory, registry = timed
    worker = TimerWorker(factory, registry, batch=10)
    assert worker.sweep(day(4)) >= 1
    source = episode(factory, "ep-1")
    assert source.state == "conservative_care"
    fls = the_enrolled(factory)
    assert fls.state == "assessment" and fls.fact("fracture_date") == "2026-03-03"
    assert [k.relation for k in fls.links] == ["enrolled_from"]
    timer_entry = audit(factory, "ep-1")[-1]
    assert timer_entry["kind"] == "timer" and timer_entry["timer"].startswith("FU-TEST-WORKUP")
    assert timer_entry["links"] == [link_dict(fls.id, FLS, "enrolled")]
    (opening,) = audit(factory, fls.id)
    assert opening["actor"] == timer_entry["actor"] and opening["at"] == timer_entry["at"]
    if factory.engine.dialect.name == "postgresql":  # written by the very same (sub)transaction
        with factory.engine.connect() as db:
            rows = db.exec_driver_sql(
                "SELECT xmin::text FROM episodes WHERE id IN (%(a)s, %(b)s)",
                {"a": "ep-1", "b": fls.id},
            ).all()
        assert len({r[0] for r in rows}) == 1
    assert worker.sweep(day(4)) == 0 and len(episodes(factory, FLS)) == 1
    all_chains_verify(factory)


def test_a_batch_whose_enrolment_conflicts_writes_neither_side(
    timed: tuple[Any, DefinitionRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the batch wrote each change of a use case in its own savepoint, so when the
    link to a live FLS episode conflicted (another writer moved it), the timer's source
    decision stayed written and committed with the batch: the L1–L2 episode in care, naming a
    link the FLS episode never got. Now a use case's changes share one savepoint."""
    from scheduler.worker import TimerWorker

    factory, registry = timed
    usecases.open_episode(
        factory(), registry, {"age": 70, "fracture_date": "2026-03-01"}, at=T0, now=T0,
        actor="fls", event_id="fls-open", episode_id="fls-wrist", patient_ref="MRN-1",
        pathway=FLS,
    )  # fmt: skip
    served = stale_live(monkeypatch, times=2)  # a conflict is transient: the sweep retries
    TimerWorker(factory, registry, batch=10).sweep(day(4))

    assert served == ["fls-wrist", "fls-wrist"]  # two attempts conflicted, the third linked
    source, live = episode(factory, "ep-1"), episode(factory, "fls-wrist")
    assert source.state == "conservative_care"
    assert [k.relation for k in source.links] == ["linked"]
    assert [k.relation for k in live.links] == ["linked_from"]  # both sides, or neither
    assert [r["kind"] for r in audit(factory, "fls-wrist")] == ["open", "link"]
    assert [r["kind"] for r in audit(factory, "ep-1")].count("timer") >= 1
    all_chains_verify(factory)


def test_two_episodes_of_one_patient_in_one_batch_open_one_fls_episode(
    timed: tuple[Any, DefinitionRegistry],
) -> None:
    """Regression: a deferred batch (PostgreSQL) queued the first episode's enrolment unwritten,
    so the second episode's look-up for the patient's live FLS episode missed it and opened a
    second one; the careful batch and every other unit of work link it instead."""
    from scheduler.worker import TimerWorker

    factory, registry = timed
    open_l1(factory, "ep-2", registry=registry, at=T0 + timedelta(minutes=1))
    usecases.observe(
        factory(), registry, "ep-2", PRESENTATION, at=T0 + timedelta(minutes=1),
        now=T0 + timedelta(minutes=1), actor="d", event_id="present-2",
    )  # fmt: skip
    TimerWorker(factory, registry, batch=10).sweep(day(4))

    (fls,) = episodes(factory, FLS)
    relations = {i: [k.relation for k in episode(factory, i).links] for i in ("ep-1", "ep-2")}
    assert sorted(relations.values()) == [["enrolled"], ["linked"]]
    assert sorted(k.relation for k in fls.links) == ["enrolled_from", "linked_from"]
    all_chains_verify(factory)
