"""The masters the signal consumer talks to, and which of them are away.

On Redis Cluster the consumer sends its own packed commands to each master
(riskservice/signals/wire.py), so it keeps its own view of them: the
cluster client's slot map (read again when a master fails, at most once a
second), and the masters that failed recently, which are left alone for a
second (a master that hangs would otherwise cost every round its
time-out) and logged once until they answer again. A single Redis is one
master, named ``redis``, serving the pseudo-slot -1.
"""

from __future__ import annotations

import logging
import time
from typing import cast

import redis

from riskservice.limits.slots import key_slot
from riskservice.limits.topology import is_cluster, masters

__all__ = ["Masters"]

log = logging.getLogger("riskservice.signals")

# At most one re-read of the cluster's slot map per this many seconds.
REMAP_S = 1.0
# A master that failed is not asked again for this many seconds.
RETRY_S = 1.0


class Masters:
    """The masters of ``client`` (a single Redis or a cluster client), and their health."""

    def __init__(self, client: redis.Redis | redis.RedisCluster) -> None:
        self.client = client
        self.cluster = is_cluster(client)
        self._nodes: tuple[object, dict[str, tuple[redis.Redis, list[int]]]] | None = None
        self._remapped_at = float("-inf")
        self.down: set[str] = set()  # masters that failed in the last round
        # masters that failed and have not answered since (logged once) -> when to ask again
        self.away: dict[str, float] = {}

    def nodes(self) -> dict[str, tuple[redis.Redis, list[int]]]:
        """Master name -> (a plain client of it, its slots); one entry on a single Redis."""
        if not self.cluster:
            return {"redis": (cast(redis.Redis, self.client), [-1])}
        cluster = cast(redis.RedisCluster, self.client)
        # Built again only when the client has read a new slot map (it replaces the whole map).
        current = cluster.nodes_manager.slots_cache
        if self._nodes is not None and self._nodes[0] is current:
            return self._nodes[1]
        out = {}
        for name, slots in masters(cluster).items():
            node = cluster.get_node(node_name=name)  # type: ignore[no-untyped-call]
            out[name] = (cluster.get_redis_connection(node), slots)
        self._nodes = (current, out)
        return out

    def node_of(self, key: str) -> tuple[str, redis.Redis]:
        """The master serving ``key`` (name, plain client)."""
        if not self.cluster:
            return "redis", cast(redis.Redis, self.client)
        cluster = cast(redis.RedisCluster, self.client)
        node = cluster.nodes_manager.get_node_from_slot(key_slot(key))
        return node.name, cluster.get_redis_connection(node)

    def failed(self, master: str, exc: Exception) -> None:
        """Note a master that did not answer, and re-read the slot map (at most once a second)."""
        if master not in self.away:
            log.warning("signal consumer: a master does not answer; its shards wait",
                        extra={"node": master, "error": str(exc)})
        self.down.add(master)
        self.away[master] = time.monotonic() + RETRY_S
        self.remap()

    def resting(self, master: str) -> bool:
        """True for a master that failed less than a second ago: it is not
        asked again yet (a master that hangs would cost every round its
        time-out)."""
        if self.away.get(master, 0.0) > time.monotonic():
            self.down.add(master)
            return True
        return False

    def answered(self, master: str) -> None:
        if master in self.away:
            del self.away[master]
            log.info("signal consumer: a master answers again", extra={"node": master})

    def remap(self) -> None:
        if not self.cluster or time.monotonic() - self._remapped_at < REMAP_S:
            return
        self._remapped_at = time.monotonic()
        try:
            cast(redis.RedisCluster, self.client).nodes_manager.initialize()
        except (redis.RedisError, OSError) as exc:
            log.warning("signal consumer: cannot re-read the slot map", extra={"error": str(exc)})
