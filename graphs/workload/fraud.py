"""Planted fraud for :mod:`graphs.workload.simulate`: one function per kind.

Kinds (the ``fraud_kind`` of the truth file): ``farm`` (many accounts and
their devices), ``star`` (sprayers) and ``sink`` (their fake recipients),
``dense`` (a group of sharers repeatedly hitting one group of targets, each
sharer camouflaged by as many normal-looking shares), ``lockstep`` (accounts
sharing the same coupon within the same minute, again and again), ``burst``
(accounts pushing a coupon at a steady, non-decaying rate for days) and
``low_claim`` (real users spamming friends who never claim).  Sizes, rates
and counts are drawn per seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from graphs.workload.world import HOUR, World, pick_neighbours

__all__ = ["DEFAULT_PLANTERS", "Planter", "coupons_at", "emit", "label", "live_coupons", "organic_targets",
           "plant_bursts", "plant_dense", "plant_farms", "plant_fraud", "plant_lockstep", "plant_low_claim",
           "plant_stars"]


def emit(world: World, sharer: NDArray[Any], device: NDArray[Any], coupon: NDArray[Any], ts: NDArray[Any],
          n_rec: NDArray[Any], rec: NDArray[Any], *, claim_scale: float = 1.0,
          p_challenge: float = 0.0) -> None:
    """Add share events whose claims follow the recipients' claim propensity."""
    rng = world.rng
    m = len(sharer)
    decision = np.where(rng.random(m) < p_challenge, 1, 0)
    owner = np.repeat(np.arange(m), n_rec)
    got = rng.random(rec.size) < world.claim_p[rec] * claim_scale
    claims = np.bincount(owner, weights=got, minlength=m).astype(np.int64)
    claims[decision != 0] = 0
    world.shares.add(sharer, device, coupon, ts, n_rec, rec, claims, decision=decision)


def organic_targets(world: World, k: NDArray[Any]) -> NDArray[np.int64]:
    """``sum(k)`` random users of the social graph (camouflage and spam targets)."""
    n0 = world.community.size
    return world.rng.integers(0, n0, int(np.sum(k)))


