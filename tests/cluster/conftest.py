"""The Redis Cluster fixtures, for every test under tests/cluster."""

from __future__ import annotations

from tests.cluster.fixtures import fresh_cluster, redis_cluster, redis_cluster_client, redis_cluster_with_replicas

__all__ = ["fresh_cluster", "redis_cluster", "redis_cluster_client", "redis_cluster_with_replicas"]
