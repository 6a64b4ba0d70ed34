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
- ``extra``: entries exist outside the chain (appended behind the head's back).

What it cannot see: someone able to rewrite the whole chain and its head
consistently. Publishing the head hash elsewhere from time to time (it is in
every verify report) closes that gap.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
import redis

from riskservice.review.audit import ANCHOR, ENTRIES, GENESIS, HEAD, entry_hash
from riskservice.review.common import decode_hash

BATCH = 500


def _broken(seq: int, problem: str, message: str, checked: int, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "checked": checked, "broken": {"seq": seq, "problem": problem, "message": message, **extra}}


def verify(client: redis.Redis) -> dict[str, Any]:
    """Check the whole chain; ``{"ok", "checked", "first_seq", "last_seq", "head_hash", "anchor", "broken"}``."""
    head = decode_hash(client.hgetall(HEAD))
    anchor = decode_hash(client.hgetall(ANCHOR))
    first = int(anchor["seq"]) + 1 if anchor else 1
    prev = anchor["hash"] if anchor else GENESIS
    last = int(head["seq"]) if head else first - 1
    report: dict[str, Any] = {"ok": True, "checked": 0, "first_seq": first if last >= first else None,
                              "last_seq": last if last >= first else None, "head_hash": head.get("hash"),
                              "anchor": {"seq": int(anchor["seq"]), "hash": anchor["hash"]} if anchor else None,
                              "broken": None}
    checked = 0
    for start in range(first, last + 1, BATCH):
        seqs = list(range(start, min(start + BATCH, last + 1)))
        raws = cast(list[bytes | None], client.hmget(ENTRIES, [str(s) for s in seqs]))
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
    if head and head["hash"] != prev:
        return {**report, **_broken(last, "head", "the head does not match the last entry", checked)}
    stored = int(client.hlen(ENTRIES))
    if stored != checked:
        after = client.hexists(ENTRIES, str(last + 1))
        seq = last + 1 if after else last
        return {**report, **_broken(seq, "extra", f"{stored - checked} entries are not part of the chain",
                                    checked)}
    return {**report, "checked": checked}
