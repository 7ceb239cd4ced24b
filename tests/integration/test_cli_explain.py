"""``carepath episode explain ID [--json]``: the text, the JSON contract, and its errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from carepath.cli.episode import episode_app

PROFILE = '{"age": 72, "sex": "female", "first_fracture": true}'
AT = "2026-03-02T09:00:00Z"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'carepath.db'}")
    return CliRunner()


def _run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(episode_app, list(args))


def _in_workup_without_neuro_exam(cli: CliRunner) -> str:
    opened = _run(cli, "open", "--facts", PROFILE, "--patient-ref", "MRN-X", "--at", AT)
    assert opened.exit_code == 0, opened.output
    episode = opened.stdout.splitlines()[-1]
    facts = '{"fracture_levels": ["L1"], "pain_score": 6, "mri_done": true}'
    seen = _run(cli, "observe", episode, "--facts", facts, "--at", AT)
    assert seen.exit_code == 0, seen.output
    return episode


def test_json_is_exactly_the_contract(cli: CliRunner) -> None:
    episode = _in_workup_without_neuro_exam(cli)
    result = _run(cli, "explain", episode, "--json", "--at", "2026-03-03T09:00:00Z")
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert list(body) == ["episode", "pathway", "state", "candidates", "timers"]
    assert (body["episode"], body["pathway"], body["state"]) == (
        episode, "l1-l2-compression-fracture", "workup"
    )  # fmt: skip
    for c in body["candidates"]:
        assert list(c) == ["rule", "to", "holds", "failing", "missing"]
        for leaf in c["failing"]:
            assert list(leaf) == ["fact", "observed", "needs"]
            assert list(leaf["needs"]) == ["op", "value"]
    assert [c["rule"] for c in body["candidates"]] == [
        "TX-NEURO", "TX-INSTAB", "TX-MALIG", "TX-MULTI", "WU-COMPLETE"
    ]  # fmt: skip
    wu = body["candidates"][-1]
    assert wu["holds"] is False and wu["missing"] == ["neuro_exam_done"]
    assert body["timers"] == [
        {"rule": "FU-WORKUP-OVERDUE", "due_at": "2026-03-05T09:00:00+00:00", "fires_if": None}
    ]


def test_text_says_what_the_next_observation_needs(cli: CliRunner) -> None:
    episode = _in_workup_without_neuro_exam(cli)
    result = _run(cli, "explain", episode, "--at", "2026-03-03T09:00:00Z")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"episode {episode}  workup (Workup, l1-l2-compression-fracture)" in out
    assert "next observation: moves nothing as things stand" in out
    assert "✗ WU-COMPLETE → Conservative care: needs Neurological exam done (unknown)" in out
    assert "[immediate transfer]" in out
    assert "FU-WORKUP-OVERDUE due 2026-03-05 09:00 UTC: fires" in out


def test_unknown_episode_is_one_line_and_exit_2(cli: CliRunner) -> None:
    result = _run(cli, "explain", "no-such-episode")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no-such-episode" in result.stderr and result.stderr.startswith("carepath: error:")


def test_a_bad_at_is_one_line_naming_the_option(cli: CliRunner) -> None:
    episode = _in_workup_without_neuro_exam(cli)
    result = _run(cli, "explain", episode, "--at", "tomorrow")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--at" in result.stderr
