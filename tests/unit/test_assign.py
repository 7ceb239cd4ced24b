"""The ``assign`` decision in the pure core: only the owner changes, the payload carries it,
the request hash binds it, and the input rule for a coordinator's name."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from carepath import inputs
from pathway.audit import AuditKey, entry_for
from pathway.definition import load_definition
from pathway.engine import decide, open_episode
from pathway.idempotency import request_hash
from pathway.model import Assign, Episode, Open

DEFINITION = load_definition()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY = AuditKey.ephemeral()


def _opened() -> Episode:
    return open_episode(DEFINITION, Open("o-1", T0, "t", {"age": 70}), "ep-1", T0).episode


def test_assign_changes_the_owner_and_the_version_and_nothing_else() -> None:
    episode = _opened()
    decision = decide(DEFINITION, episode, Assign("a-1", T0 + timedelta(hours=1), "t", "alice"), T0)
    after = decision.episode
    assert after.owner == "alice" and episode.owner is None
    assert after.version == episode.version + 1
    assert {**asdict(after), "owner": None, "version": 0} == {**asdict(episode), "version": 0}
    assert not (decision.transitions or decision.fired or decision.timers_set)
    assert not (decision.timers_cancelled or decision.tasks_opened or decision.tasks_closed)
    assert decision.observation is None


def test_the_owner_is_in_the_hashed_payload_of_an_assign_and_only_there() -> None:
    key = KEY
    episode = _opened()
    assigned = decide(DEFINITION, episode, Assign("a-1", T0, "t", "alice"), T0)
    cleared = decide(DEFINITION, assigned.episode, Assign("a-2", T0, "t", None), T0)
    first = entry_for(assigned, T0, key=key).body()
    assert first["kind"] == "assign" and first["owner"] == "alice"
    assert entry_for(cleared, T0, key=key).body()["owner"] is None
    opened = open_episode(DEFINITION, Open("o-1", T0, "t", {"age": 70}), "ep-1", T0)
    assert "owner" not in entry_for(opened, T0, key=key).body()
    other = decide(DEFINITION, episode, Assign("a-1", T0, "t", "bob"), T0)
    assert entry_for(other, T0, key=key).hash != entry_for(assigned, T0, key=key).hash


def test_the_request_hash_binds_the_owner() -> None:
    a = Assign("k", T0, "token:x", "alice")
    assert request_hash(a, "ep-1", at_given=False) == request_hash(
        Assign("k", T0 + timedelta(1), "token:x", "alice"), "ep-1", at_given=False
    )
    assert request_hash(a, "ep-1", at_given=False) != request_hash(
        Assign("k", T0, "token:x", "bob"), "ep-1", at_given=False
    )
    assert request_hash(a, "ep-1", at_given=False) != request_hash(
        Assign("k", T0, "token:x", None), "ep-1", at_given=False
    )


@pytest.mark.parametrize("name", ["alice", "Dr. O'Neil", "é" * 200, "nonesuch", "mel"])
def test_a_coordinators_name_is_accepted(name: str) -> None:
    assert inputs.owner(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "me", "ME", "none", "None", "token:alice", "Token:x", " a", "a ", "a\x00", "x" * 201],
)
def test_a_name_that_is_a_word_a_token_or_not_printable_is_refused(name: str) -> None:
    with pytest.raises(inputs.InputError) as refused:
        inputs.owner(name, "--to")
    assert refused.value.field == "--to"
