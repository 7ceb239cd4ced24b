"""``/api/webhooks`` (admins): subscriptions — add (the secret in that response only), list,
remove, rotate the secret — and the outbox's counts with the latest failed messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from carepath import webhooks
from carepath.api.auth import TOKENS, GuardedRoute, bearer, caller, roles
from carepath.api.openapi_docs import AUTH_PROBLEMS, problems
from carepath.api.problems import ProblemError
from carepath.api.services import Services, services
from pathway.notifications import EVENT_TYPES
from storage.access import Token
from storage.webhooks import Subscription, SubscriptionNotFound, WebhookStore

router = APIRouter(
    tags=["webhooks"],
    route_class=GuardedRoute,
    dependencies=[Depends(bearer)],
    responses=AUTH_PROBLEMS,
)
Svc = Annotated[Services, Depends(services)]
SubscriptionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^ws_[0-9a-f]+$")]


class NewSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description=webhooks.EXPECTED_URL)
    events: list[str] = Field(
        min_length=1, max_length=len(EVENT_TYPES), description=f"Of: {', '.join(EVENT_TYPES)}"
    )
    include_patient_ref: bool = False


class SubscriptionOut(BaseModel):
    id: str
    url: str
    events: list[str]
    include_patient_ref: bool
    created_at: datetime
    created_by: str
    rotated_at: datetime | None


class CreatedSubscription(SubscriptionOut):
    secret: str = Field(description="whsec_…: shown in this response only")


class NewSecret(BaseModel):
    id: str
    secret: str = Field(description="whsec_…: shown in this response only")


class FailedMessage(BaseModel):
    id: str
    subscription: str
    type: str
    episode: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str


class OutboxStatus(BaseModel):
    pending: int
    delivered: int
    failed: int
    failed_messages: list[FailedMessage]


def _store(request: Request) -> WebhookStore:
    return WebhookStore(request.app.state.uow_factory)


def _out(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "url": sub.url,
        "events": list(sub.events),
        "include_patient_ref": sub.include_patient_ref,
        "created_at": sub.created_at,
        "created_by": sub.created_by,
        "rotated_at": sub.rotated_at,
    }


def _not_found(exc: SubscriptionNotFound) -> ProblemError:
    return ProblemError(404, "webhook-not-found", str(exc))


@router.get("/api/webhooks", response_model=list[SubscriptionOut], openapi_extra=roles(*TOKENS))
def list_webhooks(request: Request) -> list[dict[str, Any]]:
    return [_out(s) for s in _store(request).list()]


@router.post(
    "/api/webhooks",
    status_code=201,
    response_model=CreatedSubscription,
    openapi_extra=roles(*TOKENS),
    responses=problems(422),
    summary="Subscribe a URL to event types; the signing secret is in this response only",
)
def add_webhook(
    body: NewSubscription,
    request: Request,
    svc: Svc,
    response: Response,
    token: Annotated[Token, Depends(caller)],
) -> dict[str, Any]:
    factory = request.app.state.uow_factory
    sub, secret = webhooks.add(
        WebhookStore(factory), factory.audit_key, body.url, body.events, token.actor,
        svc.clock(), include_patient_ref=body.include_patient_ref,
    )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return {**_out(sub), "secret": secret}


@router.delete(
    "/api/webhooks/{subscription_id}",
    response_model=SubscriptionOut,
    openapi_extra=roles(*TOKENS),
    responses=problems(404, 422),
    summary="Remove a subscription and its undelivered messages",
)
def remove_webhook(subscription_id: SubscriptionId, request: Request) -> dict[str, Any]:
    store = _store(request)
    try:
        sub = store.get(subscription_id)
        store.remove(subscription_id)
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None
    return _out(sub)


@router.post(
    "/api/webhooks/{subscription_id}/rotate-secret",
    response_model=NewSecret,
    openapi_extra=roles(*TOKENS),
    responses=problems(404, 422),
    summary="Replace the signing secret; the new one is in this response only",
)
def rotate_webhook_secret(
    subscription_id: SubscriptionId, request: Request, svc: Svc, response: Response
) -> NewSecret:
    factory = request.app.state.uow_factory
    try:
        secret = webhooks.rotate(
            WebhookStore(factory), factory.audit_key, subscription_id, svc.clock()
        )
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None
    response.headers["Cache-Control"] = "no-store"
    return NewSecret(id=subscription_id, secret=secret)


@router.get(
    "/api/webhooks/outbox",
    response_model=OutboxStatus,
    openapi_extra=roles(*TOKENS),
    summary="Messages pending, delivered and failed; the latest failed ones",
)
def outbox(request: Request) -> dict[str, Any]:
    store = _store(request)
    return {**store.counts(), "failed_messages": store.failed_messages()}
