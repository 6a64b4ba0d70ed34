"""Fixtures of the end-to-end tests: Debian Chromium (installed if missing)."""

from __future__ import annotations

from tests.browser import chromium

__all__ = ["chromium"]
