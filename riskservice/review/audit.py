"""The audit trail: append-only, every entry hash-chained to the one before.

Each entry is a JSON object ``{seq, at, actor, action, entity, reason,
details, prev, hash}`` where ``prev`` is the previous entry's ``hash`` and

    hash = sha256(prev + canonical JSON of the entry without its hash)

(canonical: keys sorted, no spaces). Editing, removing or inserting an entry
therefore breaks a link that :func:`riskservice.review.verify.verify` finds.

Redis layout (``risk:audit:...``):

- ``entries``: hash ``seq -> entry JSON`` (seq counts 1, 2, 3, ... with no gaps);
- ``head``: hash ``{seq, hash, at}`` of the newest entry;
- ``anchor``: hash ``{seq, hash, at}`` of the newest *trimmed* entry, so the
  chain of what is left still verifies after old entries are trimmed;
- ``time``: sorted set ``seq -> at`` of every entry, to turn a time range into
  a range of seqs;
- ``ix:entity:<entity>``, ``ix:actor:<actor>``: sorted sets ``seq -> seq``,
  so filtering a long trail by device or analyst reads only their entries.

Appending is optimistic (WATCH the head, write in MULTI, retry on a race):
analyst actions are rare, so contention is too, and the hash has to be
computed here because Redis' Lua has no SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NamedTuple, cast

import orjson
import redis

from riskservice.limits.keys import AUDIT_TAG_PREFIX, encode_id
from riskservice.limits.topology import is_cluster, node_client
from riskservice.review.common import decode_hash, text
from riskservice.transactions import optimistic

PREFIX = "risk:audit"
ENTRIES, HEAD, ANCHOR, TIME = f"{PREFIX}:entries", f"{PREFIX}:head", f"{PREFIX}:anchor", f"{PREFIX}:time"
POLICY = f"{PREFIX}:policy"  # the last policy version written to the trail
GENESIS = "0" * 64
# WeChat's coupon-sharing guide: audit records are kept 180 days.
RETENTION_MS = 180 * 86_400_000
TRIM_BATCH = 500
INDEXED = ("entity", "actor")


class TrailKeys(NamedTuple):
    """The trail's key names: ``risk:audit:...`` on one Redis; on Redis Cluster
    ``risk:{audit}:...``, one slot, so that an append stays one transaction."""

    prefix: str
    entries: str
    head: str
    anchor: str
    time: str
    policy: str

    @classmethod
    def under(cls, prefix: str) -> TrailKeys:
        return cls(prefix, f"{prefix}:entries", f"{prefix}:head", f"{prefix}:anchor", f"{prefix}:time",
                   f"{prefix}:policy")

    def index(self, field: str, value: str) -> str:  # type: ignore[override]  # (not tuple.index)
        return f"{self.prefix}:ix:{field}:{encode_id(value)}"


SINGLE = TrailKeys.under(PREFIX)
CLUSTER = TrailKeys.under(AUDIT_TAG_PREFIX)


def trail(client: Any) -> tuple[redis.Redis, TrailKeys]:
    """The client to run the trail's transactions on, and its key names."""
    if is_cluster(client):
        return node_client(client, CLUSTER.head), CLUSTER
    return client, SINGLE


