"""KOL score in [0, 1] per user: three kinds of high-value node plus realised propagation.

The three kinds (hubs, connectors, active sharers) are those of WeChat's coupon-sharing guide.

Signals:

- ``community_hub``: many contacts inside the own community (label
  propagation communities of the undirected share graph);
- ``bridge``: links spread over several communities (participation
  coefficient, weighted by how many links there are);
- ``active_sharer``: many delivered shares;
- ``secondary_propagation``: later shares and claims that descend from the
  node's shares in the coupons' cascades, the outcome KOLs are valued for;
- ``influence``: PageRank over the share graph with every link reversed
  (recipient -> sharer, weighted by deliveries), relative to the average
  user: a sharer ranks high when its recipients themselves reach many,
  however many steps down, which neither the own share count
  (``active_sharer``) nor the realised cascades of the observed coupons
  (``secondary_propagation``) see.

Each is log-scaled against its 99th percentile, so one giant hub does not
squash everybody else.  Realised propagation weighs most; the structural
signals rank nodes whose cascades are still young.  The score is multiplied
by ``1 - anomaly``: a ring that reshares among itself has propagation but is
no opinion leader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from graphs.events.table import EventTable
from graphs.features.cascade import Propagation
from graphs.features.community import community_roles, label_propagation
from graphs.features.nodes import NodeFeatures
from graphs.features.pagerank import pagerank
from graphs.signals.catalog import ACTIVE_SHARER, BRIDGE, COMMUNITY_HUB, INFLUENCE, SECONDARY_PROPAGATION
from graphs.signals.formulas import NUMPY, influence_score, kol_combine, kol_discount, log_scale
from graphs.signals.node_keys import node_keys
from graphs.signals.ops import high_quantile
from graphs.signals.params import ScoringParams
from graphs.signals.signal import Signal

__all__ = ["KolResult", "kol_scores"]


@dataclass(frozen=True)
class KolResult:
    """KOL of every user (``user``; ``raw`` before the anomaly discount), its signals, communities."""

    user: NDArray[np.float64]
    raw: NDArray[np.float64]
    signals: list[Signal]
    community: NDArray[np.int64]


def kol_scores(t: EventTable, f: NodeFeatures, propagation: Propagation,
               anomaly: NDArray[np.float64] | None = None, params: ScoringParams | None = None,
               *, seed: int = 0) -> KolResult:
    """KOL score of every user (and its signals, and the communities).

    Parameters
    ----------
    t, f
        Events and their features (:func:`graphs.features.nodes.node_features`).
    propagation
        Output of :func:`graphs.features.cascade.propagation_by_user`.
    anomaly
        Per-user anomaly in [0, 1] (discounts the score); zeros if omitted.
    params
        Thresholds and weights.
    seed
        Seed of the community detection.

    Returns
    -------
    KolResult
        ``user`` (scores), ``raw``, ``signals`` (list of Signal), ``community`` (labels).

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> from graphs.features.cascade import propagation_by_user
    >>> ev = [{"user_id": "hub", "coupon_id": "c", "ts": 0, "recipients": [f"f{i}" for i in range(8)]}]
    >>> ev += [{"user_id": f"f{i}", "coupon_id": "c", "ts": 10, "recipients": [f"g{i}"]} for i in range(8)]
    >>> t = read_events(ev)
    >>> k = kol_scores(t, node_features(t), propagation_by_user(t))
    >>> int(np.argmax(k.user)), t.users[0]
    (0, 'hub')
    """
    p = params or ScoringParams()
    n = t.n_users
    s = f.share_bin
    adj = (s + s.T).tocsr()
    adj.data[:] = 1.0
    keys = node_keys(map(str, t.users), seed)
    labels = label_propagation(adj, keys=keys, max_iter=p.lpa_iter)
    roles = community_roles(adj, labels)
    intra, deg, part = roles.intra, roles.degree, roles.participation
    hub = Signal.of(COMMUNITY_HUB, intra, log_scale(NUMPY, intra, high_quantile(intra)),
                    {"size": np.bincount(labels)[labels].astype(np.float64)})
    bridge_score = part * log_scale(NUMPY, deg, high_quantile(deg))
    bridge = Signal.of(BRIDGE, roles.n_communities, bridge_score, {"part": part})
    active = Signal.of(ACTIVE_SHARER, f.allowed, log_scale(NUMPY, f.allowed, high_quantile(f.allowed)))
    sec = propagation.secondary
    spread = Signal.of(SECONDARY_PROPAGATION, sec, log_scale(NUMPY, sec, high_quantile(sec, 0.995)),
                       {"shares": propagation.desc_shares, "claims": propagation.desc_claims})
    relative = n * pagerank(f.share.T, p.pagerank_damping, p.pagerank_iter, p.pagerank_tol)
    influence = Signal.of(INFLUENCE, relative,
                          influence_score(NUMPY, relative, high_quantile(relative - 1.0)))
    raw = kol_combine(NUMPY, spread.score, hub.score, bridge.score, active.score, influence.score, p)
    a = np.zeros(n) if anomaly is None else anomaly
    return KolResult(user=kol_discount(NUMPY, raw, a), raw=raw, signals=[spread, hub, bridge, active, influence],
                     community=labels)
