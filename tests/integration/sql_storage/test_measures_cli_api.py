"""``carepath measures`` (text, JSON, episode lists, argument errors) and the API routes
(``GET /api/measures``, ``GET /api/measures/{pathway}/{measure}/episodes``) on one cohort."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from storage.unit_of_work import uow_factory
from tests.integration.sql_storage.test_measures_sql import build
from tests.support.api_world import ApiWorld, Clock

FLS, L1L2 = "fracture-liaison", "l1-l2-compression-fracture"


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('measures') / 'm.db'}"
    factory = uow_factory(url)
    build(factory)
    factory.dispose()
    yield url


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", db_url)
    from carepath.cli import _register_groups, app

    if not any(c.name == "measures" for c in app.registered_commands):
        _register_groups()

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["measures", *args])

    return run


def test_text_output_is_a_table_per_pathway(cli: Any) -> None:
    result = cli("--as-of", "2027-06-30")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"{FLS} (" in out and f"{L1L2} (" in out and "as of 2027-06-30T23:59:59.999999Z" in out
    header = next(line for line in out.splitlines() if line.startswith("measure "))
    assert header.split() == ["measure", "numerator", "denominator", "ratio", "band", "title"]
    dxa = next(line for line in out.splitlines() if line.startswith("FLS-KPI-DXA-12W"))
    assert dxa.split()[:5] == ["FLS-KPI-DXA-12W", "2", "5", "40.0%", "red"]
    assert "outcomes" in out and "time in state" in out and "AUG-NO-VERTEBROPLASTY" in out


def test_json_is_one_object_with_pathway_and_an_array_without(cli: Any) -> None:
    one = orjson.loads(cli("--pathway", FLS, "--json", "--as-of", "2027-06-30").output)
    every = orjson.loads(cli("--json", "--as-of", "2027-06-30").output)
    assert isinstance(one, dict) and one["pathway"] == FLS
    assert [r["pathway"] for r in every] == [FLS, L1L2]
    assert every[0] == one
    feb = orjson.loads(
        cli("--pathway", L1L2, "--json", "--from", "2026-02", "--as-of", "2027-06-30").output
    )
    assert (feb["from"], feb["to"]) == ("2026-02", "2026-02")


def test_episodes_lists_the_failing_with_their_reasons(cli: Any) -> None:
    args = ("--pathway", FLS, "--episodes", "FLS-KPI-DXA-12W", "--as-of", "2027-06-30")
    rows = orjson.loads(cli(*args, "--failing", "--json").output)
    assert {r["patient_ref"]: r["reason"] for r in rows} == {
        "MRN-f-b": "DXA recorded on fracture day 97",
        "MRN-f-d": "no DXA recorded by fracture day 84",
        "MRN-f-e": "no DXA recorded by fracture day 84",
    }
    assert set(rows[0]) >= {"episode", "patient_ref", "in_numerator", "reason"}
    every = orjson.loads(cli(*args, "--json").output)
    assert [r["in_numerator"] for r in every].count(True) == 2 and len(every) == 5
    text = cli(*args, "--failing").output
    assert "DXA recorded on fracture day 97" in text and "MRN-f-b" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-13"], "--from: got '2026-13', expected a month as YYYY-MM"),
        (["--to", "March"], "--to: got 'March', expected a month as YYYY-MM"),
        (
            ["--from", "2026-05", "--to", "2026-01"],
            "--from: got '2026-05', expected a month not after to",
        ),
        (["--as-of", "2026-02-30"], "--as-of: got '2026-02-30', expected a date as YYYY-MM-DD"),
        (["--pathway", "nope"], "--pathway: got 'nope', expected one of fracture-liaison, l1-l2"),
        (["--episodes", "M-DXA-6W"], "--episodes M-DXA-6W: expected --pathway too"),
        (["--failing"], "--failing: expected --episodes MEASURE_ID"),
        (
            ["--pathway", L1L2, "--episodes", "M-NOPE"],
            "--episodes: got 'M-NOPE', expected a measure",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(cli: Any, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"carepath: error: {message}"), lines


# -- the API ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(db_url: str) -> Iterator[ApiWorld]:
    world = ApiWorld.start(db_url)
    world.clock.now = Clock().now.replace(year=2027, month=6, day=30)
    yield world
    world.stop()


def test_get_measures_is_the_cli_contract(api: ApiWorld, cli: Any) -> None:
    response = api.call("GET", "/api/measures?pathway=fracture-liaison&as_of=2027-06-30", "auditor")
    assert response.status_code == 200, response.text
    assert response.json() == orjson.loads(
        cli("--pathway", FLS, "--json", "--as-of", "2027-06-30").output
    )
    every = api.call(
        "GET", "/api/measures?as_of=2027-06-30&from=2026-01&to=2026-01", "admin"
    ).json()
    assert [r["pathway"] for r in every] == [FLS, L1L2] and every[0]["to"] == "2026-01"


def test_get_measure_episodes_failing(api: ApiWorld) -> None:
    path = "/api/measures/fracture-liaison/FLS-KPI-DXA-12W/episodes?failing=true&as_of=2027-06-30"
    rows = api.call("GET", path, "auditor").json()
    assert sorted(r["patient_ref"] for r in rows) == ["MRN-f-b", "MRN-f-d", "MRN-f-e"]


@pytest.mark.parametrize("role", ["coordinator", "scheduler"])
def test_only_auditors_and_admins_read_measures(api: ApiWorld, role: str) -> None:
    assert api.call("GET", "/api/measures", role).status_code == 403


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/api/measures?from=2026-1", "from"),
        ("/api/measures?pathway=nope", "pathway"),
        ("/api/measures?as_of=tomorrow", "as_of"),
        ("/api/measures/l1-l2-compression-fracture/M-NOPE/episodes", "measure"),
        ("/api/measures/nope/M-DXA-6W/episodes", "pathway"),
    ],
)
def test_bad_queries_are_422_problems_naming_the_parameter(
    api: ApiWorld, path: str, where: str
) -> None:
    response = api.call("GET", path, "auditor")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith(f"{where}: got ")


def test_format_fhir_is_a_valid_r4b_bundle_of_measure_reports(cli: Any) -> None:
    from fhir.resources.R4B.bundle import Bundle

    result = cli("--pathway", FLS, "--format", "fhir", "--as-of", "2027-06-30")
    assert result.exit_code == 0, result.output
    bundle = Bundle.model_validate(orjson.loads(result.output))
    reports = [e.resource for e in bundle.entry]
    assert bundle.type == "collection" and len(reports) == 8
    dxa = next(r for r in reports if r.measure.split("|")[0].endswith(":FLS-KPI-DXA-12W"))
    counts = {p.code.coding[0].code: p.count for p in dxa.group[0].population}
    assert (counts["numerator"], counts["denominator"]) == (2, 5)
    assert float(dxa.group[0].measureScore.value) == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--format", "xml"), "--format: got 'xml', expected text, json or fhir"),
        (("--format", "fhir", "--json"), "--json with --format fhir"),
        (("--format", "fhir", "--pathway", FLS, "--episodes", "FLS-KPI-DXA-12W"), "no FHIR form"),
    ],
)
def test_format_errors_are_one_line_and_exit_2(
    cli: Any, args: tuple[str, ...], expected: str
) -> None:
    result = cli(*args)
    assert result.exit_code == 2 and expected in result.output
