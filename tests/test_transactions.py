"""The bounded optimistic transaction: retried on a race, never forever."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from riskservice.errors import StorageError
from riskservice.transactions import optimistic


def test_a_race_is_read_again_and_retried(redis_client: redis.Redis) -> None:
    redis_client.set("k", 1)
    calls = []

    def bump(pipe: Any) -> int:
        value = int(pipe.get("k"))
        calls.append(value)
        if len(calls) == 1:
            redis_client.set("k", 10)  # another writer, between the read and the write
        pipe.multi()
        pipe.set("k", value + 1)
        return value + 1

    assert optimistic(redis_client, ("k",), bump) == 11
    assert calls == [1, 10] and redis_client.get("k") == b"11"


def test_a_key_that_always_changes_gives_up(redis_client: redis.Redis) -> None:
    def lose(pipe: Any) -> None:
        redis_client.incr("k")  # always rewritten before the write
        pipe.multi()
        pipe.set("other", 1)

    with pytest.raises(StorageError, match="3 transactions raced on k"):
        optimistic(redis_client, ("k",), lose, attempts=3)
    assert redis_client.get("k") == b"3" and redis_client.get("other") is None
