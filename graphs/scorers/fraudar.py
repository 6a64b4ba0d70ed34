"""A plain FRAUDAR baseline (Hooi et al., KDD 2016), for the quality benchmark only.

The scorer's dense-block signal (:mod:`graphs.scorers.blocks`) adds pruning,
closure and thresholds around FRAUDAR's peeling.  This baseline has none of
them: it peels the whole weighted sharer x recipient matrix block after
block, and every node scores the density of the first block it falls in
(0 outside every block).  A device scores its worst account.  It tells how
much the scorer's other signals add over the textbook method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graphs.features.matrices import max_over_links
from graphs.features.nodes import NodeFeatures
from graphs.scorers.dense import batch_peel, fraudar_weights, greedy_peel

__all__ = ["FraudarScores", "fraudar_baseline"]


@dataclass(frozen=True)
class FraudarScores:
    """Block density of every ``user`` and ``device`` (0 outside every block)."""

    user: NDArray[np.float64]
    device: NDArray[np.float64]
    blocks: int


def fraudar_baseline(f: NodeFeatures, *, max_blocks: int = 20, exact_limit: int = 200_000) -> FraudarScores:
    """Peel up to ``max_blocks`` blocks; each member scores its block's density.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> from graphs.features.nodes import node_features
    >>> ev = [{"user_id": f"r{i}", "coupon_id": "c", "ts": 0, "recipients": [f"t{j}" for j in range(4)]}
    ...       for i in range(4)]
    >>> ev += [{"user_id": "a", "coupon_id": "c", "ts": 0, "recipients": ["b"]}]
    >>> s = fraudar_baseline(node_features(read_events(ev)), max_blocks=1)
    >>> bool(s.user[0] > 0), float(s.user[-1])
    (True, 0.0)
    """
    w = fraudar_weights(f.share)
    n = w.shape[0]
    rows_ok = np.ones(n, bool)
    cols_ok = np.ones(n, bool)
    score = np.zeros(n)
    found = 0
    for _ in range(max_blocks):
        r_idx, c_idx = np.flatnonzero(rows_ok), np.flatnonzero(cols_ok)
        sub = w[r_idx][:, c_idx].tocsr()
        if sub.nnz == 0:
            break
        br, bc, dens = greedy_peel(sub) if sub.nnz <= exact_limit else batch_peel(sub)
        if br.size == 0 or dens <= 0:
            break
        rows, cols = r_idx[br], c_idx[bc]
        members = np.union1d(rows, cols)
        new = members[score[members] == 0]
        score[new] = dens
        rows_ok[rows] = False
        cols_ok[cols] = False
        found += 1
    dev = max_over_links(sp.csr_matrix(f.device_user_bin), score)
    return FraudarScores(user=score, device=dev, blocks=found)
