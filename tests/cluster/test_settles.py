"""Writes on a user's slot after a decision (settles) on a real Redis Cluster:
retried while the user's master does not answer, given up (and counted)
after ``give_up_s``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from riskservice.limits.cluster import ClusterStore
from riskservice.limits.keys import decision_keys
from riskservice.limits.records import decode_log
from tests.cluster.nodes import cluster_slots
from tests.cluster.test_cluster_decisions import PLAN, share
from tests.cluster_server import RedisClusterServer

USER_LOG = decision_keys("e", "dev-s", "user-s", None).user_log


@pytest.fixture
def store(redis_cluster: RedisClusterServer) -> Iterator[ClusterStore]:
    """A store whose calls time out after 100 ms, over an empty cluster."""
    client = redis_cluster.client(socket_timeout=0.1, socket_connect_timeout=0.1)
    client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    try:
        yield ClusterStore(client, breaker_cooldown_ms=50)
    finally:
        client.close()


def logged(store: ClusterStore) -> int:
    return len(decode_log(store.client.get(USER_LOG)))


def test_a_write_that_fails_is_retried_until_the_users_master_answers(
        store: ClusterStore, redis_cluster: RedisClusterServer) -> None:
    assert share(store, "e1", "dev-s", "user-s", now=1_000_000).decision == 0
    store.flush()
    assert logged(store) == 1
    master = redis_cluster.master_of(USER_LOG)
    with master.client() as c:
        scripts_before = c.info("commandstats")["cmdstat_evalsha"]["calls"]
    redis_cluster.pause(master)
    try:
        # a passed challenge counted on the device's slot, now for the user's
        store._count_for_user(USER_LOG, "ch:e2", 1_000_500, PLAN)
    finally:
        redis_cluster.resume(master)
    store.flush()
    assert store.settles.take_lost() == 0
    # The write was sent again: the master ran it at least twice (the first
    # attempt when it woke, then the retry). (Not ``settles.retried``: that
    # counts only the background thread's failed tries, and whether its first
    # try still fails, on the breaker's 50 ms cool-down or on the paused
    # master, depends on whether the thread runs before the master resumes.)
    with master.client() as c:
        assert c.info("commandstats")["cmdstat_evalsha"]["calls"] - scripts_before >= 2
    # counted once, although the first attempt ran when the master woke and the retry ran again
    assert logged(store) == 2


def test_a_write_that_keeps_failing_is_given_up_and_counted(
        store: ClusterStore, redis_cluster: RedisClusterServer) -> None:
    store.settles.give_up_s = 0.3
    master = redis_cluster.master_of(USER_LOG)
    redis_cluster.pause(master)
    try:
        store._count_for_user(USER_LOG, "ch:e3", 1_000_500, PLAN)
        store.flush()  # returns once the write is given up, while the master still sleeps
    finally:
        redis_cluster.resume(master)
    # (the first attempt may still run once the master wakes: "given up" means unconfirmed)
    assert store.settles.take_lost() == 1 and store.settles.take_lost() == 0


def test_with_wait_a_settle_whose_replica_lags_is_sent_again_and_counted_once(
        redis_cluster_with_replicas: RedisClusterServer) -> None:
    cluster = redis_cluster_with_replicas
    client = cluster.client(socket_timeout=0.5, socket_connect_timeout=0.5)
    store = ClusterStore(client, budget_ms=200, wait_replicas=1)  # WAIT 1 replica, 50 ms
    try:
        assert share(store, "w1", "dev-s", "user-s", now=1_000_000).decision == 0
        store.flush()
        assert store.settles.unreplicated == 0 and store.take_unreplicated() == 0 and logged(store) == 1
        master = cluster.master_of(USER_LOG)
        with master.client() as c:
            replica_port = next(r for first, last, port, replicas in cluster_slots(c)
                                if port == master.port for r in replicas)
        replica = next(n for n in cluster.nodes if n.port == replica_port)
        cluster.pause(replica)
        try:
            assert share(store, "w2", "dev-s", "user-s", now=1_000_100).decision == 0
            store.flush()
        finally:
            cluster.resume(replica)
        # the reservation's WAIT fell short (counted); the settle was sent again
        # WAIT_RESENDS times, then left unreplicated, and counted the share once
        assert store.take_unreplicated() >= 1
        assert store.settles.unreplicated == 1
        assert logged(store) == 2
    finally:
        store.close()
        client.close()


def test_a_wait_answered_after_the_socket_time_out_counts_and_degrades_nothing(
        redis_cluster: RedisClusterServer) -> None:
    # No replicas: every WAIT reaches its time-out, and Redis 6.2 answers it at
    # its next 100 ms tick, here always after the socket's 200 ms time-out
    # (WAIT 500 ms: a quarter of a 2 s budget). The decision stands (its
    # scripts ran), the batch counts as unreplicated, and no breaker opens.
    client = redis_cluster.client(socket_timeout=0.2, socket_connect_timeout=0.5)
    store = ClusterStore(client, budget_ms=2000, wait_replicas=1)
    now = int(time.time() * 1000)  # (a share event's trim is relative to it: a 1970 clock trims below zero)
    try:
        for i in range(2):
            assert share(store, f"late{i}", "dev-l", "user-l", now=now + i).decision == 0
            assert store.take_unreplicated() >= 1
        store.flush()
        assert len(decode_log(client.get(decision_keys("e", "dev-l", "user-l", None).user_log))) == 2
    finally:
        store.close()
        client.close()
