"""Templates and the few formatting filters every page shares.

Times are shown in UTC and say so: the database and the engine are UTC throughout, and a page
that silently converted to the browser's zone would disagree with the CLI, the API and the
audit log. State badges carry a colour class per kind of state *and* the state's name, so
colour is never the only signal.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from carepath.web.timeline import show_value
from carepath.web.worklist_rows import span_words
from pathway.appointments import is_missed
from pathway.usecases import DefinitionRegistry, new_event_id
from pathway.windows import episode_windows

_RULE_ID = re.compile(r"\b([A-Z]{2,}(?:-[A-Z0-9]+)+)\b")
HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Badge tone per state: where the patient is in the pathway, not how urgent it is. Each
# definition says its states' tones; the pages learn them from the loaded definitions.
STATE_TONES: dict[str, str] = {}


def learn_tones(definitions: DefinitionRegistry) -> None:
    """Every loaded definition's state tones (a state name shared by two pathways, such as
    ``closed``, has one tone in both)."""
    for version in definitions.versions():
        for state in definitions.get(version).states.values():
            STATE_TONES.setdefault(state.name, state.tone)


def when(value: datetime | None, with_year: bool = True) -> str:
    if value is None:
        return "—"
    return value.strftime("%-d %b %Y, %H:%M" if with_year else "%-d %b, %H:%M")


def day(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%-d %b %Y")


def relative(value: datetime | None, now: datetime) -> str:
    if value is None:
        return ""
    span = value - now
    return f"in {span_words(span)}" if span.total_seconds() > 0 else f"{span_words(span)} ago"


def tone(state: str | None) -> str:
    return STATE_TONES.get(state or "", "other")


def num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def keep_ids(text: str) -> Markup:
    """Text whose rule ids (``TX-INSTAB``) never break at their hyphens when lines wrap."""
    parts = _RULE_ID.split(str(text))
    return Markup("").join(
        Markup('<span class="nowrap">{}</span>').format(p) if i % 2 else p
        for i, p in enumerate(parts)
    )


def asset(path: str) -> str:
    """A static file's URL: ``CAREPATH_BASE_URL`` + ``/static/<path>``, by default root-relative.
    Never ``url_for``, which writes the request's Host header into the page."""
    from carepath.settings import Settings

    return f"{Settings.from_env().base_url}/static/{path}"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters.update(when=when, day=day, tone=tone, num=num, keep_ids=keep_ids)
    env.globals.update(asset=asset, relative=relative, show=show_value, new_event_id=new_event_id)
    env.globals["review_windows"] = episode_windows  # the appointment form's windows
    env.globals["appointment_missed"] = is_missed
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates
