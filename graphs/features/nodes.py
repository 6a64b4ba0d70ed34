"""Per-node counts every score starts from, computed once from the event arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graphs.events.table import ALLOW, EventTable
from graphs.features.matrices import binary, device_user_matrix, share_matrix

__all__ = ["NodeFeatures", "node_features", "typical_claim_rate"]

Vec = NDArray[np.float64]


@dataclass(frozen=True)
class NodeFeatures:
    """Share and device matrices plus per-user and per-device counts.

    Matrices: ``share`` (sharer x recipient deliveries), ``share_bin`` (its
    pattern), ``share_try`` (deliveries plus recipients of refused
    attempts), ``device_user`` (device x user attempts), ``device_user_bin``.
    Per user: ``attempts``, ``allowed``, ``refused``, ``sent`` (recipients of
    shares with an outcome), ``claims``, ``out_contacts``, ``in_contacts``,
    ``in_deliveries``.  Per device: ``dev_users``, ``dev_attempts``.
    ``claim_rate0`` is the typical claim rate per recipient.  The same
    counts over the shares that name their recipients (a chat, a group;
    not a broadcast such as a timeline post, which gives a count only):
    ``named_allowed``, ``named_sent``, ``named_claims``.
    """

    share: sp.csr_matrix
    share_bin: sp.csr_matrix
    share_try: sp.csr_matrix
    device_user: sp.csr_matrix
    device_user_bin: sp.csr_matrix
    attempts: Vec
    allowed: Vec
    refused: Vec
    sent: Vec
    claims: Vec
    out_contacts: Vec
    in_contacts: Vec
    in_deliveries: Vec
    dev_users: Vec
    dev_attempts: Vec
    claim_rate0: float
    named_allowed: Vec
    named_sent: Vec
    named_claims: Vec


def node_features(t: EventTable) -> NodeFeatures:
    """Compute :class:`NodeFeatures` from the events.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": "a", "device_id": "d", "coupon_id": "c", "ts": 0,
    ...                   "recipients": ["b", "c"], "delivered": 2, "claimed": 1}])
    >>> f = node_features(t)
    >>> f.out_contacts.tolist(), f.claims.tolist(), f.dev_users.tolist()
    ([2.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0])
    """
    n = t.n_users
    s = share_matrix(t)
    s_bin = binary(s)
    du = device_user_matrix(t)
    du_bin = binary(du)
    allowed = t.decision == ALLOW
    with_outcome = allowed & (t.claimed >= 0)
    sent_ev = np.where(t.delivered >= 0, t.delivered, t.n_recipients).astype(np.float64)
    sent = np.bincount(t.sharer[with_outcome], weights=sent_ev[with_outcome], minlength=n).astype(np.float64)
    claims = np.bincount(t.sharer[with_outcome], weights=t.claimed[with_outcome], minlength=n).astype(np.float64)
    # a share names its recipients when it delivered to listed accounts (it has edges)
    named = np.bincount(t.edge_event, minlength=t.n_events) > 0
    named_out = with_outcome & named
    named_sent = np.bincount(t.sharer[named_out], weights=sent_ev[named_out], minlength=n).astype(np.float64)
    named_claims = np.bincount(t.sharer[named_out], weights=t.claimed[named_out], minlength=n).astype(np.float64)
    attempts = np.bincount(t.sharer, minlength=n).astype(np.float64)
    n_allowed = np.bincount(t.sharer[allowed], minlength=n).astype(np.float64)
    attempted = sp.csr_matrix((np.ones(t.attempt_src.size), (t.attempt_src, t.attempt_dst)),
                              shape=(n, n))
    attempted.sum_duplicates()
    return NodeFeatures(
        share=s, share_bin=s_bin, share_try=(s + attempted).tocsr(), device_user=du, device_user_bin=du_bin,
        attempts=attempts, allowed=n_allowed, refused=attempts - n_allowed, sent=sent, claims=claims,
        out_contacts=np.diff(s_bin.indptr).astype(np.float64),
        in_contacts=np.bincount(s_bin.indices, minlength=n).astype(np.float64),
        in_deliveries=np.asarray(s.sum(axis=0)).ravel(),
        dev_users=np.diff(du_bin.indptr).astype(np.float64),
        dev_attempts=np.asarray(du.sum(axis=1)).ravel(),
        claim_rate0=typical_claim_rate(sent, claims),
        named_allowed=np.bincount(t.sharer[allowed & named], minlength=n).astype(np.float64),
        named_sent=named_sent, named_claims=named_claims,
    )


def typical_claim_rate(sent: Vec, claims: Vec) -> float:
    """Median per-sharer claim rate among sharers with at least 5 recipients.

    A median, not the pooled rate, so that a few huge spammers cannot drag
    the yardstick down with them.

    Examples
    --------
    >>> typical_claim_rate(np.array([10.0, 10, 10, 1]), np.array([1.0, 2, 3, 1]))
    0.2
    """
    ok = sent >= 5
    if not ok.any():
        ok = sent > 0
    if not ok.any():
        return 0.2
    return float(max(np.median(claims[ok] / sent[ok]), 0.01))
