"""Locust's web UI as a person uses it, in Debian's Chromium driven by Playwright: the
chat's settings in the start form, a test run to its end, the Fan-out tab's figures, the
run's capacity report behind the tab's link; a second test in the same session starts
from zero and gets its own run directory.

``UPDATE_SCREENSHOTS=1`` also writes the Fan-out tab to docs/web-ui-fanout.png (the
README shows it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from chat_harness.tests.chromium import chromium
from reports.snapshot import find_browser
from system.local.processes import free_port
from system.tests.machine_tools import needs_tool

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "web-ui-fanout.png"
UI_START_TIMEOUT_S = 120
# What a page shows after a click (a form's answer, a report): as long as Playwright's own
# clicks wait, on a machine busy with load runs.
PAGE_TIMEOUT_S = 30
FIGURES_TIMEOUT_MS = 60_000
RUN_WRITTEN_TIMEOUT_MS = 120_000
USERS = 10  # the suite shares 2 cores with this test: a smoke test, not a capacity test

# A load run: tox runs these files two at a time, after the rest (see load_run in pyproject).
pytestmark = [needs_tool("chromium", find=find_browser), pytest.mark.load_run]


@pytest.fixture(scope="module")
def web_ui(tmp_path_factory):
    """``chat-harness ui`` on a free port, with its runs in a temporary folder."""
    runs = tmp_path_factory.mktemp("runs")
    port = free_port()
    # Its output into a file: a pipe nobody reads fills up and stops the UI at its next log
    # line (once, at its Ctrl-C, for longer than the test waited).
    output = runs.parent / "ui-output.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chat_harness", "ui", "--web-port", str(port),
             "--runs-dir", str(runs)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + UI_START_TIMEOUT_S
    while True:  # Locust serves the page once its init (the local stack) is done
        try:
            with urllib.request.urlopen(url, timeout=5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise AssertionError(f"the web UI did not start:\n{output.read_text()}")
            time.sleep(0.5)
    yield url, runs
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"the web UI did not quit on Ctrl-C within 60 s; its output "
                             f"ends:\n{output.read_text()[-4000:]}") from None


@pytest.fixture(scope="module")
def page(web_ui):
    with chromium(PAGE_TIMEOUT_S) as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 800})


def fill_form(page: Page, users: str, spawn_rate: str, **chat: str) -> None:
    """The start form; the chat's settings are its custom parameters."""
    page.fill("input[name=userCount]", users)
    page.fill("input[name=spawnRate]", spawn_rate)
    if not page.locator("input[name=steps]").is_visible():
        page.get_by_text("Custom parameters").click()
    for name, value in chat.items():
        page.fill(f"input[name={name}]", value)


def start_test(page: Page, users: str, spawn_rate: str, **chat: str) -> None:
    fill_form(page, users, spawn_rate, **chat)
    page.get_by_role("button", name="Start").click()
    page.get_by_role("tab", name="Fan-out").click()


def figure(page: Page, name: str):
    """The Value cell of the Fan-out tab's row ``name``."""
    return page.get_by_role("row").filter(
        has=page.get_by_role("cell", name=name, exact=True)).get_by_role("cell").nth(1)


def report_links(page: Page):
    """The links to each run's report, listed under the Fan-out tab."""
    return page.get_by_role("link", name=re.compile(r": report$"))


def test_a_test_started_from_the_ui_is_a_run_with_its_report(page, web_ui):
    url, runs = web_ui
    page.goto(url)
    start_test(page, str(USERS), str(USERS), steps="", messagesPerMinute="30", heartbeatS="5")

    expect(figure(page, "connected users")).to_have_text(str(USERS),
                                                         timeout=FIGURES_TIMEOUT_MS)
    expect(figure(page, "messages sent")).not_to_have_text("0", timeout=FIGURES_TIMEOUT_MS)
    expect(figure(page, "delivery ratio")).to_have_text("1.0000", timeout=FIGURES_TIMEOUT_MS)
    page.get_by_role("button", name="Stop").click()

    expect(report_links(page)).to_have_count(1, timeout=RUN_WRITTEN_TIMEOUT_MS)
    [run_dir] = [d for d in runs.iterdir() if (d / "summary.json").exists()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["users_peak"] == USERS and summary["load"]["messages_per_minute"] == 30
    assert summary["load"]["heartbeat_s"] == 5 and summary["load"]["steps"] == []
    assert summary["delivery_ratio"] == 1 and summary["messages_sent"] > 0

    report_links(page).first.click()
    expect(page).to_have_url(f"{url}chat-harness/runs/{run_dir.name}/report.html")
    expect(page.get_by_role("heading", name=f"Recommendation for {USERS} users")).to_be_visible()
    expect(page.get_by_role("table").first).to_contain_text("ActiveConnections")


def test_a_second_test_starts_from_zero_in_its_own_run_directory(page, web_ui):
    url, runs = web_ui
    first_runs = {d for d in runs.iterdir() if (d / "summary.json").exists()}
    page.goto(url)
    page.get_by_role("button", name="New").click()
    fill_form(page, "1", "1", steps="ten")  # a wrong setting is refused, in one line
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_text("steps must be user counts separated by commas")).to_be_visible()
    start_test(page, "1", "1", steps="5", stepHoldS="10", messagesPerMinute="60",
               heartbeatS="5")
    expect(figure(page, "connected users")).to_have_text("5", timeout=FIGURES_TIMEOUT_MS)
    expect(figure(page, "delivery ratio")).to_have_text("1.0000", timeout=FIGURES_TIMEOUT_MS)
    if os.environ.get("UPDATE_SCREENSHOTS"):  # this test's figures, the first run listed
        page.screenshot(path=SCREENSHOT)
    expect(report_links(page)).to_have_count(2, timeout=RUN_WRITTEN_TIMEOUT_MS)  # the shape ends

    [run_dir] = {d for d in runs.iterdir() if (d / "summary.json").exists()} - first_runs
    summary = json.loads((run_dir / "summary.json").read_text())
    [step] = summary["steps"]
    assert step["users"] == 5 and summary["users_peak"] == 5
    # Only this test's messages: five users at one a second for at most its 10 s.
    assert 0 < summary["messages_sent"] <= 5 * 10
    assert summary["messages_sent"] == step["messages_sent"]
    assert summary["delivery_ratio"] == 1
