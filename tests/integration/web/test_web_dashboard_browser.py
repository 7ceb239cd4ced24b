"""The audit dashboard in a real browser: an auditor reads the bands, opens a measure's failing
episodes (fetched by htmx into its card) and follows one to its episode page.

Headless Chromium as in ``test_web_browser`` (its browser, its skip-or-fail rule); the server is
this module's own, with the demo cohort and the measures fake (``tests/support/
measures_fake.py``: hand-written reports whose failing episodes are demo episodes). A full-page
screenshot goes to ``test-artifacts/web-dashboard.png``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.web import test_web_browser as real_browser
from tests.support import measures_fake
from tests.support.web_html import episode_of

browser = real_browser.browser


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, auditor token) of uvicorn serving the app with the measures fake."""
    real_browser._skip_without_browser()
    import uvicorn

    from carepath.demo import load_cohort
    from carepath.server import build_app
    from carepath.settings import Settings

    with pytest.MonkeyPatch.context() as patch:
        measures_fake.install(patch)
        database = tmp_path_factory.mktemp("dashboard") / "dashboard.db"
        app = build_app(Settings(f"sqlite:///{database}", None), scheduler=False)
        now = datetime.now(UTC)
        load_cohort(app.state.uow_factory, app.state.definitions, now)
        _, token = app.state.tokens.create("browser-auditor", "auditor", now)
        listening = socket.socket()  # bound here and handed to uvicorn: the port stays ours
        listening.bind(("127.0.0.1", 0))
        port = listening.getsockname()[1]
        running = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=running.run, kwargs={"sockets": [listening]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60  # a hang guard
        while not running.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", token
        running.should_exit = True
        thread.join(timeout=10)
        listening.close()


def sign_in_as_auditor(driver: Any, base: str, token: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(f"{base}/login?next=/dashboard")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".measure")))


def test_an_auditor_reads_the_bands_and_follows_a_failing_episode(
    dashboard_server: tuple[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, token = dashboard_server
    wait = WebDriverWait(browser, 60)  # a hang guard: a loaded machine's Chromium is slow
    sign_in_as_auditor(browser, base, token)
    assert browser.current_url.endswith("/dashboard")

    # From the worklist's header too.
    browser.get(f"{base}/worklist")
    browser.find_element(By.LINK_TEXT, "Audit dashboard").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".measure")))

    cards = browser.find_elements(By.CSS_SELECTOR, "article.measure")
    assert len(cards) == 8 + 6
    bands = {c.get_attribute("data-measure"): c.find_element(By.CSS_SELECTOR, ".band").text
             for c in cards}  # fmt: skip
    assert bands["FLS-KPI-ASSESSED-12W"] == "Green"
    assert bands["FLS-KPI-FALLS"] == "Amber"
    assert bands["FLS-KPI-DXA-12W"] == "Red"
    assert bands["M-DECISION-3M"] == "No data"
    # every chart drawn, as an image the browser decoded
    drawn = browser.execute_script(
        "return [...document.querySelectorAll('img.chart')].map(i => i.complete && i.naturalWidth)"
    )
    assert len(drawn) == 14 + 4 and all(drawn), drawn
    real_browser._shot(browser, "dashboard")

    dxa = browser.find_element(By.ID, "measure-fracture-liaison-FLS-KPI-DXA-12W")
    dxa.find_element(By.CSS_SELECTOR, "a.measure-link").click()
    row = wait.until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, "#failing-fracture-liaison-FLS-KPI-DXA-12W tr[data-episode]")
        )
    )
    assert browser.current_url.endswith("/dashboard"), "htmx fetched it in place"
    assert "DXA recorded on fracture day 97" in row.text
    real_browser._shot(browser, "dashboard-failing")

    # By the keyboard: Enter on a measure's link lists its (here: no) failing episodes.
    from selenium.webdriver.common.keys import Keys

    falls = browser.find_element(By.CSS_SELECTOR, "[data-measure=FLS-KPI-FALLS] a.measure-link")
    falls.send_keys(Keys.ENTER)
    wait.until(
        ec.text_to_be_present_in_element(
            (By.ID, "failing-fracture-liaison-FLS-KPI-FALLS"), "No episode missed FLS-KPI-FALLS."
        )
    )
    row.find_element(By.TAG_NAME, "a").click()
    wait.until(ec.presence_of_element_located((By.ID, "timeline")))
    assert browser.current_url.endswith(f"/episodes/{episode_of('DEMO-F003')}")
