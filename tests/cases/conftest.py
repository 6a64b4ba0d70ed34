"""Fixtures of the case tests: the browser fixture of the device page's test (installs Chromium if missing)."""

from __future__ import annotations

from tests.browser import chromium

__all__ = ["chromium"]
