"""The share-event record: read from Redis and exported as JSON lines.

Every decision, outcome report and challenge result is appended to one Redis
stream (``risk:events``) by the same atomic script that makes it, and the
stream is trimmed by age (``RISK_EVENT_RETENTION_DAYS``). On Redis Cluster
each slot has its own shard (``risk:events:{<slot tag>}``, written by its
devices' scripts); the readers here merge the shards by stream id (the time
each entry was recorded), so both deployments read one stream in the order
it was recorded, with the same functions. An exported line is
one decision, in the batch job's format: the decision request fields plus
``ts``, ``decision``, ``decision_id``, the codes of the rules that fired, and
the outcome fields ``delivered``, ``opened``, ``claimed`` (null until reported),
with the history of reports so that a backtest can replay them when they came,
and the analysts' labels: ``label`` (fraud, legit or null) is the share's
label, its device's, else its user's (what the batch job and ``calibrate``
learn from), with ``label_source`` (device or user), ``label_by`` and
``label_at``; ``labels`` holds both the device's and the user's
(``{"label", "by", "at"}`` or null each), so either can be used.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any, cast

import orjson
import redis

from riskservice.limits.keys import EVENTS, logged_decision_id, slot_shard
from riskservice.limits.topology import every_shard, is_cluster
from riskservice.review.labels import Label, read_labels, share_label

DECISIONS = ("allow", "challenge", "block")
BATCH = 5000


def _scan(client: redis.Redis, key: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Every entry of the stream, oldest first, in batches (on a cluster: of every shard, merged)."""
    if is_cluster(client):
        shards = [slot_shard(key, slot) for slot, _ in every_shard(client, key, "XLEN")]  # type: ignore[arg-type]
        yield from heapq.merge(*(_scan_one(client, shard) for shard in shards), key=lambda e: _order(e[0]))
        return
    yield from _scan_one(client, key)


def scan_events(client: redis.Redis | redis.RedisCluster, key: str = EVENTS) -> Iterator[tuple[str, dict[str, str]]]:
    """Every entry of the share-event stream, oldest first (on a cluster: every shard's, merged)."""
    return _scan(client, key)  # type: ignore[arg-type]


def _order(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (ms, sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _scan_one(client: redis.Redis, key: str) -> Iterator[tuple[str, dict[str, str]]]:
    start = "-"
    while True:
        batch = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(key, start, "+", count=BATCH))
        for entry_id, fields in batch:
            yield entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()}
        if len(batch) < BATCH:
            return
        start = "(" + batch[-1][0].decode()


def read_events(client: redis.Redis | redis.RedisCluster, since_ms: int | None = None, until_ms: int | None = None,
                key: str = EVENTS) -> Iterator[dict[str, Any]]:
    """Decisions made in ``[since_ms, until_ms)``, joined with their outcomes and challenge results.

    Two passes over the stream: the first gathers the reports (they come after
    their decision, possibly after ``until_ms``), the second yields decisions
    in the order they were made.
    """
    outcomes: dict[str, list[list[Any]]] = {}
    challenges: dict[str, list[Any]] = {}
    for entry_id, f in _scan(client, key):  # type: ignore[arg-type]
        if f["k"] == "outcome":
            outcomes.setdefault(f["id"], []).append(
                [int(f["t"]) / 1000, int(f["dl"]), int(f["op"]), int(f["cl"]), entry_id])
        elif f["k"] == "challenge":
            challenges[f["id"]] = [f["passed"] == "1", int(f["t"]) / 1000, entry_id, f.get("cool") == "1",
                                   f.get("held")]
    devices: dict[str, Label | None] = {}
    users: dict[str, Label | None] = {}
    pending: list[dict[str, Any]] = []
    for entry_id, f in _scan(client, key):  # type: ignore[arg-type]
        if f["k"] != "decision":
            continue
        t = int(f["t"])
        if (since_ms is not None and t < since_ms) or (until_ms is not None and t >= until_ms):
            continue
        pending.append(event_line(entry_id, f, outcomes.get(f["id"], []), challenges.get(f["id"])))
        if len(pending) >= BATCH:
            yield from _labelled(client, pending, devices, users)
            pending = []
    yield from _labelled(client, pending, devices, users)


def _labelled(client: redis.Redis | redis.RedisCluster, lines: list[dict[str, Any]], devices: dict[str, Label | None],
              users: dict[str, Label | None]) -> Iterator[dict[str, Any]]:
    """``lines`` with the labels in force of their devices and users (looked up once each, in bulk)."""
    for known, kind, name in ((devices, "device", "device_id"), (users, "user", "user_id")):
        new = {str(line[name]) for line in lines if line.get(name) is not None} - known.keys()
        found = read_labels(client, kind, new)
        known.update({node: found.get(node) for node in new})
    for line in lines:
        device = devices.get(str(line["device_id"])) if line.get("device_id") is not None else None
        user = users.get(str(line["user_id"])) if line.get("user_id") is not None else None
        label = share_label(device, user)
        line.update({
            "label": label.label if label else None,
            "label_source": label.kind if label else None,
            "label_by": label.by if label else None,
            "label_at": label.at if label else None,
            "labels": {"device": device.to_dict() if device else None, "user": user.to_dict() if user else None},
        })
        yield line


def event_line(entry_id: str, f: dict[str, str], history: list[list[Any]],
               challenge: list[Any] | None) -> dict[str, Any]:
    """One exported decision."""
    line: dict[str, Any] = orjson.loads(f["req"])
    codes = [c for c in f["rc"].split(",") if c]
    last = history[-1] if history else None
    line.update({
        "ts": int(f["t"]) / 1000,
        "decision": DECISIONS[int(f["dec"])],
        "decision_id": logged_decision_id(f["id"], str(line.get("device_id", ""))),
        "reasons": [c for c in codes if not c.endswith(":shadow")],
        "shadow": [c.removesuffix(":shadow") for c in codes if c.endswith(":shadow")],
        "delivered": last[1] if last else None,
        "opened": last[2] if last else None,
        "claimed": last[3] if last else None,
        "challenge_passed": challenge[0] if challenge else None,
        "challenge_ts": challenge[1] if challenge else None,
        "outcome_history": [h[:4] for h in history],
        "seq": entry_id,
        "outcome_seq": [h[4] for h in history],
        "challenge_seq": challenge[2] if challenge else None,
    })
    if f.get("degraded"):
        # Allowed while Redis was unreachable, and counted when it answered again.
        line["degraded"] = True
    if challenge and challenge[4]:
        # Passed while a ban blocked the device: recorded, not counted (the ban's code).
        line["challenge_held"] = challenge[4]
    return line
