"""Harder planted fraud for the ``hard`` profile of :mod:`graphs.workload.simulate`.

Each kind is the evasive cousin of a kind in :mod:`graphs.workload.fraud`,
and every instance draws its own shape (sizes, rates, spreads, camouflage)
from ranges, so no detector can fit one fixed shape:

- ``slow_farm``: device farms that add only a few accounts a day, each
  account sharing a little for a day or a few and then going quiet;
- ``ring``: a reward ring whose sharers rotate three devices each (a device
  pool shared by the ring), send about half their shares to real users and
  whose sinks claim;
- ``hoarder`` and ``feeder``: coupon hoarders who never share, fed by fresh
  accounts that each share a few times to a hoarder and to a real user;
- ``slow_lockstep``: lockstep groups whose bursts spread over up to ten
  minutes instead of one;
- ``threshold_star`` (and its ``sink`` pool): sprayers whose share success
  rate stays just under the online rule's 15 % threshold.
"""

from __future__ import annotations

import numpy as np

from graphs.workload.fraud import coupons_at, emit, label, live_coupons, organic_targets
from graphs.workload.world import DAY, HOUR, World

__all__ = ["HARD_PLANTERS", "plant_hoarders", "plant_rotating_ring", "plant_slow_farms",
           "plant_slow_lockstep", "plant_threshold_stars"]

Kinds = dict[str, dict[int, str]]


def _count(world: World, scale: float, per: float) -> int:
    """How many instances of a kind: about ``scale / per``, at least one."""
    return max(1, round(scale / per * world.rng.uniform(0.6, 1.4)))


def plant_slow_farms(world: World, kinds: Kinds, scale: float) -> None:
    """Farms adding a few accounts a day; each account shares for a day or a few."""
    rng = world.rng
    for _ in range(_count(world, scale, 2)):
        devs = world.new_devices(int(rng.integers(1, 4)))
        accts = world.new_users(int(rng.integers(6, 16)) * devs.size, claim_p=rng.uniform(0.02, 0.15))
        per_day = rng.uniform(1, 4)
        start = world.t0 + rng.uniform(0, 0.4) * world.horizon + np.cumsum(rng.exponential(DAY / per_day, accts.size))
        life = rng.uniform(0.3, 4, accts.size) * DAY
        per = rng.integers(2, 9, accts.size)
        a = np.repeat(np.arange(accts.size), per)
        m = a.size
        ts = start[a] + rng.random(m) * life[a]
        k = rng.integers(1, 5, m)
        ring = rng.random(int(k.sum())) < rng.uniform(0.1, 0.6)
        rec = np.where(ring, rng.choice(accts, int(k.sum())), organic_targets(world, k))
        emit(world, accts[a], devs[rng.integers(0, devs.size, m)], coupons_at(world, ts), ts, k, rec,
             claim_scale=rng.uniform(0.2, 1.0), p_challenge=rng.uniform(0.0, 0.1))
        label(kinds, accts, devs, "slow_farm")


