"""The Redis Cluster test fixture itself: slots, redirects, failover, teardown."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot
from redis.exceptions import MovedError

from tests.cluster_server import SLOTS, RedisClusterServer, process_alive


def test_slots_are_split_over_three_masters(redis_cluster: RedisClusterServer) -> None:
    masters = [n for n in redis_cluster.nodes if n.role == "master"]
    assert len(masters) == 3
    ranges = sorted(r for n in masters for r in n.slots)
    assert ranges == [(0, 5460), (5461, 10921), (10922, SLOTS - 1)]
    assert all(n.pid is not None and process_alive(n.pid) for n in redis_cluster.nodes)


def test_keys_spread_over_every_master(redis_cluster: RedisClusterServer,
                                       redis_cluster_client: redis.RedisCluster) -> None:
    keys = [f"device:{i}" for i in range(100)]
    for key in keys:
        redis_cluster_client.set(key, "1")
    per_port: dict[int, int] = {}
    for key in keys:
        owner = redis_cluster.master_of(key)
        with owner.client() as direct:
            assert direct.exists(key) == 1, key
        per_port[owner.port] = per_port.get(owner.port, 0) + 1
    assert len(per_port) == 3
    assert all(count > 0 for count in per_port.values())
    sizes = []
    for node in redis_cluster.nodes:
        with node.client() as direct:
            sizes.append(direct.dbsize())
    assert sum(sizes) == 100


def test_a_plain_client_is_moved_and_a_cluster_client_follows(redis_cluster: RedisClusterServer,
                                                              redis_cluster_client: redis.RedisCluster) -> None:
    key = "user:42"
    owner = redis_cluster.master_of(key)
    other = next(n for n in redis_cluster.nodes if n.role == "master" and n.port != owner.port)
    moved = f"^{key_slot(key.encode())} 127.0.0.1:{owner.port}$"
    with other.client() as direct, pytest.raises(MovedError, match=moved):
        direct.set(key, "x")
    # Seeded with one URL only, the client discovers the slot map and follows it.
    client = redis.RedisCluster.from_url(f"redis://127.0.0.1:{other.port}/0")
    try:
        assert client.set(key, "x") is True
        assert client.get(key) == b"x"
    finally:
        client.close()
    assert redis_cluster_client.get(key) == b"x"


def test_a_replica_takes_over_a_killed_master(redis_cluster_with_replicas: RedisClusterServer) -> None:
    cluster = redis_cluster_with_replicas
    assert [n.role for n in cluster.nodes].count("replica") == 3
    client = cluster.client()
    try:
        client.set("coupon:7", "kept")
        old = cluster.master_of("coupon:7")
        with old.client() as direct:
            assert direct.wait(1, 2000) == 1  # the replica has the write
        old_slots = list(old.slots)
        replica_ports = {n.port for n in cluster.nodes if n.role == "replica"}
        started = time.monotonic()
        cluster.kill(old)
        new = cluster.wait_for_failover(old, timeout=15)
        took = time.monotonic() - started
        assert new.port in replica_ports
        assert new.role == "master"
        assert new.slots == old_slots
        assert old.slots == []
        assert cluster.master_of("coupon:7").port == new.port
        assert took < 15
        assert client.get("coupon:7") == b"kept"
    finally:
        client.close()


def test_a_paused_node_answers_again_once_resumed(redis_cluster_with_replicas: RedisClusterServer) -> None:
    node = redis_cluster_with_replicas.nodes[3]
    redis_cluster_with_replicas.pause(node)
    with node.client(timeout=0.3) as direct:
        with pytest.raises(redis.TimeoutError):
            direct.ping()
    redis_cluster_with_replicas.resume(node)
    with node.client() as direct:
        assert direct.ping() is True


def test_stop_leaves_no_process_even_with_a_paused_node(tmp_path: Path) -> None:
    cluster = RedisClusterServer(tmp_path, masters=3, replicas_per_master=1).start()
    pids = [n.pid for n in cluster.nodes]
    assert len(pids) == 6 and all(p is not None and process_alive(p) for p in pids)
    cluster.pause(cluster.nodes[0])
    cluster.kill(cluster.nodes[1])
    cluster.stop()
    assert [p for p in pids if p is not None and process_alive(p)] == []
