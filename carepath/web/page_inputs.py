"""The pages' inputs kept to the same rules as the API's (``carepath.inputs``), before any
of them reaches the database or a template: an address, a query parameter or a form field
with a NUL byte, a control character, a lone surrogate or too many characters is answered
with a 422 page naming the field, never a 500 (PostgreSQL cannot store NUL; UTF-8 cannot
encode a surrogate, so the page could not even be written out).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from carepath import inputs

LONG = {"q": inputs.SEARCH_MAX, "next": 2000, "token": 1000, "note": inputs.NOTE_MAX}
MULTILINE = frozenset({"note"})


class PageInputError(Exception):
    """A page input that breaks a rule: answered with the error page, status 422."""

    def __init__(self, error: inputs.InputError) -> None:
        super().__init__(str(error))
        self.error = error


def check_value(name: str, value: Any, *, min_length: int = 0) -> None:
    if not isinstance(value, str):  # an uploaded file: no page takes one
        raise PageInputError(inputs.InputError(name, "a file", "a form field"))
    try:
        inputs.text(
            value,
            name,
            LONG.get(name, inputs.ID_MAX),
            min_length=min_length,
            multiline=name in MULTILINE,
        )
    except inputs.InputError as exc:
        raise PageInputError(exc) from None


def page_inputs(request: Request) -> None:
    """Dependency of every page route: its path and query parameters keep to the rules."""
    for name, value in request.path_params.items():
        check_value(name, value, min_length=1)
    for name, value in request.query_params.multi_items():
        check_value(name, value)


def check_form(form: Any) -> None:
    """Every field of a page's form keeps to the rules (names too: they are echoed back)."""
    for name, value in form.multi_items():
        check_value("form field name", name)
        check_value(name, value)
