"""The write-back's three steps, as a distributed writer calls them (real Redis)."""

from __future__ import annotations

import redis

from riskservice.graph_store import activate, begin_version, current_version, lookup, version_key, write_rows

ROWS = [{"node": "a", "kind": "user", "kol": 0.5, "anomaly": 0.1, "signals": []},
        {"node": "d", "kind": "device", "kol": 0.0, "anomaly": 0.9, "signals": []}]
ADJ = [("user", "a", {"devices": [["d", 2.0]]}), ("device", "d", {"users": [["a", 2.0]]})]


def test_parts_are_invisible_until_the_flip_and_idempotent(redis_client: redis.Redis) -> None:
    version = begin_version(redis_client)
    assert write_rows(redis_client, version, ROWS[:1], ADJ[:1], {"a": 3}) == 1
    assert write_rows(redis_client, version, ROWS[1:], ADJ[1:], {}, 0.8) == 1
    assert write_rows(redis_client, version, ROWS[:1], ADJ[:1], {"a": 3}) == 1  # a retried partition
    assert current_version(redis_client) is None
    assert lookup(redis_client, "user", "a") == (None, None)
    activate(redis_client, version, {"written_at": 1.0, "nodes": 2, "source": "test"})
    assert current_version(redis_client) == version
    assert lookup(redis_client, "user", "a") == (ROWS[0], {"devices": [["d", 2.0]]})
    assert redis_client.hgetall(version_key(version, "fast")) == {b"u:a": b"0.1000,0.5000,3",
                                                                  b"d:d": b"0.9000,0.0000"}
    assert redis_client.hlen(version_key(version, "rows")) == 2
    assert redis_client.zscore("risk:review:queue", "d") == 9.0
