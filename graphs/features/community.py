"""Communities by vectorised label propagation, and per-node community roles.

Each round builds the node x label weight matrix with one sparse
construction (``coo -> csr`` sums duplicate (node, label) pairs) and takes the
heaviest label per row with ``maximum.reduceat``: O(edges) per round, no
Python loop over nodes, so hubs with 100 k links cost what their links cost.
Only half of the nodes adopts its new label each round (semi-synchronous
updates), which stops the label flip-flopping that fully synchronous
propagation shows on bipartite-like parts of a share graph.  Which half, and
which of two equally heavy labels wins, follows each node's key (a CRC-32 of
its id, :func:`graphs.signals.node_keys.node_key`), never the order of the
nodes: the Spark engine makes the same choices from the ids alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graphs.signals.formulas import NUMPY, participation
from graphs.signals.node_keys import lpa_moves, lpa_tie, node_keys

__all__ = ["CommunityRoles", "community_roles", "label_propagation"]


@dataclass(frozen=True)
class CommunityRoles:
    """Hub and connector measures of each node (Guimera-Amaral style).

    ``degree`` (weighted), ``intra`` (weight into the own community),
    ``intra_z`` (``intra`` standardised within the community),
    ``participation`` (``1 - sum_c (k_c / k)^2``, 0 when all links stay in one
    community) and ``n_communities`` (distinct neighbour communities).
    """

    degree: NDArray[np.float64]
    intra: NDArray[np.float64]
    intra_z: NDArray[np.float64]
    participation: NDArray[np.float64]
    n_communities: NDArray[np.float64]


def _label_weights(adj: sp.coo_matrix, labels: NDArray[np.int64], n: int) -> sp.csr_matrix:
    return sp.csr_matrix((adj.data, (adj.row, labels[adj.col])), shape=(n, n))


def _row_argmax(m: sp.csr_matrix, keys: NDArray[np.int64],
                round_no: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows with entries and, for each, its heaviest column; ties go to the larger
    :func:`~graphs.signals.node_keys.lpa_tie`, then to the first column stored."""
    counts = np.diff(m.indptr)
    rows = np.flatnonzero(counts)
    if rows.size == 0:
        return rows, rows
    starts = m.indptr[rows]
    row_of = np.repeat(np.arange(m.shape[0]), counts)
    rowmax = np.full(m.shape[0], -np.inf)
    rowmax[rows] = np.maximum.reduceat(m.data, starts)
    # among the heaviest entries of a row, the largest tie-break (-1 marks the others)
    tie = np.where(m.data >= rowmax[row_of], lpa_tie(NUMPY, keys[row_of], keys[m.indices], round_no), -1)
    rowtie = np.full(m.shape[0], -1, dtype=np.int64)
    rowtie[rows] = np.maximum.reduceat(tie, starts)
    sel = np.flatnonzero(tie == rowtie[row_of])
    first = sel[np.concatenate(([True], row_of[sel][1:] != row_of[sel][:-1]))]
    return rows, m.indices[first].astype(np.int64)


def label_propagation(adj: sp.spmatrix, *, keys: NDArray[np.int64] | None = None, seed: int = 0,
                      max_iter: int = 30, tol: float = 5e-3) -> NDArray[np.int64]:
    """Community label per node of an undirected weighted graph.

    Parameters
    ----------
    adj
        Symmetric sparse adjacency (weights > 0, diagonal ignored).
    keys
        Each node's key (:func:`graphs.signals.node_keys.node_key` of its id);
        by default the keys of ``"0"``, ``"1"``, ...
    seed
        Mixed into the default keys (pass it to ``node_key`` with your own).
    max_iter, tol
        Stop after ``max_iter`` rounds or when at most ``tol * n`` nodes
        changed label.

    Returns
    -------
    ndarray
        Labels renumbered ``0 .. k-1``; isolated nodes keep their own label.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.disjoint_union(nx.complete_graph(5), nx.complete_graph(5))
    >>> labels = label_propagation(nx.to_scipy_sparse_array(g), seed=1)
    >>> len(set(labels[:5].tolist())), len(set(labels.tolist()))
    (1, 2)
    """
    coo = sp.coo_matrix(adj)
    off = coo.row != coo.col
    n = coo.shape[0]
    coo = sp.coo_matrix((coo.data[off].astype(np.float64), (coo.row[off], coo.col[off])), shape=(n, n))
    if keys is None:
        keys = node_keys(map(str, range(n)), seed)
    labels = np.arange(n, dtype=np.int64)
    for round_no in range(max_iter):
        m = _label_weights(coo, labels, n)
        rows, best = _row_argmax(m, keys, round_no)
        move = lpa_moves(NUMPY, keys[rows], round_no)
        changed = move & (best != labels[rows])
        labels[rows[changed]] = best[changed]
        if changed.sum() <= tol * n:
            break
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def community_roles(adj: sp.spmatrix, labels: NDArray[np.int64]) -> CommunityRoles:
    """Hub and connector measures (:class:`CommunityRoles`) of each node.

    Examples
    --------
    >>> a = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], float))
    >>> r = community_roles(a, np.array([0, 0, 1]))
    >>> r.participation.tolist(), r.n_communities.tolist()
    ([0.5, 0.0, 0.0], [2.0, 1.0, 1.0])
    """
    coo = sp.coo_matrix(adj)
    n = coo.shape[0]
    if n == 0:
        z0 = np.zeros(0)
        return CommunityRoles(degree=z0, intra=z0, intra_z=z0, participation=z0, n_communities=z0)
    m = _label_weights(coo, labels, n)
    m.sum_duplicates()
    k = np.asarray(m.sum(axis=1)).ravel()
    sq = np.asarray(m.multiply(m).sum(axis=1)).ravel()
    part = participation(NUMPY, sq, k)
    intra = np.asarray(m[np.arange(n), labels]).ravel()
    n_comm = np.diff(m.indptr).astype(np.float64)
    size = np.bincount(labels).astype(np.float64)
    mean = np.bincount(labels, weights=intra) / size
    var = np.bincount(labels, weights=intra ** 2) / size - mean ** 2
    std = np.sqrt(np.maximum(var, 0.0))[labels]
    z = np.where(std > 0, (intra - mean[labels]) / np.where(std > 0, std, 1.0), 0.0)
    return CommunityRoles(degree=k, intra=intra, intra_z=z, participation=part,
                          n_communities=n_comm)
