"""Redis Cluster plumbing outside the decision path: the client, the master
of a key, commands over every slot's shard, and the cluster's health.

A single Redis passes through unchanged (``node_client`` returns it), so the
modules that read and write keys of one slot run the same code on both
deployments: they ask :func:`node_client` for the master of the slot and
run their transaction there.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import Any

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from riskservice.limits.keys import slot_shard
from riskservice.limits.slots import SLOTS, key_slot

__all__ = ["ClusterMisconfigured", "connect_cluster", "every_shard", "health", "is_cluster", "masters",
           "node_client", "slot_ranges"]

log = logging.getLogger("riskservice.cluster")


class ClusterMisconfigured(RuntimeError):
    """``RISK_REDIS_CLUSTER`` does not match the Redis that ``REDIS_URL`` names, or the cluster is down."""


def connect_cluster(url: str, budget_ms: int) -> redis.RedisCluster:
    """A cluster client seeded from one node's URL; each call fails within ``budget_ms``.

    It reads the slot map from that node (and learns the other nodes from
    it); replicas are not read from (a replica lags its master). Without
    retries: a call that fails is degraded, and the map is read again.

    Raises
    ------
    ClusterMisconfigured
        When no node answers, or the node is not a cluster node.
    """
    half = budget_ms / 2000
    try:
        return redis.RedisCluster.from_url(
            url, socket_timeout=max(half, 0.05), socket_connect_timeout=max(half, 0.05),
            retry=Retry(NoBackoff(), 0), require_full_coverage=False,
            health_check_interval=0, protocol=2)
    except redis.RedisError as exc:
        raise ClusterMisconfigured(f"RISK_REDIS_CLUSTER=1 but the cluster at {url} cannot be read: {exc}") from exc


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client."""
    return isinstance(client, redis.RedisCluster)


def node_client(client: redis.Redis | redis.RedisCluster, key: str) -> redis.Redis:
    """A plain client of the master that serves ``key`` (the client itself on one Redis).

    Transactions (WATCH/MULTI) and scripts over keys of one slot run on it
    unchanged.
    """
    if not is_cluster(client):
        return client  # type: ignore[return-value]
    cluster: redis.RedisCluster = client  # type: ignore[assignment]
    node = cluster.nodes_manager.get_node_from_slot(key_slot(key))
    return cluster.get_redis_connection(node)


def masters(client: redis.RedisCluster) -> dict[str, list[int]]:
    """Master name (``host:port``) -> the slots it serves, from the client's slot map."""
    out: dict[str, list[int]] = {}
    for slot, nodes in sorted(client.nodes_manager.slots_cache.items()):
        if nodes:
            out.setdefault(nodes[0].name, []).append(slot)
    return out


def slot_ranges(slots: list[int]) -> str:
    """``0-5460,10923`` for a sorted list of slots.

    >>> slot_ranges([0, 1, 2, 7, 9, 10])
    '0-2,7,9-10'
    """
    parts, start = [], None
    for i, slot in enumerate(slots):
        if start is None:
            start = slot
        if i + 1 == len(slots) or slots[i + 1] != slot + 1:
            parts.append(str(start) if start == slot else f"{start}-{slot}")
            start = None
    return ",".join(parts)


