"""The audit log through the API and the CLI: actors are token names, FHIR bundles validate."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from carepath.cli.audit import audit_app
from carepath.cli.token import token_app
from tests.support.api_world import WORKUP, ApiWorld


def _enrolled(api: ApiWorld, episode_id: str) -> str:
    """The fracture-liaison episode the course enrolled (MRN-42 is 78: FLS-ENROL-SPINE)."""
    (link,) = api.episode(episode_id)["links"]
    assert (link["pathway"], link["relation"]) == ("fracture-liaison", "enrolled")
    return str(link["episode"])


def _course(api: ApiWorld) -> str:
    """An episode through workup, a refused request, a task done and a fired timer."""
    episode_id = api.open_episode(patient_ref="MRN-42")
    task = api.episode(episode_id)["tasks"][0]["key"]
    api.call(
        "POST", f"/api/episodes/{episode_id}/tasks/{task}", json={"status": "done", "note": "ok"}
    )
    api.call("POST", f"/api/episodes/{episode_id}/requests", json={"action": "vertebroplasty"})
    api.call("POST", f"/api/episodes/{episode_id}/observations", json={"facts": WORKUP})
    api.clock.advance(29)  # care day 28 timers are due; the next write fires them first
    api.call("POST", f"/api/episodes/{episode_id}/observations", json={"facts": {"pain_score": 3}})
    return episode_id


def test_every_write_names_the_token_as_its_actor(api: ApiWorld) -> None:
    episode_id = _course(api)
    actors = {e["kind"]: e["actor"] for e in api.history(episode_id)}
    assert actors["open"] == actors["observe"] == actors["task"] == "token:coordinator-1"
    assert actors["request"] == "token:coordinator-1"
    assert actors["timer"] == "scheduler"


def test_history_shows_evidence_citations_and_refusals(api: ApiWorld) -> None:
    entries = api.history(_course(api))
    refusal = next(e for e in entries if e["kind"] == "request")["refused"][0]
    assert refusal["action"] == "vertebroplasty"
    assert refusal["refused_by"]["rule"] == "AUG-NO-VERTEBROPLASTY"
    assert refusal["refused_by"]["citations"][0]["text"]
    presented = entries[1]
    assert presented["rules"][0]["evidence"][0]["observation_id"] == presented["event_id"]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(e["prev_hash"] == p["hash"] for p, e in zip(entries, entries[1:], strict=False))


def test_the_episode_lists_refusals_and_the_reasons_of_its_open_tasks(api: ApiWorld) -> None:
    episode = api.episode(_course(api))
    assert [r["refused_by"]["rule"] for r in episode["refusals"]] == ["AUG-NO-VERTEBROPLASTY"]
    assert all(t["opened_by"]["citations"] for t in episode["tasks"])
    orders = {t["key"] for t in episode["tasks"] if t["kind"] == "order"}
    assert {a["task_key"] for a in episode["recommended_actions"]} == orders


def test_verify_reports_intact_chains(api: ApiWorld) -> None:
    episode_id = _course(api)
    report = api.call("GET", "/api/audit/verify", "auditor").json()
    enrolled = _enrolled(api, episode_id)
    assert report == {
        "episodes": 2,
        "entries": len(api.history(episode_id)) + len(api.history(enrolled)),
        "intact": True,
        "broken": [],
        "rows_checked": report["rows_checked"],  # True on SQL databases (the rows equal the log)
        "rows_broken": [],
    }


def test_verify_names_an_edited_row_unless_asked_for_the_chains_only(api: ApiWorld) -> None:
    episode_id = _course(api)
    with api.app.state.uow_factory.engine.begin() as db:
        db.exec_driver_sql(f"UPDATE episodes SET state = 'discharged' WHERE id = '{episode_id}'")
    report = api.call("GET", "/api/audit/verify", "auditor").json()
    assert (report["intact"], report["broken"], report["rows_checked"]) == (False, [], True)
    (found,) = report["rows_broken"]
    assert (found["episode_id"], found["what"], found["stored"]) == (
        episode_id,
        "state",
        "discharged",
    )
    chains = api.call("GET", "/api/audit/verify?chain_only=true", "auditor").json()
    assert (chains["intact"], chains["rows_checked"], chains["rows_broken"]) == (True, False, [])


def test_the_fhir_export_is_a_valid_r4b_bundle_of_the_episode(api: ApiWorld) -> None:
    episode_id = _course(api)
    response = api.call("GET", f"/api/audit/export?format=fhir&episode={episode_id}", "auditor")
    assert response.headers["content-type"] == "application/fhir+json"
    bundle = response.json()
    Bundle.model_validate(bundle)  # raises if not valid R4B
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    history = api.history(episode_id)
    assert kinds.count("CarePlan") == 1
    assert kinds.count("Provenance") == len(history)
    assert kinds.count("Task") == sum(len(e["tasks_opened"]) for e in history)
    assert bundle["meta"]["tag"][0]["code"] == "R4B"
    plan = bundle["entry"][0]["resource"]
    assert plan["subject"]["identifier"]["value"] == "MRN-42"
    refused = next(
        e["resource"] for e in bundle["entry"] if "refused" in str(e["resource"].get("reason"))
    )
    assert refused["reason"][0]["coding"][0]["code"] == "AUG-NO-VERTEBROPLASTY"
    assert refused["agent"][0]["who"]["display"] == "token:coordinator-1"


def test_the_jsonl_export_has_one_chained_line_per_entry(api: ApiWorld) -> None:
    episode_id = _course(api)
    response = api.call("GET", "/api/audit/export", "auditor")
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    for one in (episode_id, _enrolled(api, episode_id)):
        mine = [line["hash"] for line in lines if line["entry"]["episode_id"] == one]
        assert mine == [e["hash"] for e in api.history(one)]
    assert len(lines) == len(api.history(episode_id)) + len(api.history(_enrolled(api, episode_id)))


def test_the_cli_exports_fhir_bundles_and_manages_tokens(
    api: ApiWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    episode_id = _course(api)
    monkeypatch.setenv("CAREPATH_DATABASE_URL", str(api.app.state.uow_factory.engine.url))
    runner = CliRunner()
    exported = runner.invoke(audit_app, ["export", "--format", "fhir"])
    assert exported.exit_code == 0, exported.output
    bundles = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert sorted(Bundle.model_validate(b).identifier.value for b in bundles) == sorted(
        [episode_id, _enrolled(api, episode_id)]
    )

    created = runner.invoke(token_app, ["create", "--role", "auditor", "--name", "cli-auditor"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.splitlines()[-1]
    assert secret.startswith("cpt_")
    assert (
        api.call("GET", "/api/me", headers={"Authorization": f"Bearer {secret}"}).json()["actor"]
        == "token:cli-auditor"
    )
    listed = runner.invoke(token_app, ["list"])
    assert "cli-auditor" in listed.stdout and secret not in listed.stdout
    token_id = next(line.split()[0] for line in listed.stdout.splitlines() if "cli-auditor" in line)
    assert runner.invoke(token_app, ["revoke", token_id]).exit_code == 0
    response = api.client.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    refused = runner.invoke(token_app, ["create", "--role", "auditor", "--name", "cli-auditor"])
    assert refused.exit_code == 2 and "no other token has had" in refused.output


def test_tokens_are_stored_as_hashes_only(api: ApiWorld) -> None:
    created = api.call("POST", "/api/tokens", "admin", json={"name": "ward-3", "role": "auditor"})
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    secret = created.json()["token"]
    database = Path(api.app.state.uow_factory.engine.url.database)
    for path in (database, database.with_name(database.name + "-wal")):
        assert not path.exists() or secret.encode() not in path.read_bytes()
    listed = api.call("GET", "/api/tokens", "admin").json()
    assert "token" not in listed[0] and {t["name"] for t in listed} >= {"ward-3", "admin-1"}
