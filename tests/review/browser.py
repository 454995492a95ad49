"""Headless Chromium (Debian ``chromium``) driven by Playwright, for tests that look at Label Studio's UI.

``chromium_page`` skips the test cleanly when the browser or the playwright package is
missing, so the suite passes on machines without them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str:
    """The Debian chromium binary, or a skip."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and shutil.which(candidate):
            return candidate
    pytest.skip("no chromium browser (/usr/bin/chromium): install Debian's `chromium` to render the labeling page")


@contextmanager
def chromium_page(*, width: int = 1600, height: int = 1000) -> Iterator[Any]:
    """A fresh page of a headless Chromium (one browser per call)."""
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            yield context.new_page()
        finally:
            browser.close()


def login(page: Any, url: str, username: str, password: str) -> None:
    """Log in to Label Studio at ``url`` through its login form."""
    page.goto(f"{url}/user/login/")
    page.fill("input[name=email]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/user/login" in page.url:
        raise AssertionError(f"login as {username} failed: still on {page.url}")
