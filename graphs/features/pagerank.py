"""PageRank by vectorised power iteration over a sparse matrix.

The walk follows the rows of a weighted matrix (entry ``(i, j)``: weight of
the link ``i -> j``); each step is one sparse matrix-vector product plus the
shared step :func:`graphs.signals.formulas.pagerank_step`, which the Spark
engine applies to its joined columns: the same conventions as networkx's
``pagerank`` (weights split a node's rank, dangling nodes' rank spread
uniformly, uniform teleport, start from the uniform vector, stop when the
L1 change falls below ``n * tol``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graphs.signals.formulas import NUMPY, pagerank_step

__all__ = ["pagerank"]


def pagerank(m: sp.spmatrix, damping: float = 0.85, max_iter: int = 20, tol: float = 1e-6) -> NDArray[np.float64]:
    """PageRank of every node of the weighted directed graph ``m`` (sums to 1).

    Parameters
    ----------
    m
        Square sparse matrix; entry ``(i, j)`` is the weight of the link ``i -> j``.
    damping
        Probability that the walker follows a link rather than jumping anywhere.
    max_iter
        Power-iteration steps at most.
    tol
        Stop once the L1 change of the ranks is below ``n * tol``.

    Returns
    -------
    ndarray
        The rank of each node.

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[0.0, 1.0], [0.0, 0.0]]))
    >>> pagerank(m, max_iter=100, tol=1e-12).round(4).tolist()
    [0.3509, 0.6491]
    """
    a = sp.csr_matrix(m, dtype=np.float64)
    n = a.shape[0]
    if n == 0:
        return np.zeros(0)
    out_w = np.asarray(a.sum(axis=1)).ravel()
    dangling = out_w <= 0
    inv = np.divide(1.0, out_w, out=np.zeros(n), where=~dangling)
    # column j of walk_t: where node j's rank goes, split by its links' weights
    walk_t = (sp.diags(inv) @ a).T.tocsr()
    r = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new: NDArray[np.float64] = pagerank_step(NUMPY, walk_t @ r, float(r[dangling].sum()), n, damping)
        err = float(np.abs(new - r).sum())
        r = new
        if err < n * tol:
            break
    return r