def plant_rotating_ring(world: World, kinds: Kinds, scale: float) -> None:
    """A dense ring rotating three devices per sharer, half its shares camouflage, sinks claiming."""
    rng = world.rng
    for _ in range(_count(world, scale, 8)):
        g = int(rng.integers(8, 20))
        sharers = world.new_users(g, claim_p=0.5)
        pool = world.new_devices(max(3, int(g * rng.uniform(0.8, 1.5))))
        own = np.stack([rng.choice(pool, 3, replace=False) for _ in range(g)])
        if rng.random() < 0.3:
            targets = sharers
        else:
            targets = world.new_users(int(rng.integers(10, 40)), claim_p=rng.uniform(0.5, 0.95))
        hit = rng.random((g, targets.size)) < rng.uniform(0.3, 0.7)
        s_idx, t_idx = np.nonzero(hit)
        keep = sharers[s_idx] != targets[t_idx]
        s_idx, t_idx = s_idx[keep], t_idx[keep]
        # each ring edge is a share of one to three recipients of the same sharer
        order = np.lexsort((rng.random(s_idx.size), s_idx))
        s_idx, t_idx = s_idx[order], t_idx[order]
        chunk = int(rng.integers(1, 4))
        rank = np.arange(s_idx.size) - np.searchsorted(s_idx, s_idx)
        uniq, ev_of = np.unique(s_idx * 10_000 + rank // chunk, return_inverse=True)
        ev_s = uniq // 10_000
        m = uniq.size
        span = rng.uniform(3, 25) * DAY
        start = world.t0 + rng.uniform(0, world.horizon - span)
        ts = start + rng.random(m) * span
        emit(world, sharers[ev_s], own[ev_s, rng.integers(0, 3, m)], coupons_at(world, ts), ts,
             np.bincount(ev_of, minlength=m), targets[t_idx])
        # camouflage: about as many shares again to real users
        mc = int(m * rng.uniform(0.8, 1.3))
        cs = rng.integers(0, g, mc)
        k = rng.integers(1, 4, mc)
        ts = start + rng.random(mc) * span
        emit(world, sharers[cs], own[cs, rng.integers(0, 3, mc)], coupons_at(world, ts), ts,
             k, organic_targets(world, k))
        label(kinds, np.union1d(sharers, targets), pool, "ring")


def plant_hoarders(world: World, kinds: Kinds, scale: float) -> None:
    """Hoarders who never share, each fed by fresh accounts sharing to it and to a real user."""
    rng = world.rng
    for _ in range(_count(world, scale, 1.5)):
        hoarders = world.new_users(int(rng.integers(1, 4)), claim_p=rng.uniform(0.85, 1.0))
        feeders = world.new_users(int(rng.integers(8, 30)) * hoarders.size, claim_p=0.3)
        # feeders mostly bring their own (fresh) phones; some share one
        devs = world.new_devices(max(1, int(feeders.size * rng.uniform(0.5, 1.0))))
        dev_of = devs[rng.integers(0, devs.size, feeders.size)]
        per = rng.integers(1, 5, feeders.size)
        f = np.repeat(np.arange(feeders.size), per)
        m = f.size
        t_feeder = world.t0 + rng.random(feeders.size) * world.horizon * 0.9
        ts = t_feeder[f] + rng.exponential(rng.uniform(1, 12) * HOUR, m)
        target = hoarders[rng.integers(0, hoarders.size, feeders.size)][f]
        real = organic_targets(world, np.ones(m, np.int64))
        if rng.random() < 0.5:  # one share naming both
            k = np.full(m, 2)
            rec = np.stack([target, real], axis=1).ravel()
            emit(world, feeders[f], dev_of[f], coupons_at(world, ts), ts, k, rec)
        else:  # two chats
            c = coupons_at(world, ts)
            emit(world, np.concatenate([feeders[f], feeders[f]]), np.concatenate([dev_of[f], dev_of[f]]),
                 np.concatenate([c, c]), np.concatenate([ts, ts + rng.uniform(5, 600, m)]),
                 np.ones(2 * m, np.int64), np.concatenate([target, real]))
        label(kinds, hoarders, np.zeros(0), "hoarder")
        label(kinds, feeders, devs, "feeder")


def plant_slow_lockstep(world: World, kinds: Kinds, scale: float) -> None:
    """Lockstep groups whose bursts on a coupon spread over up to ten minutes."""
    rng = world.rng
    for _ in range(_count(world, scale, 8)):
        g = int(rng.integers(8, 25))
        accts = world.new_users(g, claim_p=0.2)
        devs = world.new_devices(g)
        episodes = int(rng.integers(3, 8))
        member = rng.random((episodes, g)) < rng.uniform(0.6, 0.9)
        e_idx, a_idx = np.nonzero(member)
        c, start = live_coupons(world, episodes, spread=3 * HOUR)
        m = e_idx.size
        spread = rng.uniform(120, 600)
        k = rng.integers(1, 5, m)
        emit(world, accts[a_idx], devs[a_idx], c[e_idx], start[e_idx] + rng.uniform(0, spread, m),
             k, organic_targets(world, k), claim_scale=rng.uniform(0.3, 1.0))
        mc = int(g * rng.uniform(1, 6))
        cs = rng.integers(0, g, mc)
        k = rng.integers(1, 4, mc)
        emit(world, accts[cs], devs[cs], *live_coupons(world, mc), k, organic_targets(world, k))
        label(kinds, accts, devs, "slow_lockstep")


def plant_threshold_stars(world: World, kinds: Kinds, scale: float) -> None:
    """Sprayers whose shares succeed (a claim or more) just under 15 % of the time."""
    rng = world.rng
    for _ in range(_count(world, scale, 1.5)):
        sprayer = world.new_users(1)
        dev = world.new_devices(1)
        sinks = world.new_users(int(rng.integers(20, 80)), claim_p=0.0)
        m = int(rng.integers(25, 80))
        k = rng.integers(3, 11, m)
        fake = rng.random(int(k.sum())) < rng.uniform(0.5, 0.9)
        rec = np.where(fake, rng.choice(sinks, int(k.sum())), organic_targets(world, k))
        # exactly this share of shares succeeds: the sprayer watches its own rate
        success = np.zeros(m, bool)
        success[rng.choice(m, int(m * rng.uniform(0.09, 0.145)), replace=False)] = True
        claims = np.where(success, rng.integers(1, 3, m), 0)
        span = rng.uniform(2, 20) * DAY
        ts = world.t0 + rng.uniform(0, world.horizon - span) + rng.random(m) * span
        world.shares.add(np.full(m, sprayer[0]), np.full(m, dev[0]), coupons_at(world, ts), ts,
                         k, rec, np.minimum(claims, k))
        label(kinds, sprayer, dev, "threshold_star")
        label(kinds, sinks, np.zeros(0), "sink")


HARD_PLANTERS = (plant_slow_farms, plant_rotating_ring, plant_hoarders, plant_slow_lockstep,
                 plant_threshold_stars)
