"""Timing signals: lockstep groups (CopyCatch-like) and bursts that do not decay.

Lockstep (Beutel et al., WWW 2013, in spirit): accounts that share the same
coupon within the same minute, again on other coupons, with the same
partners.  A share is a candidate when its +-60 s neighbourhood on that
coupon holds several shares and far more than the coupon's rate over the
surrounding hour predicts, so a viral coupon's steady peak is not mistaken
for coordination.  Candidates close in time form clusters; a pair of accounts
that meets in clusters of several different coupons is in lockstep.  Pairs
are only formed inside clusters (capped in size), never over a hub's links.

Non-decay: organic shares of a coupon are front-loaded (WeChat's coupon-sharing guide:
about 60 % in the first 6 h of a ~72 h life).  An account that keeps pushing
one coupon at a flat rate has as many shares in the second half of its span
as in the first, or most of them after its first 6 h.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from graphs.events.table import EventTable
from graphs.signals.catalog import LOCKSTEP, NON_DECAYING_BURST
from graphs.signals.formulas import (
    HOUR,
    NUMPY,
    burst_score,
    crowd_weight,
    lockstep_association_score,
    lockstep_candidate,
    lockstep_score,
)
from graphs.signals.ops import count_in_window, group_starts
from graphs.signals.params import ScoringParams
from graphs.signals.signal import Signal

__all__ = ["burst_signal", "lockstep_signal"]

_HOUR = HOUR


def _coupon_time_keys(t: EventTable) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Event order by (coupon, ts) and a float key that keeps coupons apart."""
    order = np.lexsort((t.ts, t.coupon)).astype(np.int64)
    rel = t.ts - (t.ts.min() if t.n_events else 0.0)
    span = float(rel.max()) + 10 * _HOUR if t.n_events else 1.0
    return order, (t.coupon[order] * span + rel[order]).astype(np.float64)


def lockstep_signal(t: EventTable, p: ScoringParams, *, seed: int = 0) -> Signal:
    """Accounts that repeatedly share the same coupons at the same time as the same partners.

    Two time scales: the same minute (against the hour around it) and the
    same ten minutes (against three hours), so spreading a burst out does
    not hide it.  Each account keeps its stronger scale.  Meeting in a crowd
    (a flash sale's hundreds of sharers) counts for less than meeting in a
    group: ``lockstep_crowd / cluster size`` of a coupon.  An account that
    joined a single burst of accounts in lockstep gets part of their
    suspicion (``lockstep_association``), so a member who skipped the
    other bursts is not missed; unless it had received that coupon (an
    organic reshare that happened to fall into the burst).

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> ev = [{"user_id": f"u{i}", "coupon_id": f"c{k}", "ts": 10_000 * k + 90 * i}
    ...       for k in range(3) for i in range(6)]
    >>> s = lockstep_signal(read_events(ev), ScoringParams())
    >>> s.score.tolist(), s.value.tolist()
    ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    """
    n = t.n_users
    order, key = _coupon_time_keys(t)
    value, partners, score = np.zeros(n), np.zeros(n), np.zeros(n)
    met: list[NDArray[np.float64]] = []
    for w, ctx in ((p.lockstep_window_s, _HOUR), (p.lockstep_slow_window_s, p.lockstep_slow_context_s)):
        v, pa, m = _lockstep_scale(t, order, key, w, ctx, p, seed)
        sc = lockstep_score(NUMPY, v, pa, p)
        better = (sc > score) | ((sc == score) & (v > value))
        value, partners, score = np.where(better, v, value), np.where(better, pa, partners), np.maximum(sc, score)
        met.append(m)
    # an account that received the coupon before it shared it is passing it on, not joining a burst
    n_c = max(int(t.coupons.size), 1)
    received = np.unique(t.edge_dst.astype(np.int64) * n_c + t.coupon[t.edge_event].astype(np.int64))
    joined, assoc = _association(np.concatenate(met), score, n, n_c, received, p)
    final = np.maximum(score, p.lockstep_association * assoc)
    return Signal.of(LOCKSTEP, value, final, {"partners": partners, "joined": joined})


