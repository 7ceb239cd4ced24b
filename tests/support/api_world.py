"""An API app on a fresh database, a movable clock, and a token per role, for the API tests.

``ApiWorld`` drives the app in-process through Starlette's TestClient. Episodes are opened
through the API itself (as a coordinator), so every test exercises the same path a client does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from carepath.api import create_api
from tests.support.episode_driver import PRESENTATION, PROFILE, T0, WORKUP  # noqa: F401 (re-exported)

ROLES = ("coordinator", "auditor", "admin", "scheduler")


@dataclass
class Clock:
    """The app's clock: tests move it."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: float) -> datetime:
        self.now += timedelta(days=days)
        return self.now


@dataclass
class ApiWorld:
    app: FastAPI
    client: TestClient
    clock: Clock
    secrets: dict[str, str] = field(default_factory=dict)  # role (or "revoked") → token

    @classmethod
    def start(cls, database_url: str) -> ApiWorld:
        app = create_api(database_url=database_url)
        clock = Clock()
        app.state.clock = clock
        world = cls(app, TestClient(app).__enter__(), clock)
        for role in ROLES:
            world.secrets[role] = app.state.tokens.create(f"{role}-1", role, T0)[1]
        token, world.secrets["revoked"] = app.state.tokens.create("revoked-1", "coordinator", T0)
        app.state.tokens.revoke(token.id, T0)
        return world

    def stop(self) -> None:
        self.client.__exit__(None, None, None)

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}", **extra}

    def call(self, method: str, path: str, role: str = "coordinator", **kw: Any) -> Any:
        headers = self.headers(role, **kw.pop("headers", {}))
        return self.client.request(method, path, headers=headers, **kw)

    def open_episode(self, patient_ref: str = "MRN-1", label: str | None = "L1 fracture") -> str:
        """An episode in workup (presentation recorded), opened by the coordinator."""
        body = {"patient_ref": patient_ref, "label": label, "facts": PROFILE}
        opened = self.call("POST", "/api/episodes", json=body)
        assert opened.status_code == 201, opened.text
        episode_id: str = opened.json()["outcome"]["episode_id"]
        observed = self.call(
            "POST", f"/api/episodes/{episode_id}/observations", json={"facts": PRESENTATION}
        )
        assert observed.status_code == 201, observed.text
        return episode_id

    def episode(self, episode_id: str, role: str = "coordinator") -> dict[str, Any]:
        response = self.call("GET", f"/api/episodes/{episode_id}", role)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def history(self, episode_id: str) -> list[dict[str, Any]]:
        response = self.call("GET", f"/api/episodes/{episode_id}/history", "auditor")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]
