"""The webhooks admin page: subscriptions (never their secrets) and the outbox — messages
pending, delivered and failed, with the latest failures and why.

For admins only (others get the 403 page): subscriptions are managed with ``carepath webhook``
or ``/api/webhooks``; this page is where a failed delivery is seen.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from carepath.api.auth import TOKENS
from carepath.web import session
from carepath.web.page_inputs import page_inputs

router = APIRouter(include_in_schema=False, dependencies=[Depends(page_inputs)])


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request) -> Response:
    from carepath.web.pages import page
    from storage.webhooks import WebhookStore

    who = session.viewer(request)
    if who.role not in TOKENS:
        raise session.NotAllowed(who.role, "see webhook deliveries (admins)")
    store = WebhookStore(request.app.state.uow_factory)
    return page(
        request, "webhooks.html", viewer=who, active="webhooks",
        subscriptions=store.list(), counts=store.counts(), failed=store.failed_messages(),
    )  # fmt: skip
