"""How every write runs: parse → ``pathway.usecases.handle`` → render.

1. ``Idempotency-Key`` is the token's own (``pathway.idempotency``: scoped to the token, bound
   to the request; keys starting ``timer:`` or ``enrol:`` are reserved for timer firings and
   enrolments: 422). The same token's same key with the same request (command, episode, body)
   answers the first outcome (200, ``Idempotent-Replayed: true``) and nothing else happens: not
   even an If-Match check, since the first application moved the version the client sent; with
   a different request it is a 422 naming the key and what differs, and nothing is written.
   Another token's same key is another command.
2. The episode's due timers fire first (the handler does this for every entry point): a
   command never acts on a state the clock has already left.
3. ``If-Match`` (the episode's ETag) is compared with the episode as it now stands, as the
   handler's precondition: stale is 412 and nothing is applied. The event then runs on a unit
   of work pinned to that version (``PinnedVersion``), so a write slipping in between the
   comparison and the use case's read is a 409, and one between its read and its write is the
   storage's own 409.
4. The event carries the token's actor (``token:<name>``) and runs in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Self

from fastapi import Depends, Header, Response

from carepath.api import episode_schemas as s
from carepath.api.auth import caller
from carepath.api.episode_view import etag, firing, outcome_out
from carepath.api.problems import ProblemError
from carepath.api.services import Services, services, utc
from pathway.enrolment import ENROL_EVENT_PREFIX
from pathway.errors import ConcurrencyConflict, IdempotencyKeyReused, InvalidRequest
from pathway.model import Episode, Event
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import TIMER_EVENT_PREFIX, Applied, handle, new_event_id
from storage.access import Token

MakeEvent = Callable[[str, datetime, str], Event]
"""The command's event, given its event id, clinical time and actor (e.g. ``partial(Observe,
facts=...)``)."""
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,200}$"  # visible ASCII, as HTTP header values are
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY,
        description="The command's event id: the same key twice applies once.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=1000, description="The ETag of the episode as last read."),
]


class Command:
    """Dependency of the route that opens an episode: what every command needs."""

    def __init__(
        self,
        svc: Annotated[Services, Depends(services)],
        token: Annotated[Token, Depends(caller)],
        response: Response,
        idempotency_key: IdempotencyKey = None,
    ) -> None:
        self.svc, self.token, self.response = svc, token, response
        self.idempotency_key = idempotency_key
        self.if_match: str | None = None

    def run(
        self, episode_id: str | None, at: datetime | None, make_event: MakeEvent
    ) -> s.CommandResult:
        """Run one command as described in the module docstring and render its result."""
        svc, key, response = self.svc, self.idempotency_key, self.response
        caller = None if key is None else f"token:{self.token.id}"
        now = svc.clock()
        event = make_event(key or new_event_id(now), utc(at, "at", now), self.token.actor)
        precondition = None
        if episode_id is not None and self.if_match is not None:
            precondition = partial(pin_if_match, self.if_match, episode_id)
        try:
            handled = handle(
                svc.uow_factory(),
                svc.definitions,
                episode_id,
                event,
                now,
                precondition=precondition,
                caller=caller,
                at_given=at is not None,
            )
        except IdempotencyKeyReused as exc:
            raise ProblemError(
                422,
                "idempotency-key-reused",
                f"Idempotency-Key {key!r} was already used by this token for {exc.first}; "
                f"this request differs in its {exc.part}",
                field="Idempotency-Key",
                value=key,
                expected=f"a new key for a request with a different {exc.part}",
            ) from None
        except InvalidRequest as exc:
            if exc.field != "event_id":
                raise
            raise ProblemError(
                422,
                "invalid-request",
                f"Idempotency-Key: keys starting {TIMER_EVENT_PREFIX!r} or "
                f"{ENROL_EVENT_PREFIX!r} are reserved",
                field="Idempotency-Key",
                value=key,
                expected=exc.expected,
            ) from None
        applied = handled.applied
        if applied.outcome.repeated:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
            return render(applied, [])
        response.status_code = 201
        response.headers["ETag"] = etag(applied.outcome.episode_id, applied.outcome.version)
        return render(applied, handled.timers_fired)


class EpisodeCommand(Command):
    """Dependency of the routes that write to an existing episode: If-Match as well."""

    def __init__(
        self,
        svc: Annotated[Services, Depends(services)],
        token: Annotated[Token, Depends(caller)],
        response: Response,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> None:
        super().__init__(svc, token, response, idempotency_key)
        self.if_match = if_match


def check_if_match(if_match: str, episode: Episode) -> None:
    """412 unless ``If-Match`` lists the episode's current ETag (or is ``*``)."""
    current = etag(episode.id, episode.version)
    given = [tag.strip() for tag in if_match.split(",")]
    if "*" in given or current in given:
        return
    raise ProblemError(
        412,
        "precondition-failed",
        f"If-Match {if_match!r} is stale: the episode is now at {current}; "
        "read it again and resend with its ETag",
        headers={"ETag": current},
        field="If-Match",
        value=if_match,
        expected=current,
    )


def pin_if_match(if_match: str, episode_id: str, uow: UnitOfWork) -> UnitOfWork:
    """The handler's precondition for a command with ``If-Match``: 412 unless it names the
    episode as it stands after its due timers fired; then the episode pinned to that version."""
    with uow:
        episode = uow.get_episode(episode_id)
    check_if_match(if_match, episode)
    return PinnedVersion(uow, episode_id, episode.version)


class PinnedVersion:
    """A unit of work that hands out the episode only at the version the client's If-Match
    named; at any other version the command is a ConcurrencyConflict (409)."""

    def __init__(self, uow: UnitOfWork, episode_id: str, version: int) -> None:
        self._uow, self._episode_id, self._version = uow, episode_id, version

    def __enter__(self) -> Self:
        self._uow.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._uow.__exit__(*exc)

    def get_episode(self, episode_id: str) -> Episode:
        episode = self._uow.get_episode(episode_id)
        if episode_id == self._episode_id and episode.version != self._version:
            raise ConcurrencyConflict(episode_id, self._version, episode.version)
        return episode

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow, name)


def render(applied: Applied, fired: list[Applied]) -> s.CommandResult:
    decision = applied.decision
    return s.CommandResult(
        outcome=outcome_out(applied.outcome),
        fired=[firing(_as_body(f)) for f in decision.fired] if decision else [],
        refusals=[firing(_as_body(r.firing)) for r in decision.refused] if decision else [],
        tasks_opened=[
            s.TaskOpened(key=t.key, rule=t.rule_id, kind=t.kind, text=t.text)
            for t in (decision.tasks_opened if decision else ())
        ],
        timers_fired_first=[outcome_out(a.outcome) for a in fired],
    )


def _as_body(rule_firing: Any) -> dict[str, Any]:
    """A RuleFiring as the audit log stores it, so one renderer serves both."""
    return {
        "rule_id": rule_firing.rule_id,
        "title": rule_firing.title,
        "refs": rule_firing.refs,
        "citations": rule_firing.citations,
        "evidence": [e.to_dict() for e in rule_firing.evidence],
    }
