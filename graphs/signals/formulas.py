"""Every signal's formula, written once for both engines.

A formula takes raw measures and returns a score in [0, 1].  It is written
against a tiny set of array operations (:class:`Ops`), so the numpy engine
calls it with numpy arrays and :data:`NUMPY`, and the Spark engine with
DataFrame columns and ``graphs.spark.ops.SPARK``; arithmetic operators work
the same on both.  Thresholds come from :class:`~graphs.signals.params.ScoringParams`.

Examples
--------
>>> import numpy as np
>>> ramp(NUMPY, np.array([0.0, 5.0, 20.0]), (0.0, 10.0)).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from graphs.signals.params import ScoringParams

__all__ = [
    "HOUR",
    "NUMPY",
    "NumpyOps",
    "Ops",
    "burst_score",
    "claim_gap",
    "claim_yardstick",
    "crowd_weight",
    "effective_trials",
    "farm_score",
    "feeder_score",
    "fresh_score",
    "hoarder_score",
    "inflow_score",
    "influence_score",
    "kol_combine",
    "kol_discount",
    "lockstep_association_score",
    "lockstep_candidate",
    "lockstep_score",
    "log_scale",
    "low_claim_score",
    "noisy_or",
    "pagerank_step",
    "participation",
    "ramp",
    "recipients_per_share",
    "refused_score",
    "rotation_score",
    "sink_score",
    "star_score",
]

HOUR = 3600.0
X = Any  # a numpy array or a Spark column


class Ops(Protocol):
    """The few element-wise operations the formulas need beyond arithmetic."""

    def clip(self, x: X, lo: float, hi: float) -> X: ...
    def log1p(self, x: X) -> X: ...
    def maximum(self, a: X, b: X) -> X: ...
    def safe_div(self, a: X, b: X) -> X: ...
    def as_float(self, cond: X) -> X: ...
    def bit(self, x: X, k: int) -> X: ...
    def xor(self, a: X, b: X) -> X: ...


class NumpyOps:
    """:class:`Ops` over numpy arrays."""

    def clip(self, x: X, lo: float, hi: float) -> X:
        return np.clip(x, lo, hi)

    def log1p(self, x: X) -> X:
        return np.log1p(x)

    def maximum(self, a: X, b: X) -> X:
        return np.maximum(a, b)

    def safe_div(self, a: X, b: X) -> X:
        """``a / b`` where ``b > 0``, else 0."""
        return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)

    def as_float(self, cond: X) -> X:
        return cond

    def bit(self, x: X, k: int) -> X:
        """Bit ``k`` of the non-negative integers ``x`` (0 or 1)."""
        return (x >> k) & 1

    def xor(self, a: X, b: X) -> X:
        return a ^ b


NUMPY = NumpyOps()


def ramp(ops: Ops, x: X, lo_hi: tuple[float, float]) -> X:
    """Map ``x`` linearly from ``[lo, hi]`` onto ``[0, 1]``, clipped."""
    lo, hi = lo_hi
    return ops.clip((x - lo) / (hi - lo), 0.0, 1.0)


def log_scale(ops: Ops, x: X, ref: float) -> X:
    """``log1p(x) / log1p(ref)`` clipped to ``[0, 1]``; for heavy-tailed counts."""
    return ops.clip(ops.log1p(ops.maximum(x, 0.0)) / math.log1p(max(ref, 1.0)), 0.0, 1.0)


def noisy_or(ops: Ops, *scores: X) -> X:
    """Combine independent evidence in ``[0, 1]``: ``1 - prod(1 - s)``."""
    out: X = 1.0
    for s in scores:
        out = out * (1.0 - ops.clip(s, 0.0, 1.0))
    return 1.0 - out


def farm_score(ops: Ops, accounts: X, p: ScoringParams) -> X:
    """Distinct accounts on one device (a family shares a phone, a farm does not)."""
    return ramp(ops, accounts, p.farm_users)


def rotation_score(ops: Ops, devices: X, co_users: X, p: ScoringParams) -> X:
    """Several devices per account, shared with many other accounts: a pool of phones taking turns."""
    return ramp(ops, devices, p.rotation_devices) * ramp(ops, co_users, p.rotation_co_users)


def refused_score(ops: Ops, refused: X, attempts: X, p: ScoringParams) -> X:
    """Share and number of a node's attempts that the online rules refused."""
    return ramp(ops, ops.safe_div(refused, attempts), p.refused_frac) * ramp(ops, refused, p.refused_count)


def claim_gap(ops: Ops, claims: X, sent: X, p0: float, p: ScoringParams) -> tuple[X, X]:
    """Shrunk claim rate per sharer and its relative shortfall against the typical rate ``p0``."""
    shrunk = (claims + p.claim_prior * p0) / (sent + p.claim_prior)
    return shrunk, ops.clip(1.0 - shrunk / p0, 0.0, 1.0)


