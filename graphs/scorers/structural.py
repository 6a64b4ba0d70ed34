"""Structural anomaly signals: device farms, refused attempts, low claims, sprays, sinks.

Each function takes the features of :func:`graphs.features.nodes.node_features`
and returns :class:`graphs.signals.signal.Signal` objects over users or devices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.stats import binom

from graphs.features.matrices import binary, max_over_links
from graphs.features.nodes import NodeFeatures, typical_claim_rate
from graphs.signals.catalog import (
    DEVICE_FARM,
    DEVICE_ROTATION,
    FAKE_SINK,
    LOW_CLAIM,
    REFUSED,
    STAR_SPRAY,
    USER_FARM,
)
from graphs.signals.formulas import (
    NUMPY,
    claim_yardstick,
    effective_trials,
    farm_score,
    low_claim_score,
    recipients_per_share,
    refused_score,
    rotation_score,
    sink_score,
    star_score,
)
from graphs.signals.formulas import claim_gap as gap_formula
from graphs.signals.params import ScoringParams
from graphs.signals.signal import Signal

__all__ = ["claim_gap", "claim_tail_log10", "farm_signals", "low_claim_signal",
           "owned_recipients", "refused_signal", "rotation_signal", "sink_signal", "star_signal"]


def farm_signals(f: NodeFeatures, p: ScoringParams) -> tuple[Signal, Signal]:
    """(device signal, user signal): many accounts on one device.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> t = read_events([{"user_id": f"u{i}", "device_id": "d", "coupon_id": "c", "ts": i}
    ...                  for i in range(8)])
    >>> dev, usr = farm_signals(node_features(t), ScoringParams())
    >>> dev.score.tolist(), usr.score[:2].tolist()
    ([1.0], [1.0, 1.0])
    """
    n_users = f.dev_users
    dev_score = farm_score(NUMPY, n_users, p)
    dev = Signal.of(DEVICE_FARM, n_users, dev_score)
    du_t = sp.csr_matrix(f.device_user_bin.T)
    worst = max_over_links(du_t, n_users)
    usr = Signal.of(USER_FARM, worst, farm_score(NUMPY, worst, p))
    return dev, usr


def rotation_signal(f: NodeFeatures, p: ScoringParams) -> Signal:
    """An account rotating several devices, each shared with other accounts (a ring's device pool).

    A phone and a tablet, or a family phone, give two devices or a few
    co-users; a ring whose accounts take turns on a pool of phones gives
    three devices or more and many distinct co-users.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> ev = [{"user_id": f"r{i}", "device_id": f"d{(2 * i + k) % 5}", "coupon_id": "c", "ts": i}
    ...       for i in range(8) for k in range(3)]  # eight accounts taking turns on five phones
    >>> ev += [{"user_id": "mum", "device_id": d, "coupon_id": "c", "ts": 0} for d in ("phone", "tablet")]
    >>> ev += [{"user_id": "kid", "device_id": "tablet", "coupon_id": "c", "ts": 0}]
    >>> s = rotation_signal(node_features(read_events(ev)), ScoringParams())
    >>> s.score.tolist()[:8] == [1.0] * 8, s.value[:8].tolist() == [3.0] * 8, s.extra["co_users"][0]
    (True, True, np.float64(7.0))
    >>> s.score[8:].tolist(), s.value[8:].tolist()
    ([0.0, 0.0], [2.0, 1.0])
    """
    du = sp.csr_matrix(f.device_user_bin)
    ud = sp.csr_matrix(du.T)
    devices = np.diff(ud.indptr).astype(np.float64)
    co = binary(ud @ du)
    co_users = np.diff(co.indptr).astype(np.float64) - (devices > 0)
    score = rotation_score(NUMPY, devices, co_users, p)
    return Signal.of(DEVICE_ROTATION, devices, score, {"co_users": co_users})


def refused_signal(f: NodeFeatures, p: ScoringParams) -> Signal:
    """Attempts the online rules challenged or blocked (evidence even when not delivered)."""
    att = f.attempts
    ref = f.refused
    score = refused_score(NUMPY, ref, att, p)
    return Signal.of(REFUSED, ref, score, {"attempts": att})


def claim_gap(f: NodeFeatures, p: ScoringParams) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Shrunk claim rate per sharer and its relative shortfall against the typical rate."""
    shrunk, gap = gap_formula(NUMPY, f.claims, f.sent, f.claim_rate0, p)
    return shrunk, gap


def low_claim_signal(f: NodeFeatures, p: ScoringParams) -> Signal:
    """Recipients of this sharer claim far less than recipients usually do.

    Needs both a large shortfall and a small binomial tail probability of
    so few claims at the typical rate: one unlucky afternoon is not a signal.
    The tail counts a share as at most the mean recipients per share
    (:func:`graphs.signals.formulas.effective_trials`): one unclaimed post
    to a chat of thirty is one unlucky share, not thirty refusals.

    Shares that name their recipients (a chat, a group) and broadcasts (a
    timeline post: a count of who may see it) are judged apart, each
    against the typical rate and recipients per share of its own kind
    (:func:`graphs.signals.formulas.claim_yardstick`); a node keeps the
    stronger.  A broadcast's audience claims far less often than chosen
    friends do: mixed in, it dragged the yardstick down, so a spammer
    pestering named friends fell short of it by less, and real posters fell
    short of it by chance.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> ev = [{"user_id": "spam", "coupon_id": "c", "ts": i, "recipients": [f"f{i % 3}"],
    ...        "delivered": 1, "claimed": 0} for i in range(60)]
    >>> ev += [{"user_id": f"ok{i}", "coupon_id": "c", "ts": i, "recipients": [f"g{i}", f"h{i}"],
    ...         "delivered": 2, "claimed": 1} for i in range(3) for _ in range(3)]
    >>> s = low_claim_signal(node_features(read_events(ev)), ScoringParams())
    >>> round(float(s.score[0]), 2), float(s.score[1]), s.row(0)["detail"]
    (1.0, 0.0, '0 claims from 60 recipients (typical rate 50%)')
    """
    graph = (f.claim_rate0, recipients_per_share(float(f.sent.sum()), float(f.allowed.sum())))
    named = _low_claim(f.named_claims, f.named_sent, f.named_allowed, graph, p)
    broadcast = _low_claim(f.claims - f.named_claims, f.sent - f.named_sent, f.allowed - f.named_allowed, graph, p)
    use = named[0] >= broadcast[0]
    claims = np.where(use, f.named_claims, f.claims - f.named_claims)
    sent = np.where(use, f.named_sent, f.sent - f.named_sent)
    return Signal.of(LOW_CLAIM, claims / np.maximum(sent, 1), np.maximum(named[0], broadcast[0]),
                     {"claims": claims, "sent": sent, "p0": np.where(use, named[1], broadcast[1])})


def _low_claim(claims: NDArray[np.float64], sent: NDArray[np.float64], allowed: NDArray[np.float64],
               graph: tuple[float, float], p: ScoringParams) -> tuple[NDArray[np.float64], float]:
    """(score, typical rate) of the low-claim signal over one kind of share."""
    own = (typical_claim_rate(sent, claims), recipients_per_share(float(sent.sum()), float(allowed.sum())))
    p0, per_share = claim_yardstick(int((sent >= 5).sum()), own, graph, p)
    _shrunk, gap = gap_formula(NUMPY, claims, sent, p0, p)
    claims_eff, sent_eff = effective_trials(NUMPY, claims, sent, allowed, per_share)
    return low_claim_score(NUMPY, gap, claim_tail_log10(claims_eff, sent_eff, p0), p), p0


def claim_tail_log10(claims: NDArray[np.float64], sent: NDArray[np.float64], p0: float) -> NDArray[np.float64]:
    """``-log10`` of the binomial probability of at most ``claims`` claims from ``sent`` at rate ``p0``.

    Both engines call this (the Spark engine on Arrow batches), so the tail is computed one way.

    Examples
    --------
    >>> claim_tail_log10(np.array([0.0]), np.array([10.0]), 0.5).round(2).tolist()
    [3.01]
    """
    out: NDArray[np.float64] = -binom.logcdf(np.round(claims), np.round(sent), p0) / np.log(10)
    return out


def owned_recipients(f: NodeFeatures) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per sharer, recipients that hear only from it, more than once, and never share.

    Returns
    -------
    owned, owned_share
        Their number, and their share of the sharer's deliveries (0 for a
        sharer without deliveries).

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> ev = [{"user_id": "s", "coupon_id": "c", "ts": i, "recipients": ["pool"]} for i in range(3)]
    >>> ev += [{"user_id": "s", "coupon_id": "c", "ts": 9, "recipients": ["a", "b", "c"]}]
    >>> owned, share = owned_recipients(node_features(read_events(ev)))
    >>> float(owned[0]), float(share[0])
    (1.0, 0.5)
    """
    s = f.share.tocoo()
    v = s.col
    owned = (f.in_contacts[v] == 1) & (f.allowed[v] == 0) & (s.data >= 2)
    n = s.shape[0]
    count = np.bincount(s.row, weights=owned, minlength=n).astype(np.float64)
    owned_w = np.bincount(s.row, weights=owned * s.data, minlength=n)
    total = np.bincount(s.row, weights=s.data, minlength=n)
    share = np.divide(owned_w, total, out=np.zeros(n), where=total > 0)
    return count, share


def star_signal(f: NodeFeatures, p: ScoringParams) -> Signal:
    """One sharer, many distinct recipients who never claim, or who exist only for it.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> ev = [{"user_id": "s", "coupon_id": f"c{i}", "ts": i, "recipients": [f"k{j}" for j in range(i % 3, 60, 3)],
    ...        "delivered": 20, "claimed": 0} for i in range(6)]
    >>> float(star_signal(node_features(read_events(ev)), ScoringParams()).score[0])
    1.0
    """
    _, gap = claim_gap(f, p)
    fan = f.out_contacts
    owned, owned_share = owned_recipients(f)
    score = star_score(NUMPY, fan, gap, owned, owned_share, p)
    return Signal.of(STAR_SPRAY, fan, score, {"gap": gap, "owned": owned, "owned_share": owned_share})


def sink_signal(f: NodeFeatures, sharer_anomaly: NDArray[np.float64], p: ScoringParams,
                star: NDArray[np.float64] | None = None) -> Signal:
    """Accounts that mostly receive from suspicious sharers and share nothing real themselves.

    ``sharer_anomaly`` is the sharers' suspicion from the *infrastructure*
    signals (farms, sprays, dense blocks, refused attempts): fraud that needs
    accounts of its own to share with.  Spam towards real friends (low claim
    rates, bursts, lockstep pushes) reaches real people, who are not sinks.

    A sharer counts once its suspicion reaches ``sink_suspect``.  Under that
    gate it still counts for its *captive audience* (recipients that hear
    from it alone, refused attempts included, and never share), with its
    ``star`` score (the ``star_spray`` score of every user) instead of its
    whole suspicion.  Such a recipient is nothing but that sharer's
    audience, and a spray score is a statement about exactly that audience;
    the gate is there for real users, who hear from several sharers or share
    themselves, and they keep it.  A recipient reached once stays at a third
    of the sharer's spray score, as under the gate.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> ev = [{"user_id": "s", "coupon_id": "c", "ts": i, "recipients": ["pool", f"x{i}"]} for i in range(3)]
    >>> f = node_features(read_events(ev))
    >>> anomaly = np.array([0.45, 0, 0, 0, 0])  # the sharer s is under the gate
    >>> sink_signal(f, anomaly, ScoringParams()).score.tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0]
    >>> sink_signal(f, anomaly, ScoringParams(), star=anomaly).score.round(2).tolist()
    [0.0, 0.45, 0.15, 0.15, 0.15]
    """
    s = f.share_try  # a refused attempt at a sink still shows who it is for
    flagged = sharer_anomaly >= p.sink_suspect
    st = sp.csr_matrix(s.T)  # recipients x sharers
    # per receipt edge: the suspicion its sharer brings to this recipient (0: it does not count)
    weight = (flagged * sharer_anomaly)[st.indices]
    counts = flagged[st.indices].astype(np.float64)
    if star is not None:
        captive = _captive(st, f) & ~flagged[st.indices] & (star[st.indices] > 0)
        weight = np.where(captive, star[st.indices], weight)
        counts = np.where(captive, 1.0, counts)
    sus_in = _row_sum(st, st.data * weight)
    sus_cnt = _row_sum(st, st.data * counts)
    # a sink belongs to somebody: it hears from the same suspicious sharer again and again,
    # where a real user caught by a farm's random spam hears from each one once
    repeat = _row_max(st, counts > 0)
    total_in = np.asarray(s.sum(axis=0)).ravel()
    score, frac = sink_score(NUMPY, sus_in, total_in, sus_cnt, repeat, f.allowed, sharer_anomaly, p)
    return Signal.of(FAKE_SINK, sus_cnt, score, {"frac": frac, "repeat": repeat})


def _captive(st: sp.csr_matrix, f: NodeFeatures) -> NDArray[np.bool_]:
    """Per stored entry of ``st`` (recipients x sharers): its recipient hears from that sharer alone, never sharing."""
    per_row = np.diff(st.indptr)
    rows = np.repeat(np.arange(st.shape[0]), per_row)
    return np.asarray((per_row[rows] == 1) & (f.allowed[rows] == 0), dtype=bool)


def _row_sum(m: sp.csr_matrix, data: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per row of ``m``, the sum of ``data`` (one value per stored entry)."""
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    return np.bincount(rows, weights=data, minlength=m.shape[0]).astype(np.float64)


def _row_max(m: sp.csr_matrix, entry_mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per row, the largest stored entry among those in ``entry_mask`` (one flag per stored entry)."""
    data = m.data * entry_mask
    out = np.zeros(m.shape[0])
    rows = np.flatnonzero(np.diff(m.indptr))
    if rows.size:
        out[rows] = np.maximum.reduceat(data, m.indptr[rows])
    return out
