"""Fixtures of the limiter's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import RedisServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, which it may pause (SIGSTOP); resumed and killed after it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.resume()
    server.kill()
