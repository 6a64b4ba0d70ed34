"""Analysts' timed bans that ended: the device leaves the ``blocked`` list and
is queued again by its evidence.

A ``block`` with ``hours`` ends by itself: the decision path stops applying
the ban at its ``until`` (decide.lua judges it on every decision), but
nothing runs at that moment to change the review lists, so the device stayed
listed as ``blocked`` while its dossier said ``open`` (QA D4). The action
therefore indexes the ban's end in ``risk:review:ban_ends`` (device ->
until; on Redis Cluster one sorted set per slot, in the device's slot like
the lists), and every read of the lists, or of a dossier, first settles the
ends that are due: the device's status becomes what is in force without the
ban (:func:`riskservice.review.actions.derive_status`: allowlisted, labelled
or open), it leaves the ``blocked`` list, and an open device is queued by
its evidence as the decision path and the graph write-back queue one: its
refusal points once they reach ``review.min_points``, 10 x its anomaly score
once that reaches ``review.anomaly_threshold`` (the higher of the two). A
device below both is open and not queued; its next refusal that brings its
points to the threshold queues it, as for any open device.

Why on read and not on a timer: the service runs no scheduler, and the
change became true at ``until`` by the analyst's own audited action (its
entry holds ``until``). Settling writes only what a timer firing at
``until`` would have written, is idempotent, and changes nothing the
decision path reads: the lazy expiry Redis applies to its own keys. Why not
in the decision script: a device that makes no more decisions would stay
listed as blocked, and the script (and its native twin) would need the
blocked list's key on every decision for a rare event. Meanwhile refusals
still count the device's points, and the settle queues it by them.

Bans without an end stay listed until lifted. Timed bans set before the
index existed are indexed once, on the first read (:func:`backfill`).
"""

from __future__ import annotations

from typing import Any, cast

import redis

from riskservice.limits.keys import REVIEW_BAN_ENDS, ban_key, device_shard, device_tag
from riskservice.limits.topology import every_shard, is_cluster, node_client
from riskservice.policy.model import Review
from riskservice.review.actions import derive_status, device_keys
from riskservice.review.common import blocked_by_hand, decode_hash, text
from riskservice.review.queue import status_key
from riskservice.transactions import optimistic

__all__ = ["BATCH", "backfill", "evidence_priority", "settle_device", "settle_due"]

# Ended bans settled by one read at most (each is one transaction); the rest
# by the reads after it. Timed bans end at the pace analysts set them.
BATCH = 200
# Set once the timed bans of the blocked list written before the index are in it.
INDEXED = f"{REVIEW_BAN_ENDS}:indexed"


def evidence_priority(flags: dict[str, str], review: Review) -> float:
    """The queue priority a device's evidence earns (0: none reaches a threshold).

    >>> evidence_priority({"_points": "6"}, Review(min_points=3))
    6.0
    >>> evidence_priority({"_points": "2", "_anomaly": "0.9100"}, Review(min_points=3))
    9.1
    >>> evidence_priority({"_points": "2"}, Review(min_points=3))
    0.0
    >>> evidence_priority({"_points": "2", "manual": "1"}, Review(min_points=3))
    1.0
    """
    points = int(flags.get("_points") or 0)
    anomaly = float(flags.get("_anomaly") or 0)
    best = float(points) if points >= review.min_points else 0.0
    if anomaly >= review.anomaly_threshold:
        best = max(best, round(10 * anomaly, 2))
    if int(flags.get("manual") or 0) > 0:
        best = max(best, 1.0)  # (an analyst flagged it by hand: queued at least as a flag queues it)
    return best


def _shard(client: Any, device_id: str, base: str) -> str:
    """``base``'s key for the device: its slot's shard on Redis Cluster."""
    return device_shard(base, device_id) if is_cluster(client) else base


