"""What the routes work with, read from the app's state on each request.

``create_api`` puts the unit-of-work factory, the definitions, the clock, the token store and
the worklist on ``app.state``; tests replace ``app.state.clock`` to move time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request

from pathway.errors import InvalidRequest
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import DefinitionRegistry
from storage.access import TokenStore
from storage.worklist import Worklist


@dataclass(frozen=True, slots=True)
class Services:
    uow_factory: Callable[[], UnitOfWork]
    definitions: DefinitionRegistry
    clock: Callable[[], datetime]
    tokens: TokenStore
    worklist: Worklist


def services(request: Request) -> Services:
    """Dependency: the app's services."""
    state = request.app.state
    return Services(state.uow_factory, state.definitions, state.clock, state.tokens, state.worklist)


def utc(value: datetime | None, field: str, default: datetime) -> datetime:
    """A time from a request as aware UTC (no offset means UTC); ``default`` when absent."""
    if value is None:
        return default
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # year 9999 at +14:00 has no UTC equivalent
        raise InvalidRequest(field, value.isoformat(), "a time that exists in UTC") from None
