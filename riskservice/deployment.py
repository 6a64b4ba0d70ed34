"""Which Redis the service runs on: one Redis, or a Redis Cluster
(``RISK_REDIS_CLUSTER=1``), checked at start-up so that a mismatch is a clear
refusal instead of answers from the fail mode.

- A single-Redis configuration pointed at a cluster node refuses: every
  decision script touches keys of several slots, which a cluster refuses.
- ``RISK_REDIS_CLUSTER=1`` pointed at a single Redis refuses: the cluster
  layout of the keys (shards, per-node scores) is not the single one's.
- A cluster that is reachable but not whole (a master down, slots without a
  master) starts, degraded where a slot has no master, and says which part
  is down in the log and in ``/readyz``.
"""

from __future__ import annotations

import logging

import redis

from config.settings import Settings
from riskservice.limits.client import connect
from riskservice.limits.cluster import ClusterStore
from riskservice.limits.store import RedisStore
from riskservice.limits.topology import connect_cluster, health

__all__ = ["UnsupportedRedis", "check_deployment", "open_store"]

log = logging.getLogger("riskservice.deployment")


class UnsupportedRedis(RuntimeError):
    """The configured Redis is not the kind the settings say (single or cluster)."""


def cluster_enabled(url: str) -> bool | None:
    """Whether the Redis at ``url`` is a cluster node (None: it does not answer now)."""
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return bool(client.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return None
    finally:
        client.close()


def check_deployment(settings: Settings) -> None:
    """Refuse a Redis of the other kind; log the health of a cluster.

    Raises
    ------
    UnsupportedRedis
        Naming the setting to change.
    """
    url = settings.redis_url
    if url is None:
        return
    enabled = cluster_enabled(url)
    if settings.redis_cluster and enabled is False:
        raise UnsupportedRedis(f"RISK_REDIS_CLUSTER=1 but REDIS_URL ({url}) is a single Redis (cluster_enabled:0): "
                               "unset RISK_REDIS_CLUSTER, or name a node of the cluster")
    if not settings.redis_cluster and enabled:
        raise UnsupportedRedis(f"REDIS_URL ({url}) is a Redis Cluster node: set RISK_REDIS_CLUSTER=1 to run on the "
                               "cluster (without it every decision would fail across slots)")
    if settings.redis_cluster:
        client = connect_cluster(url, 2000)
        try:
            report = health(client)
        finally:
            client.close()
        if report["ok"]:
            log.info("redis cluster ready", extra={"masters": report["masters"]})
        else:
            # Started anyway: slots with a master are served, the others degrade
            # until the cluster has a master for them (failover, or repair).
            log.error("redis cluster is not whole: decisions on the slots below are degraded",
                      extra={"state": report["state"], "masters": report["masters"],
                             "uncovered": report["uncovered"]})


def open_store(settings: Settings, *, retention_ms: int) -> RedisStore | ClusterStore:
    """The decision path's store for the configured deployment."""
    assert settings.redis_url is not None
    if settings.redis_cluster:
        return ClusterStore(connect_cluster(settings.redis_url, settings.redis_budget_ms), retention_ms=retention_ms,
                            breaker_cooldown_ms=settings.breaker_cooldown_ms, budget_ms=settings.redis_budget_ms,
                            wait_replicas=settings.redis_wait_replicas, native=settings.redis_native,
                            linger_us=settings.redis_linger_us)
    return RedisStore(connect(settings.redis_url, settings.redis_budget_ms), settings.breaker_cooldown_ms,
                      budget_ms=settings.redis_budget_ms, wait_replicas=settings.redis_wait_replicas,
                      native=settings.redis_native, linger_us=settings.redis_linger_us)
