"""Ownership (issue 11, item 3) on every backend: an ``assign`` is an audited decision that
changes only the owner, rebuilt from the log; enrolment opens episodes unassigned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import pytest

from pathway import usecases
from pathway.audit_rebuild import first_difference, rebuild
from pathway.definition import load_definition, shipped_definition_files
from pathway.errors import EpisodeClosed, IdempotencyKeyReused
from pathway.model import Assign, Episode
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import DefinitionRegistry
from tests.support.episode_driver import (
    DEFS,
    PRESENTATION,
    PROFILE,
    WORKUP,
    day,
    in_care,
    rebuild_from_audit,
)

Factory = Callable[[], UnitOfWork]


def _assign(
    make_uow: Factory, episode_id: str, owner: str | None, at_day: float, **kw: object
) -> usecases.Handled:
    event = Assign(str(kw.pop("event_id", f"{episode_id}/as-{owner}-{at_day}")), day(at_day),
                   str(kw.pop("actor", "nurse")), owner)  # fmt: skip
    return usecases.handle(make_uow(), DEFS, episode_id, event, day(at_day), **kw)  # type: ignore[arg-type]


def _episode(make_uow: Factory, episode_id: str) -> Episode:
    with make_uow() as uow:
        return uow.get_episode(episode_id)


def test_assign_reassign_unassign_change_only_the_owner_each_one_audited(
    uow_factory: Factory,
) -> None:
    course = in_care(uow_factory, "ep-1")
    before = _episode(uow_factory, "ep-1")
    assert before.owner is None
    for n, owner in enumerate(("alice", "bob", None), start=1):
        handled = _assign(uow_factory, "ep-1", owner, 1)
        decision = handled.applied.decision
        assert decision is not None and decision.transitions == []
        assert decision.timers_set == decision.timers_cancelled == [] and decision.fired == []
        after = _episode(uow_factory, "ep-1")
        assert after.owner == owner and after.version == before.version + n
        same = {**asdict(after), "owner": None, "version": 0, "audit_hash": ""}
        assert same == {**asdict(before), "version": 0, "audit_hash": ""}  # nothing else moved
    with uow_factory() as uow:
        records = uow.audit_records("ep-1")
        assigns = [r for r in records if r.kind == "assign"]
        assert [r.body()["owner"] for r in assigns] == ["alice", "bob", None]
        assert all(r.state_from == r.state_to == "conservative_care" for r in assigns)
        assert [r.actor for r in assigns] == ["nurse"] * 3
        # the engine replays the log to the stored episode, entry for entry
        stored = uow.get_episode("ep-1")
        assert rebuild_from_audit(records, stored, uow.audit_key).owner is None
    assert course.episode().state == "conservative_care"


def test_the_owner_is_rebuilt_from_the_log_and_an_edit_of_it_is_a_difference(
    uow_factory: Factory,
) -> None:
    in_care(uow_factory, "ep-1")
    _assign(uow_factory, "ep-1", "alice", 1)
    with uow_factory() as uow:
        entries = [(r.payload, r.hash) for r in uow.audit_records("ep-1")]
        stored = uow.get_episode("ep-1")
    expected = rebuild("ep-1", entries, DEFS.get)
    assert expected is not None and expected.episode["owner"] == "alice"
    assert stored.owner == "alice"
    edited = rebuild("ep-1", entries, DEFS.get)
    assert edited is not None
    edited.episode["owner"] = "mallory"
    diff = first_difference("ep-1", edited, expected)
    assert diff is not None and diff.what == "owner"
    assert diff.message == "episode ep-1: owner is 'mallory', expected 'alice'"


def test_an_ended_episode_cannot_be_assigned(uow_factory: Factory) -> None:
    course = in_care(uow_factory, "ep-1")
    course.close("declined", 1)
    with pytest.raises(EpisodeClosed):
        _assign(uow_factory, "ep-1", "alice", 2)
    assert _episode(uow_factory, "ep-1").owner is None


def test_a_callers_key_applies_once_and_is_refused_for_another_owner(
    uow_factory: Factory,
) -> None:
    in_care(uow_factory, "ep-1")
    first = _assign(uow_factory, "ep-1", "alice", 1, event_id="k-1", caller="token:t1")
    again = _assign(uow_factory, "ep-1", "alice", 1, event_id="k-1", caller="token:t1")
    assert again.applied.outcome.repeated and again.applied.decision is None
    assert again.applied.outcome.version == first.applied.outcome.version
    with pytest.raises(IdempotencyKeyReused) as refused:
        _assign(uow_factory, "ep-1", "bob", 1, event_id="k-1", caller="token:t1")
    assert refused.value.part == "body"
    other = _assign(uow_factory, "ep-1", "bob", 1, event_id="k-1", caller="token:t2")
    assert not other.applied.outcome.repeated  # another caller's key is another command
    assert _episode(uow_factory, "ep-1").owner == "bob"


def test_an_fls_episode_opened_by_enrolment_starts_unassigned(uow_factory: Factory) -> None:
    """Even when the L1–L2 episode that enrols it has an owner: the FLS team picks it up."""
    registry = DefinitionRegistry([load_definition(p) for p in shipped_definition_files()])
    usecases.open_episode(
        uow_factory(), registry, PROFILE, at=day(0), now=day(0), actor="t", episode_id="ep-1",
        patient_ref="MRN-1",
    )  # fmt: skip
    usecases.handle(uow_factory(), registry, "ep-1", Assign("a-1", day(0), "t", "alice"), day(0))
    applied = usecases.observe(
        uow_factory(), registry, "ep-1", {**PRESENTATION, **WORKUP}, at=day(0), now=day(0),
        actor="t",
    )  # fmt: skip
    assert applied.enrolled == (("fracture-liaison", "FLS-ENROL-SPINE"),)
    links = _episode(uow_factory, "ep-1").links
    fls = _episode(uow_factory, links[0].episode_id)
    assert fls.pathway == "fracture-liaison" and fls.owner is None
    assert _episode(uow_factory, "ep-1").owner == "alice"
    with uow_factory() as uow:
        opening = uow.audit_records(fls.id)[0]
    assert opening.kind == "open" and "owner" not in opening.body()