def live_coupons(world: World, m: int, spread: float = 6 * HOUR) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Coupons that are live, and times within their life: fraud rides real coupons."""
    c = world.rng.integers(0, max(world.n_coupons, 1), m)
    return c, world.coupon_t[c] + world.rng.exponential(spread, m)


def coupons_at(world: World, ts: NDArray[Any], within: float = 3 * 24 * HOUR) -> NDArray[np.int64]:
    """For each time in ``ts``, a coupon issued in the ``within`` seconds before it (else the last one issued)."""
    order = np.argsort(world.coupon_t, kind="stable")
    ct = world.coupon_t[order]
    lo = np.searchsorted(ct, np.asarray(ts) - within)
    hi = np.searchsorted(ct, ts)
    pick = lo + (world.rng.random(lo.size) * (hi - lo)).astype(np.int64)
    pick = np.where(hi > lo, pick, np.maximum(hi - 1, 0))
    return order[np.minimum(pick, max(ct.size - 1, 0))].astype(np.int64)


def label(kinds: dict[str, dict[int, str]], users: NDArray[Any], devices: NDArray[Any], kind: str) -> None:
    """Record ``kind`` as the truth of ``users`` and of ``devices`` (negative ids skipped)."""
    kinds["user"].update({int(u): kind for u in users})
    kinds["device"].update({int(d): kind for d in devices if d >= 0})


Planter = Callable[[World, dict[str, dict[int, str]], float], None]


def plant_farms(world: World, kinds: dict[str, dict[int, str]], scale: float) -> None:
    rng = world.rng
    for _ in range(max(1, round(scale / 3 * rng.uniform(0.6, 1.4)))):
        devs = world.new_devices(int(rng.integers(1, 4)))
        accts = world.new_users(int(rng.integers(6, 30)) * devs.size, claim_p=0.05)
        m = int(accts.size * rng.uniform(2, 10))
        sharer = rng.choice(accts, m)
        k = rng.integers(1, 6, m)
        ring = rng.random(int(k.sum())) < rng.uniform(0.2, 0.8)
        rec = np.where(ring, rng.choice(accts, int(k.sum())), organic_targets(world, k))
        emit(world, sharer, rng.choice(devs, m), *live_coupons(world, m), k, rec,
              claim_scale=0.3, p_challenge=rng.uniform(0.1, 0.4))
        label(kinds, accts, devs, "farm")


def plant_stars(world: World, kinds: dict[str, dict[int, str]], scale: float) -> None:
    rng = world.rng
    for _ in range(max(1, round(scale / 4 * rng.uniform(0.6, 1.4)))):
        sprayer = world.new_users(1)
        dev = world.new_devices(1)
        # a fake sink exists to be shared with: the sprayer reuses its pool
        sinks = world.new_users(int(rng.integers(20, 100)), claim_p=0.0)
        m = int(rng.integers(20, 80))
        k = rng.integers(3, 11, m)
        fake = rng.random(int(k.sum())) < rng.uniform(0.7, 0.95)
        rec = np.where(fake, rng.choice(sinks, int(k.sum())), organic_targets(world, k))
        emit(world, np.full(m, sprayer[0]), np.full(m, dev[0]), *live_coupons(world, m),
              k, rec, p_challenge=0.05)
        label(kinds, sprayer, dev, "star")
        label(kinds, sinks, np.zeros(0), "sink")


def plant_dense(world: World, kinds: dict[str, dict[int, str]], scale: float) -> None:
    rng = world.rng
    for _ in range(max(1, round(scale / 8 * rng.uniform(0.6, 1.4)))):
        g = int(rng.integers(6, 20))
        sharers = world.new_users(g, claim_p=0.5)
        devs = world.new_devices(g)
        targets = sharers if rng.random() < 0.4 else world.new_users(int(rng.integers(10, 40)), claim_p=0.6)
        density = rng.uniform(0.3, 0.8)
        hit = rng.random((g, targets.size)) < density
        s_idx, t_idx = np.nonzero(hit)
        keep = sharers[s_idx] != targets[t_idx]
        s_idx, t_idx = s_idx[keep], t_idx[keep]
        # chunk each sharer's targets into shares of at most 10 recipients
        chunk = rng.integers(2, 11)
        order = np.lexsort((rng.random(s_idx.size), s_idx))
        s_idx, t_idx = s_idx[order], t_idx[order]
        rank = np.arange(s_idx.size) - np.searchsorted(s_idx, s_idx)
        ev_key = s_idx * 1000 + rank // chunk
        uniq, ev_of = np.unique(ev_key, return_inverse=True)
        ev_s = uniq // 1000
        m = uniq.size
        emit(world, sharers[ev_s], devs[ev_s], *live_coupons(world, m),
              np.bincount(ev_of, minlength=m), targets[t_idx])
        # camouflage: as many ordinary-looking shares to random real users
        mc = int(m * rng.uniform(0.5, 2.0))
        cs = rng.integers(0, g, mc)
        k = rng.integers(1, 5, mc)
        emit(world, sharers[cs], devs[cs], *live_coupons(world, mc), k,
              organic_targets(world, k))
        label(kinds, np.union1d(sharers, targets), devs, "dense")


def plant_lockstep(world: World, kinds: dict[str, dict[int, str]], scale: float) -> None:
    rng = world.rng
    for _ in range(max(1, round(scale / 8 * rng.uniform(0.6, 1.4)))):
        g = int(rng.integers(8, 25))
        accts = world.new_users(g, claim_p=0.2)
        devs = world.new_devices(g)
        episodes = int(rng.integers(3, 8))
        member = rng.random((episodes, g)) < rng.uniform(0.7, 0.95)
        e_idx, a_idx = np.nonzero(member)
        c, start = live_coupons(world, episodes, spread=3 * HOUR)
        m = e_idx.size
        k = rng.integers(1, 5, m)
        emit(world, accts[a_idx], devs[a_idx], c[e_idx], start[e_idx] + rng.uniform(0, 45, m),
              k, organic_targets(world, k), claim_scale=0.5)
        mc = int(g * rng.uniform(1, 5))
        cs = rng.integers(0, g, mc)
        k = rng.integers(1, 4, mc)
        emit(world, accts[cs], devs[cs], *live_coupons(world, mc), k,
              organic_targets(world, k))
        label(kinds, accts, devs, "lockstep")


def plant_bursts(world: World, kinds: dict[str, dict[int, str]], scale: float) -> None:
    rng = world.rng
    for _ in range(max(1, round(scale / 6 * rng.uniform(0.6, 1.4)))):
        g = int(rng.integers(2, 7))
        accts = world.new_users(g, claim_p=0.2)
        devs = world.new_devices(g)
        coupon = world.new_coupons(1)[0] if rng.random() < 0.5 else live_coupons(world, 1)[0][0]
        span = rng.uniform(24, 96) * HOUR
        start = world.coupon_t[coupon] + rng.uniform(0, 12) * HOUR
        per = rng.integers(10, 40, g)
        a_idx = np.repeat(np.arange(g), per)
        m = a_idx.size
        k = rng.integers(1, 6, m)
        emit(world, accts[a_idx], devs[a_idx], np.full(m, coupon), start + rng.random(m) * span,
              k, organic_targets(world, k), claim_scale=0.7)
        label(kinds, accts, devs, "burst")


def plant_low_claim(world: World, kinds: dict[str, dict[int, str]], scale: float) -> None:
    rng = world.rng
    n0 = world.community.size
    deg = np.diff(world.indptr)
    cand = np.flatnonzero(deg >= 3)
    users = rng.choice(cand, min(cand.size, max(2, round(scale * rng.uniform(0.5, 1.5)))), replace=False)
    per = rng.integers(15, 50, users.size)
    u = np.repeat(users, per)
    m = u.size
    k = rng.integers(1, 6, m)
    owner, friend = pick_neighbours(world, u, k)
    emit(world, u, world.user_device[u], *live_coupons(world, m),
          np.bincount(owner, minlength=m), friend, claim_scale=rng.uniform(0.0, 0.05))
    assert users.max() < n0
    label(kinds, users, world.user_device[users], "low_claim")


DEFAULT_PLANTERS: tuple[Planter, ...] = (plant_farms, plant_stars, plant_dense, plant_lockstep, plant_bursts,
                                         plant_low_claim)


def plant_fraud(world: World, planters: tuple[Planter, ...] | None = None) -> dict[str, dict[int, str]]:
    """Plant fraud into ``world``; return ``{"user": {id: kind}, "device": {...}}``.

    ``planters`` default to the kinds of this module (the ``default``
    profile); :mod:`graphs.workload.profiles` names other mixes.  Look-alike
    planters record organic sub-kinds under ``"organic_user"`` and
    ``"organic_device"``.

    Examples
    --------
    >>> from graphs.workload.world import make_world
    >>> from graphs.workload.organic import organic_cascades
    >>> w = make_world(500, np.random.default_rng(2))
    >>> _ = organic_cascades(w)
    >>> kinds = plant_fraud(w)
    >>> sorted(set(kinds["user"].values()))
    ['burst', 'dense', 'farm', 'lockstep', 'low_claim', 'sink', 'star']
    """
    kinds: dict[str, dict[int, str]] = {"user": {}, "device": {}, "organic_user": {}, "organic_device": {}}
    scale = world.community.size / 1000.0
    for plant in planters or DEFAULT_PLANTERS:
        plant(world, kinds, scale)
    return kinds
