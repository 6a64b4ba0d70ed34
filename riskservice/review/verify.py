"""Verification of the audit trail's hash chain.

Walks the chain from the anchor (the newest trimmed entry, or the genesis
hash) to the head, recomputing every link, and reports the first one that is
broken:

- ``missing``: an entry between anchor and head is gone (removed);
- ``altered``: an entry's content no longer matches its own hash (edited);
- ``unlinked``: an entry's ``prev`` is not the hash of the entry before it
  (an entry before it was replaced or inserted, and its hash recomputed);
- ``misnumbered``: an entry sits under another seq than the one it carries
  (entries were shifted to make room for an inserted one);
- ``head``: the head does not point at the last entry of the chain;
- ``extra``: entries exist outside the chain (appended behind the head's back);
- ``unapplied`` (Redis Cluster only): a device's latest action entry is not
  the one in force on the device (``audit_seq`` of its review hash): the
  entry, written first as the intent, was never followed by its action (the
  process died between the two steps); repeating the action applies it;
- ``index``: an index the API serves from (``ix:entity:*`` and ``ix:actor:*``
  behind ``?entity=``, ``?actor=`` and a dossier's history, ``time`` behind
  ``since``/``until``) lacks an entry of the chain, lists one that does not
  belong there, or ranks it by the wrong score. Removing an entry from a
  device's index would otherwise hide its history while the chain verified.

What it cannot see: someone able to rewrite the whole chain and its head
consistently. Publishing the head hash elsewhere from time to time (it is in
every verify report) closes that gap.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
import redis

from riskservice.limits.keys import device_tag
from riskservice.limits.topology import is_cluster
from riskservice.review.audit import GENESIS, INDEXED, entry_hash, trail
from riskservice.review.common import decode_hash

BATCH = 500
# Actions on a device (review/actions.py), whose effect on a cluster is applied after their entry.
ACTIONS = ("block", "unblock", "allowlist", "label", "flag")


def _broken(seq: int, problem: str, message: str, checked: int, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "checked": checked, "broken": {"seq": seq, "problem": problem, "message": message, **extra}}


def verify(client: redis.Redis) -> dict[str, Any]:
    """Check the whole chain; ``{"ok", "checked", "first_seq", "last_seq", "head_hash", "anchor", "broken"}``."""
    origin = client
    client, keys = trail(client)
    head = decode_hash(client.hgetall(keys.head))
    anchor = decode_hash(client.hgetall(keys.anchor))
    first = int(anchor["seq"]) + 1 if anchor else 1
    prev = anchor["hash"] if anchor else GENESIS
    last = int(head["seq"]) if head else first - 1
    report: dict[str, Any] = {"ok": True, "checked": 0, "first_seq": first if last >= first else None,
                              "last_seq": last if last >= first else None, "head_hash": head.get("hash"),
                              "anchor": {"seq": int(anchor["seq"]), "hash": anchor["hash"]} if anchor else None,
                              "broken": None}
    checked = 0
    # Device -> (seq, action) of its latest action entry (for `unapplied`).
    latest: dict[str, tuple[int, str]] = {}
    # What the indexes must hold, worked out from the chain: key -> {seq: score}.
    expected: dict[str, dict[int, float]] = {keys.time: {}}
    for start in range(first, last + 1, BATCH):
        seqs = list(range(start, min(start + BATCH, last + 1)))
        raws = cast(list[bytes | None], client.hmget(keys.entries, [str(s) for s in seqs]))
        for seq, raw in zip(seqs, raws, strict=True):
            if raw is None:
                return {**report, **_broken(seq, "missing", f"entry {seq} is missing", checked)}
            entry = orjson.loads(raw)
            if entry.get("seq") != seq:
                return {**report, **_broken(seq, "misnumbered", f"entry stored as {seq} says it is "
                                            f"{entry.get('seq')}", checked)}
            if entry.get("prev") != prev:
                return {**report, **_broken(seq, "unlinked", f"entry {seq} does not follow the entry before it",
                                            checked, expected_prev=prev, found_prev=entry.get("prev"))}
            if entry_hash(prev, entry) != entry.get("hash"):
                return {**report, **_broken(seq, "altered", f"entry {seq} was changed after it was written",
                                            checked)}
            prev = entry["hash"]
            checked += 1
            if entry["entity"].startswith("device:") and entry["action"] in ACTIONS:
                latest[entry["entity"].removeprefix("device:")] = (seq, entry["action"])
            expected[keys.time][seq] = float(entry["at"])
            for field in INDEXED:
                expected.setdefault(keys.index(field, entry[field]), {})[seq] = float(seq)
    if head and head["hash"] != prev:
        return {**report, **_broken(last, "head", "the head does not match the last entry", checked)}
    stored = int(client.hlen(keys.entries))
    if stored != checked:
        after = client.hexists(keys.entries, str(last + 1))
        seq = last + 1 if after else last
        return {**report, **_broken(seq, "extra", f"{stored - checked} entries are not part of the chain",
                                    checked)}
    problem = check_indexes(client, expected, first, last)
    if problem is not None:
        seq, message, key = problem
        return {**report, **_broken(seq, "index", message, checked, index=key)}
    if is_cluster(origin) and latest:
        missing = unapplied(origin, latest)
        if missing is not None:
            seq, message = missing
            return {**report, **_broken(seq, "unapplied", message, checked)}
    return {**report, "checked": checked}


def unapplied(client: Any, latest: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    """The first device whose latest action entry is not the one its state records (Redis Cluster)."""
    devices = sorted(latest)
    pipe = client.pipeline(transaction=False)
    for device in devices:
        pipe.hget(f"{device_tag(device)}:review", "audit_seq")
    problems = []
    for device, applied in zip(devices, pipe.execute(), strict=True):
        seq, action = latest[device]
        if applied is None or int(applied) < seq:
            problems.append((seq, f"entry {seq} ({action} device {device}) is not in force on the device: "
                                  f"its state records entry {int(applied) if applied else 'none'}"))
    return min(problems) if problems else None


def check_indexes(client: redis.Redis, expected: dict[str, dict[int, float]], first: int,
                  last: int) -> tuple[int, str, str] | None:
    """The first index entry that disagrees with the chain: (seq, message, index key), or None.

    ``client`` is the trail's (:func:`riskservice.review.audit.trail`).
    Entries appended after the walk (seq > ``last``) and entries trimmed
    meanwhile (at or below the anchor read afterwards) are left out, so a
    busy trail does not report what is only a race with the check.
    """
    client, trail_keys = trail(client)
    keys = set(expected)
    keys.update(k.decode() if isinstance(k, bytes) else k
                for k in client.scan_iter(match=f"{trail_keys.prefix}:ix:*", count=1000))
    anchor = decode_hash(client.hgetall(trail_keys.anchor))
    low = max(first, int(anchor["seq"]) + 1 if anchor else 1)
    problems: list[tuple[int, str, str]] = []
    ordered = sorted(keys)
    replies: list[Any] = []
    for start in range(0, len(ordered), BATCH):
        pipe = client.pipeline(transaction=False)
        for key in ordered[start:start + BATCH]:
            pipe.zrange(key, 0, -1, withscores=True)
        replies += pipe.execute()
    for key, reply in zip(ordered, replies, strict=True):
        members = cast(list[tuple[bytes, float]], reply)
        stored = {int(m): s for m, s in members if m.isdigit()}
        foreign = [m.decode(errors="replace") for m, _ in members if not m.isdigit()]
        if foreign:
            problems.append((low, f"index {key} holds {foreign[0]!r}, which is not an entry number", key))
        want = expected.get(key, {})
        for seq in sorted(set(stored) | set(want)):
            if not low <= seq <= last:
                if seq > last or seq not in stored:
                    continue
                problems.append((seq, f"index {key} lists entry {seq}, which is not in the chain", key))
            elif seq not in stored:
                problems.append((seq, f"entry {seq} is missing from index {key}", key))
            elif seq not in want:
                problems.append((seq, f"index {key} lists entry {seq}, which does not belong there", key))
            elif stored[seq] != want[seq]:
                problems.append((seq, f"index {key} ranks entry {seq} by {stored[seq]:g}, not {want[seq]:g}",
                                 key))
    return min(problems) if problems else None