def settle_device(client: redis.Redis | redis.RedisCluster, device_id: str, now_ms: int, review: Review) -> str | None:
    """Settle one device's indexed ban end if it is due; returns its status after, or None when not due.

    One transaction on the device's keys (watched as an action watches
    them), so a concurrent action is either before it (and is what it
    reads) or retried after it.
    """
    tag = device_tag(device_id)
    node = node_client(client, tag)
    ends = _shard(client, device_id, REVIEW_BAN_ENDS)
    due = node.zscore(ends, device_id)
    if due is None or due > now_ms:
        return None  # (one read: a dossier of a device with no ended ban pays no transaction)

    def act(pipe: Any) -> str | None:
        until = pipe.zscore(ends, device_id)
        if until is None or until > now_ms:
            pipe.multi()
            return None
        ban = decode_hash(pipe.hgetall(ban_key("device", device_id)))
        fields = decode_hash(pipe.hgetall(f"{tag}:review"))
        allowlisted = bool(pipe.exists(f"{tag}:allow"))
        flags = decode_hash(pipe.hgetall(f"{tag}:flags"))
        pipe.multi()
        if blocked_by_hand(ban, now_ms):
            # (another block since: the index follows the analyst's ban in force; a rule's
            # cool-down that followed the ended ban is no analyst's and leaves the status alone)
            end = int(ban.get("until") or 0)
            if end:
                pipe.zadd(ends, {device_id: end})
            else:
                pipe.zrem(ends, device_id)
            return "blocked"
        pipe.zrem(ends, device_id)
        status = fields.get("status", "open")
        if status != "blocked":
            return status  # an action moved the device since
        after = derive_status(False, allowlisted, fields.get("label"))
        pipe.hset(f"{tag}:review", "status", after)
        pipe.zrem(_shard(client, device_id, status_key("blocked")), device_id)
        if after != "open":
            # (resolved as such when the ban ended)
            pipe.zadd(_shard(client, device_id, status_key(after)), {device_id: int(until) or now_ms})
        elif (priority := evidence_priority(flags, review)) > 0:
            pipe.zadd(_shard(client, device_id, status_key("open")), {device_id: priority}, gt=True)
        return after

    # (the flags too: a refusal meanwhile raises the points the device is queued by)
    watched = (*device_keys(device_id), f"{tag}:flags", ends)
    return optimistic(node, watched, act)


def settle_due(client: redis.Redis | redis.RedisCluster, now_ms: int, review: Review) -> int:
    """Settle up to :data:`BATCH` ban ends that are due; returns how many were."""
    backfill(client, now_ms)
    due: list[str] = []
    if is_cluster(client):
        for _, members in every_shard(client, REVIEW_BAN_ENDS, "ZRANGEBYSCORE",  # type: ignore[arg-type]
                                      "-inf", now_ms, "LIMIT", 0, BATCH):
            due += [cast(str, text(m)) for m in members]
    else:
        due = [cast(str, text(m)) for m in cast(list[bytes], client.zrangebyscore(
            REVIEW_BAN_ENDS, "-inf", now_ms, start=0, num=BATCH))]
    for device_id in due[:BATCH]:
        settle_device(client, device_id, now_ms, review)
    return min(len(due), BATCH)


def backfill(client: redis.Redis | redis.RedisCluster, now_ms: int) -> None:
    """Index, once, the devices of the ``blocked`` list whose ban has an end or is gone
    (timed bans set before the index existed; a gone ban ended over a day ago)."""
    if client.exists(INDEXED):
        return
    base = status_key("blocked")
    if is_cluster(client):
        listed = [cast(str, text(m)) for _, members in every_shard(client, base, "ZRANGE", 0, -1)  # type: ignore[arg-type]
                  for m in members]
    else:
        listed = [cast(str, text(m)) for m in cast(list[bytes], client.zrange(base, 0, -1))]
    for device_id in listed:
        node = node_client(client, device_tag(device_id))
        ban = decode_hash(node.hgetall(ban_key("device", device_id)))
        in_force = blocked_by_hand(ban, now_ms)
        end = int(ban.get("until") or 0) if in_force else 0  # (0: ended, gone or a rule's: due now)
        if in_force and not end:
            continue  # no end: listed until lifted
        # NX: an end an action indexed meanwhile is newer than this one
        node.zadd(_shard(client, device_id, REVIEW_BAN_ENDS), {device_id: end}, nx=True)
    client.set(INDEXED, now_ms)
