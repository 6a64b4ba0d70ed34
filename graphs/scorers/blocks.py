"""The dense-block signal: users inside a dense, closed FRAUDAR block (see :mod:`graphs.scorers.dense`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphs.scorers.dense import Block, find_blocks
from graphs.signals.catalog import DENSE_BLOCK
from graphs.signals.formulas import NUMPY, ramp
from graphs.signals.signal import Signal

__all__ = ["block_signal", "dense_block_signal"]


def dense_block_signal(s: sp.spmatrix, density: tuple[float, float],
                       closure: tuple[float, float] = (0.75, 0.9), *, max_blocks: int = 30,
                       min_side: int = 3, patience: int | None = 8, max_share: float = 0.2,
                       claims: sp.spmatrix | None = None, reach: tuple[float, int, float] | None = None) -> Signal:
    """Users inside a dense, closed block, as sharers or as recipients.

    The score is ``ramp(density) * ramp(closure)``: dense (FRAUDAR's
    ``f(S)/|S|``) and closed (its recipients hear from little else).
    ``value`` is the density; the detail names the block's rank and closure.
    A "block" holding more than ``max_share`` of all linked users is the
    graph itself (a small, closed world), not a group inside it: score 0;
    with ``claims`` (:func:`graphs.scorers.receivers.pair_claims`) the group
    that claims what it sends itself is looked for inside such a block
    (:func:`graphs.scorers.dense.claimed_core`).

    Examples
    --------
    >>> m = np.zeros((100, 100)); m[:8, 8:16] = 1
    >>> m[np.arange(20, 99), np.arange(21, 100)] = 1  # everybody else: a sparse chain
    >>> s = dense_block_signal(sp.csr_matrix(m), (1.0, 1.4))
    >>> float(s.score[:16].min()), float(s.score[16:].max()), round(float(s.value[0]), 2)
    (1.0, 0.0, 1.56)
    """
    n = s.shape[0]
    csr = sp.csr_matrix(s)
    linked = int(((np.diff(csr.indptr) > 0) | (np.bincount(csr.indices, minlength=n) > 0)).sum())
    blocks = find_blocks(s, min_density=density[0], max_blocks=max_blocks, min_side=min_side,
                         refine_below=closure[0], patience=patience, claims=claims,
                         max_members=max_share * max(linked, 1),
                         reach_closure=None if reach is None else reach[0],
                         reach_sharers=3 if reach is None else reach[1],
                         reach_claim=0.3 if reach is None else reach[2])
    return block_signal(blocks, n, linked, density, closure, max_share)


def block_signal(blocks: list[Block], n: int, linked: int, density: tuple[float, float],
                 closure: tuple[float, float], max_share: float) -> Signal:
    """The dense-block signal over ``n`` nodes from blocks found among ``linked`` linked users.

    A node in several blocks keeps the strongest; the detail names its block.
    """
    value = np.zeros(n)
    score = np.zeros(n)
    rank = np.zeros(n)
    size = np.zeros(n)
    close = np.zeros(n)
    for k, b in enumerate(blocks, 1):
        members = np.union1d(np.union1d(b.rows, b.cols), b.reach)
        d, c = b.density, b.closure
        small = members.size <= max_share * max(linked, 1)
        sc = float(ramp(NUMPY, d, density) * ramp(NUMPY, c, closure)) * small
        m = members[score[members] <= sc]
        value[m], score[m], rank[m], close[m] = d, sc, k, c
        size[m] = b.rows.size + b.cols.size
    return Signal.of(DENSE_BLOCK, value, score, {"rank": rank, "size": size, "closure": close})
