"""The whole app as the page tests see it: a ``Site`` with a signed-in client per role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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
