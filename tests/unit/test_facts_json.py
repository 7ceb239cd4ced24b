"""``storage.writes`` builds the facts and outcome columns faster than by encoding a dict each
time (cached per-fact JSON; tuples written as they are): the text stored must stay exactly what
encoding the dict gives, whatever the facts, and a fact must never be served from a stale cache."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from pathway.model import Episode, FactValue
from pathway.unit_of_work import Outcome
from storage import writes
from storage.columns import to_json
from storage.writes import _facts_json, outcome_json

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def encoded(ep: Episode) -> str:
    """The facts column as it was always built: the dict of each fact, encoded at once."""
    return to_json(
        {
            n: {"value": f.value, "observation_id": f.observation_id, "at": f.at}
            for n, f in ep.facts.items()
        }
    )


def episode(facts: dict[str, FactValue]) -> Episode:
    return Episode(
        id="e1",
        definition_version="d@1",
        state="s",
        opened_at=T0,
        state_entered_at=T0,
        facts=facts,
    )


def test_the_facts_column_is_the_encoded_dict_across_decisions_that_carry_facts_over() -> None:
    rnd = random.Random(22)
    values = [7, 0, -3, 2.5, True, False, None, "L1", 'é"\\', ("L1", "L2"), ["x"], {"a": 1}]
    facts: dict[str, FactValue] = {}
    for i in range(3000):
        facts = dict(facts)  # as the engine does: the facts not observed carried over
        for _ in range(rnd.randint(0, 3)):
            name = rnd.choice("abcdefgh")
            at = T0 + timedelta(seconds=rnd.randint(0, 9))
            facts[name] = FactValue(rnd.choice(values), f"o{i}", at)
        if rnd.random() < 0.05:
            facts.pop(rnd.choice(list(facts) or ["a"]), None)
        ep = episode(facts)
        assert _facts_json(ep) == encoded(ep)


def test_a_fact_moved_to_another_name_is_not_served_from_its_old_name() -> None:
    fact = FactValue(1, "o1", T0)
    assert (
        _facts_json(episode({"a": fact}))
        == '{"a":' + to_json({"value": 1, "observation_id": "o1", "at": T0}) + "}"
    )
    assert _facts_json(episode({"b": fact})).startswith('{"b":')


def test_a_fact_whose_value_is_mutable_is_encoded_each_time() -> None:
    levels = ["L1"]
    fact = FactValue(levels, "o1", T0)
    assert '"value":["L1"]' in _facts_json(episode({"levels": fact}))
    levels.append("L2")  # no caller should: if one does, the column still says what it holds
    assert '"value":["L1","L2"]' in _facts_json(episode({"levels": fact}))
    assert id(fact) not in writes._FACT_JSON


def test_a_tuple_of_scalars_is_cached_and_a_tuple_holding_a_list_is_not() -> None:
    kept = FactValue(("L1", "L2"), "o1", T0)
    assert '"value":["L1","L2"]' in _facts_json(episode({"levels": kept}))
    assert id(kept) in writes._FACT_JSON
    assert _facts_json(episode({"levels": kept})) == _facts_json(episode({"levels": kept}))
    inner = ["L1"]
    mutable = FactValue((inner,), "o2", T0)
    assert '"value":[["L1"]]' in _facts_json(episode({"levels": mutable}))
    inner.append("L2")
    assert '"value":[["L1","L2"]]' in _facts_json(episode({"levels": mutable}))
    assert id(mutable) not in writes._FACT_JSON


def test_the_facts_cache_is_bounded() -> None:
    for i in range(writes._FACT_JSON_LIMIT + 10):
        _facts_json(episode({"a": FactValue(i, "o", T0)}))
    assert len(writes._FACT_JSON) <= writes._FACT_JSON_LIMIT


def test_the_outcome_column_is_to_dict_without_repeated() -> None:
    for outcome in (
        Outcome("ev", "e1", "observe", 3, "s"),
        Outcome(
            "ev",
            "e1",
            "observe",
            4,
            "t",
            rules=("r1", "r2"),
            refused=("r3",),
            transitions=(("s", "t", ("r1",)), ("t", "u", ())),
            repeated=True,
            caller="c",
            idempotency_key="k",
            request_hash="h",
        ),
    ):
        body = outcome.to_dict()
        del body["repeated"]
        assert outcome_json(outcome) == to_json(body)
