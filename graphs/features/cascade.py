"""Coupon cascades and realised secondary propagation.

A cascade node is a *(coupon, sharer)* pair: everything one user did with
one coupon.  Its parent is the sharer of the earliest delivery of that coupon
to the user, provided that delivery came before the user's first share of it
(otherwise the user found the coupon on their own and starts a cascade).
Because a parent's first share always precedes its child's, the pairs form a
forest, and each user appears at most once per coupon, so summing over a
user's pairs never counts a descendant twice.

Everything is sorted arrays and ``searchsorted``; the only loop runs over
cascade depth levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from graphs.events.table import ALLOW, EventTable
from graphs.signals.ops import group_starts, lookup

__all__ = ["Cascades", "Propagation", "propagation_by_user", "reconstruct_cascades", "subtree_sums"]

Vec = NDArray[np.float64]


@dataclass(frozen=True)
class Cascades:
    """Arrays over (coupon, sharer) pairs: ``user``, ``coupon``, ``first_ts``,
    ``shares`` (allowed share events), ``claims`` (sum of ``claimed``),
    ``parent`` (pair index or -1), ``desc_shares`` and ``desc_claims`` (over
    proper descendants)."""

    user: NDArray[np.int64]
    coupon: NDArray[np.int64]
    first_ts: Vec
    shares: Vec
    claims: Vec
    parent: NDArray[np.int64]
    desc_shares: Vec
    desc_claims: Vec


@dataclass(frozen=True)
class Propagation:
    """Per-user realised secondary propagation, summed over coupons.

    ``secondary`` is ``desc_shares + desc_claims`` (what the KOL benchmark
    uses); ``cascades`` counts coupons in which the user has a descendant.
    """

    desc_shares: Vec
    desc_claims: Vec
    secondary: Vec
    direct_claims: Vec
    cascades: Vec


def subtree_sums(parent: NDArray[np.int64], values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sum of ``values`` over each node's subtree (itself included) in a forest.

    ``parent[i]`` is the parent index of node ``i`` or -1 for a root.

    Examples
    --------
    >>> subtree_sums(np.array([-1, 0, 0, 1]), np.ones(4)).tolist()
    [4.0, 2.0, 1.0, 1.0]
    """
    n = parent.size
    depth = np.zeros(n, dtype=np.int64)
    cur = parent.copy()
    alive = np.flatnonzero(cur >= 0)
    while alive.size:  # one round per level; depth of real cascades is small
        depth[alive] += 1
        cur[alive] = parent[cur[alive]]
        alive = alive[cur[alive] >= 0]
    total = np.asarray(values, dtype=np.float64).copy()
    order = np.argsort(-depth, kind="stable")
    d_sorted = depth[order]
    starts = group_starts(d_sorted)
    ends = np.append(starts[1:], n) if starts.size else starts
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):  # deepest level first
        if d_sorted[a] == 0:
            break
        idx = order[a:b]
        total += np.bincount(parent[idx], weights=total[idx], minlength=n)
    return total


def reconstruct_cascades(t: EventTable) -> Cascades:
    """Rebuild every coupon's cascade from the events.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([
    ...     {"user_id": "a", "coupon_id": "c", "ts": 0, "recipients": ["b"], "claimed": 1},
    ...     {"user_id": "b", "coupon_id": "c", "ts": 5, "recipients": ["x"], "claimed": 1}])
    >>> cas = reconstruct_cascades(t)
    >>> cas.parent.tolist(), cas.desc_shares.tolist(), cas.desc_claims.tolist()
    ([-1, 0], [1.0, 0.0], [1.0, 0.0])
    """
    n_users = max(t.n_users, 1)
    ev = np.flatnonzero(t.decision == ALLOW)
    key = t.coupon[ev].astype(np.int64) * n_users + t.sharer[ev]
    order = np.lexsort((t.ts[ev], key))
    ev, key = ev[order], key[order]
    starts = group_starts(key)
    pair_key = key[starts]
    first_ts = t.ts[ev][starts] if ev.size else np.zeros(0)
    shares = np.diff(np.append(starts, ev.size)).astype(np.float64)
    claimed = np.maximum(t.claimed[ev], 0).astype(np.float64)
    claims = np.add.reduceat(claimed, starts) if ev.size else np.zeros(0)

    # earliest delivery of each coupon to each recipient
    e_ev = t.edge_event
    r_key = t.coupon[e_ev].astype(np.int64) * n_users + t.edge_dst
    r_order = np.lexsort((t.ts[e_ev], r_key))
    r_key_s = r_key[r_order]
    r_first = r_order[group_starts(r_key_s)]
    rec_key = r_key[r_first]
    rec_ts = t.ts[e_ev[r_first]]
    rec_src = t.edge_src[r_first].astype(np.int64)

    hit = lookup(rec_key, pair_key)
    parent = np.full(pair_key.size, -1, dtype=np.int64)
    ok = hit >= 0
    ok[ok] = rec_ts[hit[ok]] < first_ts[ok]
    coupon_of = pair_key // n_users
    parent[ok] = lookup(pair_key, coupon_of[ok] * n_users + rec_src[hit[ok]])
    desc_shares = subtree_sums(parent, shares) - shares
    desc_claims = subtree_sums(parent, claims) - claims
    return Cascades(user=(pair_key % n_users).astype(np.int64), coupon=coupon_of, first_ts=first_ts,
                    shares=shares, claims=claims, parent=parent, desc_shares=desc_shares,
                    desc_claims=desc_claims)


def propagation_by_user(t: EventTable, cascades: Cascades | None = None) -> Propagation:
    """Per-user realised secondary propagation (:class:`Propagation`), summed over coupons.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([
    ...     {"user_id": "a", "coupon_id": "c", "ts": 0, "recipients": ["b"], "claimed": 1},
    ...     {"user_id": "b", "coupon_id": "c", "ts": 5, "recipients": ["x"], "claimed": 1}])
    >>> propagation_by_user(t).secondary.tolist()
    [2.0, 0.0, 0.0]
    """
    cas = cascades if cascades is not None else reconstruct_cascades(t)
    n = t.n_users
    u = cas.user

    def per_user(w: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.bincount(u, weights=w, minlength=n).astype(np.float64)

    ds, dc = per_user(cas.desc_shares), per_user(cas.desc_claims)
    return Propagation(desc_shares=ds, desc_claims=dc, secondary=ds + dc, direct_claims=per_user(cas.claims),
                       cascades=per_user((cas.desc_shares > 0).astype(np.float64)))
