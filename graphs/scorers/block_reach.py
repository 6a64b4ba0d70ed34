"""The targets of a dense block that its peel left out.

Greedy peeling trims a group's thinnest edges: a target its sharers reached
only a few times costs the block more density than it brings, and is left
out, although everything it ever received came from the block.  It is then
judged as a lone recipient of suspicious shares, exactly like a real user
a farm spammed once.  :func:`closed_reach` finds those targets again.  It
reads only the block's own rows, the columns the pruning kept, the columns'
total incoming weight and the pair claim credits, so both engines see the
same thing (the Spark engine peels the pruned graph).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["closed_reach"]


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
