"""The workers' in-memory copy of the signal board, on a real Redis."""

from __future__ import annotations

import redis

from riskservice.limits.clock import ManualClock
from riskservice.signals.board import BOARD_KEY
from riskservice.signals.board_cache import BoardCache

T = 1_760_000_000_000


def test_the_copy_is_checked_once_an_interval_and_read_again_when_the_version_moves(
        redis_client: redis.Redis) -> None:
    clock = ManualClock(T)
    cache = BoardCache(redis_client, clock=clock.now_ms)
    assert cache.strongest("r", ["h"]) is None  # no board yet
    redis_client.hset(BOARD_KEY, mapping={"r|h": f"3@{T + 60_000}", "r|k": f"4@{T + 60_000}", "_v": "1"})
    clock.advance(1)
    assert cache.strongest("r", ["a", "h"]) == ("h", 3)
    assert cache.strongest("r", ["h", "k"]) == ("k", 4)  # the strongest of the accounts
    assert cache.loads == 1
    # A change without a new version is not read; a new version is read at
    # the first lookup a second after the last check.
    redis_client.hset(BOARD_KEY, "r|h", f"5@{T + 60_000}")
    clock.advance(2)
    assert cache.strongest("r", ["h"]) == ("h", 3)
    redis_client.hset(BOARD_KEY, "_v", "2")
    clock.advance(0.5)
    assert cache.strongest("r", ["h"]) == ("h", 3)
    clock.advance(0.5)
    assert cache.strongest("r", ["h"]) == ("h", 5)
    assert cache.loads == 2
    # A flag past its `until` is ignored, whatever the copy holds.
    clock.set(T + 60_000)
    assert cache.strongest("r", ["h", "k"]) is None


def test_without_redis_the_copy_in_hand_keeps_serving(redis_client: redis.Redis) -> None:
    clock = ManualClock(T)
    redis_client.hset(BOARD_KEY, mapping={"s|f": f"3@{T + 60_000}", "_v": "1"})
    cache = BoardCache(redis_client, clock=clock.now_ms)
    assert cache.strongest("s", ["f"]) == ("f", 3)
    # Nothing listens on port 1: every check fails at once.
    cache.client = redis.Redis(port=1, socket_connect_timeout=0.2)
    clock.advance(5)
    assert cache.strongest("s", ["f"]) == ("f", 3)
