"""Idempotency keys are the caller's own and bound to the request (``pathway.idempotency``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pathway.definition import load_definition
from pathway.errors import IdempotencyKeyReused, InvalidRequest
from pathway.idempotency import request_hash, scoped_event_id
from pathway.model import Close, Observe, Open
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork
from pathway.usecases import DefinitionRegistry, handle, timer_event_id

DEFS = DefinitionRegistry(load_definition())
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
A, B = "token:a", "token:b"


def _open(uow: InMemoryUnitOfWork, key: str, caller: str, mrn: str) -> str:
    event = Open(key, T0, caller, {"age": 70}, mrn)
    return handle(
        uow, DEFS, None, event, T0, caller=caller, at_given=False
    ).applied.outcome.episode_id


def _observe(uow: InMemoryUnitOfWork, episode_id: str, key: str, caller: str, pain: int) -> object:
    event = Observe(key, T0, caller, {"pain_score": pain})
    return handle(uow, DEFS, episode_id, event, T0, caller=caller, at_given=False).applied


def _versions(uow: InMemoryUnitOfWork) -> dict[str, int]:
    return {i: e.version for i, e in uow.store.episodes.items()}


def test_another_caller_reusing_a_key_opens_its_own_episode_and_sees_nothing_of_the_first() -> None:
    uow = InMemoryUnitOfWork(InMemoryStore())
    first = _open(uow, "k-1", A, "MRN-A")
    second = handle(
        uow, DEFS, None, Open("k-1", T0, B, {"age": 70}, "MRN-B"), T0, caller=B, at_given=False
    ).applied
    assert not second.outcome.repeated and second.outcome.episode_id != first
    assert uow.store.episodes[second.outcome.episode_id].patient_ref == "MRN-B"
    assert len(uow.store.episodes) == 2


def test_the_same_caller_key_and_request_replays_the_first_outcome() -> None:
    uow = InMemoryUnitOfWork(InMemoryStore())
    episode_id = _open(uow, "o-1", A, "MRN-A")
    assert _open(uow, "o-1", A, "MRN-A") == episode_id
    first = _observe(uow, episode_id, "v-1", A, 6)
    before = _versions(uow)
    again = _observe(uow, episode_id, "v-1", A, 6)
    assert again.outcome.repeated and again.outcome.event_id == first.outcome.event_id
    assert _versions(uow) == before


@pytest.mark.parametrize(
    ("part", "send"),
    [
        ("body", lambda uow, ep, other: _observe(uow, ep, "v-1", A, 2)),
        ("episode", lambda uow, ep, other: _observe(uow, other, "v-1", A, 6)),
        (
            "command",
            lambda uow, ep, other: handle(
                uow, DEFS, ep, Close("v-1", T0, A, "declined"), T0, caller=A, at_given=False
            ),
        ),
    ],
)
def test_the_same_callers_key_with_another_request_is_refused_and_writes_nothing(
    part: str, send: object
) -> None:
    uow = InMemoryUnitOfWork(InMemoryStore())
    episode_id, other = _open(uow, "o-1", A, "MRN-A"), _open(uow, "o-2", A, "MRN-C")
    _observe(uow, episode_id, "v-1", A, 6)
    before = _versions(uow)
    with pytest.raises(IdempotencyKeyReused) as refused:
        send(uow, episode_id, other)  # type: ignore[operator]
    assert refused.value.key == "v-1" and refused.value.part == part
    assert "'v-1'" in str(refused.value) and part in str(refused.value)
    assert _versions(uow) == before


def test_a_clinical_time_the_caller_gave_is_part_of_the_request_a_defaulted_one_is_not() -> None:
    event = Observe("k", T0, "x", {"pain_score": 3})
    later = Observe("k", T0 + timedelta(minutes=3), "y", {"pain_score": 3})
    assert request_hash(event, "ep", at_given=False) == request_hash(later, "ep", at_given=False)
    assert request_hash(event, "ep", at_given=True) != request_hash(later, "ep", at_given=True)


def test_keys_of_different_callers_are_different_event_ids() -> None:
    assert scoped_event_id(A, "k") != scoped_event_id(B, "k") != "k"
    assert scoped_event_id(A, "k") == scoped_event_id(A, "k")


def test_reserved_timer_and_enrolment_keys_stay_refused_for_a_caller() -> None:
    uow = InMemoryUnitOfWork(InMemoryStore())
    episode_id = _open(uow, "o-1", A, "MRN-A")
    for key in (timer_event_id(episode_id, "FU-INTAKE-OVERDUE@1"), "enrol:x"):
        with pytest.raises(InvalidRequest) as refused:
            _observe(uow, episode_id, key, A, 5)
        assert refused.value.field == "event_id"


def test_without_a_caller_the_event_id_is_kept_as_given() -> None:
    uow = InMemoryUnitOfWork(InMemoryStore())
    handled = handle(uow, DEFS, "ep-1", Open("plain-1", T0, "x", {"age": 70}), T0)
    assert handled.applied.outcome.event_id == "plain-1"
    assert handled.applied.outcome.request_hash is None


def test_the_request_hash_takes_any_input_the_engine_has_not_judged_yet() -> None:
    odd = Observe("k", T0, "x", {"note\ud800": ["\x00", "\udfff"], "n": 1.5})
    assert len(request_hash(odd, None, at_given=True)) == 64
    assert len(scoped_event_id("cli:\udcff", "key\ud800")) == 32