def effective_trials(ops: Ops, claims: X, sent: X, allowed: X, per_share: float) -> tuple[X, X]:
    """(claims, recipients) of a sharer, counting a share as at most ``per_share`` recipients.

    The recipients of one share are not independent trials: they got the
    same coupon at the same moment, often in one chat, and a coupon nobody
    wants is claimed by none of them.  One post to a chat of thirty that
    nobody claims is one unlucky share, not thirty refusals.  So a sharer's
    recipients count for at most ``allowed`` shares times ``per_share``, the
    graph's mean recipients per allowed share, and its claims are scaled
    down with them (its claim rate is kept).

    Examples
    --------
    >>> import numpy as np
    >>> claims, n = effective_trials(NUMPY, np.array([0.0, 2.0]), np.array([30.0, 40.0]),
    ...                              np.array([1.0, 20.0]), 2.5)
    >>> claims.tolist(), n.tolist()
    ([0.0, 2.0], [2.5, 40.0])
    """
    n_eff = sent - ops.maximum(sent - allowed * per_share, 0.0)  # min(sent, allowed * per_share)
    return claims * ops.safe_div(n_eff, sent), n_eff


def recipients_per_share(sent_total: float, allowed_total: float) -> float:
    """The graph's mean recipients per allowed share (1 without shares).

    Examples
    --------
    >>> recipients_per_share(30.0, 10.0), recipients_per_share(0.0, 0.0)
    (3.0, 1.0)
    """
    return max(sent_total / allowed_total, 1.0) if allowed_total > 0 else 1.0


def claim_yardstick(sharers: int, own: tuple[float, float], graph: tuple[float, float],
                    p: ScoringParams) -> tuple[float, float]:
    """(typical claim rate, mean recipients per share) to judge one kind of share by.

    ``own`` are the kind's own figures, ``graph`` the whole graph's;
    ``sharers`` is how many sharers of 5 or more recipients of this kind
    there are.  With fewer than ``low_claim_min_sharers`` of them the kind's
    median is no yardstick, and the graph's figures judge it.

    Examples
    --------
    >>> p = ScoringParams()
    >>> claim_yardstick(40, (0.3, 2.0), (0.2, 4.0), p), claim_yardstick(2, (0.0, 12.5), (0.2, 4.0), p)
    ((0.3, 2.0), (0.2, 4.0))
    """
    return own if sharers >= p.low_claim_min_sharers else graph


def low_claim_score(ops: Ops, gap: X, tail_log10: X, p: ScoringParams) -> X:
    """A large claim shortfall that is also improbable (binomial tail, ``-log10 p``)."""
    return ramp(ops, gap, p.low_claim_gap) * ramp(ops, tail_log10, p.low_claim_log10p)


def star_score(ops: Ops, fanout: X, gap: X, owned: X, owned_share: X, p: ScoringParams) -> X:
    """Many distinct recipients who never claim, or who exist only for this sharer.

    ``owned`` counts the recipients that exist only for the sharer,
    ``owned_share`` is their share of its deliveries: a sprayer that sends
    most of its shares, again and again, to a small pool of its own accounts
    while its camouflage goes to many real users once each owns few of its
    distinct recipients but most of what it sends.
    """
    owned_frac = owned / ops.maximum(fanout, 1.0)
    owned_ev = ops.maximum(ramp(ops, owned_frac, p.star_owned), ramp(ops, owned_share, p.star_owned_share))
    return ramp(ops, fanout, p.star_fanout) * ops.maximum(ramp(ops, gap, p.star_claim_gap), owned_ev)


def sink_score(ops: Ops, sus_in: X, total_in: X, sus_count: X, repeat: X, allowed: X, own_suspicion: X,
               p: ScoringParams) -> tuple[X, X]:
    """(score, share of receipts from suspicious sharers) of a possible fake sink."""
    frac = ops.clip(sus_in / ops.maximum(total_in, 1e-12), 0.0, 1.0)
    # a real user who shares on their own is not a sink, whatever reaches them
    passive = 1.0 / (1.0 + allowed * (1.0 - own_suspicion))
    evidence = ops.maximum(ramp(ops, repeat, p.sink_repeat), ramp(ops, sus_count, p.sink_receipts))
    return frac * evidence * passive, frac


def fresh_score(ops: Ops, attempts: X, in_contacts: X, span_days: X, p: ScoringParams) -> X:
    """A sharer that never received a share and was active only briefly (1), else less (to 0)."""
    brief = 1.0 - ramp(ops, span_days, p.fresh_days)
    return ops.as_float(attempts > 0) * ops.as_float(in_contacts == 0) * brief


def hoarder_score(ops: Ops, fresh_surprise: X, claim_surprise: X, allowed: X, p: ScoringParams) -> X:
    """A passive account whose distinct sharers are improbably often fresh and whose claims are improbably many.

    Both surprises are ``-log10`` binomial tail probabilities; the claims
    only lift the score (a hoarder that stopped reporting claims still shows
    its inflow), so half of it needs the inflow alone.
    """
    passive = 1.0 / (1.0 + allowed)
    claims = 0.5 + 0.5 * ramp(ops, claim_surprise, p.hoarder_claim_log10p)
    return ramp(ops, fresh_surprise, p.hoarder_fresh_log10p) * claims * passive


