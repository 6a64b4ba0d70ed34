"""Stable case ids: a new write-back's groups matched to the cases already stored.

A group keeps the id of the stored case it overlaps most, when their
Jaccard similarity (shared members / all members of either) is at least
:data:`JACCARD`; each stored case goes to one group at most, best overlaps
first. A group that matches a *resolved* case keeps its id (and stays
resolved) only if it has no member the resolution did not cover; with a new
member it becomes a new open case that names the resolved one in
``previous_case``, so an analyst's decision is never extended to accounts
they did not see.

Pure Python over member keys (``"user:<id>"``, ``"device:<id>"``): the
batch writer calls it, never the request path.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["JACCARD", "assign_ids", "member_keys", "members_digest"]

JACCARD = 0.5


def member_keys(members: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """The members of a case as ``kind:node`` keys.

    >>> sorted(member_keys([{"node": "a", "kind": "user"}, {"node": "a", "kind": "device"}]))
    ['device:a', 'user:a']
    """
    return frozenset(f"{m['kind']}:{m['node']}" for m in members)


def members_digest(members: Sequence[Mapping[str, Any]]) -> str:
    """A short digest of a member set (order does not matter): what an analyst who loaded a case
    too large to send back whole returns instead of the list.

    >>> members_digest([{"node": "a", "kind": "user"}]) == members_digest([{"kind": "user", "node": "a"}])
    True
    >>> len(members_digest([]))
    16
    """
    text = "\n".join(sorted(member_keys(members)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def assign_ids(groups: Sequence[Mapping[str, Any]], stored: Mapping[str, frozenset[str]],
               resolved: Mapping[str, frozenset[str]], new_id: Callable[[], str],
               threshold: float = JACCARD) -> list[tuple[str, str | None]]:
    """``(case_id, previous_case)`` for each group, in the groups' order.

    ``stored`` maps the ids of the current version's cases to their members;
    ``resolved`` maps resolved case ids to the members their resolution
    covered. ``previous_case`` is set when a group overlaps a resolved case
    but has new members.

    Examples
    --------
    >>> ids = iter(["c9"])
    >>> stored = {"c1": frozenset({"user:a", "user:b", "user:c"})}
    >>> groups = [{"members": [{"kind": "user", "node": n} for n in "abd"]},
    ...           {"members": [{"kind": "user", "node": n} for n in "xy"]}]
    >>> assign_ids(groups, stored, {}, lambda: next(ids))
    [('c1', None), ('c9', None)]
    """
    keys = [member_keys(g["members"]) for g in groups]
    holders: dict[str, list[str]] = defaultdict(list)
    for case_id, members in stored.items():
        for m in members:
            holders[m].append(case_id)
    candidates: list[tuple[float, int, str]] = []
    for i, mine in enumerate(keys):
        shared: dict[str, int] = defaultdict(int)
        for m in mine:
            for case_id in holders.get(m, ()):
                shared[case_id] += 1
        for case_id, n in shared.items():
            jaccard = n / (len(mine) + len(stored[case_id]) - n)
            if jaccard >= threshold:
                candidates.append((jaccard, i, case_id))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen: dict[int, str] = {}
    taken: set[str] = set()
    for _, i, case_id in candidates:
        if i not in chosen and case_id not in taken:
            chosen[i] = case_id
            taken.add(case_id)
    out: list[tuple[str, str | None]] = []
    for i, mine in enumerate(keys):
        match = chosen.get(i)
        if match is None:
            out.append((new_id(), None))
        elif match in resolved and not mine <= resolved[match]:
            out.append((new_id(), match))
        else:
            out.append((match, None))
    return out
