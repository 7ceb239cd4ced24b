"""The webhooks admin page: admins see subscriptions (no secrets) and the outbox's counts and
failed messages; other roles get the 403 page."""

from __future__ import annotations

from datetime import UTC, datetime

from carepath import webhooks
from storage.webhooks import WebhookStore
from tests.support.web_site import Site


def test_admins_see_subscriptions_and_outbox_counts_never_a_secret(site: Site) -> None:
    factory = site.app.state.uow_factory
    sub, secret = webhooks.add(
        WebhookStore(factory), factory.audit_key, "https://hooks.example.org/in",
        "escalation.opened,episode.ended", "test", datetime.now(UTC),
    )  # fmt: skip
    html = site.client("admin").get("/admin/webhooks")
    assert html.status_code == 200
    assert sub.id in html.text and "https://hooks.example.org/in" in html.text
    assert secret not in html.text and secret.removeprefix("whsec_") not in html.text
    assert 'data-count="failed">0<' in html.text
    assert 'href="/admin/webhooks"' in html.text  # in the admin's navigation


def test_other_roles_get_the_403_page(site: Site) -> None:
    for role in ("coordinator", "auditor"):
        got = site.client(role).get("/admin/webhooks")
        assert got.status_code == 403, role
        assert 'href="/admin/webhooks"' not in site.client(role).get("/worklist").text
