"""The definition file: loading validates it, every number is data, versions follow content."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from pathway.definition import DEFAULT_DEFINITION, compile_definition, load_definition
from pathway.errors import InvalidDefinition
from tests.support.protocol import protocol_file


def document() -> dict[str, Any]:
    return copy.deepcopy(orjson.loads(DEFAULT_DEFINITION.read_bytes()))


def test_shipped_definition_loads_with_a_content_version() -> None:
    definition = load_definition()
    assert re.fullmatch(r"l1-l2-compression-fracture@[0-9a-f]{12}", definition.version)
    assert definition.version.endswith(definition.content_hash[:12])


def test_every_rule_has_a_citation_text() -> None:
    for rule in load_definition().rules.values():
        assert rule.refs and len(rule.citations) == len(rule.refs), rule.id
        assert all(c.strip() for c in rule.citations), rule.id


def test_definition_holds_exactly_the_rule_ids_of_the_protocol() -> None:
    text = protocol_file("PROTOCOL.md").read_text()
    ids = set(re.findall(r"^\| ((?:TX|IN|WU|CC|T|FU|RA|PM|DR|AUG)-[A-Z0-9-]+) \|", text, re.M))
    ids |= {"ADM-CLOSE"}
    assert set(load_definition().rules) == ids
    assert len(ids) == 39


def test_changing_a_number_makes_a_new_version() -> None:
    doc = document()
    before = compile_definition(doc).version
    doc["timers"]["FU-REASSESS"]["days"] = 35
    assert compile_definition(doc).version != before


def test_key_order_does_not_change_the_version() -> None:
    doc = document()
    reordered = dict(reversed(list(doc.items())))
    assert compile_definition(reordered).version == compile_definition(doc).version


def _mutations() -> list[tuple[str, Any, str]]:
    def unknown_fact(d: dict) -> None:
        d["rules"]["TX-MALIG"]["when"] = {"fact": "tumour_size", ">": 3}

    def no_citation(d: dict) -> None:
        d["rules"]["WU-CT"]["refs"] = []

    def unknown_reference(d: dict) -> None:
        d["rules"]["WU-CT"]["refs"] = ["99"]

    def unknown_timer_rule(d: dict) -> None:
        d["timers"]["FU-NEVER"] = {"days": 3}

    def state_sets_unknown_timer(d: dict) -> None:
        d["states"]["workup"]["timers"] = ["FU-NOPE"]

    def unreachable_state(d: dict) -> None:
        d["states"]["limbo"] = {
            "label": "Limbo",
            "routes": [{"rules": ["RA-CONTINUE"], "to": "discharged"}],
        }

    def dead_end(d: dict) -> None:
        d["states"]["workup"]["routes"][0]["to"] = None

    def unused_rule(d: dict) -> None:
        d["rules"]["XX-UNUSED"] = {"title": "never used", "refs": ["3"]}

    def route_to_unknown_state(d: dict) -> None:
        d["states"]["intake"]["routes"][0]["to"] = "nowhere"

    def bad_operator(d: dict) -> None:
        d["rules"]["TX-MALIG"]["when"] = {"fact": "pain_score", "~": 3}

    def cyclic_rules(d: dict) -> None:
        d["rules"]["WU-MALIG"]["when"] = {"rule": "WU-MRI-CONTRAST"}

    def bad_fact_type(d: dict) -> None:
        d["facts"]["age"]["type"] = "decimal"

    return [
        ("unknown fact", unknown_fact, "unknown fact 'tumour_size'"),
        ("no citation", no_citation, "no citation"),
        ("unknown reference", unknown_reference, "'99' is not one of the references"),
        ("timer naming no rule", unknown_timer_rule, "names no rule"),
        ("state sets unknown timer", state_sets_unknown_timer, "unknown timer 'FU-NOPE'"),
        ("unreachable state", unreachable_state, "unreachable"),
        ("dead end", dead_end, "dead end"),
        ("unused rule", unused_rule, "never used"),
        ("route to unknown state", route_to_unknown_state, "unknown state 'nowhere'"),
        ("bad operator", bad_operator, "exactly one operator"),
        ("cyclic rule references", cyclic_rules, "cycle"),
        ("bad fact type", bad_fact_type, "facts.age.type"),
    ]


@pytest.mark.parametrize(
    ("name", "mutate", "message"), _mutations(), ids=[m[0] for m in _mutations()]
)
def test_loading_rejects_a_broken_definition_naming_the_problem(
    name: str, mutate: Any, message: str
) -> None:
    doc = document()
    mutate(doc)
    with pytest.raises(InvalidDefinition, match=re.escape(message)):
        compile_definition(doc)


def test_a_definition_file_that_is_not_json_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidDefinition, match="not valid JSON"):
        load_definition(bad)


def test_yaml_definition_of_the_same_shape_has_the_same_version(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "pathway.yaml"
    path.write_text(yaml.safe_dump(document(), allow_unicode=True))
    assert load_definition(path).version == load_definition().version


def test_the_state_graph_is_one_transitions_machine_with_no_auto_transitions() -> None:
    graph = load_definition().graph
    assert not graph.machine.auto_transitions
    assert graph.allows(
        "TX-NEURO|TX-INSTAB|TX-MALIG|TX-MULTI", "reassessment", "immediate_transfer"
    )
    assert not graph.allows("RA-RESOLVED", "conservative_care", "discharged")
    assert graph.reachable() == set(graph.states)
