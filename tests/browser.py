"""Headless Debian Chromium for the console tests: the fixture that finds (or
installs) it, and a signed-in console page."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ANALYST_KEY
from tests.serving.gunicorn_server import ROOT

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "test-output"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, installed by the project's own script when missing (as root)."""
    if not CHROMIUM.exists():
        result = subprocess.run([str(ROOT / "scripts" / "install-browser")], capture_output=True, text=True,
                                timeout=900, check=False)
        if not CHROMIUM.exists():
            pytest.skip("browser test skipped: Chromium is not installed and could not be installed "
                        f"(run scripts/install-browser as root, or apt-get install chromium): {result.stderr.strip()}")
    return CHROMIUM


@contextmanager
def console_page(chromium: Path, profile: Path, url: str, *, height: int,
                 key: str = ANALYST_KEY) -> Iterator[tuple[Any, list[str]]]:
    """The console at ``url`` in a fresh Chromium profile, ``key`` (the
    analyst's) entered by keyboard; yields the page and the page errors and
    console errors seen (a test asserts there are none). The browser is closed after."""
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        # A fresh profile (playwright passes it as --user-data-dir): no state from earlier runs.
        browser = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(chromium), headless=True, args=FLAGS,
            viewport={"width": 1440, "height": height})
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.goto(f"{url}/console")
            # The key, entered once, by keyboard.
            page.fill("#key", key)
            page.press("#key", "Enter")
            yield page, problems
        finally:
            browser.close()
