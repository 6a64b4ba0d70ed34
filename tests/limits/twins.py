"""Two Redis servers fed the same calls, one through the Lua scripts and one
through the native module (with a replica following it), and how their
keys are compared: the native module's equivalence tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.redis_server import RedisServer

__all__ = ["both", "keyspace", "servers", "snapshot"]


@pytest.fixture
def servers(tmp_path: Path, native_module: Path) -> Iterator[tuple[redis.Redis, redis.Redis, redis.Redis]]:
    """decide.lua's server, the module's server and the module server's replica (clients)."""
    lua = RedisServer(tmp_path / "lua").start()
    native = RedisServer(tmp_path / "native").start()
    started = [lua, native]
    try:
        native.client().execute_command("MODULE", "LOAD", str(native_module))
        replica = RedisServer(tmp_path / "replica", replica_of=native).start()
        started.append(replica)
        # (A replica needs the module only to load it; it replays the module's effects as plain commands.)
        yield lua.client(), native.client(), replica.client()
    finally:
        for server in started:
            server.kill()


def snapshot(client: redis.Redis, key: str, ids: bool = False) -> tuple[Any, ...]:
    """A key's type, value and whether it expires (a stream: its entries, with their ids if ``ids``)."""
    kind = client.type(key).decode()
    value: Any = None
    if kind == "string":
        value = client.get(key)
    elif kind == "hash":
        value = sorted(client.hgetall(key).items())
    elif kind == "zset":
        value = client.zrange(key, 0, -1, withscores=True)
    elif kind == "stream":
        value = [(i if ids else None, sorted(f.items())) for i, f in client.xrange(key)]
    ttl = client.pttl(key)
    return kind, value, ttl > 0 if ttl != -2 else None


def keyspace(client: redis.Redis, ids: bool = False) -> dict[bytes, tuple[Any, ...]]:
    return {k: snapshot(client, k.decode(), ids) for k in sorted(client.keys("*"))}


def both(lua: redis.Redis, native: redis.Redis, *command: Any) -> None:
    """The same command on both servers."""
    lua.execute_command(*command)
    native.execute_command(*command)
