"""Who is using the pages: server-side sessions opened with an API token, and CSRF tokens.

Signing in with a token the API accepts (``storage.access.TokenStore``) opens a session
(``storage.sessions.SessionStore``): a row holding a keyed hash of a random session id (the
key derives from the audit key, so a row written straight into the database opens nothing) and
the token it was opened with. The cookie holds only the session id — never the token: HttpOnly (no
script can read it), SameSite=Strict (no other site's page can make the browser send it),
Secure when served over HTTPS. Every page request looks the session up: signing out deletes
it, revoking its token ends it, and it expires after ``CAREPATH_SESSION_IDLE_MINUTES`` unused
or ``CAREPATH_SESSION_MAX_HOURS`` after sign-in (``carepath.settings``); an expired one is
refused and deleted. The forms' CSRF token is an HMAC keyed by the session id, so it differs
per session and cannot be computed without the cookie.

Roles are the API's (``carepath.api.auth``): coordinators read and act; auditors and admins
read; the scheduler's machine role has no business in the pages.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from starlette.responses import Response

from carepath.api.auth import ASSIGN, READ, WRITE
from storage.access import Token
from storage.sessions import SessionStore

COOKIE = "carepath_session"
LOGIN_COOKIE = "carepath_login"  # double-submit value that guards the sign-in form itself
VIEW_ROLES = frozenset(READ)
WRITE_ROLES = frozenset(WRITE)
ASSIGN_ROLES = frozenset(ASSIGN)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person behind a page request: token name and role, and the session's CSRF token."""

    name: str
    role: str
    actor: str
    csrf: str
    token_id: str = ""  # whose idempotency keys the forms' event ids are

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    @property
    def can_assign(self) -> bool:
        return self.role in ASSIGN_ROLES


class NotSignedIn(Exception):
    """No valid session: the page handler turns this into a redirect to the sign-in page."""


class NotAllowed(Exception):
    """A valid session whose role may not do what it asked: a 403 page."""

    def __init__(self, role: str, needed: str) -> None:
        super().__init__(f"role {role!r} may not {needed}")
        self.role = role
        self.needed = needed


def csrf_for(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"csrf", hashlib.sha256).hexdigest()[:40]


def _clock(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def _sessions(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


def authenticate(request: Request, secret: str) -> Token | None:
    """The live token ``secret``, or None when unknown or revoked."""
    token: Token | None = request.app.state.tokens.authenticate(secret, _clock(request))
    return token


def start(request: Request, token: Token) -> str:
    """Open a session of ``token``: the cookie value (the session id)."""
    return _sessions(request).open(token, _clock(request))


def end(request: Request) -> None:
    """Sign-out: the session behind the request's cookie is deleted."""
    session_id = request.cookies.get(COOKIE, "")
    if session_id:
        _sessions(request).close(session_id)


def viewer(request: Request) -> Viewer:
    """The signed-in viewer; NotSignedIn without a live session, NotAllowed for other roles."""
    found = _sessions(request).find(request.cookies.get(COOKIE, ""), _clock(request))
    if found is None:
        raise NotSignedIn
    token = found.token
    if token.role not in VIEW_ROLES:
        raise NotAllowed(token.role, "use the coordinator pages")
    return Viewer(token.name, token.role, token.actor, csrf_for(found.id), token.id)


def writer(request: Request, form_csrf: str | None) -> Viewer:
    """The viewer, checked for a write: a writing role and the session's CSRF token."""
    who = viewer(request)
    if not who.can_write:
        raise NotAllowed(who.role, "change episodes (read-only role)")
    check_csrf(who.csrf, form_csrf)
    return who


def assigner(request: Request, form_csrf: str | None) -> Viewer:
    """The viewer, checked for an assignment: coordinators and admins, and the CSRF token."""
    who = viewer(request)
    if not who.can_assign:
        raise NotAllowed(who.role, "assign episodes")
    check_csrf(who.csrf, form_csrf)
    return who


class StaleForm(Exception):
    """A form without this session's CSRF token: sent by another page, or from an old session."""


def check_csrf(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected, given):
        raise StaleForm


def cookie_secure(request: Request) -> bool:
    """Secure when the request came over https, or always (CAREPATH_SECURE_COOKIES) when a
    proxy terminates TLS and forwards plain http from an address uvicorn does not trust."""
    return request.url.scheme == "https" or getattr(request.app.state, "secure_cookies", False)


def set_session(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
