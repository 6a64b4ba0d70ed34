"""Organic coupon cascades for :mod:`graphs.workload.simulate`.

Each coupon is seeded by a few users soon after it is issued; every share
goes to one friend (chat), a small group (at most 10 listed recipients, the
online fan-out limit), or a timeline post (recipient count only).  A
recipient claims with their own probability and reshares with a probability
that grows with their activity, after an exponential delay of a couple of
hours, so a coupon's shares are front-loaded and die out within days.  The
mean branching factor is set below one from the seed, which gives the heavy
tail of cascade sizes real coupons show.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from graphs.features.cascade import subtree_sums
from graphs.workload.world import HOUR, World, pick_neighbours

__all__ = ["device_for", "organic_cascades"]


def device_for(world: World, users: NDArray[np.int64], second: NDArray[np.int64]) -> NDArray[np.int64]:
    """Each event's device: the user's own, sometimes their second one."""
    dev = world.user_device[users]
    alt = second[users]
    use_alt = (alt >= 0) & (world.rng.random(users.size) < 0.3)
    return np.where(use_alt, alt, dev)


def organic_cascades(world: World) -> NDArray[np.float64]:
    """Append organic shares to ``world.shares``; return true secondary propagation per user.

    Examples
    --------
    >>> from graphs.workload.world import make_world
    >>> w = make_world(300, np.random.default_rng(1))
    >>> sec = organic_cascades(w)
    >>> sec.shape == (300,) and bool(sec.max() > 0)
    True
    """
    rng = world.rng
    n = world.n_users
    deg = np.diff(world.indptr).astype(np.float64)
    beta = rng.uniform(0.2, 0.6)
    activity = np.exp(rng.normal(0, 0.8, n)) * (np.maximum(deg, 1) / max(deg.mean(), 1)) ** beta
    p_chan = np.array([0.5, 0.38, 0.12]) + rng.uniform(-0.08, 0.08, 3)
    p_chan /= p_chan.sum()
    group_mean = rng.uniform(2.0, 6.0)
    exp_k = p_chan[0] + p_chan[1] * np.minimum(deg, 2 + group_mean)
    r_target = rng.uniform(0.55, 0.85)
    base_q = r_target / (np.sum(deg * activity * exp_k) / max(deg.sum(), 1))
    reshare_p = np.minimum(0.95, base_q * activity)
    second = np.where(rng.random(n) < 0.1, world.new_devices(n)[:n], -1)  # tablets etc.

    n_coupons = max(5, int(n / rng.uniform(15, 40)))
    coupons = world.new_coupons(n_coupons)
    issued = world.t0 + rng.random(n_coupons) * (world.horizon - 4 * 24 * HOUR)
    world.coupon_t[coupons] = issued  # new_coupons drew placeholders; these are the issue times
    tau = rng.uniform(2.0, 4.0) * HOUR * np.exp(rng.normal(0, 0.25, n_coupons))
    n_seed = np.minimum(1 + rng.poisson(rng.lognormal(0.7, 1.0, n_coupons)), max(2, n // 20))
    seed_c = np.repeat(np.arange(n_coupons), n_seed)
    seed_u = rng.choice(n, seed_c.size, p=activity / activity.sum())
    key = np.unique(seed_c * n + seed_u)
    cur_c, cur_u = key // n, key % n
    cur_t = issued[cur_c] + rng.exponential(HOUR, cur_c.size)
    cur_parent = np.full(cur_c.size, -1, dtype=np.int64)

    seen: NDArray[np.int64] = key.copy()
    parents: list[NDArray[np.int64]] = []
    pair_claims: list[NDArray[np.float64]] = []
    pair_shares: list[NDArray[np.float64]] = []
    pair_user: list[NDArray[np.int64]] = []
    n_pairs = 0
    end = world.t0 + world.horizon
    while cur_c.size:
        pid = np.arange(n_pairs, n_pairs + cur_c.size)
        n_pairs += cur_c.size
        # a few users share the same coupon a second time, to another chat
        rep = rng.random(cur_c.size) < 0.08
        ev_pair = np.concatenate([pid, pid[rep]])
        ev_u = np.concatenate([cur_u, cur_u[rep]])
        ev_c = np.concatenate([cur_c, cur_c[rep]])
        ev_t = np.concatenate([cur_t, cur_t[rep] + rng.exponential(tau[cur_c[rep]])])
        m = ev_u.size
        chan = rng.choice(3, m, p=p_chan)
        k = np.where(chan == 0, 1, np.minimum(10, 2 + rng.poisson(group_mean, m)))
        k = np.where(chan == 2, 0, k)
        owner, friend = pick_neighbours(world, ev_u, k)
        decision = rng.choice(3, m, p=[0.985, 0.011, 0.004])
        got = rng.random(friend.size) < world.claim_p[friend]
        delivered = decision[owner] == 0
        claims = np.bincount(owner, weights=got & delivered, minlength=m)
        post = chan == 2
        n_rec = np.bincount(owner, minlength=m)
        n_rec[post] = np.minimum(deg[ev_u[post]], 5 + rng.poisson(20, int(post.sum()))).astype(np.int64)
        claims[post] = rng.binomial(n_rec[post], 0.3 * world.claim_p[ev_u[post]])
        claims[decision != 0] = 0
        world.shares.add(ev_u, device_for(world, ev_u, second), coupons[ev_c], ev_t,
                         n_rec, friend, claims, decision=decision, listed=~post)
        pair_user.append(cur_u)
        pair_shares.append(np.bincount(ev_pair - pid[0], minlength=cur_c.size).astype(np.float64))
        pair_claims.append(np.bincount(ev_pair - pid[0], weights=claims, minlength=cur_c.size).astype(np.float64))
        parents.append(cur_parent)

        # recipients who reshare: one new pair per (coupon, user) ever
        go = delivered & (rng.random(friend.size) < reshare_p[friend])
        nk = ev_c[owner[go]] * n + friend[go]
        src_ev = owner[go]
        perm = rng.permutation(nk.size)
        nk, src_ev = nk[perm], src_ev[perm]
        nk, first = np.unique(nk, return_index=True)
        src_ev = src_ev[first]
        fresh = ~np.isin(nk, seen)
        nk, src_ev = nk[fresh], src_ev[fresh]
        seen = np.union1d(seen, nk)
        cur_c, cur_u = nk // n, nk % n
        cur_t = ev_t[src_ev] + rng.exponential(tau[cur_c])
        cur_parent = ev_pair[src_ev]
        live = cur_t < end
        cur_c, cur_u, cur_t, cur_parent = cur_c[live], cur_u[live], cur_t[live], cur_parent[live]

    parent = np.concatenate(parents) if parents else np.zeros(0, np.int64)
    shares = np.concatenate(pair_shares) if parents else np.zeros(0)
    claims_all = np.concatenate(pair_claims) if parents else np.zeros(0)
    users = np.concatenate(pair_user) if parents else np.zeros(0, np.int64)
    desc = (subtree_sums(parent, shares) - shares) + (subtree_sums(parent, claims_all) - claims_all)
    return np.bincount(users, weights=desc, minlength=n).astype(np.float64)
