"""The review queue and status lists on Redis Cluster: one sorted set per
slot (``<list>:{<slot tag>}``, written by the scripts and actions of that
slot's devices), merged here into the single order the API pages through.

A device is in its own slot's shard only, so merging never sees it twice;
the order is the single Redis one: priority (or time) descending, then
device id descending.
"""

from __future__ import annotations

import heapq
from typing import Any

import redis

from riskservice.limits.topology import every_shard

__all__ = ["merged_after", "merged_total"]


def _pairs(reply: list[Any]) -> list[tuple[bytes, float]]:
    """``WITHSCORES`` replies as (member, score): flat on RESP2, already paired
    by redis-py on RESP3 (the client's protocol decides)."""
    if reply and isinstance(reply[0], list | tuple):
        return [(m, float(s)) for m, s in reply]
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


def merged_after(client: redis.RedisCluster, base: str, cursor: tuple[float, str] | None,
                 count: int) -> list[tuple[bytes, float]]:
    """Up to ``count`` members after ``cursor`` in (score desc, member desc)
    order over every shard of ``base`` (two pipelined reads per master)."""
    found: list[tuple[bytes, float]] = []
    if cursor is None:
        for _, flat in every_shard(client, base, "ZREVRANGE", 0, count - 1, "WITHSCORES"):
            found += _pairs(flat)
    else:
        score, member = cursor
        mark = member.encode()
        # Strictly lower scores, then the ties that sort after the cursor's member.
        for _, flat in every_shard(client, base, "ZREVRANGEBYSCORE", f"({score}", "-inf", "WITHSCORES",
                                   "LIMIT", 0, count):
            found += _pairs(flat)
        for _, flat in every_shard(client, base, "ZREVRANGEBYSCORE", score, score, "WITHSCORES"):
            found += [(m, s) for m, s in _pairs(flat) if m < mark]
    return heapq.nsmallest(count, found, key=lambda p: (-p[1], _Desc(p[0])))


class _Desc:
    """Orders bytes descending inside an ascending sort key."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def merged_total(client: redis.RedisCluster, base: str) -> int:
    """Members over every shard of ``base``."""
    return sum(int(n) for _, n in every_shard(client, base, "ZCARD"))
