"""The coordinator pages: sign-in, the worklist and the episode page (reads), and their wiring.

Server-rendered HTML that works without JavaScript; htmx (vendored, served from /static) only
refreshes the worklist every 15 seconds and sends the episode forms without a page reload.
Every page answer carries ``Cache-Control: no-store`` (patient data stays out of caches), a
strict Content-Security-Policy (scripts and styles from this server only, no framing) and
``Referrer-Policy: no-referrer`` (URLs hold episode ids and searches).

The API's exception handlers answer JSON problems; the pages catch what they expect themselves
and answer HTML, and their own exceptions (not signed in, wrong role, stale form) have HTML
handlers installed by ``install_pages``.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from carepath import inputs
from carepath.api.services import Services, services
from carepath.settings import Settings
from carepath.web import session
from carepath.web.episode_page import load_episode_page
from carepath.web.page_inputs import PageInputError, check_value, page_inputs
from carepath.web.rendering import STATIC, learn_tones, make_templates
from carepath.web.worklist_page import load_worklist
from carepath.web.worklist_rows import BUCKET_LABELS, BUCKETS
from pathway.errors import EpisodeNotFound
from storage.sessions import SessionStore

PREFIX = ""  # the pages live at the root; the JSON API is under /api/
REFRESH_SECONDS = 15
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
templates = make_templates()
router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(page_inputs)])
Svc = Annotated[Services, Depends(services)]
R = TypeVar("R", bound=Response)


def page(
    request: Request, name: str, status: int = 200, viewer: Any = None, **values: Any
) -> HTMLResponse:
    """Render a template with the values every page uses, and the page headers."""
    response = templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "prefix": PREFIX, "refresh": REFRESH_SECONDS, **values},
        status_code=status,
    )
    return secured(response)


def secured(response: R) -> R:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def redirect(url: str) -> RedirectResponse:
    return secured(RedirectResponse(url, status_code=303))


# -- sign in and out ------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> Response:
    try:
        session.viewer(request)
        return redirect(_safe_next(next))
    except (session.NotSignedIn, session.NotAllowed):
        pass
    return _login_page(request, next)


def _login_page(
    request: Request, next: str, error: str | None = None, status: int = 200
) -> Response:
    nonce = secrets.token_urlsafe(16)
    response = page(request, "login.html", status, nonce=nonce, next=next, error=error)
    response.set_cookie(
        session.LOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=session.cookie_secure(request),
        path=PREFIX or "/",
    )
    return response


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    nonce: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    for name, value in (("token", token), ("nonce", nonce), ("next", next)):
        check_value(name, value)
    expected = request.cookies.get(session.LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, nonce):
        return _login_page(request, next, "The sign-in form expired. Please try again.", 400)
    secret = token.strip()
    found = session.authenticate(request, secret) if secret else None
    if found is None:
        return _login_page(request, next, "This token is unknown or has been revoked.", 401)
    role = found.role
    if role not in session.VIEW_ROLES:
        message = f"Tokens with the role “{role}” cannot sign in to the coordinator pages."
        return _login_page(request, next, message, 403)
    response = redirect(_safe_next(next))
    session.end(request)  # a session this browser still held ends: one per sign-in
    session.set_session(response, request, session.start(request, found))
    response.delete_cookie(session.LOGIN_COOKIE, path=PREFIX or "/")
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    who = session.viewer(request)
    session.check_csrf(who.csrf, csrf)
    session.end(request)
    response = redirect(f"{PREFIX}/login")
    session.clear_session(response)
    return response


def _safe_next(target: str) -> str:
    """Only a path of these pages: never another site (an open redirect)."""
    if target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/worklist"


# -- reads ----------------------------------------------------------------------------------


@router.get("/worklist", response_class=HTMLResponse)
def worklist(
    request: Request,
    svc: Svc,
    state: str = "",
    q: str = "",
    pathway: str = "",
    assigned: str = "",
    sort: str = "",
) -> Response:
    who = session.viewer(request)
    now = svc.clock()
    assigned = assigned.strip()
    if assigned not in ("", "me", "none"):
        try:
            inputs.owner(assigned, "assigned")
        except inputs.InputError as exc:
            raise PageInputError(exc) from None
    sort = "appointment" if sort == "appointment" else ""
    view = load_worklist(svc, now, state or None, q, pathway or None, assigned, who.name, sort)
    partial = request.headers.get("HX-Request") == "true" and not request.headers.get("HX-Boosted")
    return page(
        request,
        "_worklist_table.html" if partial else "worklist.html",
        viewer=who,
        view=view,
        now=now,
        buckets=BUCKETS,
        bucket_labels=BUCKET_LABELS,
    )


@router.get("/episodes/{episode_id}", response_class=HTMLResponse)
def episode(
    request: Request, svc: Svc, episode_id: str, event: str = "", again: str = ""
) -> Response:
    who = session.viewer(request)
    now = svc.clock()
    try:
        content = load_episode_page(svc, episode_id, now, event_id=event or None)
    except EpisodeNotFound:
        return not_found(request, who)
    return page(
        request,
        "episode.html",
        viewer=who,
        p=content,
        now=now,
        csrf=who.csrf,
        repeated=bool(again),
    )


def not_found(request: Request, who: session.Viewer) -> Response:
    return page(
        request,
        "error.html",
        404,
        viewer=who,
        title="Episode not found",
        message="There is no episode with this address. It may have been mistyped.",
    )


# -- wiring ---------------------------------------------------------------------------------


def install_pages(app: FastAPI, settings: Settings | None = None) -> None:
    """Add the pages, their static files and their HTML error handlers to ``app``, and the
    page sessions' store (expiry from ``settings``, default the environment's)."""
    from carepath.web.dashboard import router as dashboard_router
    from carepath.web.page_assign import router as assign_router
    from carepath.web.page_book import router as book_router
    from carepath.web.page_commands import router as commands_router
    from carepath.web.webhooks_page import router as webhooks_router

    settings = settings or Settings.from_env()
    app.state.secure_cookies = settings.secure_cookies
    app.state.sessions = SessionStore(
        app.state.tokens.connections,
        key=app.state.uow_factory.audit_key,
        idle=settings.session_idle,
        lifetime=settings.session_lifetime,
    )

    learn_tones(app.state.definitions)
    app.include_router(router)
    app.include_router(commands_router)
    app.include_router(assign_router)
    app.include_router(book_router)
    app.include_router(dashboard_router)
    app.include_router(webhooks_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if not any(getattr(r, "path", None) == "/" for r in app.routes):
        app.add_api_route("/", _home, include_in_schema=False)
    app.add_exception_handler(session.NotSignedIn, _not_signed_in)
    app.add_exception_handler(session.NotAllowed, _not_allowed)
    app.add_exception_handler(session.StaleForm, _stale_form)
    app.add_exception_handler(PageInputError, _bad_input)


def _home() -> Response:
    return redirect(f"{PREFIX}/worklist")


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    target = f"{PREFIX}/login"
    if request.method == "GET" and request.url.path != target:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?next=" + quote(path, safe="")
    if request.headers.get("HX-Request") == "true":
        response = secured(Response(status_code=204))
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, session.NotAllowed)
    return page(
        request,
        "error.html",
        403,
        title="Not allowed",
        message=f"Your role ({exc.role}) may not {exc.needed}.",
    )


async def _bad_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageInputError)
    return page(
        request,
        "error.html",
        422,
        title="This address or form cannot be read",
        message=f"Nothing was recorded. {exc.error}.",
    )


async def _stale_form(request: Request, exc: Exception) -> Response:
    return page(
        request,
        "error.html",
        403,
        title="This form has expired",
        message="The form was sent without this session's security token (it may come from "
        "an earlier session or another site). Nothing was recorded. Go back, reload the page "
        "and send it again.",
    )
