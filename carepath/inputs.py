"""The input rules every entry point shares: the API's schemas, the pages' forms and the CLI.

One place says what a label, a patient ref, a note, a reason, an actor, a path id, a clinical
time and a worklist cursor may be, so that the three entry points cannot drift apart (a NUL
byte PostgreSQL cannot store, a lone surrogate UTF-8 cannot encode, a year-1 time that has no
UTC equivalent, a 100,000-character label, a CLI actor posing as an API token). Each rule
raises ``InputError`` (a ``ValueError``, so pydantic reports it as a 422 naming the field)
carrying the field, the value and what was expected; nothing here touches a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

# Lengths, in characters.
PATIENT_REF_MAX = 100
LABEL_MAX = 200
NOTE_MAX = 2000
REASON_MAX = 100  # close reasons and request actions
ACTOR_MAX = 200
ID_MAX = 200  # episode ids, task keys, definition versions, pathway ids
SEARCH_MAX = 100
CURSOR_MAX = 1000
JSON_MAX = 1 << 20  # as the API's body limit

# Clinical times: a range wide enough for any real episode and narrow enough that adding a
# timer's days to it, or moving it to UTC, never overflows Python's datetime.
TIME_MIN = datetime(1900, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)

TOKEN_ACTOR_PREFIX = "token:"  # the actor of an API call or a page: ``token:<token name>``

# For JSON schemas: one line of printable text (no C0 control, no DEL). Surrogates cannot be
# said in a schema pattern that every engine reads alike; ``text`` refuses them too.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"  # unpadded url-safe base64 of the last row's [due, id]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
PRINTABLE_LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # tabs and line breaks as well
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass
class InputError(ValueError):
    """A value an entry point refuses: which field, what was given, what was expected."""

    field: str
    value: Any
    expected: str

    def __str__(self) -> str:
        return f"{self.field}: got {_shown(self.value)}, expected {self.expected}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"… ({len(str(value))} characters)"


def text(
    value: str, field: str, max_length: int, *, min_length: int = 0, multiline: bool = False
) -> str:
    """``value`` if it is printable text (newlines and tabs too when ``multiline``) of
    ``min_length``–``max_length`` characters; InputError otherwise."""
    what = "printable text" + (" (tabs and line breaks allowed)" if multiline else " on one line")
    expected = f"{what} of {min_length}–{max_length} characters"
    if not isinstance(value, str):
        raise InputError(field, value, expected)
    bad = (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value)
    if bad is not None:
        raise InputError(field, value, f"{expected}, without control character {bad.group()!r}")
    if _SURROGATE.search(value):
        raise InputError(field, value, f"{expected} (a lone surrogate is not a character)")
    if not min_length <= len(value) <= max_length:
        raise InputError(field, value, expected)
    return value


def patient_ref(value: str, field: str = "patient_ref") -> str:
    return text(value, field, PATIENT_REF_MAX, min_length=1)


def label(value: str, field: str = "label") -> str:
    return text(value, field, LABEL_MAX)


def note(value: str, field: str = "note") -> str:
    return text(value, field, NOTE_MAX, multiline=True)


def json_text(value: str, field: str = "facts") -> str:
    """A JSON document as typed (``--facts``): any text UTF-8 can say, up to 1 MiB."""
    return text(value, field, JSON_MAX, multiline=True)


def reason(value: str, field: str = "reason") -> str:
    """A close reason or a request's action: a name the pathway then checks."""
    return text(value, field, REASON_MAX, min_length=1)


def booking_day(value: str, field: str = "on") -> date:
    """The day of an appointment: exactly ``YYYY-MM-DD`` (as date facts are written)."""
    from pathway.vocabulary import parse_date

    day = parse_date(value)
    if day is None:
        raise InputError(field, value, "a day written YYYY-MM-DD")
    return day


def booking_reason(value: str, field: str = "reason") -> str:
    """Why an appointment is outside its window: a note's rules, and not blank."""
    text(value, field, NOTE_MAX, multiline=True)
    if not value.strip():
        raise InputError(field, value, "a reason that is not blank")
    return value


def identifier(value: str, field: str) -> str:
    """An episode id, task key, pathway id or definition version as given in a path or query."""
    return text(value, field, ID_MAX, min_length=1)


def search(value: str, field: str = "q") -> str:
    return text(value, field, SEARCH_MAX)


def actor(value: str, field: str = "actor") -> str:
    """Who did it, as the CLI is told: printable, and never ``token:…``, which names an API
    token and is set only by the API and the pages from the token that signed in."""
    text(value, field, ACTOR_MAX, min_length=1)
    if value.strip() != value or not value:
        raise InputError(field, value, "a name without leading or trailing spaces")
    if value.lower().startswith(TOKEN_ACTOR_PREFIX):
        raise InputError(
            field, value, f"a name not starting {TOKEN_ACTOR_PREFIX!r} (reserved for API tokens)"
        )
    return value


OWNER_WORDS = ("me", "none")  # the worklist's ``assigned=me|none`` and ``--to none``


def owner(value: str, field: str = "owner") -> str:
    """The coordinator an episode is assigned to: an actor's rules (printable, not ``token:…``),
    and not ``me`` or ``none``, which the assignment and the worklist filter read as words."""
    actor(value, field)
    if value.lower() in OWNER_WORDS:
        raise InputError(field, value, "a coordinator's name other than 'me' or 'none'")
    return value


def clinical_time(value: datetime, field: str = "at") -> datetime:
    """``value`` as aware UTC (no offset means UTC), within TIME_MIN–TIME_MAX."""
    expected = f"a time from {TIME_MIN:%Y-%m-%d} to {TIME_MAX:%Y-%m-%d} (UTC)"
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 at +14:00 has no UTC equivalent
        raise InputError(field, value.isoformat(), expected) from None
    if not TIME_MIN <= moment < TIME_MAX:
        raise InputError(field, value.isoformat(), expected)
    return moment


def parse_time(value: str, field: str = "at") -> datetime:
    """An ISO 8601 time as typed on the command line or in a form (``Z`` allowed)."""
    example = "an ISO 8601 time such as 2026-03-02T09:30:00Z"
    if not isinstance(value, str) or len(value) > 64 or _CONTROL.search(value):
        raise InputError(field, value, example)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(field, value, example) from None
    return clinical_time(moment, field)


def cursor(value: str, field: str = "cursor") -> Any:
    """A worklist cursor (``storage.worklist.Cursor``) as a previous page returned it."""
    from storage.worklist import Cursor

    expected = "the next_cursor of a previous page"
    if (
        not isinstance(value, str)
        or len(value) > CURSOR_MAX
        or not re.fullmatch(CURSOR_PATTERN, value)
    ):
        raise InputError(field, value, expected)
    try:
        decoded = Cursor.decode(value)
        if decoded.due is not None:
            clinical_time(decoded.due, field)
        text(decoded.id, field, ID_MAX)
    except (ValueError, OverflowError):
        raise InputError(field, value, expected) from None
    return decoded
