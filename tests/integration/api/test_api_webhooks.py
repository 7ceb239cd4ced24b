"""``/api/webhooks``: admins add (secret once, stored encrypted), list, rotate and remove
subscriptions; bad targets and unknown event types are 422 problems naming the field."""

from __future__ import annotations

from tests.support.api_world import ApiWorld


def test_an_admin_adds_lists_rotates_and_removes_a_subscription(api: ApiWorld) -> None:
    body = {"url": "https://hooks.example.org/in", "events": ["escalation.opened", "episode.ended"]}
    added = api.call("POST", "/api/webhooks", role="admin", json=body)
    assert added.status_code == 201, added.text
    created = added.json()
    assert created["secret"].startswith("whsec_") and added.headers["cache-control"] == "no-store"
    assert created["created_by"] == "token:admin" or created["created_by"].startswith("token:")
    listed = api.call("GET", "/api/webhooks", role="admin").json()
    assert [s["id"] for s in listed] == [created["id"]] and "secret" not in listed[0]
    rotated = api.call("POST", f"/api/webhooks/{created['id']}/rotate-secret", role="admin")
    assert rotated.status_code == 200 and rotated.json()["secret"] != created["secret"]
    removed = api.call("DELETE", f"/api/webhooks/{created['id']}", role="admin")
    assert removed.status_code == 200
    assert api.call("GET", "/api/webhooks", role="admin").json() == []
    again = api.call("DELETE", f"/api/webhooks/{created['id']}", role="admin")
    assert again.status_code == 404 and again.headers["content-type"] == "application/problem+json"


def test_the_secret_is_not_in_the_database_in_clear(api: ApiWorld) -> None:
    body = {"url": "https://hooks.example.org/in", "events": ["escalation.opened"]}
    secret = api.call("POST", "/api/webhooks", role="admin", json=body).json()["secret"]
    raw = secret.removeprefix("whsec_")
    factory = api.app.state.uow_factory
    with factory.engine.connect() as db:
        rows = db.exec_driver_sql("SELECT * FROM webhook_subscriptions").fetchall()
    assert rows and raw not in str(rows) and secret not in str(rows)


def test_a_plain_http_target_off_loopback_is_refused_and_nothing_is_stored(api: ApiWorld) -> None:
    for url in ("http://hooks.example.org/in", "ftp://127.0.0.1/x", "https://user:pw@h.org/"):
        got = api.call(
            "POST", "/api/webhooks", role="admin", json={"url": url, "events": ["episode.ended"]}
        )
        assert got.status_code == 422, url
        problem = got.json()
        assert problem["field"] == "url" and problem["value"] == url
        assert "https://" in problem["expected"]
    for url in ("http://127.0.0.1:8080/in", "http://[::1]/in", "http://localhost/in"):
        got = api.call(
            "POST", "/api/webhooks", role="admin", json={"url": url, "events": ["episode.ended"]}
        )
        assert got.status_code == 201, (url, got.text)
    assert len(api.call("GET", "/api/webhooks", role="admin").json()) == 3


def test_an_unknown_event_type_is_refused_with_the_valid_ones(api: ApiWorld) -> None:
    got = api.call(
        "POST", "/api/webhooks", role="admin",
        json={"url": "https://h.example.org/", "events": ["episode.ended", "episode.exploded"]},
    )  # fmt: skip
    assert got.status_code == 422
    problem = got.json()
    assert problem["field"] == "events" and problem["value"] == "episode.exploded"
    assert "escalation.opened" in problem["expected"] and "episode.enrolled" in problem["expected"]
    assert api.call("GET", "/api/webhooks", role="admin").json() == []


def test_the_outbox_counts_pending_delivered_and_failed(api: ApiWorld) -> None:
    got = api.call("GET", "/api/webhooks/outbox", role="admin")
    assert got.status_code == 200
    assert got.json() == {"pending": 0, "delivered": 0, "failed": 0, "failed_messages": []}
