"""What a rolled-back scoring run takes back from the analysts' review queue.

A write-back queues every device it scores at or above the review
threshold (``graph_store._queue_anomalous``): it marks the device's flags
with ``graph_anomaly`` and ``_anomaly`` and ranks it by ten times its score.
A rollback usually follows a bad run, so leaving those marks would keep the
bad run's false positives at the top of the queue. Rolling back therefore
gives each device the run had flagged the restored version's score instead
(or none), and ranks it again by the evidence left: its refusal points, the
restored score, an analyst's flag. A device with none leaves the queue.
Refusals the decision path made meanwhile stay counted: they happened.
"""

from __future__ import annotations

from typing import Any

import redis

from riskservice.graph_store import anomalous_devices, anomaly_of, drop_version, rollback_versions
from riskservice.limits.keys import REVIEW_QUEUE, device_shard, device_tag
from riskservice.limits.topology import is_cluster, node_client
from riskservice.policy.model import Review
from riskservice.review.ban_ends import evidence_priority
from riskservice.review.common import decode_hash
from riskservice.transactions import optimistic

__all__ = ["roll_back_scores", "withdraw_scores"]


def roll_back_scores(client: redis.Redis | redis.RedisCluster, review: Review) -> tuple[int, int | None] | None:
    """Make the previous scores current, take the withdrawn run's marks back
    from the queue and delete that run; returns the restored version and the
    withdrawn one (None: nothing to roll back to)."""
    flipped = rollback_versions(client)
    if flipped is None:
        return None
    restored, withdrawn = flipped
    if withdrawn is not None:
        withdraw_scores(client, withdrawn, restored, review)
        drop_version(client, withdrawn)
    return flipped


def withdraw_scores(client: redis.Redis | redis.RedisCluster, withdrawn: int, restored: int, review: Review) -> int:
    """Re-mark and re-rank every device ``withdrawn`` queued, by ``restored``'s
    scores; returns how many devices were seen."""
    seen = 0
    for batch in anomalous_devices(client, withdrawn, review.anomaly_threshold):
        scores = anomaly_of(client, restored, [device for device, _ in batch])
        for (device, _), score in zip(batch, scores, strict=True):
            _withdraw(client, device, score if score is not None and score >= review.anomaly_threshold else None,
                      review)
        seen += len(batch)
    return seen


def _withdraw(client: redis.Redis | redis.RedisCluster, device: str, score: float | None, review: Review) -> None:
    """One device: its flags carry ``score`` (None: no graph mark), and its
    place in the open queue is what its evidence earns now."""
    tag = device_tag(device)
    node = node_client(client, tag)
    flags_key, review_key = f"{tag}:flags", f"{tag}:review"
    queue = device_shard(REVIEW_QUEUE, device) if is_cluster(client) else REVIEW_QUEUE

    def act(pipe: Any) -> None:
        flags = decode_hash(pipe.hgetall(flags_key))
        status = pipe.hget(review_key, "status")
        pipe.multi()
        if not flags:
            return  # (expired: nothing to take back)
        if score is not None:
            flags.update(graph_anomaly=flags.get("graph_anomaly") or "1", _anomaly=f"{score:.4f}")
            pipe.hset(flags_key, mapping={"graph_anomaly": flags["graph_anomaly"], "_anomaly": flags["_anomaly"]})
        else:
            flags.pop("_anomaly", None)
            pipe.hdel(flags_key, "_anomaly")
            # The write-back set graph_anomaly to 1; refusals by the graph_anomaly
            # rule since then added to it, and those stay.
            marks = int(flags.get("graph_anomaly") or 0)
            if marks <= 1:
                flags.pop("graph_anomaly", None)
                pipe.hdel(flags_key, "graph_anomaly")
            else:
                flags["graph_anomaly"] = str(marks - 1)
                pipe.hset(flags_key, "graph_anomaly", marks - 1)
        if status not in (None, b"open"):
            return  # (resolved by an analyst: not in the open queue)
        if (priority := evidence_priority(flags, review)) > 0:
            pipe.zadd(queue, {device: priority})  # (not GT: the withdrawn score's rank goes)
        else:
            pipe.zrem(queue, device)

    optimistic(node, (flags_key, review_key), act)
