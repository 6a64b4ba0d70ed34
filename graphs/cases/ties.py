"""What ties flagged nodes into one case: the links of the case graph.

Nodes are users ``0 .. n_users - 1`` and devices ``n_users .. n_users +
n_devices - 1``. Four kinds of tie, each a pair of arrays (one row per link):

- ``share``: a delivered share between two flagged users;
- ``device``: a flagged user sharing from a flagged device;
- ``lockstep``: two flagged users sharing the same coupon within the
  lockstep window of each other, on at least two coupons (one coincidence is
  organic; the same partner twice is not);
- ``sink``: a recipient who is not flagged itself but is fed by at least
  ``min_senders`` flagged users of one group that make at least half of its
  senders (the "same recipients" of a ring): it joins that group through
  those shares (:func:`pull_sinks`, once the groups are cut).

Everything is vectorised over the event and edge arrays; no Python loop
per edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from graphs.events.table import EventTable

__all__ = ["CaseTies", "case_ties", "pull_sinks"]

Ints = NDArray[np.int64]


@dataclass(frozen=True)
class CaseTies:
    """Links of the case graph between flagged nodes.

    ``share_edge`` holds indices into the table's edge arrays (flagged users
    on both ends); ``device_pairs`` is ``(device, user, event count)``;
    ``lockstep_pairs`` is ``(user, user)``.
    """

    share_edge: Ints
    device_pairs: tuple[Ints, Ints, Ints]
    lockstep_pairs: tuple[Ints, Ints]


def case_ties(t: EventTable, user_flag: NDArray[np.bool_], device_flag: NDArray[np.bool_], *,
              lockstep_window_s: float = 60.0) -> CaseTies:
    """The ties between flagged nodes of ``t`` (sinks come later: :func:`pull_sinks`).

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": "a", "device_id": "d", "coupon_id": "c", "ts": 0,
    ...                   "recipients": ["b"]}])
    >>> ties = case_ties(t, np.array([True, True]), np.array([True]))
    >>> ties.share_edge.tolist(), [p.tolist() for p in ties.device_pairs]
    ([0], [[0], [0], [1]])
    """
    inside = user_flag[t.edge_src] & user_flag[t.edge_dst]
    share_edge = np.flatnonzero(inside).astype(np.int64)
    return CaseTies(share_edge, _device_pairs(t, user_flag, device_flag),
                    _lockstep_pairs(t, user_flag, lockstep_window_s))


def pull_sinks(t: EventTable, user_flag: NDArray[np.bool_], label: Ints, min_senders: int = 3,
               senders: NDArray[np.int64] | None = None) -> tuple[Ints, Ints, Ints]:
    """Unflagged recipients that belong to one group: ``(sinks, their group, the edges that tie them)``.

    A recipient joins the group of its flagged senders when at least
    ``min_senders`` of them are in that one group and they make half of its
    senders or more. Deciding per group (after the groups are cut) keeps a
    recipient from bridging two unrelated groups. ``senders`` (distinct
    senders per user) is counted from the edges when not given.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": f"s{i}", "coupon_id": "c", "ts": 0, "recipients": ["sink"]}
    ...                  for i in range(3)])
    >>> flag = t.users != "sink"
    >>> sinks, groups, edges = pull_sinks(t, flag, np.where(flag, 0, 1))
    >>> t.users[sinks].tolist(), groups.tolist(), edges.tolist()
    (['sink'], [0], [0, 1, 2])
    """
    empty = np.zeros(0, np.int64)
    src, dst = t.edge_src.astype(np.int64), t.edge_dst.astype(np.int64)
    cand = np.flatnonzero(user_flag[src] & ~user_flag[dst])
    if cand.size == 0:
        return empty, empty, empty
    n = t.n_users
    if senders is None:
        senders = np.bincount(np.unique(dst * n + src) // n, minlength=n)
    # distinct flagged senders per (recipient, group): distinct (recipient, sender) pairs first,
    # as one integer key each (a 1-d unique is much faster than a unique over columns)
    pair = np.unique(dst[cand] * n + src[cand])
    r_all, s_all = pair // n, pair % n
    groups = int(label.max()) + 1
    keys, counts = np.unique(r_all * groups + label[s_all], return_counts=True)
    kr, kg = keys // groups, keys % groups
    # the best group of each recipient: sort by recipient, count descending
    order = np.lexsort((-counts, kr))
    kr, kg, counts = kr[order], kg[order], counts[order]
    first = np.unique(kr, return_index=True)[1]
    r, g, c = kr[first], kg[first], counts[first]
    ok = (c >= min_senders) & (2 * c >= senders[r])
    sinks, groups = r[ok], g[ok]
    group_of = np.full(n, -1, np.int64)
    group_of[sinks] = groups
    edges = cand[group_of[dst[cand]] == label[src[cand]]]
    return sinks, groups, edges.astype(np.int64)


def _device_pairs(t: EventTable, user_flag: NDArray[np.bool_],
                  device_flag: NDArray[np.bool_]) -> tuple[Ints, Ints, Ints]:
    ok = t.device >= 0
    dev = t.device[ok].astype(np.int64)
    usr = t.sharer[ok].astype(np.int64)
    keep = device_flag[dev] & user_flag[usr]
    keys, counts = np.unique(dev[keep] * t.n_users + usr[keep], return_counts=True)
    return keys // t.n_users, keys % t.n_users, counts.astype(np.int64)


def _lockstep_pairs(t: EventTable, user_flag: NDArray[np.bool_], window_s: float) -> tuple[Ints, Ints]:
    """Flagged users who shared one coupon within ``window_s`` of each other, on 2+ coupons.

    Consecutive events of a coupon (in time) are compared, which links every
    burst into a chain: enough for connected groups, at a cost linear in
    the events.
    """
    ev = np.flatnonzero(user_flag[t.sharer])
    if ev.size < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = ev[np.lexsort((t.ts[ev], t.coupon[ev]))]
    a, b = order[:-1], order[1:]
    close = (t.coupon[a] == t.coupon[b]) & (t.ts[b] - t.ts[a] <= window_s) & (t.sharer[a] != t.sharer[b])
    a, b = a[close], b[close]
    lo = np.minimum(t.sharer[a], t.sharer[b]).astype(np.int64)
    hi = np.maximum(t.sharer[a], t.sharer[b]).astype(np.int64)
    # One pair counts once per coupon; two coupons make it a tie.
    per_coupon = np.unique(np.stack([lo, hi, t.coupon[a].astype(np.int64)]), axis=1)
    pairs, counts = np.unique(per_coupon[:2], axis=1, return_counts=True)
    strong = counts >= 2
    return pairs[0][strong], pairs[1][strong]
