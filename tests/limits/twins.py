"""How the native module's equivalence tests compare two Redis servers fed the
same calls (the ``servers`` fixture, tests/limits/conftest.py): the same
command on both, and their keys."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import redis

from tests.redis_server import RedisServer

__all__ = ["aof_bytes", "both", "keyspace", "rebuilt_from_aof", "replica_matches", "replicated", "snapshot"]


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


def aof_files(native: redis.Redis) -> list[Path]:
    """``native``'s append-only files in the order a load replays them: one file on Redis 6.2;
    on 7.0 and later, the files its folder's manifest lists (a base, then increments)."""
    folder = Path(native.config_get("dir")["dir"])
    name = native.config_get("appendfilename")["appendfilename"]
    subfolder = native.config_get("appenddirname").get("appenddirname")
    if not subfolder:
        return [folder / name]
    folder /= subfolder
    manifest = (folder / f"{name}.manifest").read_text().split("\n")
    # Lines of "file <name> seq <n> type <b|h|i>": the base first, then increments by seq.
    entries = [dict(zip(words[::2], words[1::2], strict=True)) for words in map(str.split, manifest) if words]
    entries.sort(key=lambda e: (e["type"] != "b", int(e["seq"])))
    return [folder / e["file"] for e in entries if e["type"] in ("b", "i")]


def aof_bytes(native: redis.Redis) -> bytes:
    """What ``native`` persisted, its append-only files end to end (:func:`aof_files`)."""
    return b"".join(path.read_bytes() for path in aof_files(native))


def rebuilt_from_aof(native: redis.Redis, directory: Path) -> dict[bytes, tuple[Any, ...]]:
    """The keyspace a server without the module loads from ``native``'s AOF (started in
    ``directory``, stopped after): the module's writes as persisted."""
    directory.mkdir(parents=True)
    files = aof_files(native)
    if not native.config_get("appenddirname").get("appenddirname"):  # Redis 6.2: one file
        shutil.copy(files[0], directory / "appendonly.aof")
    else:  # Redis 7.0+: the folder with its manifest, under the default names the copy starts with
        folder = files[0].parent
        shutil.copytree(folder, directory / "appendonlydir")
        name = native.config_get("appendfilename")["appendfilename"]
        if name != "appendonly.aof":
            raise ValueError(f"rebuilt_from_aof: expected the default appendfilename, not {name}")
    server = RedisServer(directory, appendonly=True).start()
    try:
        return keyspace(server.client(), ids=True)
    finally:
        server.kill()


def replicated(native: redis.Redis, replica: redis.Redis, timeout_s: float = 60.0) -> None:
    """Return once ``replica`` has applied every write ``native`` made so far.

    By replication offsets, not ``WAIT``: ``WAIT`` counts only the writes of
    the connection it is sent on, and a pooled client may send it on another
    connection than the one that wrote (it then returns at once: seen twice,
    a replica still lacking the master's last stream entries)."""
    target = int(native.info("replication")["master_repl_offset"])
    deadline = time.monotonic() + timeout_s
    while int(replica.info("replication")["master_repl_offset"]) < target:
        if time.monotonic() > deadline:
            raise AssertionError(f"the replica did not catch up within {timeout_s} s")
        time.sleep(0.01)  # ok-sleep: a real replica applying the stream


def replica_matches(replica: redis.Redis, native: redis.Redis) -> None:
    """Assert that ``replica`` holds what ``native`` holds, key for key and, in the
    event stream, id for id."""
    assert keyspace(replica, ids=True) == keyspace(native, ids=True)


def both(lua: redis.Redis, native: redis.Redis, *command: Any) -> None:
    """The same command on both servers."""
    lua.execute_command(*command)
    native.execute_command(*command)
