"""Fuzzed inputs (hypothesis) over the API, the pages and the CLI: whatever the text (NUL
bytes, control characters, lone surrogates, long strings, any Unicode) or the time (any year,
any offset), the answer is a success or a refusal naming the field: 0 answers of 500 or more,
0 tracebacks. The API and the pages are fuzzed on SQLite and PostgreSQL (NUL is where they
differ); each test's ``SEEN`` counts the examples run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.support.web_html import hidden
from tests.support.web_site import NOW, Site

EXAMPLES = int(os.environ.get("CAREPATH_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
EDGES = ["", " ", "\x00", "a\x00b", "\ud800", "\udfff", "\x1b[31m", "\t", "\n", "\x7f",
         "token:x", "TOKEN:admin", "x" * 101, "x" * 201, "x" * 2001, "é" * 150, "\u202e", "%00"]  # fmt: skip
ANY_CHAR = st.characters(exclude_categories=())  # surrogates (Cs) included
texts = st.one_of(
    st.sampled_from(EDGES),
    st.text(ANY_CHAR, max_size=40),
    st.text(st.characters(max_codepoint=0x7F), min_size=90, max_size=260),
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
times = st.one_of(
    st.datetimes(timezones=st.none() | offsets).map(lambda t: t.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-03-02"]),
    texts,
)
SEEN: dict[str, int] = {}


def _seen(name: str) -> None:
    SEEN[name] = SEEN.get(name, 0) + 1


def _json(value: Any) -> bytes:
    """JSON as a client may send it: a lone surrogate as its \\u escape."""
    return json.dumps(value).encode()


def _q(value: str) -> str:
    """A query value percent-encoded as bytes (a lone surrogate as its raw UTF-8 bytes)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The whole app (API and pages) with the demo cohort, on each database, for the module."""
    from carepath.demo import load_cohort
    from carepath.server import build_app
    from carepath.settings import Settings
    from tests.conftest import _admin, _database

    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}", None
    else:
        server = request.getfixturevalue("postgres_url")
        template = request.getfixturevalue("_postgres_template")
        name = f"carepath_fuzz_{os.getpid()}"
        _admin(
            server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name} TEMPLATE {template}"
        )
        url, drop = _database(server, name), (server, name)
    app = build_app(Settings(url, None), scheduler=False)
    app.state.clock = lambda: NOW
    load_cohort(app.state.uow_factory, app.state.definitions, NOW)
    tokens = {r: app.state.tokens.create(f"fuzz-{r}", r, NOW)[1] for r in ("coordinator",)}
    site = Site(app, tokens)
    client = site.client()
    episode = next(iter(client.get("/api/episodes", headers=_bearer(site)).json()["items"]))["id"]
    yield site, client, episode
    app.state.uow_factory.dispose()
    if drop:
        _admin(drop[0], f"DROP DATABASE IF EXISTS {drop[1]} WITH (FORCE)")


def _bearer(site: Site) -> dict[str, str]:
    return {"Authorization": f"Bearer {site.tokens['coordinator']}"}


def _no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.text[:300]
    assert "Traceback" not in response.text


VALID_OPEN = {"patient_ref": "MRN-FUZZ", "label": "fuzz", "at": "2026-03-01T09:00:00Z"}


@given(member=st.sampled_from(["patient_ref", "label", "at", "fact name", "fact value"]),
       text=texts, at=times)  # fmt: skip
@FUZZ
def test_api_open_never_fails(world: Any, member: str, text: str, at: str) -> None:
    """One member fuzzed at a time, the others valid: the fuzzed value reaches the database."""
    site, client, _ = world
    body: dict[str, Any] = {**VALID_OPEN, "facts": {"sex": "female"}}
    if member == "fact name":
        body["facts"] = {text: 1}
    elif member == "fact value":
        body["facts"] = {"sex": text}
    else:
        body[member] = at if member == "at" else text
    headers = {**_bearer(site), "Content-Type": "application/json"}
    _no_server_error(client.post("/api/episodes", content=_json(body), headers=headers))
    _seen("api open")


@given(q=texts, cursor=texts, state=texts, episode_id=texts, due=times)
@FUZZ
def test_api_reads_never_fail(
    world: Any, q: str, cursor: str, state: str, episode_id: str, due: str
) -> None:
    site, client, _ = world
    query = f"q={_q(q)}&cursor={_q(cursor)}&state={_q(state)}&due_before={_q(due)}"
    _no_server_error(client.get(f"/api/episodes?{query}", headers=_bearer(site)))
    _no_server_error(client.get(f"/api/episodes/{_q(episode_id) or 'x'}", headers=_bearer(site)))
    _no_server_error(
        client.get(f"/api/episodes/{_q(episode_id) or 'x'}/history", headers=_bearer(site))
    )
    _seen("api reads")


@given(text=texts, at=times)
@FUZZ
def test_api_commands_never_fail(world: Any, text: str, at: str) -> None:
    site, client, episode = world
    headers = {**_bearer(site), "Content-Type": "application/json"}
    base = f"/api/episodes/{episode}"
    for path, body in (
        (f"{base}/tasks/{_q(text) or 'x'}", {"status": "not_done"}),
        (f"{base}/tasks/x", {"status": "not_done", "note": text}),
        (f"{base}/tasks/x", {"status": "not_done", "at": at}),
        (f"{base}/requests", {"action": text}),
        (f"{base}/requests", {"action": "vertebroplasty", "at": at}),
        (f"{base}/close", {"reason": text + "\x00"}),  # never closes it
        (f"{base}/observations", {"facts": {"pain_score": text}}),
        (f"{base}/observations", {"facts": {text: 1}}),
        (f"{base}/observations", {"facts": {"pain_score": 4}, "at": at}),
    ):
        _no_server_error(client.post(path, content=_json(body), headers=headers))
    _seen("api commands")


@given(q=texts, state=texts, pathway=texts, episode_id=texts, event=texts)
@FUZZ
def test_pages_never_fail(
    world: Any, q: str, state: str, pathway: str, episode_id: str, event: str
) -> None:
    _, client, episode = world
    _no_server_error(client.get(f"/worklist?q={_q(q)}&state={_q(state)}&pathway={_q(pathway)}"))
    _no_server_error(client.get(f"/episodes/{_q(episode_id) or 'x'}"))
    _no_server_error(client.get(f"/episodes/{episode}?event={_q(event)}"))
    _no_server_error(client.get(f"/login?next={_q(q)}"))
    _seen("pages reads")


@given(note=texts, reason=texts, at=times, value=texts)
@FUZZ
def test_page_forms_never_fail(world: Any, note: str, reason: str, at: str, value: str) -> None:
    _, client, episode = world
    page = client.get(f"/episodes/{episode}").text
    csrf = hidden(page, "csrf")
    for command, fields in (
        ("tasks", {"task_key": reason, "status": "not_done", "note": note}),
        ("requests", {"action": reason}),
        ("close", {"reason": reason + "\x00"}),  # never closes it
        ("observations", {"pain_score": value, "at": at}),
    ):
        data = {k: v.encode("utf-8", "surrogatepass") for k, v in {"csrf": csrf, **fields}.items()}
        _no_server_error(client.post(f"/episodes/{episode}/{command}", data=data))
    _seen("page forms")


@pytest.fixture(scope="module")
def cli_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    from storage.database import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('cli-fuzz') / 'cli.db'}"
    upgrade(url)
    return url


@given(patient_ref=texts, label=texts, actor=texts, at=times)
@settings(FUZZ, max_examples=max(10, EXAMPLES // 2))  # each run wires the CLI anew: slower
def test_the_cli_never_prints_a_traceback(
    cli_database: str, patient_ref: str, label: str, actor: str, at: str
) -> None:
    from carepath.cli import _register_groups, app

    _register_groups()
    args = ["episode", "open", "--patient-ref", patient_ref, "--label", label,
            "--actor", actor, "--at", at]  # fmt: skip
    result = CliRunner(env={"CAREPATH_DATABASE_URL": cli_database}).invoke(app, args)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.startswith("carepath: error: ")
    _seen("cli")


def test_the_fuzzers_ran(world: Any) -> None:
    """Last: every fuzzer ran its examples (a strategy that filtered everything would not)."""
    print(f"\nfuzzed inputs: {SEEN} (0 answers ≥ 500, 0 tracebacks)")
    assert all(n >= 1 for n in SEEN.values())
