"""The XES event log (``carepath audit export --format xes``, ``GET /api/audit/export?format=xes``)
read back by pm4py: a trace per episode, an event per transition, rule, refusal and timer, on
SQLite and PostgreSQL. pm4py (AGPL, a test-only dependency) is imported in this module alone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carepath.cli.audit import audit_app
from carepath.xes import events_of
from storage.audit_stream import audit_entries
from tests.support.api_world import WORKUP, ApiWorld

pm4py_xes = pytest.importorskip("pm4py.objects.log.importer.xes.importer")
FLS, SPINE = "fracture-liaison", "l1-l2-compression-fracture"


def _cohort(api: ApiWorld) -> list[str]:
    """Three L1–L2 episodes (one through workup, a refusal, a task and fired timers; each
    aged 78, so each enrols a fracture-liaison episode) and one with an XML-hostile ref."""
    ids = []
    for n in range(3):
        episode_id = api.open_episode(patient_ref=f"MRN-{n}")
        if n == 0:
            task = api.episode(episode_id)["tasks"][0]["key"]
            api.call("POST", f"/api/episodes/{episode_id}/tasks/{task}", json={"status": "done"})
            api.call(
                "POST", f"/api/episodes/{episode_id}/requests", json={"action": "vertebroplasty"}
            )
        api.call("POST", f"/api/episodes/{episode_id}/observations", json={"facts": WORKUP})
        ids.append(episode_id)
    ids.append(api.open_episode(patient_ref='<MRN & "9">', label="x"))
    api.clock.advance(29)  # care day 28 timers are due; the next write fires them first
    api.call("POST", f"/api/episodes/{ids[0]}/observations", json={"facts": {"pain_score": 3}})
    return ids


def _expected(api: ApiWorld, pathway: str | None = None) -> tuple[dict[str, str], Counter[str]]:
    """From the database: each episode's pathway, and the events its entries hold, by type."""
    with api.app.state.uow_factory() as uow:
        pathways = {}
        counts: Counter[str] = Counter()
        for episode_id in uow.episode_ids():
            episode = uow.get_episode(episode_id)
            if pathway is None or episode.pathway == pathway:
                pathways[episode_id] = episode.pathway
                for record in uow.audit_records(episode_id):
                    counts.update(kind for kind, _, _ in events_of(record.body()))
    return pathways, counts


def _read(path: Path) -> tuple[dict[str, str], Counter[str], list]:  # type: ignore[type-arg]
    log = pm4py_xes.apply(str(path))
    pathways = {t.attributes["concept:name"]: t.attributes["pathway"] for t in log}
    counts = Counter(e["carepath:type"] for t in log for e in t)
    return pathways, counts, list(log)


def test_the_xes_log_read_by_pm4py_matches_the_database(api_on: ApiWorld, tmp_path: Path) -> None:
    ids = _cohort(api_on)
    response = api_on.call("GET", "/api/audit/export?format=xes", "auditor")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    path = tmp_path / "log.xes"
    path.write_bytes(response.content)
    pathways, counts, traces = _read(path)
    expected_pathways, expected_counts = _expected(api_on)
    assert pathways == expected_pathways and len(pathways) == 4 + 3  # three enrolled FLS
    assert counts == expected_counts
    assert set(counts) == {"transition", "rule", "refusal", "timer"}
    first = next(t for t in traces if t.attributes["concept:name"] == ids[0])
    assert first.attributes["patient_ref"] == "MRN-0"
    names = [e["concept:name"] for e in first]
    assert "refused vertebroplasty" in names and "timer FU-REASSESS" in names
    assert "enter conservative_care" in names and "rule WU-COMPLETE" in names
    times = [e["time:timestamp"] for e in first]
    assert times == sorted(times) and all(t.utcoffset() is not None for t in times)
    assert {e["org:resource"] for e in first} == {"token:coordinator-1", "scheduler"}
    assert {e["lifecycle:transition"] for e in first} == {"complete"}
    hostile = next(t for t in traces if t.attributes["concept:name"] == ids[3])
    assert hostile.attributes["patient_ref"] == '<MRN & "9">'


def test_the_cli_writes_one_pathway_to_a_file_in_small_chunks(
    api_on: ApiWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cohort(api_on)
    monkeypatch.setenv("CAREPATH_DATABASE_URL", str(api_on.app.state.uow_factory.engine.url))
    monkeypatch.setattr("storage.audit_stream.audit_entries.__defaults__", (None, 3))
    out = tmp_path / "fls.xes"
    result = CliRunner().invoke(
        audit_app, ["export", "--format", "xes", "--pathway", FLS, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600  # patient references: the owner's alone
    pathways, counts, _ = _read(out)
    assert (pathways, counts) == _expected(api_on, FLS)
    assert set(pathways.values()) == {FLS} and len(pathways) == 3


def test_chunks_resume_exactly_where_the_last_one_stopped(api: ApiWorld) -> None:
    _cohort(api)
    with api.app.state.uow_factory() as uow:
        whole = [(r.episode_id, r.seq) for r in audit_entries(uow, chunk=10_000)]
        for size in (1, 2, 7):
            assert [(r.episode_id, r.seq) for r in audit_entries(uow, chunk=size)] == whole
    assert whole == sorted(whole) and len(set(whole)) == len(whole)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xes", "--pathway", "nope"], "pathway: got 'nope', expected one of"),
        (["--format", "xes", "--episode", "e1"], "--episode: not with --format xes"),
        (["--pathway", FLS], "--pathway: only with --format xes"),
        (["--format", "xml"], "--format: got 'xml', expected jsonl, fhir or xes"),
    ],
)
def test_bad_export_options_are_one_line_errors(
    api: ApiWorld, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", str(api.app.state.uow_factory.engine.url))
    result = CliRunner().invoke(audit_app, ["export", *args])
    assert result.exit_code == 2 and message in result.output and not result.stdout.strip()


def test_the_api_refuses_an_unknown_pathway_and_coordinators(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    bad = api.call("GET", "/api/audit/export?format=xes&pathway=nope", "auditor")
    assert bad.status_code == 422 and "nope" in bad.text
    assert api.call("GET", "/api/audit/export?format=xes", "coordinator").status_code == 403
    ok = api.call("GET", f"/api/audit/export?format=xes&pathway={SPINE}", "admin")
    assert ok.status_code == 200 and ok.text.count("<trace>") == 1
    assert f'<string key="concept:name" value="{episode_id}"/>' in ok.text
