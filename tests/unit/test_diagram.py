"""The mermaid diagram, read back: every state, every edge with the rule ids that cause it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from carepath.cli.definition import definition_app
from pathway.definition import load_definition
from pathway.diagram import mermaid
from pathway.errors import InvalidRequest
from tests.support.mermaid import parse_mermaid
from tests.support.protocol import REPOSITORY


def test_diagram_is_a_mermaid_state_diagram_with_a_yaml_title() -> None:
    text = mermaid(load_definition())
    lines = text.splitlines()
    assert lines[0] == "---" and lines[1].startswith("title: ") and lines[2] == "---"
    assert lines[3] == "stateDiagram-v2"
    assert "  [*] --> intake" in lines
    assert not any(line.lstrip().startswith("Class ") for line in lines)


def test_every_state_and_every_rule_of_every_edge_is_in_the_diagram() -> None:
    definition = load_definition()
    parsed = parse_mermaid(mermaid(definition))
    assert parsed["states"] == set(definition.states)
    for trigger, source, dest in definition.graph.edges:
        assert (source, dest) in parsed["edges"], (source, dest)
        assert set(trigger.split("|")) <= parsed["edges"][(source, dest)], trigger
    edge_rules = {r for rules in parsed["edges"].values() for r in rules}
    assert edge_rules <= set(definition.rules)


def test_timers_are_labelled_with_when_they_fire() -> None:
    text = mermaid(load_definition())
    assert "FU-REASSESS (care day 28)" in text
    assert "FU-3MONTH (care day 90)" in text
    assert "FU-NEXT-REVIEW (28 days after RA-CONTINUE)" in text
    assert "note right of intake : FU-INTAKE-OVERDUE (1 day in intake)" in text


def test_terminal_states_end_the_diagram() -> None:
    definition = load_definition()
    text = mermaid(definition)
    for name, state in definition.states.items():
        assert (f"  {name} --> [*]" in text) == state.terminal


def test_current_state_is_highlighted() -> None:
    parsed = parse_mermaid(mermaid(load_definition(), current_state="reassessment"))
    assert parsed["highlighted"] == ["reassessment"]
    assert parse_mermaid(mermaid(load_definition()))["highlighted"] == []


def test_unknown_current_state_is_refused_naming_the_states() -> None:
    with pytest.raises(InvalidRequest, match="expected one of intake, workup"):
        mermaid(load_definition(), current_state="limbo")


def test_cli_diagram_prints_mermaid_and_refuses_svg_in_one_line() -> None:
    runner = CliRunner()
    result = runner.invoke(definition_app, ["diagram", "--state", "workup"])
    assert result.exit_code == 0
    assert parse_mermaid(result.stdout)["highlighted"] == ["workup"]
    refused = runner.invoke(definition_app, ["diagram", "--format", "svg"])
    assert refused.exit_code == 2
    assert refused.output.startswith("carepath: error: svg output needs the graphviz")
    assert len(refused.output.strip().splitlines()) == 1


def test_readme_embeds_the_current_diagram_of_the_shipped_pathway() -> None:
    """The README's mermaid block is what `carepath definition diagram` prints today."""

    from pathway.definition import load_definition
    from pathway.diagram import mermaid

    readme = (REPOSITORY / "README.md").read_text()
    assert mermaid(load_definition()).strip() in readme
