"""Rule performance: hits, refusals and precision against analysts' labels, per rule and signal.

Computed on read from the share-event stream over the asked window, never
on the decision path: the decision scripts already append every decision
with the codes of the rules that fired (``rc``, ``:shadow`` after a shadow
one), so this adds no Redis work to a decision. The cost of one report is
one ``XRANGE`` over the window's entries (in short reads of ``BATCH``), one JSON
parse per share that some rule fired on, and one pipelined ``HMGET`` per
distinct device and user among those shares (for their labels). The scan
stops at ``max_events`` entries (``truncated``, and ``scanned_until`` says
where) so that a report over a month of a busy stream stays bounded.

The window is by the time a share event was recorded, the stream entry's
id (Redis server time; for a decision the same as its decision time, except
a decision answered while Redis was down, which counts when recorded).

Precision is against the labels in force now (an analyst labels after the
fact): a share is labelled by its device's label, else its user's
(:func:`riskservice.review.labels.share_label`). ``precision`` is fraud
hits over labelled hits; since all hits of one device carry its one label,
they are not independent, so the 95 % interval (Wilson score) of that
precision takes the number of distinct labelled devices and users behind
the hits (``labels``) as its sample size, the one that really backs it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import redis

from riskservice.decisions.rules import MESSAGES
from riskservice.events import scan_events
from riskservice.limits.contract import RULES
from riskservice.limits.keys import EVENTS
from riskservice.limits.topology import is_cluster
from riskservice.policy.load import Policy
from riskservice.review.labels import Label, read_labels, share_label

__all__ = ["CODES", "DAY_MS", "MAX_EVENTS", "rule_performance", "wilson"]

DAY_MS = 86_400_000
MAX_EVENTS = 500_000
# Entries per XRANGE: Redis serves nothing else meanwhile, so each read is
# kept short (200 entries: about 0.3 ms of Redis time on the loaded 2-core
# test machine, where 5 000 took 28 ms, longer than a decision's budget).
BATCH = 200
MAX_BUCKETS = 48
HOUR_MS = 3_600_000
# Every code a decision's reasons can carry: the stateful rules (the scripts'
# table) and the app's (stateless rules, the cool-down). Rewards and the
# degraded answer are not share decisions' rule hits.
NOT_RULES = {"reward_daily_cap", "reward_graph_anomaly", "redis_unavailable"}
CODES: tuple[str, ...] = tuple(dict.fromkeys([*RULES, *(c for c in MESSAGES if c not in NOT_RULES)]))
# The policy's rule behind a code, where the names differ.
POLICY_RULE = {"external_channel_not_allowed": "external_channel"}
DECISIONS = ("allow", "challenge", "block")


def wilson(successes: float, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``successes / n`` (95 % by default); None without samples.

    ``successes`` may be fractional: a proportion measured on correlated
    items is given as ``p * n_effective`` with ``n`` the effective sample size.

    >>> wilson(3, 3)
    (0.4385, 1.0)
    >>> wilson(0, 0) is None
    True
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


@dataclass
class _Tally:
    """One rule's counts over the window."""

    enforced: int = 0
    shadow: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    # (mode, device, user) -> hits, joined with labels at the end
    hit_by: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    series: dict[str, list[int]] = field(default_factory=dict)


def _precision(hits: Counter[tuple[str, str, str]], mode: str, devices: dict[str, Label],
               users: dict[str, Label]) -> dict[str, Any]:
    labelled = fraud = 0
    entities: dict[tuple[str, str], bool] = {}
    for (m, device, user), n in hits.items():
        if m != mode:
            continue
        label = share_label(devices.get(device), users.get(user))
        if label is None:
            continue
        labelled += n
        fraud += n if label.fraud else 0
        entities[(label.kind, label.node)] = label.fraud
    fraud_labels = sum(entities.values())
    # The hits' precision, with the number of labels as its sample size: all
    # hits of one device or user share its label, so they count as one.
    interval = wilson(fraud / labelled * len(entities), len(entities)) if labelled else None
    return {"labelled": labelled, "fraud": fraud, "legit": labelled - fraud,
            "precision": round(fraud / labelled, 4) if labelled else None,
            "labels": len(entities), "fraud_labels": fraud_labels,
            "interval": list(interval) if interval else None}


def _mode(policy: Policy | None, code: str) -> dict[str, Any]:
    """How the policy in force (its defaults, before merchant overrides) runs the rule."""
    if policy is None:
        return {"mode": "unknown", "rollout": None}
    rule = getattr(policy.for_merchant(None).rules, POLICY_RULE.get(code, code), None)
    if rule is None:
        return {"mode": "unknown", "rollout": None}
    mode = "disabled" if not rule.enabled else "shadow" if rule.shadow else "enforced"
    return {"mode": mode, "rollout": rule.rollout}


