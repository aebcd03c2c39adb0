"""Debian's Chromium under Playwright, for the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, expect, sync_playwright

from reports.snapshot import find_browser

PLAYWRIGHT_EXPECT_TIMEOUT_MS = 5000  # Playwright's default, restored after each use


@contextmanager
def chromium(expect_timeout_s: float) -> Iterator[Browser]:
    """The browser for a ``with`` block, whose page expectations wait ``expect_timeout_s``:
    Playwright's 5 s is less than a busy machine needs (an authorizer's cold start, a
    form answered by a loaded server)."""
    expect.set_options(timeout=expect_timeout_s * 1000)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=find_browser(),
                                                 args=["--no-sandbox"])
            yield browser
            browser.close()
    finally:
        expect.set_options(timeout=PLAYWRIGHT_EXPECT_TIMEOUT_MS)
