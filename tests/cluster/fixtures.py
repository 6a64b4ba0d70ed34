"""pytest fixtures over a real Redis Cluster (see tests/cluster_server.py).

``tests/cluster/conftest.py`` makes them available under tests/cluster. To
use them anywhere, add ``pytest_plugins = ["tests.cluster.fixtures"]`` to
tests/conftest.py (checked: that works alongside tests/cluster/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.cluster_server import RedisClusterServer


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServer]:
    """Three masters, no replicas, for the whole session (about 2 s to form)."""
    cluster = RedisClusterServer(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_client(redis_cluster: RedisClusterServer) -> Iterator[redis.RedisCluster]:
    """A cluster client over an empty cluster (every master flushed)."""
    client = redis_cluster.client()
    client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_cluster_with_replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServer]:
    """Three masters with one replica each, fresh per test (failover tests kill nodes)."""
    cluster = RedisClusterServer(tmp_path_factory.mktemp("cluster-ha"), replicas_per_master=1).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServer]:
    """Three masters without replicas, fresh per test (the test stops or restarts nodes for good)."""
    cluster = RedisClusterServer(tmp_path_factory.mktemp("cluster-fresh")).start()
    try:
        yield cluster
    finally:
        cluster.stop()
