"""Redis Cluster plumbing outside the decision path: the client, the master
of a key, commands over every slot's shard, and the cluster's health.

A single Redis passes through unchanged (``node_client`` returns it), so the
modules that read and write keys of one slot run the same code on both
deployments: they ask :func:`node_client` for the master of the slot and
run their transaction there.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from riskservice.limits.keys import slot_shard
from riskservice.limits.slots import SLOTS, key_slot

__all__ = ["PROBE_TIMEOUT_S", "ClusterHealth", "ClusterMisconfigured", "connect_cluster", "every_shard", "health",
           "is_cluster", "masters", "node_client", "probe_client", "probe_health", "slot_ranges"]


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


#: How long a readiness probe waits for any node (to connect, then to answer).
#: Well under the 1 s a load balancer or a kubelet gives ``/readyz``: every
#: node is probed at once, so this bounds the whole probe, however many
#: masters are down or hung.
PROBE_TIMEOUT_S = 0.2


def probe_client(client: redis.Redis | redis.RedisCluster, timeout_s: float, host: str | None = None,
                 port: int | None = None) -> redis.Redis:
    """A client of one node for a probe, on a connection of its own: ``timeout_s``
    to connect and to answer, and no retries.

    The service's own clients must not be used: the cluster client's node
    connections retry and re-read the slot map on a failure, and redis-py's
    default retry sleeps between attempts (a dead master took 3 to 6 s to
    report). The credentials and TLS settings are the client's.
    """
    if is_cluster(client):
        kwargs = dict(client.nodes_manager.connection_kwargs)  # type: ignore[union-attr]
    else:
        kwargs = dict(client.connection_pool.connection_kwargs)  # type: ignore[union-attr]
        kwargs["connection_class"] = client.connection_pool.connection_class  # type: ignore[union-attr]
    for private in ("redis_connect_func", "cache", "retry", "himport_registry"):
        kwargs.pop(private, None)  # (the cluster client's READONLY hook, its cache: not a probe's)
    if host is not None:
        kwargs.update(host=host, port=port)
    kwargs.update(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0),
                  health_check_interval=0)
    # (from_pool: closing the client closes its pool, and so the probe's socket)
    return redis.Redis.from_pool(redis.ConnectionPool(**kwargs))


@dataclass
class _NodeProbe:
    """What one node said: its slot map and cluster state, or why it did not answer."""

    name: str
    rows: Any = None
    state: str = "unknown"
    error: str | None = None


def _probe_node(client: redis.RedisCluster, name: str, timeout_s: float) -> _NodeProbe:
    """``CLUSTER SLOTS`` and ``CLUSTER INFO`` of one node, in one round trip (the answer is its ping)."""
    host, port = name.rsplit(":", 1)
    out = _NodeProbe(name)
    try:
        with probe_client(client, timeout_s, host, int(port)) as probe:
            pipe = probe.pipeline(transaction=False)
            pipe.execute_command("CLUSTER SLOTS")
            pipe.execute_command("CLUSTER INFO")
            out.rows, info = pipe.execute()
            out.state = str(info.get("cluster_state", "unknown"))
    except (redis.RedisError, OSError) as exc:
        out.error = str(exc) or type(exc).__name__
    return out


def _probe_all(client: redis.RedisCluster, names: list[str], timeout_s: float) -> dict[str, _NodeProbe]:
    """Probe every node at once (one thread each: a hung node costs its time-out
    once, not once per node before it); a node that has not answered within
    about ``timeout_s`` twice (connect, then answer) counts as down."""
    results: dict[str, _NodeProbe] = {}

    def probe(name: str) -> None:
        results[name] = _probe_node(client, name, timeout_s)

    threads = [threading.Thread(target=probe, args=(name,), name="risk-probe", daemon=True) for name in names]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2 * timeout_s + 0.05
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {name: results.get(name) or _NodeProbe(name, error="no answer within the probe's time") for name in names}


@dataclass
class ClusterHealth:
    """The cluster as a readiness probe saw it.

    ``served``: master -> the slots the cluster's map gives it; ``status``:
    master -> ``ok``, or why it serves nothing now (``down: <error>``, or
    ``refusing: cluster_state <state>`` for a master that answers but
    refuses queries, e.g. cut off from the majority).
    """

    state: str
    served: dict[str, list[int]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)

    @functools.cached_property
    def uncovered(self) -> str | None:
        """The slots no master has, as ranges (None: every slot has one); computed once."""
        covered = {s for slots in self.served.values() for s in slots}
        return slot_ranges([s for s in range(SLOTS) if s not in covered]) or None

    @property
    def ok(self) -> bool:
        """Every slot served by a master that answers."""
        return self.state == "ok" and not self.uncovered and len(self.serving) == len(self.served)

    @property
    def serving(self) -> list[str]:
        """The masters that answer and serve their slots: decisions on their slots are not degraded."""
        return [name for name, status in self.status.items() if status == "ok"]

    def master_of(self, slot: int) -> str | None:
        """The master the map gives ``slot`` (None: no master has it)."""
        return next((name for name, slots in self.served.items() if slot in slots), None)

    def as_json(self) -> dict[str, Any]:
        masters_ = [{"node": name, "slots": slot_ranges(sorted(slots)), "status": self.status[name]}
                    for name, slots in sorted(self.served.items())]
        return {"ok": self.ok, "state": self.state, "serving": len(self.serving), "masters": masters_,
                "uncovered": self.uncovered}


def probe_health(client: redis.RedisCluster, timeout_s: float = PROBE_TIMEOUT_S,
                 on_stale: Callable[[], None] | None = None) -> ClusterHealth:
    """Which part of the cluster is up, within about ``2 * timeout_s`` (see :class:`ClusterHealth`).

    Every node the client knows (masters and replicas) is asked for its
    slot map at once, on probe connections (:func:`probe_client`); the map
    of a master that answers is used (a replica's when none does), so a
    promoted replica shows as soon as the cluster names it. A master the
    map names that was not asked is pinged afterwards. When the map differs
    from the client's, ``on_stale`` is called (the store re-reads it in the
    background: re-reading it here would wait on the dead node).
    """
    known = sorted({node.name for node in client.get_nodes()})  # type: ignore[no-untyped-call]
    probes = _probe_all(client, known, timeout_s)
    seen = masters(client)
    answered = [p for p in probes.values() if p.rows is not None]
    if not answered:
        return ClusterHealth("unreachable", {name: list(slots) for name, slots in seen.items()},
                             {name: f"down: {probes[name].error}" if name in probes else "down: not probed"
                              for name in seen})
    # (a node cut off from the majority keeps an old map: prefer one whose state is ok)
    best = min(answered, key=lambda p: (p.state != "ok", p.name not in seen))
    served = _served(best.rows)
    if on_stale is not None and served != seen:
        on_stale()
    missing = [name for name in served if name not in probes]
    if missing:
        probes.update(_probe_all(client, missing, timeout_s))
    status = {name: _status(probes[name]) for name in served}
    return ClusterHealth(best.state, served, status)


def health(client: redis.RedisCluster, timeout_s: float = PROBE_TIMEOUT_S,
           on_stale: Callable[[], None] | None = None) -> dict[str, Any]:
    """:func:`probe_health` as JSON: ``{"ok", "state", "serving", "masters": [{node, slots, status}], "uncovered"}``."""
    return probe_health(client, timeout_s, on_stale).as_json()


def _served(rows: Any) -> dict[str, list[int]]:
    """Master name -> its slots, from a ``CLUSTER SLOTS`` reply."""
    served: dict[str, list[int]] = {}
    for first, last, master, *_ in rows:
        host = master[0].decode() if isinstance(master[0], bytes) else master[0]
        served.setdefault(f"{host}:{master[1]}", []).extend(range(first, last + 1))
    return {name: sorted(slots) for name, slots in served.items()}


def _status(probe: _NodeProbe) -> str:
    if probe.error is not None:
        return f"down: {probe.error}"
    if probe.state != "ok":
        return f"refusing: cluster_state {probe.state}"
    return "ok"
