"""Who is using the pages: the API's bearer tokens, kept in a cookie, and CSRF tokens for forms.

The pages accept exactly the tokens the API accepts (``storage.access.TokenStore``), checked on
every request, so revoking a token ends its page sessions too. The cookie holds
``<nonce>.<token>``: HttpOnly (no script can read it), SameSite=Strict (no other site's page
can make the browser send it), Secure when served over HTTPS. The nonce is fresh at each
sign-in and the forms' CSRF token is an HMAC of it keyed by the token, so it differs per session
and cannot be computed without the token; no session table is needed.

Roles are the API's (``carepath.api.auth``): coordinators read and act; auditors and admins
read; the scheduler's machine role has no business in the pages.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from starlette.responses import Response

from carepath.api.auth import READ, WRITE

COOKIE = "carepath_session"
LOGIN_COOKIE = "carepath_login"  # double-submit value that guards the sign-in form itself
VIEW_ROLES = frozenset(READ)
WRITE_ROLES = frozenset(WRITE)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person behind a page request: token name and role, and the session's CSRF token."""

    name: str
    role: str
    actor: str
    csrf: str

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES


class NotSignedIn(Exception):
    """No valid session: the page handler turns this into a redirect to the sign-in page."""


class NotAllowed(Exception):
    """A valid session whose role may not do what it asked: a 403 page."""

    def __init__(self, role: str, needed: str) -> None:
        super().__init__(f"role {role!r} may not {needed}")
        self.role = role
        self.needed = needed


def csrf_for(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()[:40]


def cookie_value(secret: str) -> str:
    return f"{secrets.token_urlsafe(16)}.{secret}"


def _split(value: str) -> tuple[str, str] | None:
    nonce, dot, secret = value.partition(".")
    return (nonce, secret) if dot and nonce and secret else None


def authenticate(request: Request, secret: str) -> tuple[str, str, str] | None:
    """(name, role, actor) of the live token ``secret``, or None when unknown or revoked."""
    store = request.app.state.tokens
    clock: Callable[[], datetime] = request.app.state.clock
    token = store.authenticate(secret, clock())
    return None if token is None else (token.name, token.role, token.actor)


def viewer(request: Request) -> Viewer:
    """The signed-in viewer; NotSignedIn without a valid session, NotAllowed for other roles."""
    parts = _split(request.cookies.get(COOKIE, ""))
    if parts is None:
        raise NotSignedIn
    nonce, secret = parts
    found = authenticate(request, secret)
    if found is None:
        raise NotSignedIn
    name, role, actor = found
    if role not in VIEW_ROLES:
        raise NotAllowed(role, "use the coordinator pages")
    return Viewer(name, role, actor, csrf_for(secret, nonce))


def writer(request: Request, form_csrf: str | None) -> Viewer:
    """The viewer, checked for a write: a writing role and the session's CSRF token."""
    who = viewer(request)
    if not who.can_write:
        raise NotAllowed(who.role, "change episodes (read-only role)")
    check_csrf(who.csrf, form_csrf)
    return who


class StaleForm(Exception):
    """A form without this session's CSRF token: sent by another page, or from an old session."""


def check_csrf(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected, given):
        raise StaleForm


def set_session(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