def index_key(field: str, value: str, keys: TrailKeys = SINGLE) -> str:
    return keys.index(field, value)


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers: every field but ``hash``, keys sorted."""
    return orjson.dumps({k: v for k, v in entry.items() if k != "hash"}, option=orjson.OPT_SORT_KEYS)


def entry_hash(prev: str, entry: Mapping[str, Any]) -> str:
    """The link of ``entry`` to the entry before it (whose hash is ``prev``).

    >>> entry_hash(GENESIS, {"seq": 1})[:12]
    '0a0089855037'
    """
    return hashlib.sha256(prev.encode() + canonical(entry)).hexdigest()


def append(client: redis.Redis | redis.RedisCluster, *, now_ms: int, actor: str, action: str, entity: str, reason: str,
           details: Mapping[str, Any] | None = None, trim: bool = True) -> dict[str, Any]:
    """Add one entry at the end of the chain and return it.

    ``at`` never goes back in time: it is at least the previous entry's, so
    the trail's order is its time order (time filters rely on that).
    """
    client, keys = trail(client)

    def chain(pipe: Any) -> dict[str, Any]:
        # Another worker appending first makes this read again: chain onto its entry.
        entry = next_entry(pipe, now_ms, actor, action, entity, reason, details, keys)
        pipe.multi()
        write_entry(pipe, entry, keys)
        return entry

    entry = optimistic(client, (keys.head, keys.anchor), chain)
    if trim:
        trim_older(client, now_ms)
    return entry


def next_entry(client: Any, now_ms: int, actor: str, action: str, entity: str, reason: str,
                details: Mapping[str, Any] | None, keys: TrailKeys = SINGLE) -> dict[str, Any]:
    head = decode_hash(client.hgetall(keys.head))
    if head:
        seq, prev, last_at = int(head["seq"]) + 1, head["hash"], int(head["at"])
    else:
        # An empty trail, or one trimmed whole: carry on from the anchor.
        anchor = decode_hash(client.hgetall(keys.anchor))
        seq, prev, last_at = (int(anchor["seq"]) + 1, anchor["hash"], int(anchor["at"])) if anchor else (1, GENESIS, 0)
    entry: dict[str, Any] = {"seq": seq, "at": max(int(now_ms), last_at), "actor": actor, "action": action,
                             "entity": entity, "reason": reason, "details": dict(details or {}), "prev": prev}
    entry["hash"] = entry_hash(prev, entry)
    return entry


def write_entry(pipe: Any, entry: dict[str, Any], keys: TrailKeys = SINGLE) -> None:
    seq = entry["seq"]
    pipe.hset(keys.entries, str(seq), orjson.dumps(entry))
    pipe.zadd(keys.time, {str(seq): entry["at"]})
    for field in INDEXED:
        pipe.zadd(keys.index(field, entry[field]), {str(seq): seq})
    pipe.hset(keys.head, mapping={"seq": seq, "hash": entry["hash"], "at": entry["at"]})


def trim_older(client: redis.Redis, now_ms: int, retention_ms: int = RETENTION_MS) -> int:
    """Remove entries older than ``retention_ms``, oldest first; returns how many.

    The hash of the newest removed entry becomes the anchor the rest of the
    chain is verified from. Each batch is one transaction watched on the
    anchor, so two workers trimming at once cannot both move it.
    """
    cutoff = now_ms - retention_ms
    client, keys = trail(client)

    def trim_batch(pipe: Any) -> int:
        old = cast(list[tuple[bytes, float]],
                   pipe.zrangebyscore(keys.time, "-inf", f"({cutoff}", start=0, num=TRIM_BATCH, withscores=True))
        seqs = sorted(int(s) for s, _ in old)
        raws = cast(list[bytes | None], pipe.hmget(keys.entries, [str(s) for s in seqs])) if seqs else []
        entries = [orjson.loads(r) for r in raws if r is not None]
        pipe.multi()
        if not seqs:
            return 0
        for e in entries:
            for field in INDEXED:
                pipe.zrem(keys.index(field, e[field]), str(e["seq"]))
        pipe.hdel(keys.entries, *(str(s) for s in seqs))
        pipe.zrem(keys.time, *(str(s) for s in seqs))
        if entries:
            last = entries[-1]
            pipe.hset(keys.anchor, mapping={"seq": last["seq"], "hash": last["hash"], "at": last["at"]})
        return len(seqs)

    removed = 0
    while batch := optimistic(client, (keys.anchor,), trim_batch):
        removed += batch
    return removed


def seq_range(client: redis.Redis, since_ms: int | None, until_ms: int | None) -> tuple[int, int] | None:
    """The seqs ``[first, last]`` of the entries made in ``[since_ms, until_ms)``; None: no entries."""
    client, keys = trail(client)
    low = cast(list[bytes], client.zrangebyscore(keys.time, "-inf" if since_ms is None else since_ms, "+inf",
                                                 start=0, num=1))
    high = cast(list[bytes], client.zrevrangebyscore(keys.time, "+inf" if until_ms is None else f"({until_ms}",
                                                     "-inf", start=0, num=1))
    if not low or not high or int(low[0]) > int(high[0]):
        return None
    return int(low[0]), int(high[0])


def query(client: redis.Redis, *, entity: str | None = None, actor: str | None = None,
          since_ms: int | None = None, until_ms: int | None = None, limit: int = 50,
          before_seq: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """Entries matching every filter, newest first; returns (entries, seq to continue before).

    With an entity or actor the matching index is read; with both, the
    entity's entries are filtered by actor (a device has few entries).
    """
    bounds = seq_range(client, since_ms, until_ms)
    client, keys = trail(client)
    if bounds is None:
        return [], None
    low, high = bounds
    if before_seq is not None:
        high = min(high, before_seq - 1)
    if high < low:
        return [], None
    if entity is not None or actor is not None:
        key = keys.index("entity", entity) if entity is not None else keys.index("actor", cast(str, actor))
        seqs = [int(s) for s in cast(list[bytes], client.zrevrangebyscore(key, high, low))]
    else:
        seqs = list(range(high, low - 1, -1))
    out: list[dict[str, Any]] = []
    position = 0
    # Read in chunks so that a long index filtered by actor stops as soon as the page is full.
    while position < len(seqs) and len(out) < limit:
        chunk = seqs[position:position + max(limit, 100)]
        position += len(chunk)
        for seq, raw in zip(chunk, cast(list[bytes | None], client.hmget(keys.entries, [str(s) for s in chunk])),
                            strict=True):
            if raw is None:
                continue  # trimmed meanwhile (or removed: verify reports that)
            entry = orjson.loads(raw)
            if actor is not None and entry["actor"] != actor:
                continue
            out.append(entry)
            if len(out) == limit:
                more = seq != seqs[-1]
                return out, (seq if more else None)
    return out, None


def note_policy(client: redis.Redis | redis.RedisCluster, version: str, *, now_ms: int, actor: str = "system",
                previous: str | None = None, source: str = "") -> dict[str, Any] | None:
    """Audit that ``version`` of the policy is now in force; None if it already was.

    Every gunicorn worker reloads the policy on its own, so each may call
    this for one change: the version last written (``risk:audit:policy``) is
    watched in the same transaction, and only the first worker writes.
    """
    client, keys = trail(client)

    def note(pipe: Any) -> dict[str, Any] | None:
        last = text(pipe.get(keys.policy))
        if last == version:
            pipe.multi()  # nothing to write
            return None
        details = {"from": previous if previous is not None else last, "to": version, "source": source}
        entry = next_entry(pipe, now_ms, actor, "policy_change", "policy", "policy reloaded", details, keys)
        pipe.multi()
        write_entry(pipe, entry, keys)
        pipe.set(keys.policy, version)
        return entry

    return optimistic(client, (keys.head, keys.anchor, keys.policy), note)