def _association(met: NDArray[np.float64], score: NDArray[np.float64], n: int, n_coupons: int,
                 received: NDArray[np.int64], p: ScoringParams) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per account: lockstep accounts met in its best burst, and that burst's evidence in [0, 1].

    ``met`` rows are ``(u, v, coupon, crowd weight)`` of both scales.  An
    account that joined only one burst cannot repeat, but a burst whose
    other members are in lockstep is evidence: the crowd weight times the
    mean lockstep score of its partners, ramped by their summed score.
    Bursts on a coupon the account had received (``received`` holds
    ``user * n_coupons + coupon``) give none: it was passing the coupon on.
    """
    joined, assoc = np.zeros(n), np.zeros(n)
    if not met.size:
        return joined, assoc
    key = met[:, :3].astype(np.int64)
    # the same meeting seen at both scales counts once, at its best weight
    uvc, inv = np.unique(key, axis=0, return_inverse=True)
    weight = np.zeros(uvc.shape[0])
    np.maximum.at(weight, inv.ravel(), met[:, 3])
    uc, inv2 = np.unique(uvc[:, [0, 2]], axis=0, return_inverse=True)
    inv2 = inv2.ravel()
    s_sum = np.bincount(inv2, weights=score[uvc[:, 1]], minlength=uc.shape[0])
    count = np.bincount(inv2, minlength=uc.shape[0]).astype(np.float64)
    w_max = np.zeros(uc.shape[0])
    np.maximum.at(w_max, inv2, weight)
    ev = lockstep_association_score(NUMPY, s_sum, count, w_max, p)
    keep = ~np.isin(uc[:, 0] * n_coupons + uc[:, 1], received)
    ev, s_sum, u = ev[keep], s_sum[keep], uc[keep, 0]
    np.maximum.at(assoc, u, ev)
    # the detail names the burst that gave the evidence (ties: the one with more lockstep in it)
    o = np.lexsort((s_sum, ev, u))
    joined[u[o]] = s_sum[o]
    return joined, assoc


def _lockstep_scale(t: EventTable, order: NDArray[np.int64], key: NDArray[np.float64], w: float, ctx: float,
                    p: ScoringParams, seed: int
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(weighted coupons with the best partner, partners met on 2+ coupons, meetings) at one time scale.

    Meetings are rows ``(u, v, coupon, crowd weight)``, one per (u, v, coupon).
    """
    n = t.n_users
    near = count_in_window(key, w)
    wide = count_in_window(key, ctx)
    cand = lockstep_candidate(NUMPY, near, wide, p, w, ctx)
    idx = order[cand]
    k = key[cand]
    value = np.zeros(n)
    partners = np.zeros(n)
    met = np.zeros((0, 4))
    if not idx.size:
        return value, partners, met
    cluster = np.cumsum(np.concatenate(([True], np.diff(k) > w)))
    pairs = _cluster_pairs(cluster, t.sharer[idx].astype(np.int64), t.coupon[idx].astype(np.int64),
                           p.lockstep_max_cluster, seed)
    if pairs.size:
        # per (u, v, coupon) the best cluster weight; per (u, v) the weighted coupons;
        # per u the best partner and how many partners met it on two coupons or more
        uv = pairs[:, 0] * n + pairs[:, 1]
        weight = crowd_weight(NUMPY, pairs[:, 3].astype(np.float64), p)
        uvc, inv = np.unique(np.stack([uv, pairs[:, 2]], axis=1), axis=0, return_inverse=True)
        best = np.zeros(uvc.shape[0])
        np.maximum.at(best, inv.ravel(), weight)
        uv_u, first = np.unique(uvc[:, 0], return_index=True)
        n_coupons = np.add.reduceat(best, first)
        u = uv_u // n
        np.maximum.at(value, u, n_coupons)
        np.add.at(partners, u, (n_coupons >= 2 - 1e-9).astype(np.float64))
        met = np.stack([uvc[:, 0] // n, uvc[:, 0] % n, uvc[:, 1], best], axis=1).astype(np.float64)
    return value, partners, met


def _cluster_pairs(cluster: NDArray[np.int64], user: NDArray[np.int64], coupon: NDArray[np.int64],
                   cap: int, seed: int) -> NDArray[np.int64]:
    """All (u, v, coupon, cluster size) with u != v in the same cluster; large clusters are sampled.

    The size is the cluster's number of distinct accounts before sampling.
    """
    rng = np.random.default_rng(seed)
    # one member per (cluster, user): repeated shares by one account are velocity, not lockstep
    cu = np.unique(np.stack([cluster, user, coupon], axis=1), axis=0)
    cl = cu[:, 0]
    starts = group_starts(cl)
    sizes = np.diff(np.append(starts, cl.size))
    full_size = np.repeat(sizes, sizes)
    big = np.flatnonzero(sizes > cap)
    if big.size:
        keep = np.ones(cl.size, dtype=bool)
        for b in big:  # rare: a huge simultaneous crowd; sample it
            s, e = starts[b], starts[b] + sizes[b]
            drop = rng.choice(np.arange(s, e), sizes[b] - cap, replace=False)
            keep[drop] = False
        cu, full_size = cu[keep], full_size[keep]
        cl = cu[:, 0]
        starts = group_starts(cl)
        sizes = np.diff(np.append(starts, cl.size))
    size_e = np.repeat(sizes, sizes)
    start_e = np.repeat(starts, sizes)
    rep = np.repeat(np.arange(cl.size), size_e)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(size_e) - size_e, size_e)
    partner = start_e[rep] + offs
    ok = rep != partner
    return np.stack([cu[rep[ok], 1], cu[partner[ok], 1], cu[rep[ok], 2], full_size[rep[ok]]], axis=1)


def burst_signal(t: EventTable, p: ScoringParams) -> Signal:
    """An account pushing one coupon at a flat, non-decaying rate for hours.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> flat = [{"user_id": "bot", "coupon_id": "c", "ts": 3600.0 * h} for h in range(24)]
    >>> s = burst_signal(read_events(flat), ScoringParams())
    >>> float(s.score[0]), round(float(s.value[0]), 2)
    (1.0, 1.0)
    """
    n = t.n_users
    order = np.lexsort((t.ts, t.coupon.astype(np.int64) * max(n, 1) + t.sharer))
    pair = (t.coupon.astype(np.int64) * max(n, 1) + t.sharer)[order]
    ts = t.ts[order]
    starts = group_starts(pair)
    ends = np.append(starts[1:], pair.size)
    cnt = ends - starts
    t0 = ts[starts] if ts.size else ts
    t1 = ts[ends - 1] if ts.size else ts
    span = t1 - t0
    mid = np.repeat(t0 + span / 2, cnt)
    late = np.add.reduceat((ts > mid).astype(np.float64), starts) if ts.size else np.zeros(0)
    early = cnt - late
    ratio = late / np.maximum(early, 1)
    # Organic shares put ~60 % in the first 6 h; a push keeps going
    after6 = np.repeat(t0 + p.burst_organic_window_s, cnt)
    late6 = (np.add.reduceat((ts > after6).astype(np.float64), starts) / cnt) if ts.size else np.zeros(0)
    score = burst_score(NUMPY, ratio, late6, cnt, span, p)
    user = pair[starts] % max(n, 1)
    best = np.zeros(n)
    np.maximum.at(best, user, score)
    pick = np.zeros(n, dtype=np.int64)
    # for the detail: the pair that gave the best score
    o = np.lexsort((score, user))
    pick[user[o]] = o
    r = ratio[pick] if ratio.size else np.zeros(n)
    l6 = late6[pick] if late6.size else np.zeros(n)
    c = cnt[pick] if cnt.size else np.zeros(n)
    h = span[pick] / _HOUR if span.size else np.zeros(n)
    return Signal.of(NON_DECAYING_BURST, r, best,
                     {"n": c.astype(np.float64), "h": h, "late6": l6})
