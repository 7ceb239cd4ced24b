"""The FHIR export: a PlanDefinition that validates as R4B and carries every rule's criterion,
citations and timing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B.plandefinition import PlanDefinition
from typer.testing import CliRunner

from carepath.cli.definition import definition_app
from carepath.fhir.plan_definition import plan_definition
from pathway.definition import load_definition


def actions(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for action in items:
        yield action
        yield from actions(action.get("action", []))


def by_rule(resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for action in actions(resource["action"]):
        out.setdefault(action["id"].split(".")[1 if "." in action["id"] else 0], []).append(action)
    return out


def test_export_validates_as_an_r4b_plan_definition_and_says_so() -> None:
    resource = plan_definition(load_definition())
    PlanDefinition.model_validate(resource)  # round trip through the R4B model
    assert resource["resourceType"] == "PlanDefinition"
    assert resource["meta"]["tag"][0]["code"] == "R4B"
    assert resource["version"] == load_definition().version


def test_every_rule_is_an_action_citing_its_references() -> None:
    definition = load_definition()
    rules = by_rule(plan_definition(definition))
    for rule in definition.rules.values():
        assert rule.id in rules, rule.id
        cited = {a["label"] for a in rules[rule.id][0]["documentation"]}
        assert cited == set(rule.refs)


def test_conditions_are_the_criteria_as_text() -> None:
    rules = by_rule(plan_definition(load_definition()))
    (instab,) = rules["TX-INSTAB"]
    expression = instab["condition"][0]["expression"]["expression"]
    assert "vertebral_collapse_pct > 50" in expression
    assert instab["relatedAction"] == [
        {"actionId": "immediate-transfer", "relationship": "before-start"}
    ]
    (kypho,) = rules["AUG-KYPHOPLASTY"]
    assert "condition neuro_intact" in kypho["condition"][0]["expression"]["expression"]


def test_timers_carry_their_delay_in_days() -> None:
    rules = by_rule(plan_definition(load_definition()))
    (reassess,) = rules["FU-REASSESS"]
    assert reassess["timingDuration"] == {
        "value": 28, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"
    }  # fmt: skip
    assert reassess["textEquivalent"] == "care day 28 → Reassessment"


def test_action_ids_are_unique_fhir_ids() -> None:
    ids = [a["id"] for a in actions(plan_definition(load_definition())["action"])]
    assert len(ids) == len(set(ids))
    assert all(
        set(i) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
        for i in ids
    )


def test_cli_export_prints_the_resource() -> None:
    result = CliRunner().invoke(definition_app, ["export", "--format", "fhir"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["resourceType"] == "PlanDefinition"
