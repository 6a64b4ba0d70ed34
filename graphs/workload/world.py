"""The simulated world: a heavy-tailed, community-structured social graph and its users.

Organic behaviour starts from a community-structured social graph with
heavy-tailed degrees (Chung-Lu within communities plus a fraction of
cross-community links).  :mod:`graphs.workload.organic` and
:mod:`graphs.workload.fraud` append share events to the world's
:class:`Shares`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DAY", "HOUR", "Shares", "World", "make_world", "pick_neighbours", "social_graph"]

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass
class Shares:
    """Share events under construction (integer ids, recipients as CSR)."""

    sharer: list[NDArray[np.int64]] = field(default_factory=list)
    device: list[NDArray[np.int64]] = field(default_factory=list)
    coupon: list[NDArray[np.int64]] = field(default_factory=list)
    ts: list[NDArray[np.float64]] = field(default_factory=list)
    decision: list[NDArray[np.int64]] = field(default_factory=list)  # 0 allow 1 challenge 2 block
    claimed: list[NDArray[np.int64]] = field(default_factory=list)
    n_rec: list[NDArray[np.int64]] = field(default_factory=list)
    rec_flat: list[NDArray[np.int64]] = field(default_factory=list)
    listed: list[NDArray[np.bool_]] = field(default_factory=list)  # recipients listed or count only

    def add(self, sharer: NDArray[Any], device: NDArray[Any], coupon: NDArray[Any], ts: NDArray[Any],
            n_rec: NDArray[Any], rec_flat: NDArray[Any], claimed: NDArray[Any],
            decision: NDArray[Any] | None = None, listed: NDArray[Any] | None = None) -> None:
        n = len(sharer)
        self.sharer.append(np.asarray(sharer, np.int64))
        self.device.append(np.asarray(device, np.int64))
        self.coupon.append(np.asarray(coupon, np.int64))
        self.ts.append(np.asarray(ts, np.float64))
        self.n_rec.append(np.asarray(n_rec, np.int64))
        self.rec_flat.append(np.asarray(rec_flat, np.int64))
        self.claimed.append(np.asarray(claimed, np.int64))
        self.decision.append(np.zeros(n, np.int64) if decision is None else np.asarray(decision, np.int64))
        self.listed.append(np.ones(n, bool) if listed is None else np.asarray(listed, bool))

    def column(self, name: str) -> NDArray[Any]:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.zeros(0)


@dataclass
class World:
    """The organic world the fraud is planted into."""

    rng: np.random.Generator
    n_users: int
    indptr: NDArray[np.int64]  # social graph, CSR
    nbrs: NDArray[np.int64]
    community: NDArray[np.int64]
    claim_p: NDArray[np.float64]
    user_device: NDArray[np.int64]
    n_devices: int
    n_coupons: int
    t0: float
    horizon: float
    coupon_t: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    shares: Shares = field(default_factory=Shares)
    kind: dict[str, NDArray[np.object_]] = field(default_factory=dict)
    secondary: NDArray[np.float64] | None = None

    def new_users(self, k: int, claim_p: float = 0.0) -> NDArray[np.int64]:
        """Accounts outside the social graph (fraud accounts and fake sinks)."""
        ids = np.arange(self.n_users, self.n_users + k)
        self.n_users += k
        self.claim_p = np.append(self.claim_p, np.full(k, claim_p))
        self.user_device = np.append(self.user_device, np.full(k, -1))
        return ids

    def new_devices(self, k: int) -> NDArray[np.int64]:
        ids = np.arange(self.n_devices, self.n_devices + k)
        self.n_devices += k
        return ids

    def new_coupons(self, k: int) -> NDArray[np.int64]:
        ids = np.arange(self.n_coupons, self.n_coupons + k)
        self.n_coupons += k
        self.coupon_t = np.append(self.coupon_t, self.t0 + self.rng.random(k) * self.horizon)
        return ids


def social_graph(n: int, rng: np.random.Generator) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Heavy-tailed, community-structured undirected graph as CSR arrays.

    Returns ``indptr, neighbours, community, expected_degree``.

    Examples
    --------
    >>> ip, nb, com, w = social_graph(500, np.random.default_rng(0))
    >>> ip.size, int(com.max()) > 0
    (501, True)
    """
    alpha = rng.uniform(2.0, 2.7)
    mean_deg = rng.uniform(6.0, 16.0)
    mu = rng.uniform(0.05, 0.25)
    w = (1.0 - rng.random(n)) ** (-1.0 / (alpha - 1.0))
    w = np.minimum(w * mean_deg / w.mean(), max(n / 4, 10.0))
    mean_size = rng.uniform(30, 200)
    sizes = np.maximum(3, rng.lognormal(np.log(mean_size), 0.8, n // 3 + 2).astype(np.int64))
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    community = np.minimum(np.repeat(np.arange(sizes.size), sizes)[:n], sizes.size - 1)
    community = community[rng.permutation(n)]
    order = np.argsort(community, kind="stable")
    cw = np.cumsum(w[order])
    c_start = np.searchsorted(community[order], np.arange(community.max() + 1))
    c_end = np.append(c_start[1:], n)
    m = int(w.sum() / 2)
    src = np.searchsorted(cw, rng.random(m) * cw[-1])
    src_c = community[order][np.minimum(src, n - 1)]
    lo = np.where(c_start[src_c] > 0, cw[c_start[src_c] - 1], 0.0)
    hi = cw[c_end[src_c] - 1]
    intra = np.searchsorted(cw, lo + rng.random(m) * (hi - lo))
    inter = np.searchsorted(cw, rng.random(m) * cw[-1])
    dst = np.where(rng.random(m) < mu, inter, intra)
    a, b = order[np.minimum(src, n - 1)], order[np.minimum(dst, n - 1)]
    keep = a != b
    a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    key = np.unique(a.astype(np.int64) * n + b)
    a, b = key // n, key % n
    both_a, both_b = np.concatenate([a, b]), np.concatenate([b, a])
    srt = np.argsort(both_a, kind="stable")
    indptr = np.concatenate(([0], np.cumsum(np.bincount(both_a, minlength=n))))
    return indptr, both_b[srt], community, w


def pick_neighbours(world: World, users: NDArray[np.int64], k: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any]]:
    """``k[i]`` random friends of ``users[i]`` (deduplicated); returns (owner row, friend)."""
    deg = world.indptr[users + 1] - world.indptr[users]
    k = np.minimum(k, deg)
    owner = np.repeat(np.arange(users.size), k)
    off = (world.rng.random(owner.size) * deg[owner]).astype(np.int64)
    friend = world.nbrs[world.indptr[users[owner]] + off]
    key = np.unique(owner.astype(np.int64) * (world.n_users + 1) + friend)
    return key // (world.n_users + 1), key % (world.n_users + 1)


def make_world(users: int, rng: np.random.Generator, *, days: float = 30.0) -> World:
    """Social graph, claim propensities and devices of ``users`` organic users.

    Examples
    --------
    >>> w = make_world(200, np.random.default_rng(0))
    >>> w.n_users, w.user_device.size
    (200, 200)
    """
    indptr, nbrs, community, _ = social_graph(users, rng)
    mean_claim = rng.uniform(0.15, 0.4)
    claim_p = rng.beta(2.0, 2.0 * (1 - mean_claim) / mean_claim, users)
    user_device = np.arange(users, dtype=np.int64)
    # families: a few users share a phone with a friend
    fam = np.flatnonzero(rng.random(users) < 0.03)
    deg = np.diff(indptr)
    fam = fam[deg[fam] > 0]
    friend = nbrs[indptr[fam] + (rng.random(fam.size) * deg[fam]).astype(np.int64)]
    user_device[fam] = user_device[friend]
    return World(rng=rng, n_users=users, indptr=indptr, nbrs=nbrs, community=community,
                 claim_p=claim_p, user_device=user_device, n_devices=users, n_coupons=0,
                 t0=1.75e9 + float(rng.integers(0, 10**7)), horizon=days * DAY)
