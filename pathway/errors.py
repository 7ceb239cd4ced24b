"""One exception tree for everything the pathway can refuse.

    PathwayError                      base: ``message`` names the value given and what was expected
    ├── InvalidObservation            unknown fact, wrong type, out of range, duplicate item
    ├── InvalidRequest                unknown action, unknown close reason, malformed command
    │   ├── IdempotencyKeyReused      a caller's key already used for a different request
    │   └── InvalidMeasureQuery       measures of an unknown pathway or measure, a bad month
    ├── TransitionNotAllowed          the definition's graph has no such edge from this state
    ├── EpisodeClosed                 any event on a terminal episode
    ├── EpisodeNotFound               no episode with that id
    ├── ConcurrencyConflict           a stale write: the episode changed since it was read
    ├── InvalidDefinition             a pathway definition file that does not validate
    └── InvalidScenario               a replay file that is not a scenario (bad JSON, unknown kind…)

An add-on defines its own beside it, on this tree: ``MissingStateMapping`` (an
``InvalidRequest``: a migration meets a state the new version does not have) in
``pathway.migration.plan``.

Bad input raises before anything is written, so a caught error always means "nothing changed".
"""

from __future__ import annotations


class PathwayError(Exception):
    """Base class: every error the engine or its use cases raise on purpose."""

    def __init__(self, message: str, *, episode_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.episode_id = episode_id

    def __str__(self) -> str:
        return self.message


class InvalidObservation(PathwayError):
    """A fact that is unknown, of the wrong type or out of range; carries fact, value, expected."""

    def __init__(
        self, fact: str, value: object, expected: str, *, episode_id: str | None = None
    ) -> None:
        super().__init__(
            f"fact {fact!r}: got {value!r}, expected {expected}", episode_id=episode_id
        )
        self.fact = fact
        self.value = value
        self.expected = expected


class InvalidRequest(PathwayError):
    """A command whose field holds a value the pathway does not accept."""

    def __init__(
        self, field: str, value: object, expected: str, *, episode_id: str | None = None
    ) -> None:
        super().__init__(f"{field}: got {value!r}, expected {expected}", episode_id=episode_id)
        self.field = field
        self.value = value
        self.expected = expected


class IdempotencyKeyReused(InvalidRequest):
    """A caller's idempotency key already used for a different request (``part``: the
    command, the episode or the body that differs); nothing is applied."""

    def __init__(self, key: str, part: str, first: str, *, episode_id: str | None = None) -> None:
        expected = "a new key for a different request"
        PathwayError.__init__(
            self,
            f"idempotency key {key!r} was already used for {first} and this request differs "
            f"in its {part}: expected {expected}",
            episode_id=episode_id,
        )
        self.field = "idempotency_key"
        self.value = key
        self.expected = expected
        self.key = key
        self.part = part
        self.first = first


class TransitionNotAllowed(PathwayError):
    """The engine chose an edge the definition's state graph does not have."""


class EpisodeClosed(PathwayError):
    """An event addressed to an episode that already reached a terminal state."""

    def __init__(self, episode_id: str, state: str, event: str) -> None:
        super().__init__(
            f"episode {episode_id} is {state!r} (terminal): {event} refused; "
            "expected an episode in a non-terminal state",
            episode_id=episode_id,
        )
        self.state = state


class EpisodeNotFound(PathwayError):
    """No episode has the id given."""

    def __init__(self, episode_id: str) -> None:
        super().__init__(
            f"episode {episode_id!r}: not found, expected the id of an existing episode",
            episode_id=episode_id,
        )


class ConcurrencyConflict(PathwayError):
    """The episode's row version moved between read and write: retry on fresh data."""

    def __init__(self, episode_id: str, expected_version: int, found: int | None) -> None:
        super().__init__(
            f"episode {episode_id}: expected version {expected_version}, "
            f"found {found}; it was changed by another writer",
            episode_id=episode_id,
        )
        self.expected_version = expected_version
        self.found = found


class InvalidDefinition(PathwayError):
    """A pathway definition that fails validation; the message names the part and the problem."""


class InvalidScenario(PathwayError):
    """A replay file that is not a scenario; the message says where and what was expected."""


class InvalidMeasureQuery(InvalidRequest):
    """A measures query naming an unknown pathway or measure, or a bad month or date."""
