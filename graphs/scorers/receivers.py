"""Recipient-side signals: coupon hoarders scored from what they receive and claim, and their feeders.

A hoarder never shares; it is fed by fresh accounts (never received a
share, active for a day or two) that each share to it a few times, with a
real user alongside as cover.  Nothing about the hoarder's own shares gives
it away, so it is scored from its receipts:

- *fresh inflow*: how improbable it is that so many of its distinct sharers
  are fresh, given how common fresh sharers are in the whole graph (the
  binomial tail, ``-log10 p``); a real user hears mostly from friends who
  have received shares themselves;
- *claim surplus*: how improbable its claims are at the typical claim rate
  (each delivery's claims are split evenly over its recipients);
- *passivity*: an account that shares on its own is a user, not a hoarder.

Suspicion then flows along the sharer -> recipient graph, HITS-like, for a
few rounds (all sparse matrix products): a fresh sharer inherits the worst
suspicion among its recipients (a feeder), and an account that hears mostly
from suspicious sharers becomes suspicious in turn (a hoarder whose feeders
were not all fresh).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.stats import binom

from graphs.events.table import ALLOW, EventTable
from graphs.features.nodes import NodeFeatures
from graphs.signals.catalog import FEEDER, HOARDER
from graphs.signals.formulas import NUMPY, feeder_score, fresh_score, hoarder_score, inflow_score, noisy_or
from graphs.signals.params import ScoringParams
from graphs.signals.signal import Signal

__all__ = ["binomial_surprise", "freshness", "pair_claims", "receipt_claims", "receiver_signals"]

DAY = 86_400.0


def freshness(t: EventTable, f: NodeFeatures, p: ScoringParams) -> NDArray[np.float64]:
    """Per user in [0, 1]: a sharer that never received a share and was active only briefly.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> t = read_events([{"user_id": "new", "coupon_id": "c", "ts": 0, "recipients": ["old"]},
    ...                  {"user_id": "old", "coupon_id": "c", "ts": 10 * 86400, "recipients": ["x"]}])
    >>> freshness(t, node_features(t), ScoringParams()).tolist()
    [1.0, 0.0, 0.0]
    """
    n = t.n_users
    first = np.full(n, np.inf)
    last = np.full(n, -np.inf)
    np.minimum.at(first, t.sharer, t.ts)
    np.maximum.at(last, t.sharer, t.ts)
    span = np.where(f.attempts > 0, last - first, 0.0) / DAY
    out: NDArray[np.float64] = fresh_score(NUMPY, f.attempts, f.in_contacts, span, p).astype(np.float64)
    return out


def receipt_claims(t: EventTable) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per user: deliveries received with a reported outcome, and the claims on them.

    A delivery's claims are split evenly over its recipients (the outcome
    counts claims per share, not per recipient).
    """
    n = t.n_users
    ok, per = _claim_credit(t)
    got = np.bincount(t.edge_dst, weights=ok.astype(np.float64), minlength=n).astype(np.float64)
    claims = np.bincount(t.edge_dst, weights=per, minlength=n).astype(np.float64)
    return got, claims


