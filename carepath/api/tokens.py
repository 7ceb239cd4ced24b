"""``/api/tokens`` (admins: create, list, revoke) and ``/api/me`` (who am I, for any reader)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from carepath.api.audit_schemas import CreatedToken, NewToken, TokenOut
from carepath.api.auth import READ, TOKENS, GuardedRoute, bearer, caller, roles
from carepath.api.openapi_docs import AUTH_PROBLEMS, problems
from carepath.api.services import Services, services
from storage.access import Token

router = APIRouter(
    tags=["tokens"],
    route_class=GuardedRoute,
    dependencies=[Depends(bearer)],
    responses=AUTH_PROBLEMS,
)
Svc = Annotated[Services, Depends(services)]
TokenId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


def token_out(token: Token) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        role=token.role,
        actor=token.actor,
        created_at=token.created_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


@router.get("/api/me", response_model=TokenOut, openapi_extra=roles(*READ), summary="The caller")
def me(token: Annotated[Token, Depends(caller)]) -> TokenOut:
    return token_out(token)


@router.get("/api/tokens", response_model=list[TokenOut], openapi_extra=roles(*TOKENS))
def list_tokens(svc: Svc) -> list[TokenOut]:
    return [token_out(t) for t in svc.tokens.list()]


@router.post(
    "/api/tokens",
    status_code=201,
    response_model=CreatedToken,
    openapi_extra=roles(*TOKENS),
    responses=problems(409, 422),
    summary="Create a token; the secret is in this response only",
)
def create_token(body: NewToken, svc: Svc, response: Response) -> CreatedToken:
    token, secret = svc.tokens.create(body.name, body.role, svc.clock())
    response.headers["Cache-Control"] = "no-store"
    return CreatedToken(**token_out(token).model_dump(), token=secret)


@router.delete(
    "/api/tokens/{token_id}",
    response_model=TokenOut,
    openapi_extra=roles(*TOKENS),
    responses=problems(404, 422),
    summary="Revoke a token (it keeps its row, for the audit log's actors)",
)
def revoke_token(token_id: TokenId, svc: Svc) -> TokenOut:
    return token_out(svc.tokens.revoke(token_id, svc.clock()))
