"""Fixtures of the page tests: the whole app on a fresh SQLite file with the demo cohort.

The app is ``carepath.server.build_app`` without its scheduler, on a clock pinned to ``NOW`` so
that "overdue by 3 days" means the same on every run; tokens of each role are created on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Site:
    app: FastAPI
    tokens: dict[str, str]  # role → secret

    def client(self, role: str | None = "coordinator") -> TestClient:
        """A client signed in with a token of ``role`` (None: not signed in)."""
        client = TestClient(self.app, base_url="http://testserver")
        if role is not None:
            sign_in(client, self.tokens[role])
        return client


def sign_in(client: TestClient, token: str) -> object:
    page = client.get("/login")
    nonce = page.text.split('name="nonce" value="', 1)[1].split('"', 1)[0]
    return client.post(
        "/login", data={"token": token, "nonce": nonce, "next": ""}, follow_redirects=False
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    from carepath.demo import load_cohort
    from carepath.server import build_app
    from carepath.settings import Settings

    app = build_app(Settings(f"sqlite:///{tmp_path / 'web.db'}", None), scheduler=False)
    app.state.clock = lambda: NOW
    load_cohort(app.state.uow_factory, app.state.definitions, NOW)
    tokens = {
        role: app.state.tokens.create(f"test-{role}", role, NOW)[1]
        for role in ("coordinator", "auditor", "admin", "scheduler")
    }
    yield Site(app, tokens)
    app.state.uow_factory.dispose()
