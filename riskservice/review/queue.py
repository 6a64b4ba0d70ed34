"""The review queue: flagged devices, worst first, and the devices analysts resolved.

A device enters the open queue (``risk:review:queue``, device -> priority)
in three ways:

- the decision path, when its refusal points (a block 2, a challenge 1,
  counted in ``<device>:flags``) reach the policy's ``review.min_points``:
  priority = the points;
- the batch write-back, when its graph anomaly score reaches
  ``review.anomaly_threshold``: priority = 10 x the score (0.92 weighs 9.2);
- by hand (action ``flag``): priority = what it already has, at least 1.

**Ordering**: highest priority first; equal priorities by device id in
reverse byte order (Redis' order). The order is stable between pages: a page
cursor names the last item shown, so devices entering or leaving meanwhile
neither repeat nor vanish from later pages.

A device an analyst resolves leaves the open queue and is listed under its
new status (``risk:review:status:<status>``, device -> when it was resolved,
newest first). A timed ban that ended moves its device out of ``blocked``
before the lists are read (``review/ban_ends.py``).

On Redis Cluster each of these lists is one sorted set per slot, written in
the device's own slot (``review/shards.py``), merged into the same order.
"""

from __future__ import annotations

import math
from typing import Any, cast

import redis

from riskservice.errors import InvalidParameter
from riskservice.limits.keys import REVIEW_QUEUE, device_tag
from riskservice.limits.records import decode_device_state
from riskservice.limits.topology import is_cluster
from riskservice.review.common import decode_cursor, decode_hash, encode_cursor
from riskservice.review.shards import merged_after, merged_total

STATUSES = ("open", "blocked", "allowlisted", "labelled")
# Entries a filtered page may look at before answering with a cursor to go on
# from: a rare reason must not make one request read the whole queue.
SCAN_BUDGET = 2000


def status_key(status: str) -> str:
    """The sorted set listing devices in ``status``."""
    return REVIEW_QUEUE if status == "open" else f"risk:review:status:{status}"


def reasons_of(flags: dict[str, str]) -> dict[str, int]:
    """Rule code -> enforced refusals (and ``graph_anomaly``, ``manual``) from a flags hash."""
    return {k: int(v) for k, v in sorted(flags.items()) if not k.startswith("_") and v.lstrip("-").isdigit()}


def last_seen(flags: dict[str, str], state: bytes | None) -> int | None:
    """The latest time the device was seen: a refusal, an admitted share, or a user's last share."""
    log, users = decode_device_state(state)
    times = [int(flags["_last"])] if "_last" in flags else []
    times += log[-1:] + list(users.values())
    return max(times) if times else None


def read_cursor(cursor: str) -> tuple[float, str]:
    """The (priority, device) a page cursor names; 400 naming ``cursor`` for anything else.

    A cursor is base64 of JSON, so a client can send any JSON: a number where
    the device goes, or text where Redis expects a score, must stop here.
    """
    score, member = decode_cursor(cursor, 2)
    if (isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
            or not isinstance(member, str) or not 0 < len(member) <= 512):
        raise InvalidParameter("cursor is not one this API returned", {"cursor": "invalid"})
    return float(score), member


def _after(client: redis.Redis, key: str, cursor: tuple[float, str] | None,
           count: int) -> list[tuple[bytes, float]]:
    """Up to ``count`` members after ``cursor`` in (score desc, member desc) order."""
    if is_cluster(client):
        return merged_after(client, key, cursor, count)  # type: ignore[arg-type]
    if cursor is None:
        return cast(list[tuple[bytes, float]], client.zrevrange(key, 0, count - 1, withscores=True))
    score, member = cursor
    if client.zscore(key, member) == score:
        rank = cast(int, client.zrevrank(key, member))
        return cast(list[tuple[bytes, float]], client.zrevrange(key, rank + 1, rank + count, withscores=True))
    # The cursor's device moved or left: resume from its old place by score,
    # skipping the equal scores that sort before it.
    mark, offset = member.encode(), 0
    out: list[tuple[bytes, float]] = []
    while len(out) < count:
        batch = cast(list[tuple[bytes, float]], client.zrevrangebyscore(
            key, score, "-inf", start=offset, num=count + 100, withscores=True))
        if not batch:
            break
        offset += len(batch)
        out += [(m, s) for m, s in batch if s < score or m < mark]
    return out[:count]


def list_devices(client: redis.Redis, *, status: str = "open", reason: str | None = None, limit: int = 50,
                 cursor: str | None = None) -> dict[str, Any]:
    """One page of the queue (or of a resolved status), with each device's evidence.

    Returns ``{"status", "total", "devices": [...], "next_cursor"}``; with a
    reason filter a page may hold fewer than ``limit`` devices while
    ``next_cursor`` is set: follow it until it is null.
    """
    key = status_key(status)
    position = read_cursor(cursor) if cursor else None
    items: list[dict[str, Any]] = []
    scanned = 0
    next_position: tuple[float, str] | None = None
    while len(items) < limit and scanned < SCAN_BUDGET:
        batch = _after(client, key, position, min(limit, 200))
        if not batch:
            next_position = None
            break
        scanned += len(batch)
        details = _details(client, [m.decode() for m, _ in batch])
        for (member, score), item in zip(batch, details, strict=True):
            position = next_position = (score, member.decode())
            if reason is not None and reason not in item["reasons"]:
                continue
            if status == "open":
                item["priority"] = score
            else:
                item["resolved_at"] = int(score)
            items.append(item)
            if len(items) == limit:
                break
        if len(batch) < min(limit, 200) and len(items) < limit:
            next_position = None  # reached the end
            break
    if next_position is not None and not _after(client, key, next_position, 1):
        next_position = None
    total = merged_total(client, key) if is_cluster(client) else int(client.zcard(key))  # type: ignore[arg-type]
    return {"status": status, "total": total, "devices": items,
            "next_cursor": encode_cursor(*next_position) if next_position else None}


def _details(client: redis.Redis, devices: list[str]) -> list[dict[str, Any]]:
    """Evidence for each listed device, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for device in devices:
        tag = device_tag(device)
        pipe.hgetall(f"{tag}:flags")
        pipe.hgetall(f"{tag}:review")
        pipe.get(f"{tag}:state")
    replies = pipe.execute()
    out = []
    for i, device in enumerate(devices):
        flags, review, state = decode_hash(replies[3 * i]), decode_hash(replies[3 * i + 1]), replies[3 * i + 2]
        out.append({
            "device_id": device,
            "status": review.get("status", "open"),
            "label": review.get("label"),
            "reasons": reasons_of(flags),
            "points": int(flags.get("_points", 0)),
            "anomaly": float(flags["_anomaly"]) if "_anomaly" in flags else None,
            "first_flagged": int(flags["_first"]) if "_first" in flags else None,
            "last_seen": last_seen(flags, state),
        })
    return out