def _claim_credit(t: EventTable) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Per delivered edge: whether its share reported an outcome, and the
    claims credited to its recipient (claimed / delivered, at most 1)."""
    ev = t.edge_event
    ok = (t.claimed[ev] >= 0) & (t.decision[ev] == ALLOW)
    per = np.where(ok, t.claimed[ev] / np.maximum(np.where(t.delivered[ev] > 0, t.delivered[ev],
                                                                t.n_recipients[ev]), 1), 0.0)
    return ok, np.minimum(per, 1.0)


def pair_claims(t: EventTable) -> sp.csr_matrix:
    """Sharer x recipient: the mean claim credit of the pair's deliveries (0 without outcomes).

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": "a", "coupon_id": "c1", "recipients": ["b", "c"], "ts": 1.0,
    ...                   "decision": "allow", "delivered": 2, "claimed": 1},
    ...                  {"user_id": "a", "coupon_id": "c1", "recipients": ["b"], "ts": 2.0, "decision": "allow"}])
    >>> pair_claims(t).toarray().round(2).tolist()
    [[0.0, 0.25, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    _, per = _claim_credit(t)
    shape = (t.n_users, t.n_users)
    total = sp.csr_matrix((per, (t.edge_src, t.edge_dst)), shape=shape)
    count = sp.csr_matrix((np.ones_like(per), (t.edge_src, t.edge_dst)), shape=shape)
    out = sp.csr_matrix(total.multiply(count.power(-1)))
    out.eliminate_zeros()
    return out


def binomial_surprise(k: NDArray[np.float64], n: NDArray[np.float64], p0: float) -> NDArray[np.float64]:
    """``-log10 P(X >= k)`` for ``X ~ Binomial(n, p0)`` (0 when ``k`` is 0).

    Examples
    --------
    >>> binomial_surprise(np.array([0.0, 5.0]), np.array([5.0, 5.0]), 0.1).round(1).tolist()
    [0.0, 5.0]
    """
    kk, nn = np.round(k), np.round(np.maximum(n, k))
    out: NDArray[np.float64] = np.where(kk > 0, -binom.logsf(kk - 1, nn, p0) / np.log(10), 0.0)
    return out


def receiver_signals(t: EventTable, f: NodeFeatures, p: ScoringParams) -> tuple[Signal, Signal]:
    """(hoarder, feeder) signals over users.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> ev = [{"user_id": f"f{i}", "coupon_id": "c", "ts": 100.0 * i, "recipients": ["h", f"r{i}"],
    ...        "delivered": 2, "claimed": 2} for i in range(20)]
    >>> ev += [{"user_id": f"u{i}", "coupon_id": "c", "ts": 4 * 86400.0 * d, "recipients": [f"u{(i + 1) % 50}"],
    ...         "delivered": 1, "claimed": int((i + d) % 4 == 0)} for i in range(50) for d in range(3)]
    >>> t = read_events(ev)
    >>> hoard, feed = receiver_signals(t, node_features(t), ScoringParams())
    >>> i = {u: k for k, u in enumerate(t.users.tolist())}
    >>> round(float(hoard.score[i["h"]]), 2), round(float(feed.score[i["f3"]]), 2), float(hoard.score[i["u5"]])
    (0.99, 0.96, 0.0)
    """
    s = sp.csr_matrix(f.share_bin)
    st = sp.csr_matrix(s.T)
    fresh = freshness(t, f, p)
    n_in = f.in_contacts
    fresh_in = np.asarray(st @ fresh).ravel()
    p_fresh = float(np.clip(fresh_in.sum() / max(n_in.sum(), 1.0), 1e-3, 0.5))
    fresh_sur = binomial_surprise(fresh_in, n_in, p_fresh)
    got, claims = receipt_claims(t)
    claim_sur = binomial_surprise(claims, got, f.claim_rate0)
    hoard0 = hoarder_score(NUMPY, fresh_sur, claim_sur, f.allowed, p)
    hoard = hoard0
    feed = np.zeros(t.n_users)
    sus_in = np.zeros(t.n_users)
    for _ in range(p.receiver_rounds):
        feed = feeder_score(NUMPY, fresh, _row_max(s, hoard))
        sus_in = np.asarray(st @ feed).ravel()
        hoard = noisy_or(NUMPY, hoard0, inflow_score(NUMPY, sus_in, n_in, f.allowed, p))
    hoarder = Signal.of(HOARDER, fresh_in, hoard, {"n_in": n_in, "claims": claims, "got": got})
    feeder = Signal.of(FEEDER, _row_max(s, hoard), feed, {"fresh": fresh})
    return hoarder, feeder


def _row_max(m: sp.csr_matrix, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per row of the binary matrix ``m``, the largest ``values`` among its columns."""
    out = np.zeros(m.shape[0])
    rows = np.flatnonzero(np.diff(m.indptr))
    if rows.size:
        out[rows] = np.maximum.reduceat(values[m.indices], m.indptr[rows])
    return out