def every_shard(client: redis.RedisCluster, base: str, command: str, *args: Any) -> Iterator[tuple[int, Any]]:
    """Run ``command <shard> *args`` on the shard of ``base`` of every slot
    (one pipeline per master); yields ``(slot, reply)`` for non-empty replies.

    The shards are a fixed set (one per slot), so no keyspace scan is needed
    to find them. The commands are packed by hiredis and sent on one
    connection per master: redis-py's pipeline costs far more per command,
    and this sends 16 384. Replies are raw (``WITHSCORES`` flat, scores as
    bytes).
    """
    for name, slots in masters(client).items():
        node = client.get_node(node_name=name)  # type: ignore[no-untyped-call]
        pool = client.get_redis_connection(node).connection_pool
        conn = pool.get_connection()
        ok = False
        try:
            prefix = b"*%d\r\n" % (2 + len(args)) + _bulk(command)
            suffix = b"".join(_bulk(str(a)) for a in args)
            shards = _encoded_shards(base)
            packed = b"".join(prefix + shards[slot] + suffix for slot in slots)
            conn.send_packed_command([packed], check_health=False)  # type: ignore[no-untyped-call]
            replies = _read_replies(conn, len(slots))
            ok = True
        finally:
            if not ok:
                conn.disconnect()  # type: ignore[no-untyped-call]  # replies may be left unread
            pool.release(conn)
        for slot, reply in zip(slots, replies, strict=True):
            if reply:
                yield slot, reply


def _bulk(word: str) -> bytes:
    data = word.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


@functools.lru_cache(maxsize=16)
def _encoded_shards(base: str) -> list[bytes]:
    """Every slot's shard name of ``base``, as a RESP bulk string (commands are
    packed by joining bytes: 16 384 of them per call)."""
    return [_bulk(slot_shard(base, slot)) for slot in range(SLOTS)]


def _read_replies(conn: Any, count: int) -> list[Any]:
    """``count`` replies parsed by hiredis straight from the socket (error replies as exceptions)."""
    reader = hiredis.Reader()
    out: list[Any] = []
    while len(out) < count:
        data = conn._sock.recv(1 << 16)
        if not data:
            raise redis.ConnectionError("connection closed while reading shard replies")
        reader.feed(data)
        while (reply := reader.gets()) is not False:
            out.append(reply)
    return out


def health(client: redis.RedisCluster) -> dict[str, Any]:
    """Which part of the cluster is up: ``{"ok", "state", "masters": [{node, slots, status}], "uncovered"}``.

    The slot map is read afresh (``CLUSTER SLOTS`` of the first node that
    answers), and when it differs from the client's the client re-reads it, so
    a promoted replica is used without waiting for a failed call.
    """
    rows = None
    state = "unknown"
    for node in list(client.get_nodes()):  # type: ignore[no-untyped-call]
        try:
            conn = client.get_redis_connection(node)
            rows = conn.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
            state = conn.execute_command("CLUSTER INFO").get("cluster_state", "unknown")  # type: ignore[no-untyped-call]
            break
        except (redis.RedisError, OSError):
            continue
    if rows is None:
        return {"ok": False, "state": "unreachable", "masters": [], "uncovered": f"0-{SLOTS - 1}"}
    served: dict[str, list[int]] = {}
    for first, last, master, *_ in rows:
        host = master[0].decode() if isinstance(master[0], bytes) else master[0]
        served.setdefault(f"{host}:{master[1]}", []).extend(range(first, last + 1))
    if set(served) != set(masters(client)) or any(
            sorted(s) != v for s, v in ((served[n], masters(client).get(n)) for n in served)):
        try:
            client.nodes_manager.initialize()
        except (redis.RedisError, OSError) as exc:
            log.warning("cannot re-read the cluster's slot map", extra={"error": str(exc)})
    report = []
    for name, slots in sorted(served.items()):
        host, port = name.rsplit(":", 1)
        status = "ok"
        try:
            with redis.Redis(host=host, port=int(port), socket_timeout=0.2, socket_connect_timeout=0.2) as probe:
                probe.ping()
        except (redis.RedisError, OSError) as exc:
            status = f"down: {exc}"
        report.append({"node": name, "slots": slot_ranges(sorted(slots)), "status": status})
    covered = {s for slots in served.values() for s in slots}
    uncovered = slot_ranges([s for s in range(SLOTS) if s not in covered])
    ok = state == "ok" and not uncovered and all(m["status"] == "ok" for m in report)
    return {"ok": ok, "state": state, "masters": report, "uncovered": uncovered or None}
