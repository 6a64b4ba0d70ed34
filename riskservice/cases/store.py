"""Cases in Redis: written with each graph-score version, resolved by analysts across versions.

Per write-back version ``N`` (written before the version is made current, so
a rollback of the scores rolls the cases back with them):

- ``risk:{cases}:vN:cards``: hash ``case_id`` -> the case as listed
  (``case_id``, ``kind``, ``score``, ``summary``, ``members``,
  ``members_digest``, ``stats``, ``version``, ``opened_version``,
  ``previous_case``);
- ``risk:{cases}:vN:detail``: hash ``case_id`` -> ``{"evidence", "subgraph"}``;
- ``risk:{cases}:vN:order``: sorted set ``case_id`` -> score (worst first).

Kept across versions (what analysts did):

- ``risk:{cases}:state``: hash ``case_id`` -> the resolution (action, label,
  reason, actor, time, audit entry) and the card as it was resolved;
- ``risk:{cases}:resolved``: sorted set ``case_id`` -> resolution time;
- ``risk:{cases}:sequence``: the counter new case ids are drawn from.

Every key carries the ``{cases}`` hash tag (one slot on a cluster).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import orjson
import redis

from riskservice.cases.match import assign_ids, member_keys, members_digest
from riskservice.limits.keys import case_key

__all__ = ["RESOLVED", "STATE", "VERSION_PARTS", "card", "detail", "list_open", "list_resolved", "state",
           "version_keys", "write_cases"]

VERSION_PARTS = ("cards", "detail", "order")
STATE, RESOLVED, SEQUENCE = case_key("state"), case_key("resolved"), case_key("sequence")
BATCH = 500


def version_keys(version: int) -> list[str]:
    """The keys of one version's cases (deleted with the version's scores)."""
    return [case_key(part, version) for part in VERSION_PARTS]


def _loads_all(raw: Mapping[bytes, bytes]) -> dict[str, dict[str, Any]]:
    return {k.decode(): orjson.loads(v) for k, v in raw.items()}


def write_cases(client: redis.Redis, version: int, cases: Sequence[Mapping[str, Any]],
                current: int | None) -> int:
    """Store ``cases`` (from ``graphs.cases``, without ids) as the cases of ``version``; returns how many.

    Ids come from the cases of the ``current`` version (:mod:`riskservice.cases.match`);
    the new version's keys are written whole before it is made current.
    """
    stored = _loads_all(cast(dict[bytes, bytes], client.hgetall(case_key("cards", current)))) if current else {}
    states = state_many(client, stored)  # one HMGET: which of them analysts resolved
    resolved = {cid: member_keys(s["card"]["members"]) for cid, s in states.items() if s}
    first = int(client.incrby(SEQUENCE, len(cases))) - len(cases) if cases else 0
    counter = iter(range(first + 1, first + len(cases) + 1))
    ids = assign_ids(cases, {cid: member_keys(c["members"]) for cid, c in stored.items()}, resolved,
                     lambda: f"c{next(counter)}")
    for start in range(0, len(cases), BATCH):
        pipe = client.pipeline(transaction=False)
        cards, details, order = {}, {}, {}
        for case, (case_id, previous) in zip(cases[start:start + BATCH], ids[start:start + BATCH], strict=True):
            before = stored.get(case_id)
            cards[case_id] = orjson.dumps({
                "case_id": case_id, "kind": case["kind"], "score": case["score"], "summary": case["summary"],
                "members": case["members"], "members_digest": members_digest(case["members"]),
                "stats": case.get("stats", {}), "version": version,
                "opened_version": before["opened_version"] if before else version, "previous_case": previous})
            details[case_id] = orjson.dumps({"evidence": case.get("evidence", {"edges": [], "total": 0,
                                                                                 "truncated": False}),
                                             "subgraph": case.get("subgraph", {"nodes": [], "edges": [],
                                                                               "truncated": False})})
            order[case_id] = case["score"]
        pipe.hset(case_key("cards", version), mapping=cards)  # type: ignore[arg-type]
        pipe.hset(case_key("detail", version), mapping=details)  # type: ignore[arg-type]
        pipe.zadd(case_key("order", version), order)
        pipe.execute()
    return len(cases)


def card(client: Any, version: int | None, case_id: str) -> dict[str, Any] | None:
    """The case ``case_id`` as the ``version`` lists it (None: not in that version)."""
    if version is None:
        return None
    raw = client.hget(case_key("cards", version), case_id)
    return orjson.loads(raw) if raw else None


def detail(client: redis.Redis, version: int, case_id: str) -> dict[str, Any] | None:
    raw = client.hget(case_key("detail", version), case_id)
    return orjson.loads(cast(bytes, raw)) if raw else None


def state(client: Any, case_id: str) -> dict[str, Any] | None:
    """The resolution of a case (None: open)."""
    raw = client.hget(STATE, case_id)
    return orjson.loads(raw) if raw else None


def state_many(client: redis.Redis, case_ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    ids = list(case_ids)
    if not ids:
        return {}
    raws = cast(list[bytes | None], client.hmget(STATE, ids))
    return {cid: (orjson.loads(r) if r else None) for cid, r in zip(ids, raws, strict=True)}


def _walk(client: redis.Redis, key: str, after: tuple[float, str] | None,
          chunk: int) -> Iterator[list[tuple[str, float]]]:
    """Chunks of ``(member, score)`` of a sorted set, highest first (ties: member descending),
    strictly after the cursor ``after``."""
    top, offset = ("+inf", 0) if after is None else (repr(float(after[0])), 0)
    while True:
        got = cast(list[tuple[bytes, float]], client.zrevrangebyscore(key, top, "-inf", start=offset, num=chunk,
                                                                      withscores=True))
        offset += len(got)
        # Equal scores come member-descending: skip the cursor and the ones before it.
        yield [(m.decode(), s) for m, s in got
               if after is None or s != after[0] or m.decode() < after[1]]
        if len(got) < chunk:
            return


def list_open(client: redis.Redis, version: int | None, limit: int,
              after: tuple[float, str] | None) -> tuple[list[dict[str, Any]], tuple[float, str] | None]:
    """Open cases of ``version``, worst first (score, then id descending), after the cursor ``after``.

    Resolved cases are skipped; the sorted set is read in chunks so a page
    costs a few round trips whatever the number of cases.
    """
    if version is None:
        return [], None
    picked: list[tuple[str, float]] = []
    for ids in _walk(client, case_key("order", version), after, max(2 * limit, 50)):
        if not ids:
            continue
        resolved = cast(list[bytes | None], client.hmget(STATE, [c for c, _ in ids]))
        picked += [(c, s) for (c, s), r in zip(ids, resolved, strict=True) if r is None]
        if len(picked) > limit:
            break
    more = len(picked) > limit  # one more than the page: there is a next page
    picked = picked[:limit]
    if not picked:
        return [], None
    raws = cast(list[bytes | None], client.hmget(case_key("cards", version), [c for c, _ in picked]))
    page = [{**orjson.loads(r), "status": "open"} for r in raws if r is not None]
    return page, ((picked[-1][1], picked[-1][0]) if more else None)


def list_resolved(client: redis.Redis, limit: int,
                  after: tuple[float, str] | None) -> tuple[list[dict[str, Any]], tuple[float, str] | None]:
    """Resolved cases, newest resolution first, each as it was when resolved."""
    picked: list[tuple[str, float]] = []
    for ids in _walk(client, RESOLVED, after, limit + 1):
        picked += ids
        if len(picked) > limit:
            break
    more = len(picked) > limit
    picked = picked[:limit]
    states = state_many(client, [c for c, _ in picked])
    page = [{**s["card"], "status": "resolved", "resolution": s["resolution"]}
            for c, _ in picked if (s := states[c])]
    return page, ((picked[-1][1], picked[-1][0]) if more else None)
