"""Fixtures of the page tests: the whole app on a fresh SQLite file with the demo cohort.

The app is ``carepath.server.build_app`` without its scheduler, on a clock pinned to ``NOW`` so
that "overdue by 3 days" means the same on every run; tokens of each role are created on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.web_site import NOW, Site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    from carepath.demo import load_cohort
    from carepath.server import build_app
    from carepath.settings import Settings

    app = build_app(Settings(f"sqlite:///{tmp_path / 'web.db'}", None), scheduler=False)
    app.state.clock = lambda: NOW
    load_cohort(app.state.uow_factory, app.state.definitions, NOW)
    tokens = {
        role: app.state.tokens.create(f"test-{role}", role, NOW)[1]
        for role in ("coordinator", "auditor", "admin", "scheduler")
    }
    yield Site(app, tokens)
    app.state.uow_factory.dispose()
