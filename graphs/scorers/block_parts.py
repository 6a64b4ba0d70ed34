"""What a peeled block is made of: its separate groups, and the accounts only it reaches.

Greedy peeling keeps every node whose removal would lower the density, so
two groups that share nothing but a similar density come out as one block,
measured together: a tight ring peeled with a looser device farm inherits
the farm's open columns and scores as little as the farm.  A block is
therefore split into its connected parts (a row and a column of the same
account are one node: a ring's sharers are its own targets), each measured
on its own.

Peeling also trims a group's thinnest edges: a target its sharers reached
only twice costs the block more density than it brings, and is left out,
although everything it ever received came from the block.
:func:`closed_reach` finds those targets again.  Both functions read only
the block's own edges and the columns' total incoming weight, so they see
the same thing in both engines (the Spark engine peels the pruned graph).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

__all__ = ["closed_reach", "connected_parts"]


def connected_parts(w: sp.csr_matrix, rows: NDArray[np.int64],
                    cols: NDArray[np.int64]) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """The connected parts of the block ``rows`` x ``cols`` of ``w``, largest first.

    An account that is both a row and a column of the block is one node.

    Examples
    --------
    >>> m = np.zeros((8, 8)); m[:2, 2:4] = 1; m[4:6, 6:8] = 1
    >>> parts = connected_parts(sp.csr_matrix(m), np.array([0, 1, 4, 5]), np.array([2, 3, 6, 7]))
    >>> [(r.tolist(), c.tolist()) for r, c in parts]
    [([0, 1], [2, 3]), ([4, 5], [6, 7])]
    """
    members = np.union1d(rows, cols)
    sub = w[rows][:, cols].tocoo()
    r_pos, c_pos = np.searchsorted(members, rows), np.searchsorted(members, cols)
    g = sp.csr_matrix((np.ones(sub.nnz), (r_pos[sub.row], c_pos[sub.col])), shape=(members.size, members.size))
    n, label = connected_components(g, directed=False)
    if n == 1:
        return [(rows, cols)]
    r_lab, c_lab = label[r_pos], label[c_pos]
    order = np.argsort(-np.bincount(label, minlength=n), kind="stable")
    return [(rows[r_lab == k], cols[c_lab == k]) for k in order.tolist()]


def closed_reach(w: sp.csr_matrix, col_total: NDArray[np.float64], rows: NDArray[np.int64],
                 cols: NDArray[np.int64], cols_seen: NDArray[np.bool_], *, min_sharers: int,
                 min_closure: float, claims: sp.csr_matrix | None = None,
                 min_claim: float = 0.0) -> NDArray[np.int64]:
    """Columns outside the block that hear from it alone: at least ``min_sharers`` of its rows.

    ``cols_seen`` masks the columns that may be added (those the pruning
    kept, not already in a block).  A column qualifies when at least
    ``min_closure`` of its whole incoming weight (``col_total``) comes from
    the block's rows, from ``min_sharers`` of them or more: one share from
    a suspicious account is what a real user spammed once looks like, two
    sharers of one closed group and nobody else is the group's own target.
    With ``claims`` (sharer x recipient claim credit) the column's mean
    credit over the block's sharers must be ``min_claim`` at least.

    Examples
    --------
    >>> m = np.zeros((6, 6)); m[:3, 3:5] = 1; m[:2, 5] = 1; m[2, 0] = 1
    >>> w = sp.csr_matrix(m)
    >>> total = np.asarray(w.sum(axis=0)).ravel()
    >>> closed_reach(w, total, np.arange(3), np.array([3, 4]), np.ones(6, bool), min_sharers=2,
    ...              min_closure=0.9).tolist()
    [5]
    """
    inside = np.zeros(w.shape[1], dtype=bool)
    inside[cols] = True
    block_rows = sp.csr_matrix(w[rows])
    weight = np.asarray(block_rows.sum(axis=0)).ravel()
    sharers = np.bincount(block_rows.indices, minlength=w.shape[1])
    ok = (cols_seen & ~inside & (sharers >= min_sharers)
          & (weight >= min_closure * np.maximum(col_total, 1e-12)))
    if claims is not None:
        # a group's own targets claim what it sends them; a real user a farm spammed does not
        credit = np.asarray(sp.csr_matrix(claims[rows]).sum(axis=0)).ravel() / np.maximum(sharers, 1)
        ok &= credit >= min_claim
    return np.flatnonzero(ok).astype(np.int64)
