"""A worker's warm-up on a real cluster (qa14 D3): what its first decisions
paid for within their budget is done before it serves."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis

from riskservice.limits.cluster import ClusterStore
from riskservice.limits.cluster_io import SCRIPTS
from riskservice.limits.slots import _tags
from riskservice.limits.store import WARM_CONNECTIONS
from riskservice.limits.topology import connect_cluster
from tests.cluster_server import RedisClusterServer


def masters_of(cluster: RedisClusterServer) -> list[str]:
    return [f"127.0.0.1:{n.port}" for n in cluster.nodes if n.role == "master"]


def test_warm_up_connects_to_every_master_and_loads_the_scripts(redis_cluster: RedisClusterServer,
                                                                redis_cluster_client: redis.RedisCluster) -> None:
    store = ClusterStore(connect_cluster(redis_cluster.url, 400), budget_ms=400)
    try:
        # A master that lost its scripts (restarted since the store loaded them).
        for node in redis_cluster.nodes:
            with node.client() as c:
                c.script_flush()
        _tags.cache_clear()
        assert store.warm_up() == []
        assert {name: len(conns) for name, conns in store._idle.items()} == {
            name: WARM_CONNECTIONS for name in masters_of(redis_cluster)}
        assert all(conn._sock is not None for conns in store._idle.values() for conn in conns)
        for node in redis_cluster.nodes:
            with node.client() as c:
                assert c.script_exists(*(s.sha for s in SCRIPTS)) == [True] * len(SCRIPTS)
        assert _tags.cache_info().currsize == 1  # the slot-tag table, built
        assert store.deadline_ms() != ""  # the servers' clock, read
    finally:
        store.close()


def test_a_master_down_at_warm_up_is_named_and_the_others_are_warmed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cluster = RedisClusterServer(tmp_path / "cluster").start()
    try:
        store = ClusterStore(connect_cluster(cluster.url, 400), budget_ms=400)
        victim = [n for n in cluster.nodes if n.role == "master"][1]
        cluster.kill(victim)
        with caplog.at_level(logging.WARNING):
            assert store.warm_up() == [f"127.0.0.1:{victim.port}"]
        assert any(r.getMessage() == "cannot warm up the connections to a master" for r in caplog.records)
        warm = {name for name, conns in store._idle.items() if any(c._sock is not None for c in conns)}
        assert warm == set(masters_of(cluster)) - {f"127.0.0.1:{victim.port}"}
        store.close()
    finally:
        cluster.stop()
