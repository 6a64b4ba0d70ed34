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
and the analysts' ``label`` of the device (fraud, legit or null).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any, cast

import orjson
import redis

from riskservice.limits.keys import EVENTS, device_tag, slot_shard
from riskservice.limits.topology import every_shard, is_cluster

DECISIONS = ("allow", "challenge", "block")
BATCH = 5000


def _scan(client: redis.Redis, key: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Every entry of the stream, oldest first, in batches (on a cluster: of every shard, merged)."""
    if is_cluster(client):
        shards = [slot_shard(key, slot) for slot, _ in every_shard(client, key, "XLEN")]  # type: ignore[arg-type]
        yield from heapq.merge(*(_scan_one(client, shard) for shard in shards), key=lambda e: _order(e[0]))
        return
    yield from _scan_one(client, key)


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
            challenges[f["id"]] = [f["passed"] == "1", int(f["t"]) / 1000, entry_id, f.get("cool") == "1"]
    labels: dict[str, str | None] = {}
    for entry_id, f in _scan(client, key):  # type: ignore[arg-type]
        if f["k"] != "decision":
            continue
        t = int(f["t"])
        if (since_ms is not None and t < since_ms) or (until_ms is not None and t >= until_ms):
            continue
        line = event_line(entry_id, f, outcomes.get(f["id"], []), challenges.get(f["id"]))
        device = line.get("device_id")
        if device is not None:
            if device not in labels:
                labels[device] = _label(client, device)  # type: ignore[arg-type]
            line["label"] = labels[device]
        yield line


def _label(client: redis.Redis, device_id: str) -> str | None:
    """An analyst's label of the device (fraud or legit): its current verdict,
    carried on each of its events for the batch job."""
    raw = client.hget(f"{device_tag(device_id)}:review", "label")
    return None if raw is None else cast(bytes, raw).decode()


def event_line(entry_id: str, f: dict[str, str], history: list[list[Any]],
               challenge: list[Any] | None) -> dict[str, Any]:
    """One exported decision."""
    line: dict[str, Any] = orjson.loads(f["req"])
    codes = [c for c in f["rc"].split(",") if c]
    last = history[-1] if history else None
    line.update({
        "ts": int(f["t"]) / 1000,
        "decision": DECISIONS[int(f["dec"])],
        "decision_id": f["id"],
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
    return line