class _Reader:
    """``XRANGE`` replies as redis-py receives them, ``[id, [field, value, ...]]``.

    redis-py turns every entry into a dict through a Python callback, which
    costs twice the read itself over a day of events; a client sharing the
    service's connection pool, without that callback, skips it. (A cluster
    client keeps its own parsing.)
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, key: str) -> None:
        self.key = key
        self.flat = type(client) is redis.Redis
        self.merged: Iterator[tuple[str, dict[str, str]]] | None = None
        if is_cluster(client):
            # One shard per slot (riskservice/events.py): their entries merged
            # in the order they were recorded, read on from where the last
            # call stopped.
            self.client = client
            self.merged = scan_events(client, key)
        elif self.flat:
            self.client = redis.Redis(connection_pool=cast(redis.Redis, client).connection_pool)
            self.client.set_response_callback("XRANGE", lambda reply, **_: reply)
        else:
            self.client = client

    def xrange(self, start: str, end: str, count: int) -> list[tuple[bytes, list[bytes]]]:
        if self.merged is not None:
            return self._merged(start, end, count)
        reply = self.client.xrange(self.key, start, end, count=count)
        if self.flat:
            return cast(list[tuple[bytes, list[bytes]]], reply)
        parsed = cast(list[tuple[bytes, dict[bytes, bytes]]], reply)
        return [(entry_id, [x for kv in fields.items() for x in kv]) for entry_id, fields in parsed]


    def _merged(self, start: str, end: str, count: int) -> list[tuple[bytes, list[bytes]]]:
        assert self.merged is not None
        low, high = int(start.lstrip("(").split("-")[0]), int(end)
        out: list[tuple[bytes, list[bytes]]] = []
        for entry_id, fields in self.merged:
            ms = int(entry_id.split("-")[0])
            if ms < low:
                continue
            if ms > high:
                self.merged = iter(())
                break
            out.append((entry_id.encode(), [x.encode() for kv in fields.items() for x in kv]))
            if len(out) == count:
                break
        return out


def _bucket_ms(since: int, until: int) -> int:
    """Whole hours, so that a window of up to two days has hourly points and a longer one at most 48."""
    hours = max(1, math.ceil((until - since) / HOUR_MS / MAX_BUCKETS))
    return hours * HOUR_MS


def rule_performance(client: redis.Redis | redis.RedisCluster, *, since_ms: int, until_ms: int,
                     policy: Policy | None = None, max_events: int = MAX_EVENTS, key: str = EVENTS) -> dict[str, Any]:
    """Hits, refusals and precision of every rule and signal over ``[since_ms, until_ms)``.

    Parameters
    ----------
    client : redis.Redis or redis.RedisCluster
        The service's Redis (the share-event stream and the review hashes).
    since_ms, until_ms : int
        The window, by stream entry time (epoch ms; ``until_ms`` exclusive).
    policy : Policy, optional
        The policy in force, to say how each rule runs now.
    max_events : int
        Stop after this many stream entries (``truncated`` in the answer).
    """
    step = _bucket_ms(since_ms, until_ms)
    starts = list(range(since_ms, until_ms, step)) or [since_ms]
    tallies: dict[str, _Tally] = {}
    decisions = scanned = 0
    truncated = False
    last_ms = since_ms
    start, end = f"{since_ms}", f"{until_ms - 1}"
    reader = _Reader(client, key)
    while until_ms > since_ms:
        count = min(BATCH, max_events - scanned)
        batch = reader.xrange(start, end, count)
        for entry_id, flat in batch:
            scanned += 1
            f = dict(zip(flat[0::2], flat[1::2], strict=False))
            if f.get(b"k") != b"decision":
                continue
            decisions += 1
            rc = f.get(b"rc", b"")
            if not rc:
                continue  # most shares: no rule fired, no JSON to parse
            ms = int(entry_id.split(b"-", 1)[0])
            req = orjson.loads(f[b"req"])
            device, user = str(req.get("device_id") or ""), str(req.get("user_id") or "")
            decision = DECISIONS[int(f[b"dec"])]
            slot = min((ms - since_ms) // step, len(starts) - 1)
            for raw in rc.decode().split(","):
                if not raw:
                    continue
                code, shadow = raw.removesuffix(":shadow"), raw.endswith(":shadow")
                tally = tallies.get(code)
                if tally is None:
                    tally = tallies[code] = _Tally(series={"enforced": [0] * len(starts),
                                                           "shadow": [0] * len(starts)})
                mode = "shadow" if shadow else "enforced"
                if shadow:
                    tally.shadow += 1
                else:
                    tally.enforced += 1
                    if decision != "allow":
                        tally.refusals[decision] += 1
                tally.series[mode][slot] += 1
                tally.hit_by[(mode, device, user)] += 1
        if batch:
            last_ms = int(batch[-1][0].split(b"-", 1)[0])
            start = "(" + batch[-1][0].decode()
        if scanned >= max_events and len(batch) == count:
            truncated = True
            break
        if len(batch) < count:
            break
    devices = read_labels(client, "device", {d for t in tallies.values() for _, d, _ in t.hit_by if d})
    users = read_labels(client, "user", {u for t in tallies.values() for _, _, u in t.hit_by if u})
    rules = []
    for code in (*CODES, *sorted(set(tallies) - set(CODES))):
        t = tallies.get(code) or _Tally(series={"enforced": [0] * len(starts), "shadow": [0] * len(starts)})
        rules.append({
            "code": code, **_mode(policy, code),
            "hits": {"enforced": t.enforced, "shadow": t.shadow},
            "refusals": {"total": t.refusals["block"] + t.refusals["challenge"],
                         "block": t.refusals["block"], "challenge": t.refusals["challenge"]},
            "precision": {m: _precision(t.hit_by, m, devices, users) for m in ("enforced", "shadow")},
            "series": t.series,
        })
    return {"since": since_ms, "until": until_ms, "decisions": decisions, "scanned": scanned,
            "truncated": truncated, "scanned_until": (last_ms + 1) if truncated else until_ms,
            "bucket_ms": step, "buckets": starts,
            "labelled": {"devices": len(devices), "users": len(users)}, "rules": rules}