def feeder_score(ops: Ops, fresh: X, worst_recipient: X) -> X:
    """A fresh sharer takes the worst suspicion among its recipients (a hoarder's feeder)."""
    return fresh * worst_recipient


def inflow_score(ops: Ops, suspicious_in: X, n_in: X, allowed: X, p: ScoringParams) -> X:
    """A passive account hearing mostly from suspicious sharers, and from several of them."""
    frac = ops.clip(ops.safe_div(suspicious_in, n_in), 0.0, 1.0)
    return frac * ramp(ops, suspicious_in, p.hoarder_suspicious_in) / (1.0 + allowed)


def lockstep_candidate(ops: Ops, near: X, wide: X, p: ScoringParams, window_s: float | None = None,
                       context_s: float = HOUR) -> X:
    """A share whose +-window on its coupon holds far more shares than the context around predicts.

    ``window_s`` defaults to the one-minute scale; the slow scale passes
    its ten-minute window and a three-hour context.
    """
    w = p.lockstep_window_s if window_s is None else window_s
    expected = (wide - near) * (2 * w) / (2 * context_s - 2 * w)
    return (near >= p.lockstep_min_events) & (near >= p.lockstep_excess * (expected + 1.0))


def crowd_weight(ops: Ops, cluster_size: X, p: ScoringParams) -> X:
    """What meeting in one cluster is worth: 1 in a group, less in a crowd (a flash sale's hundreds)."""
    return ops.clip(p.lockstep_crowd / ops.maximum(cluster_size, 1.0), 0.0, 1.0)


def lockstep_association_score(ops: Ops, partner_scores: X, partners: X, weight: X, p: ScoringParams) -> X:
    """One burst's evidence: mean lockstep score of its partners, ramped by their sum, times its crowd weight."""
    mean = ops.safe_div(partner_scores, partners)
    return weight * mean * ramp(ops, partner_scores, p.lockstep_association_group)


def lockstep_score(ops: Ops, coupons: X, partners: X, p: ScoringParams) -> X:
    """Coupons shared in the same minute as one account, times partners met on 2+ coupons."""
    return ramp(ops, coupons, p.lockstep_coupons) * ramp(ops, partners, p.lockstep_partners)


def burst_score(ops: Ops, ratio: X, late6: X, count: X, span: X, p: ScoringParams) -> X:
    """One account pushing one coupon at a flat rate: late/early ratio or share after 6 h."""
    shape = ops.maximum(ramp(ops, ratio, p.burst_ratio), ramp(ops, late6, p.burst_late_share))
    return shape * ramp(ops, count, p.burst_events) * ops.as_float(span >= p.burst_min_span_s)


def participation(ops: Ops, sum_sq: X, degree: X) -> X:
    """``1 - sum_c (k_c / k)^2``: 0 when all links stay in one community."""
    part = ops.safe_div(sum_sq, degree * degree)
    return ops.maximum(1.0 - part, 0.0) * ops.as_float(degree > 0)


def pagerank_step(ops: Ops, inflow: X, dangling: X, n: int, damping: float) -> X:
    """One power-iteration step of PageRank for every node.

    ``inflow`` is the rank that reaches the node along its in-links (each
    node splits its rank over its out-links in proportion to their weights),
    ``dangling`` the total rank of the nodes without out-links, spread over
    all ``n`` nodes; a walker jumps to a uniformly random node with
    probability ``1 - damping``.  The ranks keep summing to 1.

    Examples
    --------
    >>> import numpy as np
    >>> pagerank_step(NUMPY, np.array([0.0, 0.5]), 0.5, 2, 0.85).round(6).tolist()
    [0.2875, 0.7125]
    """
    return (1.0 - damping) / n + damping * (inflow + dangling / n)


def influence_score(ops: Ops, relative: X, ref: float) -> X:
    """PageRank relative to the average node (``n * rank``); only the excess over 1 counts.

    ``ref`` is the high quantile of the positive excess, as for the other KOL signals.
    """
    return log_scale(ops, relative - 1.0, ref)


def kol_combine(ops: Ops, spread: X, hub: X, bridge: X, active: X, influence: X, p: ScoringParams) -> X:
    """Weighted KOL evidence: realised propagation dominates, structure and influence break ties."""
    w = p.kol_weights
    return (w[0] * spread + w[1] * hub + w[2] * bridge + w[3] * active + w[4] * influence) / sum(w)


def kol_discount(ops: Ops, raw: X, anomaly: X) -> X:
    """A ring that reshares among itself has propagation but is no opinion leader."""
    return raw * (1.0 - ops.clip(anomaly, 0.0, 1.0))
