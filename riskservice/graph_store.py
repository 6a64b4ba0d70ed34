"""Graph scores in Redis: written back by the batch job as whole versions.

A write-back fills a new version's keys while readers keep using the current
one, then flips ``risk:graph:current`` to it in one transaction: a reader sees
one whole version, never a mix. The previous version is kept for rollback;
older ones are deleted.

Per version ``N`` (all keys ``risk:graph:v<N>:...``):

- ``rows``: ``<kind>:<id>`` -> the row as scored (KOL, anomaly, signals);
- ``fast``: ``d:<device>`` -> ``"<anomaly>,<kol>"``, ``u:<user>`` ->
  ``"<anomaly>,<kol>,<reach>"``, what the decision and reward scripts read;
- ``adj``: ``<kind>:<id>`` -> the node's adjacency lists (graphs/features/adjacency.py);
- ``kol``, ``anomaly``: sorted sets for the top lists;
- ``meta``: when and from what it was written.

The cases cut from the same run (``risk:{cases}:v<N>:...``,
:mod:`riskservice.cases.store`) are written with the version and deleted with
it, so a rollback rolls them back too.

On Redis Cluster (``RISK_REDIS_CLUSTER=1``) the version keys live under the
hash tag ``{graph}`` (``risk:{graph}:current``, ``:v<N>:kol`` ...), so the
flip stays one transaction, and each node's ``fast`` value, row and adjacency
move to one hash per node and version in the node's own slot
(``keys.graph_node_key``): the decision scripts read the device's from the
device's slot and the user's from the user's, with no third round trip.
Deleting a version reads its node list from its ``kol`` set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import orjson
import redis

from riskservice.cases.store import version_keys as case_version_keys
from riskservice.cases.store import write_cases
from riskservice.limits.keys import GRAPH_TAG_PREFIX, REVIEW_QUEUE, case_key, device_shard, device_tag, graph_node_key
from riskservice.limits.topology import is_cluster, node_client
from riskservice.transactions import optimistic

CURRENT, PREVIOUS, SEQUENCE = "risk:graph:current", "risk:graph:previous", "risk:graph:sequence"
NO_VERSION = "risk:graph:none"  # a key that never exists: no scores yet
PARTS = ("rows", "fast", "adj", "kol", "anomaly", "meta")
BATCH = 2000
# Per-node hash fields on Redis Cluster (besides the scripts' d:<id> / u:<id>).
ROW, ADJ = "row", "adj"


def _prefix(client: Any) -> str:
    return GRAPH_TAG_PREFIX if is_cluster(client) else "risk:graph"


def version_key(version: int, part: str, client: Any = None) -> str:
    """A key of one version (``client``: to name it for a cluster; None: one Redis)."""
    return f"{_prefix(client)}:v{version}:{part}"


def _versions(client: Any) -> tuple[redis.Redis, str, str, str]:
    """The client of the version keys and their names: current, previous, sequence."""
    if is_cluster(client):
        p = GRAPH_TAG_PREFIX
        return node_client(client, f"{p}:current"), f"{p}:current", f"{p}:previous", f"{p}:sequence"
    return client, CURRENT, PREVIOUS, SEQUENCE


def node_fields(client: Any, version: int, part: str, nodes: list[str]) -> list[bytes | None]:
    """``part`` ("rows" or "adj") of ``nodes`` (``<kind>:<id>``) in ``version``, in order."""
    if not nodes:
        return []
    if not is_cluster(client):
        return cast(list[bytes | None], client.hmget(version_key(version, part), nodes))
    field = ROW if part == "rows" else ADJ
    pipe = client.pipeline(transaction=False)
    for node in nodes:
        kind, _, name = node.partition(":")
        pipe.hget(graph_node_key(kind, name, version), field)
    return cast(list[bytes | None], pipe.execute())


def _short(kind: str) -> str:
    return "d" if kind == "device" else "u"


def _batches(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_back(client: redis.Redis | redis.RedisCluster, rows: Iterable[dict[str, Any]],
               adjacency: Iterable[tuple[str, str, dict[str, Any]]] = (), source: str = "",
               queue_threshold: float | None = None, reach: Mapping[str, int] | None = None,
               cases: Sequence[Mapping[str, Any]] | None = None) -> int:
    """Store a scoring run as a new version and make it current; returns the version.

    ``cases`` (from ``graphs.cases``) are stored with the version, their ids
    matched to the current version's cases.

    Devices scoring at least ``queue_threshold`` enter the analysts' review
    queue (unless an analyst already resolved them), with the reason
    ``graph_anomaly``. ``reach`` (distinct recipients per user) is kept for
    the KOL tiers of reward checks. The same three steps a distributed writer
    takes: :func:`begin_version`, :func:`write_rows` (once per part),
    :func:`activate`.
    """
    version = begin_version(client)
    count = write_rows(client, version, rows, adjacency, reach, queue_threshold)
    meta: dict[str, Any] = {"written_at": time.time(), "nodes": count, "source": source}
    if cases is not None:
        # Every case key is in the {cases} slot: its master takes the transaction.
        meta["cases"] = write_cases(node_client(client, case_key("state")), version, cases, current_version(client))
    activate(client, version, meta)
    return version


def begin_version(client: redis.Redis | redis.RedisCluster) -> int:
    """Reserve the number of a new version (not current until :func:`activate`)."""
    versions, _, _, sequence = _versions(client)
    return int(versions.incr(sequence))


def write_rows(client: redis.Redis | redis.RedisCluster, version: int, rows: Iterable[dict[str, Any]],
               adjacency: Iterable[tuple[str, str, dict[str, Any]]] = (), reach: Mapping[str, int] | None = None,
               queue_threshold: float | None = None) -> int:
    """Write some rows (and adjacency lists) of ``version``, pipelined; returns how many rows.

    Callable on any part of a run (a partition), any number of times: every
    write sets a field or a member, so writing a part again changes nothing.
    """
    reach = reach or {}
    if is_cluster(client):
        return _write_rows_cluster(cast(redis.RedisCluster, client), version, rows, adjacency, reach, queue_threshold)
    count = 0
    flagged: list[dict[str, Any]] = []
    for batch in _batches(rows):
        pipe = client.pipeline(transaction=False)
        full, fast, kol, anomaly = {}, {}, {}, {}
        for row in batch:
            node = f"{row['kind']}:{row['node']}"
            full[node] = orjson.dumps(row)
            fast_value = f"{row['anomaly']:.4f},{row['kol']:.4f}"
            if row["kind"] == "user":
                fast_value += f",{reach.get(row['node'], 0)}"
            fast[f"{_short(row['kind'])}:{row['node']}"] = fast_value
            kol[node], anomaly[node] = row["kol"], row["anomaly"]
            if queue_threshold is not None and row["kind"] == "device" and row["anomaly"] >= queue_threshold:
                flagged.append(row)
        pipe.hset(version_key(version, "rows"), mapping=full)  # type: ignore[arg-type]
        pipe.hset(version_key(version, "fast"), mapping=fast)  # type: ignore[arg-type]
        pipe.zadd(version_key(version, "kol"), kol)
        pipe.zadd(version_key(version, "anomaly"), anomaly)
        pipe.execute()
        count += len(batch)
    for row in flagged:
        _queue_anomalous(client, row["node"], row["anomaly"])
    for batch in _batches(adjacency):
        client.hset(version_key(version, "adj"),
                    mapping={f"{kind}:{node}": orjson.dumps(lists) for kind, node, lists in batch})
    return count


def _fast(row: dict[str, Any], reach: Mapping[str, int]) -> str:
    value = f"{row['anomaly']:.4f},{row['kol']:.4f}"
    return value + f",{reach.get(row['node'], 0)}" if row["kind"] == "user" else value


def _write_rows_cluster(client: redis.RedisCluster, version: int, rows: Iterable[dict[str, Any]],
                        adjacency: Iterable[tuple[str, str, dict[str, Any]]], reach: Mapping[str, int],
                        queue_threshold: float | None) -> int:
    """:func:`write_rows` on a cluster: one hash per node in its slot, the top lists under ``{graph}``."""
    versions = _versions(client)[0]
    count = 0
    flagged: list[dict[str, Any]] = []
    for batch in _batches(rows):
        pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
        kol, anomaly = {}, {}
        for row in batch:
            node = f"{row['kind']}:{row['node']}"
            pipe.hset(graph_node_key(row["kind"], row["node"], version),
                      mapping={f"{_short(row['kind'])}:{row['node']}": _fast(row, reach), ROW: orjson.dumps(row)})
            kol[node], anomaly[node] = row["kol"], row["anomaly"]
            if queue_threshold is not None and row["kind"] == "device" and row["anomaly"] >= queue_threshold:
                flagged.append(row)
        pipe.execute()
        versions.zadd(version_key(version, "kol", client), kol)
        versions.zadd(version_key(version, "anomaly", client), anomaly)
        count += len(batch)
    for row in flagged:
        _queue_anomalous(client, row["node"], row["anomaly"])
    for batch in _batches(adjacency):
        pipe = client.pipeline(transaction=False)  # type: ignore[no-untyped-call]
        for kind, node, lists in batch:
            pipe.hset(graph_node_key(kind, node, version), ADJ, orjson.dumps(lists))
        pipe.execute()
    return count


def activate(client: redis.Redis | redis.RedisCluster, version: int, meta: Mapping[str, Any]) -> None:
    """Record ``meta`` (when, how many nodes, from what) and make ``version`` current in one step."""
    versions = _versions(client)[0]
    versions.hset(version_key(version, "meta", client), mapping=dict(meta))  # type: ignore[arg-type]
    _activate(client, version)


def _queue_anomalous(client: redis.Redis | redis.RedisCluster, device: str, anomaly: float) -> None:
    """Flag a device for review: the queue orders it by 10 x its anomaly
    score (comparable to refusal points: a score of 0.8 weighs 8)."""
    tag = device_tag(device)
    queue = device_shard(REVIEW_QUEUE, device) if is_cluster(client) else REVIEW_QUEUE
    client = node_client(client, tag)  # (on a cluster: the device's master; the queue shard is in its slot)
    status = client.hget(f"{tag}:review", "status")
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(f"{tag}:flags", mapping={"graph_anomaly": 1, "_anomaly": f"{anomaly:.4f}"})
        pipe.pexpire(f"{tag}:flags", 30 * 86_400_000)
        if status in (None, b"open"):
            pipe.zadd(queue, {device: round(10 * anomaly, 2)}, gt=True)
        pipe.execute()


def _activate(client: redis.Redis | redis.RedisCluster, version: int) -> None:
    """Flip to ``version`` atomically; keep the one it replaces; drop older ones."""
    versions, current, previous, _ = _versions(client)

    def flip(pipe: Any) -> bytes | None:
        old_current, old_previous = pipe.get(current), pipe.get(previous)
        pipe.multi()
        if old_current is not None:
            pipe.set(previous, old_current)
        pipe.set(current, version)
        return cast(bytes | None, old_previous)

    old_previous = optimistic(versions, (current, previous), flip)
    if old_previous is not None and int(old_previous) != version:
        drop_version(client, int(old_previous))


def _drop(client: Any, version: int) -> None:
    """Delete a version's keys (on a cluster its nodes' hashes too, listed by its ``kol`` set)."""
    versions = _versions(client)[0]
    if is_cluster(client):
        start = 0
        while nodes := cast(list[bytes], versions.zrange(version_key(version, "kol", client), start,
                                                          start + BATCH - 1)):
            pipe = client.pipeline(transaction=False)
            for node in nodes:
                kind, _, name = node.decode().partition(":")
                pipe.unlink(graph_node_key(kind, name, version))
            pipe.execute()
            start += BATCH
    versions.unlink(*(version_key(version, part, client) for part in PARTS))


def rollback(client: redis.Redis | redis.RedisCluster) -> int | None:
    """Make the previous version current again; returns it (None: nothing to roll back to).

    The withdrawn version's keys stay; :func:`riskservice.review.withdrawn.roll_back_scores`
    also takes its flags back from the review queue and deletes it.
    """
    flipped = rollback_versions(client)
    return None if flipped is None else flipped[0]


def rollback_versions(client: redis.Redis | redis.RedisCluster) -> tuple[int, int | None] | None:
    """Make the previous version current again, in one transaction; returns
    it and the version it replaced (None: nothing to roll back to)."""
    versions, current, previous_key, _ = _versions(client)

    def flip(pipe: Any) -> tuple[int, int | None] | None:
        withdrawn, previous = pipe.get(current), pipe.get(previous_key)
        pipe.multi()
        if previous is None:
            return None
        pipe.set(current, previous)
        pipe.delete(previous_key)
        return int(previous), None if withdrawn is None else int(withdrawn)

    return optimistic(versions, (current, previous_key), flip)


def drop_version(client: redis.Redis | redis.RedisCluster, version: int) -> None:
    """Delete a version that is neither current nor previous, with its cases."""
    _drop(client, version)
    client.unlink(*case_version_keys(version))  # its cases: another slot on a cluster


def anomalous_devices(client: redis.Redis | redis.RedisCluster, version: int,
                      threshold: float) -> Iterator[list[tuple[str, float]]]:
    """``version``'s devices scoring at least ``threshold``, with their
    scores, in batches of at most :data:`BATCH`."""
    versions = _versions(client)[0]
    key, start = version_key(version, "anomaly", client), 0
    while members := cast(list[tuple[bytes, float]], versions.zrangebyscore(
            key, threshold, "+inf", start=start, num=BATCH, withscores=True)):
        start += len(members)
        batch = [(m.decode()[len("device:"):], score) for m, score in members if m.startswith(b"device:")]
        if batch:
            yield batch


def anomaly_of(client: redis.Redis | redis.RedisCluster, version: int, devices: Sequence[str]) -> list[float | None]:
    """The anomaly scores ``version`` gave ``devices`` (None: not scored), in order."""
    if not devices:
        return []
    versions = _versions(client)[0]
    return versions.zmscore(version_key(version, "anomaly", client), [f"device:{d}" for d in devices])


def current_version(client: redis.Redis | redis.RedisCluster) -> int | None:
    versions, current, _, _ = _versions(client)
    raw = versions.get(current)
    return None if raw is None else int(cast(bytes, raw))


def top(client: redis.Redis | redis.RedisCluster, score: str, n: int) -> dict[str, Any]:
    """The ``n`` highest ``score`` ("kol" or "anomaly") nodes of the current version, with signals."""
    version = current_version(client)
    if version is None:
        return {"version": None, "written_at": None, "nodes": []}
    versions = _versions(client)[0]
    nodes = cast(list[bytes], versions.zrevrange(version_key(version, score, client), 0, n - 1))
    rows = node_fields(client, version, "rows", [node.decode() for node in nodes])
    written = versions.hget(version_key(version, "meta", client), "written_at")
    return {"version": version, "written_at": float(cast(bytes, written)) if written else None,
            "nodes": [orjson.loads(r) for r in rows if r is not None]}


def lookup(client: redis.Redis | redis.RedisCluster, kind: str,
           node: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A node's scored row and adjacency in the current version."""
    version = current_version(client)
    if version is None:
        return None, None
    field = f"{kind}:{node}"
    row, adj = node_fields(client, version, "rows", [field])[0], node_fields(client, version, "adj", [field])[0]
    return (orjson.loads(row) if row else None, orjson.loads(adj) if adj else None)


class VersionCache:
    """The current version's ``fast`` key, re-read at most every ``ttl_s``.

    The decision path passes that key to its script; reading the version
    once a second per process instead of on every decision keeps decisions at
    one Redis call. A version flip reaches decisions within ``ttl_s``, and the
    version being replaced stays readable meanwhile.
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, ttl_s: float = 1.0) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._key = NO_VERSION
        self._expires = 0.0
        self._lock = threading.Lock()

    def fast_key(self) -> str:
        now = time.monotonic()
        if now < self._expires:
            return self._key
        with self._lock:
            if now >= self._expires:
                try:
                    version = current_version(self.client)
                except redis.RedisError:
                    version = None if self._key == NO_VERSION else int(self._key.split(":")[2][1:])
                self._key = NO_VERSION if version is None else version_key(version, "fast", self.client)
                self._expires = now + self.ttl_s
        return self._key

    def invalidate(self) -> None:
        self._expires = 0.0
