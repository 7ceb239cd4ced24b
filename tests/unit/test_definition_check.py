"""The exhaustive safety check: clean on the shipped definition, and it catches seeded mistakes.

Each mutation edits the shipped definition document the way a careless change would, compiles
it, and expects the property it breaks to be reported with a counterexample whose scenario file,
replayed against the mutated definition, reproduces the violating state.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from carepath.cli.definition import definition_app
from carepath.replay.runner import replay
from carepath.replay.scenario import parse_scenario
from pathway.checking import explore
from pathway.checking.explore import CheckReport, Violation, check_definition
from pathway.definition import DEFAULT_DEFINITION, Definition, compile_definition, load_definition
from pathway.errors import InvalidDefinition
from pathway.usecases import DefinitionRegistry

Doc = dict[str, Any]


def shipped_document() -> Doc:
    return orjson.loads(DEFAULT_DEFINITION.read_bytes())


@cache
def shipped_report() -> CheckReport:
    return check_definition(load_definition())


def mutated(mutate: Callable[[Doc], None]) -> tuple[Doc, Definition]:
    doc = copy.deepcopy(shipped_document())
    mutate(doc)
    return doc, compile_definition(doc)


def violation(report: CheckReport, prop: str) -> Violation:
    found = [v for v in report.violations if v.property == prop]
    assert found, f"expected a {prop} violation, got {[v.property for v in report.violations]}"
    return found[0]


def assert_replay_reproduces(definition: Definition, v: Violation) -> dict[str, Any]:
    """The counterexample scenario, replayed by the real replay, ends its last step in the
    violating state with the rules the check saw (the file's own ``expect``)."""
    assert v.scenario is not None and v.path
    scenario = parse_scenario(orjson.dumps(v.scenario), "counterexample.json")
    result = replay(scenario, DefinitionRegistry(definition))
    assert result.failures == (), result.failures
    (expect,) = v.scenario["expect"]
    step = result.output["steps"][expect["step"]]
    assert step["state"] == expect["state"]
    assert expect["step"] == len(v.scenario["events"]) - 1
    return step


# --- mutations ----------------------------------------------------------------------------


def tx_neuro_dropped_in(state: str) -> Callable[[Doc], None]:
    """The TX route moved from ``on_every_event`` into every live state, without TX-NEURO in one."""

    def mutate(doc: Doc) -> None:
        (tx,) = doc.pop("on_every_event")
        for name, s in doc["states"].items():
            if not s.get("terminal"):
                rules = [r for r in tx["rules"] if not (name == state and r == "TX-NEURO")]
                s["routes"] = [{**tx, "rules": rules}, *s.get("routes", [])]

    return mutate


def collapse_at_or_over_50(doc: Doc) -> None:
    doc["rules"]["TX-INSTAB"]["when"]["any"][1] = {"fact": "vertebral_collapse_pct", ">=": 50}


def discharge_without_osteoporosis_care(doc: Doc) -> None:
    doc["rules"]["RA-RESOLVED"]["when"] = {"condition": "resolved"}


def kyphoplasty_from_day_60(doc: Doc) -> None:
    doc["rules"]["AUG-KYPHOPLASTY"]["when"]["all"][0] = {"fact": "care_day", ">=": 60}


def vertebroplasty_allowed(doc: Doc) -> None:
    doc["requests"]["vertebroplasty"] = {
        "rule": "AUG-NO-VERTEBROPLASTY",
        "from": ["conservative_care", "reassessment"],
        "to": "augmentation_consideration",
    }


def overdue_review_only_a_task(doc: Doc) -> None:
    doc["rules"]["FU-REASSESS-OVERDUE"]["action"]["kind"] = "task"


def workup_never_completes(doc: Doc) -> None:
    doc["rules"]["WU-COMPLETE"]["when"] = {
        "all": [{"fact": "mri_done", "is": True}, {"fact": "mri_done", "is": False}]
    }


# --- the shipped definition ---------------------------------------------------------------


def test_shipped_definition_breaks_no_safety_property() -> None:
    report = shipped_report()
    assert report.ok, [f"{v.property}: {v.message}" for v in report.violations]
    assert report.complete
    assert report.states_explored > 1000 and report.events_run > report.states_explored
    assert report.pruned_facts == ["sex"]  # the only fact no criterion reads


def test_witnesses_straddle_every_threshold() -> None:
    w = shipped_report().witnesses
    assert w["vertebral_collapse_pct"] == [50, 51]
    assert {50, 51, 64, 65} <= set(w["age"])
    assert w["egfr"] == [29, 30]
    assert {3, 4, 6, 7} <= set(w["pain_score"]) and len(w["pain_score"]) > 4  # DR-PAIN compares
    assert [len(levels) for levels in w["fracture_levels"]] == [1, 2]
    assert w["neuro_deficit_motor"] == [True, False]


def test_profiles_make_every_order_only_rule_fire() -> None:
    profiles = shipped_report().profiles
    assert profiles[0] == {}
    assert any(p.get("mri_contraindicated") and p.get("ct_contraindicated") for p in profiles)
    assert any(p.get("age", 0) >= 65 for p in profiles)
    assert any(p.get("egfr", 100) < 30 for p in profiles)


def test_collapse_of_exactly_50_stays_and_51_transfers_in_the_report() -> None:
    seen = shipped_report().tx_by_witness["vertebral_collapse_pct"]
    assert seen == {"50": [], "51": ["TX-INSTAB"]}


# --- seeded mistakes ----------------------------------------------------------------------


@pytest.mark.parametrize("state", ["intake", "workup", "conservative_care", "reassessment"])
def test_tx_neuro_dropped_from_one_state_is_a_p1_counterexample(state: str) -> None:
    _, definition = mutated(tx_neuro_dropped_in(state))
    report = check_definition(definition, first=True)
    v = violation(report, "P1")
    assert "TX-NEURO" in v.message and repr(state) in v.message
    step = assert_replay_reproduces(definition, v)
    assert step["state"] == state and "TX-NEURO" not in step["rules"]


def test_collapse_at_or_over_50_is_no_safety_violation_but_moves_the_boundary() -> None:
    """``>= 50`` breaks PROTOCOL.md's "50 % exactly does not fire", which is a rule, not one of
    the five safety properties: the check passes, and its boundary table shows 50 transferring."""
    _, definition = mutated(collapse_at_or_over_50)
    report = check_definition(definition)
    assert report.ok
    assert report.witnesses["vertebral_collapse_pct"] == [49, 50]
    assert report.tx_by_witness["vertebral_collapse_pct"]["50"] == ["TX-INSTAB"]
    assert shipped_report().tx_by_witness["vertebral_collapse_pct"]["50"] == []


@cache
def discharge_without_osteoporosis_care_report() -> tuple[Definition, CheckReport]:
    _, definition = mutated(discharge_without_osteoporosis_care)
    return definition, check_definition(definition)


def test_discharge_without_osteoporosis_care_is_a_p3_counterexample() -> None:
    definition, report = discharge_without_osteoporosis_care_report()
    v = violation(report, "P3")
    assert "dxa_done" in v.message
    step = assert_replay_reproduces(definition, v)
    assert step["state"] == "discharged" and "RA-RESOLVED" in step["rules"]


def test_first_stops_at_the_case_that_breaks_a_property_with_the_same_counterexample() -> None:
    """``first`` (``definition check --first``) ends the walk after the case where a property
    first breaks: the same shortest counterexample as the whole walk's, from far fewer cases,
    and no whole-walk verdict on a walk cut short."""
    definition, whole = discharge_without_osteoporosis_care_report()
    quick = check_definition(definition, first=True)
    assert whole.complete and not whole.stopped_at_first
    assert quick.stopped_at_first and not quick.complete
    assert quick.states_explored * 5 < whole.states_explored
    assert quick.violations and all(v in whole.violations for v in quick.violations)
    assert violation(quick, "P3") == violation(whole, "P3")
    whole_walk = {"reachability", "rule-coverage", "dead-end"}  # verdicts that need every case
    assert not whole_walk & {v.property for v in quick.violations}


def test_first_still_reports_a_walk_cut_short_by_its_limit() -> None:
    """A clean walk that reaches ``limit`` is incomplete, ``first`` or not: never a clean bill."""
    report = check_definition(load_definition(), limit=50, first=True)
    assert not report.complete and not report.stopped_at_first
    assert [v.property for v in report.violations] == ["incomplete"]


def test_kyphoplasty_at_day_60_is_a_p4_counterexample() -> None:
    _, definition = mutated(kyphoplasty_from_day_60)
    report = check_definition(definition, first=True)
    v = violation(report, "P4")
    assert "care_day >= 90 (is 60)" in v.message
    step = assert_replay_reproduces(definition, v)
    assert step["kind"] == "request" and step["day"] == 60
    assert step["state"] == "augmentation_consideration"


def test_vertebroplasty_allowed_is_a_p2_counterexample() -> None:
    _, definition = mutated(vertebroplasty_allowed)
    v = violation(check_definition(definition, first=True), "P2")
    assert_replay_reproduces(definition, v)


def test_overdue_review_without_escalation_is_a_p5_counterexample() -> None:
    _, definition = mutated(overdue_review_only_a_task)
    v = violation(check_definition(definition, first=True), "P5")
    step = assert_replay_reproduces(definition, v)
    assert step["state"] == "reassessment" and step["timers_fired"]


def test_workup_that_never_completes_is_a_dead_end_and_leaves_states_unreached() -> None:
    _, definition = mutated(workup_never_completes)
    report = check_definition(definition)
    dead = violation(report, "dead-end")
    assert "'workup'" in dead.message or "'intake'" in dead.message
    unreached = {v.message for v in report.violations if v.property == "reachability"}
    assert "state 'conservative_care' never reached" in unreached
    never = {v.message for v in report.violations if v.property == "rule-coverage"}
    assert "rule WU-COMPLETE never fired or refused" in never


def test_a_rule_no_patient_can_satisfy_is_reported() -> None:
    def caution_from_150(doc: Doc) -> None:
        doc["rules"]["CC-NSAID-CAUTION"]["when"] = {"fact": "age", ">=": 150}

    _, definition = mutated(caution_from_150)
    never = {v.message for v in check_definition(definition).violations}
    assert "rule CC-NSAID-CAUTION never fired or refused" in never


# --- the command line ---------------------------------------------------------------------


runner = CliRunner()


def answer_shipped_report(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """``check_definition`` as the command calls it, answering the shipped report (explored
    once above) instead of walking again; the list gets each call's ``first``."""
    calls: list[bool] = []

    def check(definition: Definition, *, first: bool = False) -> CheckReport:
        assert definition.version == load_definition().version
        calls.append(first)
        return shipped_report()

    monkeypatch.setattr(explore, "check_definition", check)
    return calls


def test_cli_check_of_the_shipped_definition_exits_0_and_says_what_it_explored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shipped report as the command prints it; the command's own walks run in the
    ``--first`` tests below."""
    calls = answer_shipped_report(monkeypatch)
    result = runner.invoke(definition_app, ["check"])
    assert result.exit_code == 0, result.output
    assert calls == [False]  # the whole walk unless --first is given
    assert "abstract states explored" in result.output and "no violation" in result.output
    assert "vertebral_collapse_pct 50 → stays · 51 → TX-INSTAB" in result.output


def test_cli_check_writes_a_counterexample_that_carepath_replay_reproduces(tmp_path: Path) -> None:
    """The replay command the check prints for a counterexample it wrote, run as printed (on
    the checked file: the pathway's current definition would not break), reproduces it."""
    from carepath.cli import app

    doc, _ = mutated(discharge_without_osteoporosis_care)
    definition_file = tmp_path / "mutated definition.json"  # a space: the command quotes it
    definition_file.write_bytes(orjson.dumps(doc))
    result = runner.invoke(
        definition_app, ["check", str(definition_file), "--out", str(tmp_path), "--first"]
    )
    assert result.exit_code == 1, result.output
    assert "VIOLATION P3" in result.output
    scenario_file = tmp_path / "counterexample_p3.json"
    assert scenario_file.exists()
    (printed,) = re.findall(r"\(carepath (replay .*)\)$", result.output, re.MULTILINE)
    args = shlex.split(printed)
    assert args == ["replay", "--definition", str(definition_file), str(scenario_file)]
    replayed = runner.invoke(app, [*args, "--json"])
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout)["final_state"] == "discharged"


def test_cli_check_json_is_the_whole_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report as ``check_definition`` gave it."""
    calls = answer_shipped_report(monkeypatch)
    result = runner.invoke(definition_app, ["check", "--json"])
    assert result.exit_code == 0 and calls == [False]
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["violations"] == [] and data["written"] == []
    assert data == json.loads(json.dumps({**shipped_report().to_dict(), "written": []}))


def test_cli_check_of_a_missing_file_is_one_line_and_exit_2() -> None:
    result = runner.invoke(definition_app, ["check", "/nonexistent/definition.json"])
    assert result.exit_code == 2
    assert result.output.startswith("carepath: error: definition file")


def test_cli_show_names_id_version_states_and_rule_count() -> None:
    definition = load_definition()
    result = runner.invoke(definition_app, ["show", "--json"])
    data = json.loads(result.stdout)
    assert data["id"] == definition.id and data["version"] == definition.version
    assert [s["name"] for s in data["states"]] == list(definition.states)
    assert data["rules"] == len(definition.rules)
    text = runner.invoke(definition_app, ["show"]).output
    assert definition.version in text and f"{len(definition.rules)} rules" in text


def test_carepath_definition_check_first_from_the_main_command(tmp_path: Path) -> None:
    """``--first`` from the installed command: the first violation, exit 1, said to be cut short."""
    doc, _ = mutated(discharge_without_osteoporosis_care)
    definition_file = tmp_path / "mutated.json"
    definition_file.write_bytes(orjson.dumps(doc))
    result = subprocess.run(
        [sys.executable, "-m", "carepath.cli", "definition", "check", "--first",
         str(definition_file)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "VIOLATION P3" in result.stdout
    assert "stopped at the first violation (--first)" in result.stdout
    assert "never reached" not in result.stdout and "Traceback" not in result.stderr


def test_a_renamed_tx_rule_that_a_safety_property_names_is_refused_when_loading() -> None:
    """The properties are the definition's own: renaming TX-NEURO without its P1 entry no
    longer makes P1 pass vacuously (as the Python spec once did, reported as "spec"): the
    definition does not load, and the error names the rule."""

    def rename(doc: Doc) -> None:
        doc["rules"]["TX-NEURO-DEFICIT"] = doc["rules"].pop("TX-NEURO")
        doc["on_every_event"][0]["rules"][0] = "TX-NEURO-DEFICIT"

    with pytest.raises(InvalidDefinition, match="TX-NEURO"):
        mutated(rename)
