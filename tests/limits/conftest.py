"""Fixtures of the limiter's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.redis_server import RedisServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, which it may pause (SIGSTOP); resumed and killed after it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.resume()
    server.kill()


@pytest.fixture
def servers(tmp_path: Path, native_module: Path) -> Iterator[tuple[redis.Redis, redis.Redis, redis.Redis]]:
    """decide.lua's server, the module's server (with an AOF) and the module server's replica (clients)."""
    lua = RedisServer(tmp_path / "lua").start()
    native = RedisServer(tmp_path / "native", appendonly=True).start()
    started = [lua, native]
    try:
        native.client().execute_command("MODULE", "LOAD", str(native_module))
        replica = RedisServer(tmp_path / "replica", replica_of=native).start()
        started.append(replica)
        # (The replica has no module: it replays the module's writes as a script of plain commands.)
        yield lua.client(), native.client(), replica.client()
    finally:
        for server in started:
            server.kill()
