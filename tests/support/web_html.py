"""Reading the pages back in tests: worklist rows, form fields, CSRF and event ids."""

from __future__ import annotations

import html as html_lib
import re

from carepath.demo import episode_id_of


def rows(html: str) -> list[tuple[str, str]]:
    """(bucket, episode id) of each worklist row, top to bottom."""
    return re.findall(r'class="row row-(\w+)" data-episode="(\w+)"', html)


def refs_in_order(html: str) -> list[str]:
    return re.findall(r'<span class="ref">([^<]+)</span>', html)


def hidden(html: str, name: str) -> str:
    """The value of the first hidden input named ``name``."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden input {name!r} on the page"
    return match.group(1)


def field_error(html: str, name: str) -> str | None:
    match = re.search(rf'<p class="error" id="err-{name}">(.*?)</p>', html, re.S)
    return (
        None if match is None else html_lib.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()
    )


def episode_of(ref: str) -> str:
    return episode_id_of(ref)
