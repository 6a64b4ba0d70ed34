"""How the native module's equivalence tests compare two Redis servers fed the
same calls (the ``servers`` fixture, tests/limits/conftest.py): the same
command on both, and their keys."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import redis

from tests.redis_server import RedisServer

__all__ = ["both", "keyspace", "rebuilt_from_aof", "snapshot"]


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


def rebuilt_from_aof(native: redis.Redis, directory: Path) -> dict[bytes, tuple[Any, ...]]:
    """The keyspace a server without the module loads from ``native``'s AOF (started in
    ``directory``, stopped after), and the AOF's text: the module's writes as persisted."""
    aof = Path(native.config_get("dir")["dir"]) / native.config_get("appendfilename")["appendfilename"]
    directory.mkdir(parents=True)
    shutil.copy(aof, directory / "appendonly.aof")
    server = RedisServer(directory, appendonly=True).start()
    try:
        return keyspace(server.client(), ids=True)
    finally:
        server.kill()


def both(lua: redis.Redis, native: redis.Redis, *command: Any) -> None:
    """The same command on both servers."""
    lua.execute_command(*command)
    native.execute_command(*command)
