"""``carepath.inputs``: the one set of input rules the API, the pages and the CLI share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from carepath import inputs
from carepath.inputs import InputError


@pytest.mark.parametrize(
    "value", ["a\x00b", "a\x01", "\x1b[31m", "tab\there", "new\nline", "del\x7f", "\ud800", ""]
)
def test_one_line_text_refuses_control_characters_surrogates_and_empty(value: str) -> None:
    with pytest.raises(InputError) as caught:
        inputs.patient_ref(value)
    assert caught.value.field == "patient_ref" and caught.value.value == value
    assert str(caught.value).startswith("patient_ref: got ")


def test_lengths_are_the_documented_ones() -> None:
    assert inputs.label("x" * 200) == "x" * 200
    for rule, limit in ((inputs.label, 200), (inputs.patient_ref, 100), (inputs.note, 2000),
                        (inputs.reason, 100)):  # fmt: skip
        with pytest.raises(InputError, match=f"of [01]–{limit} characters"):
            rule("x" * (limit + 1))


def test_a_long_value_is_shown_cut_in_the_message() -> None:
    with pytest.raises(InputError) as caught:
        inputs.label("x" * 100_000)
    assert "(100000 characters)" in str(caught.value) and len(str(caught.value)) < 200


def test_a_note_may_span_lines_but_holds_no_nul() -> None:
    assert inputs.note("line 1\r\nline 2\tend") == "line 1\r\nline 2\tend"
    with pytest.raises(InputError):
        inputs.note("a\x00b")


@pytest.mark.parametrize("actor", ["token:x", "Token:admin", " nurse", "nurse\x07", ""])
def test_the_token_prefix_and_odd_names_are_refused_as_actors(actor: str) -> None:
    with pytest.raises(InputError):
        inputs.actor(actor, "--actor")


def test_a_plain_actor_passes() -> None:
    assert inputs.actor("nurse.jones@ward-3") == "nurse.jones@ward-3"


@pytest.mark.parametrize(
    "text",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1899-12-31T23:59:59Z",
     "2200-01-01T00:00:00Z", "yesterday", "2026-03-02T09:00\x00", "x" * 100],
)  # fmt: skip
def test_times_outside_the_range_or_unreadable_are_refused(text: str) -> None:
    with pytest.raises(InputError) as caught:
        inputs.parse_time(text, "--at")
    assert caught.value.field == "--at"


def test_a_time_is_read_as_utc() -> None:
    assert inputs.parse_time("2026-03-02T09:30") == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    plus14 = datetime(2026, 3, 2, 23, 30, tzinfo=timezone(timedelta(hours=14)))
    assert inputs.clinical_time(plus14) == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_a_cursor_is_only_one_a_page_returned() -> None:
    from storage.worklist import Cursor

    real = Cursor(datetime(2026, 3, 2, tzinfo=UTC), "e1")
    assert inputs.cursor(real.encode()) == real
    assert inputs.cursor(Cursor(None, "e1").encode()) == Cursor(None, "e1")
    for bad in (Cursor(datetime(1, 1, 1, tzinfo=UTC), "e1").encode(), "a=b", "a" * 1001, "\x00"):
        with pytest.raises(InputError):
            inputs.cursor(bad)
