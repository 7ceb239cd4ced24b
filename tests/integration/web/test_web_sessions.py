"""Page sessions live on the server: sign-out, expiry and revocation end them; the cookie holds
a session id, never the token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carepath.settings import Settings
from carepath.web import session
from tests.support.web_html import hidden
from tests.support.web_site import NOW, Site, sign_in


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(site: Site) -> Clock:
    site.app.state.clock = moving = Clock()
    return moving


def _signed_in(site: Site) -> tuple[TestClient, str]:
    client = TestClient(site.app, base_url="http://testserver")
    answer = sign_in(client, site.tokens["coordinator"])
    return client, answer.cookies[session.COOKIE]  # type: ignore[attr-defined]


def _opens_worklist(site: Site, cookie: str) -> bool:
    fresh = TestClient(site.app, base_url="http://testserver")
    fresh.cookies.set(session.COOKIE, cookie)
    answer = fresh.get("/worklist", follow_redirects=False)
    if answer.status_code == 303:
        assert answer.headers["location"].startswith("/login")
        return False
    assert answer.status_code == 200
    return True


def _sessions(site: Site) -> int:
    with site.app.state.uow_factory.engine.connect() as db:
        return int(db.exec_driver_sql("SELECT count(*) FROM sessions").scalar_one())


def test_a_saved_cookie_after_sign_out_gets_the_sign_in_page(site: Site) -> None:
    client, cookie = _signed_in(site)
    assert _opens_worklist(site, cookie)
    csrf = hidden(client.get("/worklist").text, "csrf")
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert not _opens_worklist(site, cookie)
    fresh = TestClient(site.app, base_url="http://testserver")
    fresh.cookies.set(session.COOKIE, cookie)
    assert 'name="token"' in fresh.get("/worklist").text  # followed to the sign-in form
    assert _sessions(site) == 0


def test_the_cookie_holds_a_session_id_never_the_token(site: Site) -> None:
    secret = site.tokens["coordinator"]
    client = TestClient(site.app, base_url="http://testserver")
    answer = sign_in(client, secret)
    set_cookie = answer.headers["set-cookie"]  # type: ignore[attr-defined]
    cookie = answer.cookies[session.COOKIE]  # type: ignore[attr-defined]
    assert secret not in set_cookie and secret not in cookie and "cpt_" not in cookie
    assert "httponly" in set_cookie.lower() and "samesite=strict" in set_cookie.lower()
    with site.app.state.uow_factory.engine.connect() as db:
        stored = db.exec_driver_sql("SELECT * FROM sessions").fetchall()
    assert len(stored) == 1 and not any(cookie in str(v) or secret in str(v) for v in stored[0])


def test_an_idle_session_expires_and_is_deleted(site: Site, clock: Clock) -> None:
    _, cookie = _signed_in(site)
    clock.now = NOW + timedelta(minutes=25)
    assert _opens_worklist(site, cookie)  # used: its idle time starts again
    clock.now = NOW + timedelta(minutes=50)
    assert _opens_worklist(site, cookie)
    clock.now = NOW + timedelta(minutes=81)
    assert not _opens_worklist(site, cookie)
    assert _sessions(site) == 0


def test_a_session_ends_at_its_absolute_expiry_however_busy(site: Site, clock: Clock) -> None:
    _, cookie = _signed_in(site)
    for minutes in range(20, 12 * 60, 20):
        clock.now = NOW + timedelta(minutes=minutes)
        assert _opens_worklist(site, cookie), minutes
    clock.now = NOW + timedelta(hours=12, minutes=1)
    assert not _opens_worklist(site, cookie)


def test_a_revoked_tokens_session_is_refused(site: Site) -> None:
    _, cookie = _signed_in(site)
    tokens = site.app.state.tokens
    token = next(t for t in tokens.list() if t.name == "test-coordinator")
    tokens.revoke(token.id, NOW)
    assert not _opens_worklist(site, cookie)
    assert _sessions(site) == 0


def test_a_forged_unknown_or_old_format_session_id_is_refused(site: Site) -> None:
    _signed_in(site)
    old_format = f"nonce.{site.tokens['coordinator']}"  # what the cookie held before 0006
    for forged in ("made-up-session-id", "", "x" * 5000, "abc.cpt_token", old_format):
        assert not _opens_worklist(site, forged), forged


def test_expiry_is_configured_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_SESSION_IDLE_MINUTES", "5")
    monkeypatch.setenv("CAREPATH_SESSION_MAX_HOURS", "1.5")
    settings = Settings.from_env()
    assert settings.session_idle == timedelta(minutes=5)
    assert settings.session_lifetime == timedelta(hours=1.5)
    monkeypatch.setenv("CAREPATH_SESSION_IDLE_MINUTES", "-3")
    with pytest.raises(ValueError, match="CAREPATH_SESSION_IDLE_MINUTES: got '-3'"):
        Settings.from_env()


def test_a_short_configured_idle_time_reaches_the_pages(tmp_path: Path) -> None:
    from carepath.server import build_app

    app = build_app(
        Settings(f"sqlite:///{tmp_path / 's.db'}", None, session_idle_minutes=5), scheduler=False
    )
    moving = Clock()
    app.state.clock = moving
    secret = app.state.tokens.create("c", "coordinator", NOW)[1]
    client = TestClient(app, base_url="http://testserver")
    sign_in(client, secret)
    assert client.get("/worklist", follow_redirects=False).status_code == 200
    moving.now = NOW + timedelta(minutes=6)
    assert client.get("/worklist", follow_redirects=False).status_code == 303
    app.state.uow_factory.dispose()


def test_over_https_the_session_cookie_is_secure(site: Site) -> None:
    client = TestClient(site.app, base_url="https://testserver")
    answer = sign_in(client, site.tokens["coordinator"])
    assert "secure" in answer.headers["set-cookie"].lower()  # type: ignore[attr-defined]


def test_over_plain_http_the_cookies_are_secure_when_configured(site: Site) -> None:
    """Behind a proxy that terminates TLS and forwards http, CAREPATH_SECURE_COOKIES marks the
    cookies Secure anyway; without it, plain http gets no Secure flag (a browser would drop it)."""
    client = TestClient(site.app, base_url="http://testserver")
    assert "secure" not in client.get("/login").headers["set-cookie"].lower()
    site.app.state.secure_cookies = True
    try:
        assert "secure" in client.get("/login").headers["set-cookie"].lower()
    finally:
        site.app.state.secure_cookies = False


def test_secure_cookies_setting_is_on_off_and_names_a_bad_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carepath.settings import SettingsError

    for text, expected in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv("CAREPATH_SECURE_COOKIES", text)
        assert Settings.from_env().secure_cookies is expected
    monkeypatch.setenv("CAREPATH_SECURE_COOKIES", "maybe")
    with pytest.raises(SettingsError, match="CAREPATH_SECURE_COOKIES: got 'maybe'"):
        Settings.from_env()


def test_each_session_has_its_own_csrf_token_and_an_old_one_is_refused(site: Site) -> None:
    first, _ = _signed_in(site)
    old = hidden(first.get("/worklist").text, "csrf")
    second, _ = _signed_in(site)
    current = hidden(second.get("/worklist").text, "csrf")
    assert old != current
    refused = second.post("/logout", data={"csrf": old}, follow_redirects=False)
    assert refused.status_code == 403
    assert second.post("/logout", data={"csrf": current}, follow_redirects=False).status_code == 303
