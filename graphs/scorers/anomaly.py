"""Anomaly score in [0, 1] per user and per device, with its signals.

Sharer-side evidence comes first (device farms, refused attempts, low claim
rates, star sprays, dense blocks, lockstep timing, non-decaying bursts) and
is combined by noisy-OR: each signal is a separate reason to doubt a node,
and two weak reasons together are stronger than either.  Fake sinks are then
found from the sharers: an account that mostly receives from suspicious
sharers and does nothing of its own.  A device scores by its own farm signal
and by the worst account that used it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import breadth_first_order, connected_components

from graphs.events.table import EventTable
from graphs.features.matrices import max_over_links
from graphs.features.nodes import NodeFeatures
from graphs.scorers.blocks import dense_block_signal
from graphs.scorers.closed import closed_group_signal
from graphs.scorers.receivers import pair_claims, receiver_signals
from graphs.scorers.structural import (
    farm_signals,
    low_claim_signal,
    refused_signal,
    rotation_signal,
    sink_signal,
    star_signal,
)
from graphs.scorers.temporal import burst_signal, lockstep_signal
from graphs.signals.catalog import LINKED_ACCOUNT
from graphs.signals.formulas import NUMPY, noisy_or
from graphs.signals.params import ScoringParams
from graphs.signals.signal import Signal

__all__ = ["AnomalyResult", "anomaly_scores", "top_component"]


@dataclass(frozen=True)
class AnomalyResult:
    """Anomaly in [0, 1] of every ``user`` and ``device``, and the signals behind it."""

    user: NDArray[np.float64]
    device: NDArray[np.float64]
    user_signals: list[Signal]
    device_signals: list[Signal]


def anomaly_scores(t: EventTable, f: NodeFeatures, params: ScoringParams | None = None,
                   *, seed: int = 0) -> AnomalyResult:
    """Anomaly of every user and device.

    Parameters
    ----------
    t
        The events.
    f
        Features from :func:`graphs.features.nodes.node_features`.
    params
        Thresholds; defaults to :class:`graphs.signals.params.ScoringParams`.
    seed
        Seed for the sampling of very large lockstep clusters.

    Returns
    -------
    AnomalyResult
        ``user`` and ``device`` score arrays, ``user_signals`` and
        ``device_signals`` (lists of :class:`graphs.signals.signal.Signal`).

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> t = read_events([{"user_id": f"u{i}", "device_id": "farm", "coupon_id": "c",
    ...                   "ts": 100.0 * i} for i in range(10)])
    >>> a = anomaly_scores(t, node_features(t))
    >>> float(a.device[0]), float(a.user.min())
    (1.0, 1.0)
    """
    p = params or ScoringParams()
    farm_dev, farm_usr = farm_signals(f, p)
    refused, star = refused_signal(f, p), star_signal(f, p)
    dense = dense_block_signal(f.share, p.dense_density, p.dense_closure, max_blocks=p.dense_max_blocks,
                               min_side=p.dense_min_side, patience=p.dense_patience, max_share=p.dense_max_share,
                               claims=pair_claims(t), reach=(*p.dense_reach, p.dense_reach_claim))
    rotation = rotation_signal(f, p)
    closed = closed_group_signal(f.share_bin, p.closed_per_member, min_size=p.closed_size[0],
                                 max_size=p.closed_size[1])
    sharer = [farm_usr, refused, low_claim_signal(f, p), star, dense,
              lockstep_signal(t, p, seed=seed), burst_signal(t, p), rotation, closed]
    sharer_score = noisy_or(NUMPY, *(s.score for s in sharer))
    # infrastructure fraud needs accounts of its own to share with: only it makes sinks
    infra = noisy_or(NUMPY, farm_usr.score, refused.score, star.score, dense.score, rotation.score)
    # a sprayer under the gate still makes sinks of the recipients it owns, by its spray score
    sink = sink_signal(f, infra, p, star=star.score)
    hoarder, feeder = receiver_signals(t, f, p)
    user_score = noisy_or(NUMPY, sharer_score, sink.score, hoarder.score, feeder.score)
    # the device's own farm evidence is counted once, at the device: a family phone's
    # accounts must not hand it back as "a suspicious account used this device"
    behaviour = noisy_or(NUMPY, *(s.score for s in sharer[1:]), sink.score, hoarder.score, feeder.score)
    worst = max_over_links(f.device_user_bin, behaviour)
    linked = Signal.of(LINKED_ACCOUNT, worst, worst)
    device_score = noisy_or(NUMPY, farm_dev.score, linked.score)
    return AnomalyResult(user=user_score, device=device_score, user_signals=[*sharer, sink, hoarder, feeder],
                         device_signals=[farm_dev, linked])


def top_component(t: EventTable, f: NodeFeatures, user_score: NDArray[np.float64],
                  threshold: float = 0.5, max_users: int | None = None) -> NDArray[np.int64]:
    """Users of the largest connected group of suspicious users (for the report's picture).

    Suspicious users (score at least ``threshold``) are connected by share
    edges between them or through a device they both used.  Devices join the
    component graph as nodes of their own, so a device with many accounts
    costs its links, never their pairs.  With ``max_users``, a larger
    component is cut to the users nearest (breadth first) to its worst user,
    so the piece stays connected.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> t = read_events([{"user_id": "a", "coupon_id": "c", "ts": 0, "recipients": ["b"]}])
    >>> top_component(t, node_features(t), np.array([0.9, 0.8])).tolist()
    [0, 1]
    """
    sus = user_score >= threshold
    if not sus.any():
        return np.zeros(0, dtype=np.int64)
    n, d = t.n_users, t.n_devices
    keep = sp.diags(sus.astype(np.float64))
    s = keep @ f.share_bin @ keep
    du = f.device_user_bin @ keep  # devices x suspicious users
    g = sp.bmat([[s, du.T], [du, None]], format="csr") if d else s
    _, lab = connected_components(g, directed=False)
    counts = np.bincount(lab[:n][sus])
    members = np.flatnonzero(sus & (lab[:n] == int(np.argmax(counts)))).astype(np.int64)
    if max_users is None or members.size <= max_users:
        return members
    worst = int(members[np.argmax(user_score[members])])
    order = breadth_first_order(g, worst, directed=False, return_predecessors=False)
    near = order[(order < n)]
    return np.sort(near[sus[near]][:max_users]).astype(np.int64)
