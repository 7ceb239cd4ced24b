"""The worklist in a real browser: headless Chromium driving the pages served by uvicorn.

A coordinator signs in with a token, sees the most overdue episode first and marks its open
task done with a note, opens an episode in conservative care, records a motor deficit through
the form (sent inline by htmx), sees the episode move to immediate transfer, and finds it gone
from the worklist. Screenshots of each
step go to ``test-artifacts/``.

Chromium and its driver are Debian's (``/usr/bin/chromium``, ``/usr/bin/chromedriver``), named
explicitly so that Selenium never tries to download a browser. Without them the test skips
with the reason, except under CI=true, where it fails: CI must run it.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.protocol import REPOSITORY
from tests.support.web_html import episode_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = REPOSITORY / "test-artifacts"


def _browser_missing() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"


def _skip_without_browser() -> None:
    reason = _browser_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the browser test must run: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, coordinator token) of uvicorn serving the app on a free loopback port;
    not started at all where there is no browser to drive it."""
    _skip_without_browser()
    import uvicorn

    from carepath.demo import load_cohort
    from carepath.server import build_app
    from carepath.settings import Settings

    database = tmp_path_factory.mktemp("browser") / "browser.db"
    app = build_app(Settings(f"sqlite:///{database}", None), scheduler=False)
    now = datetime.now(UTC)
    load_cohort(app.state.uow_factory, app.state.definitions, now)
    _, token = app.state.tokens.create("browser-coordinator", "coordinator", now)
    listening = socket.socket()  # bound here and handed to uvicorn: no other process can take
    listening.bind(("127.0.0.1", 0))  # the port between choosing it and listening on it
    port = listening.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _skip_without_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="carepath-chromium-")
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--window-size=1440,1000",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _shot(driver: Any, name: str) -> None:
    """A full-page screenshot: the window grown to the page's height for the capture."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1440, min(max(height + 200, 1000), 6000))
    driver.save_screenshot(str(ARTIFACTS / f"web-{name}.png"))
    driver.set_window_size(1440, 1000)


def test_coordinator_records_a_motor_deficit_and_the_episode_leaves_the_worklist(
    server: tuple[str, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, token = server
    wait = WebDriverWait(browser, 60)  # a hang guard: a loaded machine's Chromium is slow

    browser.get(f"{base}/worklist?pathway=l1-l2-compression-fracture")
    wait.until(ec.presence_of_element_located((By.ID, "token")))
    assert "/login" in browser.current_url
    _shot(browser, "01-sign-in")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    first = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.row")))
    assert "row-overdue" in first.get_attribute("class")
    assert first.get_attribute("data-episode") == episode_of("DEMO-0009")
    assert "Osteoporosis care overdue by 4 days" in first.text
    _shot(browser, "02-worklist")

    first.find_element(By.CSS_SELECTOR, "a").click()  # the overdue one: a task is open on it
    task = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#tasks li.task-task")))
    assert "Refer to pain management" in task.text
    task.find_element(By.NAME, "note").send_keys("Referred by phone")
    task.find_element(By.CSS_SELECTOR, "button[value=done]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "timeline"), "“Referred by phone”"))
    assert "Marked done: Refer to pain management" in browser.find_element(By.ID, "timeline").text
    _shot(browser, "03-task-marked-done")
    browser.find_element(By.LINK_TEXT, "← Worklist").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.row")))

    conservative = episode_of("DEMO-0017")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-episode="{conservative}"] a').click()
    wait.until(ec.presence_of_element_located((By.ID, "observe")))
    head = browser.find_element(By.CSS_SELECTOR, ".episode-head")
    assert "DEMO-0017" in head.text and "Conservative care" in head.text
    _shot(browser, "04-episode-conservative-care")
    waiting = browser.find_element(By.ID, "waiting")  # what it is waiting for: timers, no route
    assert "What it is waiting for" in waiting.text and "FU-3MONTH" in waiting.text
    summary = waiting.find_element(By.CSS_SELECTOR, ".waiting-transfers summary")
    assert "none holds" in summary.text
    tx = waiting.find_element(By.CSS_SELECTOR, '[data-rule="TX-NEURO"]')
    assert not tx.is_displayed()
    summary.click()  # unfolded: each check with what it would need
    assert tx.is_displayed() and "Motor deficit" in tx.text

    panel = browser.find_element(By.ID, "appointment")  # book the next review inside its window
    assert "No review booked." in panel.text
    window = Select(browser.find_element(By.ID, "appointment-window")).first_selected_option
    rule, days = window.get_attribute("value"), window.text.split("(")[1].rstrip(")")
    first_day = days.split(" to ")[0]
    browser.execute_script(
        "document.getElementById('appointment-on').value = arguments[0]", first_day
    )  # a date input's typed form depends on the browser's locale: set its value
    panel.find_element(By.CSS_SELECTOR, "button[value=book]").click()
    booked = wait.until(ec.presence_of_element_located((By.ID, "appointment-booked")))
    assert f"{rule} on {first_day}" in booked.text and "(booked)" in booked.text
    assert f"Booked {first_day}, window {rule}" in browser.find_element(By.ID, "timeline").text
    _shot(browser, "04b-appointment-booked")

    Select(browser.find_element(By.ID, "f-neuro_deficit_motor")).select_by_visible_text("Yes")
    browser.find_element(By.CSS_SELECTOR, "#observe button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "outcome"), "Immediate transfer"))
    outcome = browser.find_element(By.ID, "outcome")  # (the booking's outcome was there first)
    assert "Immediate transfer" in outcome.text and "TX-NEURO" in outcome.text
    head = browser.find_element(By.CSS_SELECTOR, ".episode-head")
    assert "Immediate transfer" in head.text
    assert browser.current_url.split("?")[0].endswith(f"/episodes/{conservative}")  # by htmx
    _shot(browser, "05-moved-to-immediate-transfer")
    assert "the episode has ended" in browser.find_element(By.ID, "waiting").text

    browser.find_element(By.LINK_TEXT, "← Worklist").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.row")))
    listed = [
        r.get_attribute("data-episode") for r in browser.find_elements(By.CSS_SELECTOR, "tr.row")
    ]
    assert conservative not in listed
    _shot(browser, "06-worklist-after-transfer")

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # no script error, no blocked resource (CSP), no 404
