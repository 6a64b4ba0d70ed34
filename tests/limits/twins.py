"""How the native module's equivalence tests compare two Redis servers fed the
same calls (the ``servers`` fixture, tests/limits/conftest.py): the same
command on both, and their keys."""

from __future__ import annotations

from typing import Any

import redis

__all__ = ["both", "keyspace", "snapshot"]


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
