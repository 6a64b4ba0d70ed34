"""Organic look-alikes: real users whose behaviour resembles fraud and who must not be hit.

Each look-alike stays labelled organic (``fraud`` false) and gets its own
``organic_kind`` in the truth file, so the false positives on it can be
reported apart from the rest:

- ``flash_sale``: a merchant's flash sale, where hundreds of its fans share
  the same coupon to their friends within minutes; a merchant runs one to
  three sales, and many fans join more than one (a lockstep look-alike);
- ``group_admin``: admins of a chat group who share every coupon to the
  same 12 to 20 members, who claim as real people do (a spray look-alike);
- ``family_device``: three or four family members who share from one phone
  (a device-farm look-alike);
- ``chat_pusher``: fans who push a coupon they like to several chats (2 to
  12), in one to a few sittings over a day or two (a steady-pusher
  look-alike); planted last, after the fraud, so the other kinds' draws do
  not move.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from graphs.workload.fraud import coupons_at, emit, label
from graphs.workload.world import DAY, World, pick_neighbours

__all__ = ["LATE_LOOKALIKE_PLANTERS", "LOOKALIKE_PLANTERS", "plant_chat_pushers", "plant_family_devices",
           "plant_flash_sales", "plant_group_admins"]

Kinds = dict[str, dict[int, str]]


def _organic(kinds: Kinds, users: NDArray[Any], devices: NDArray[Any], kind: str) -> None:
    label({"user": kinds["organic_user"], "device": kinds["organic_device"]}, users, devices, kind)


def _real_users(world: World, min_degree: int) -> NDArray[np.int64]:
    deg = np.diff(world.indptr)
    return np.flatnonzero(deg >= min_degree).astype(np.int64)


def plant_flash_sales(world: World, kinds: Kinds, scale: float) -> None:
    """One to three flash sales of one merchant, each with hundreds of its fans sharing within minutes."""
    rng = world.rng
    cand = _real_users(world, 2)
    size = min(int(rng.uniform(150, 400)), cand.size // 6)
    if size < 20:
        return
    fans = rng.choice(cand, min(cand.size, int(size * rng.uniform(1.2, 3.0))), replace=False)
    sharers_all = []
    for _ in range(int(rng.integers(1, 4))):
        coupon = world.new_coupons(1)
        who = rng.choice(fans, size, replace=False)
        # a few fans share twice (to another chat)
        who = np.concatenate([who, who[rng.random(size) < 0.1]])
        m = who.size
        ts = world.coupon_t[coupon[0]] + rng.exponential(rng.uniform(3, 15) * 60, m)
        k = np.where(rng.random(m) < 0.6, 1, rng.integers(2, 11, m))
        owner, friend = pick_neighbours(world, who, k)
        emit(world, who, world.user_device[who], np.full(m, coupon[0]), ts,
             np.bincount(owner, minlength=m), friend)
        sharers_all.append(who)
    _organic(kinds, np.unique(np.concatenate(sharers_all)), np.zeros(0), "flash_sale")


def plant_group_admins(world: World, kinds: Kinds, scale: float) -> None:
    """Admins sharing coupon after coupon to the same group of 12 to 20 friends."""
    rng = world.rng
    cand = _real_users(world, 12)
    n = min(cand.size, max(2, round(scale * rng.uniform(1.0, 3.0))))
    if n == 0:
        return
    admins = rng.choice(cand, n, replace=False)
    for a in admins.tolist():
        nb = world.nbrs[world.indptr[a]:world.indptr[a + 1]]
        group = rng.choice(nb, min(nb.size, int(rng.integers(12, 21))), replace=False)
        m = int(rng.integers(6, 30))
        ts = world.t0 + rng.random(m) * world.horizon
        # every share goes to most of the group (members leave and come back)
        keep = rng.random((m, group.size)) < rng.uniform(0.8, 1.0)
        keep[:, 0] = True
        ev, col = np.nonzero(keep)
        emit(world, np.full(m, a), np.full(m, world.user_device[a]), coupons_at(world, ts), ts,
             np.bincount(ev, minlength=m), group[col])
    _organic(kinds, admins, np.zeros(0), "group_admin")


def plant_family_devices(world: World, kinds: Kinds, scale: float) -> None:
    """Families of three or four who share from one phone (their own shares move onto it)."""
    rng = world.rng
    cand = _real_users(world, 3)
    n = min(cand.size // 4, max(2, round(scale * rng.uniform(3.0, 8.0))))
    heads = rng.choice(cand, n, replace=False)
    size = rng.integers(2, 4, n)  # members besides the head
    owner, member = pick_neighbours(world, heads, size)
    member_dev = np.full(world.n_users, -1, np.int64)
    member_dev[member] = world.user_device[heads[owner]]
    p_use = rng.uniform(0.6, 1.0)
    for part_s, part_d in zip(world.shares.sharer, world.shares.device, strict=True):
        moved = (part_s < member_dev.size) & (rng.random(part_s.size) < p_use)
        moved[moved] = member_dev[part_s[moved]] >= 0
        part_d[moved] = member_dev[part_s[moved]]
    users = np.union1d(heads, member)
    _organic(kinds, users, world.user_device[heads], "family_device")
    # a week of ordinary sharing from the phone, so every member shows up on it
    m = users.size * 2
    who = np.repeat(users, 2)
    ts = world.t0 + rng.random(m) * 7 * DAY + rng.random() * (world.horizon - 7 * DAY)
    dev = np.where(member_dev[who] >= 0, member_dev[who], world.user_device[who])
    o, friend = pick_neighbours(world, who, np.ones(m, np.int64))
    emit(world, who, dev, coupons_at(world, ts), ts, np.bincount(o, minlength=m), friend)


def plant_chat_pushers(world: World, kinds: Kinds, scale: float) -> None:
    """Fans pushing one coupon to several of their chats, in a few sittings."""
    rng = world.rng
    cand = _real_users(world, 4)
    n = min(cand.size, max(2, round(scale * rng.uniform(3.0, 10.0))))
    fans = rng.choice(cand, n, replace=False)
    for a in fans.tolist():
        coupon = coupons_at(world, world.t0 + rng.uniform(0.1, 0.95, 1) * world.horizon)
        start = world.coupon_t[coupon[0]] + rng.exponential(6 * 3600)
        # sittings: mostly one or two, now and then more, over a day or two
        sittings = min(5, 1 + int(rng.poisson(0.8)))
        begins = start + np.sort(rng.uniform(0, rng.uniform(0.3, 2.0) * DAY, sittings))
        per = rng.integers(1, 5, sittings)
        ts = np.concatenate([b + np.sort(rng.uniform(0, 1200, p)) for b, p in zip(begins, per, strict=True)])
        # each chat is other friends: nobody gets the coupon twice
        nb = rng.permutation(world.nbrs[world.indptr[a]:world.indptr[a + 1]])
        k = np.where(rng.random(ts.size) < 0.5, 1, rng.integers(2, 9, ts.size))
        ends = np.cumsum(k)
        keep = ends <= nb.size
        ts, k, ends = ts[keep], k[keep], ends[keep]
        if ts.size == 0:
            continue
        emit(world, np.full(ts.size, a), np.full(ts.size, world.user_device[a]), np.full(ts.size, coupon[0]), ts,
             k, nb[:ends[-1]])
    _organic(kinds, fans, np.zeros(0), "chat_pusher")


LOOKALIKE_PLANTERS = (plant_flash_sales, plant_group_admins, plant_family_devices)
# Planted after the fraud (their draws come last, so the others' do not move).
LATE_LOOKALIKE_PLANTERS = (plant_chat_pushers,)
