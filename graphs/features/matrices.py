"""The share graph as sparse matrices, made in one call from the event arrays.

The heavy scoring never builds a Python object per edge: it works on these
``scipy.sparse`` matrices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from graphs.events.table import EventTable

__all__ = ["DEVICE", "USER", "binary", "device_user_matrix", "max_over_links", "share_matrix"]

#: node kinds, as in the rows and the adjacency lists
USER, DEVICE = "user", "device"


def share_matrix(t: EventTable) -> sp.csr_matrix:
    """Sharer -> recipient matrix; entry = number of deliveries.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": "a", "coupon_id": "c", "ts": 0,
    ...                   "recipients": ["b", "b2"]}])
    >>> share_matrix(t).toarray().tolist()
    [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    n = t.n_users
    data = np.ones(t.n_edges, dtype=np.float64)
    m = sp.csr_matrix((data, (t.edge_src, t.edge_dst)), shape=(n, n))
    m.sum_duplicates()
    return m


def device_user_matrix(t: EventTable) -> sp.csr_matrix:
    """Device x user matrix; entry = number of attempts (any decision).

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": u, "device_id": "d", "coupon_id": "c", "ts": 0}
    ...                  for u in "abc"])
    >>> device_user_matrix(t).toarray().tolist()
    [[1.0, 1.0, 1.0]]
    """
    has = t.device >= 0
    data = np.ones(int(has.sum()), dtype=np.float64)
    m = sp.csr_matrix((data, (t.device[has], t.sharer[has])), shape=(t.n_devices, t.n_users))
    m.sum_duplicates()
    return m


def binary(m: sp.spmatrix) -> sp.csr_matrix:
    """Same pattern as ``m`` with every stored entry set to 1.

    Examples
    --------
    >>> binary(sp.csr_matrix([[0, 3], [2, 0]])).toarray().tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    b = sp.csr_matrix(m, dtype=np.float64, copy=True)
    b.data[:] = 1.0
    return b




def max_over_links(m: sp.csr_matrix, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """For each row of the binary matrix ``m``, the largest ``values`` among its columns.

    Examples
    --------
    >>> m = sp.csr_matrix(np.array([[1.0, 1.0], [0.0, 0.0]]))
    >>> max_over_links(m, np.array([0.2, 0.7])).tolist()
    [0.7, 0.0]
    """
    w = sp.csr_matrix((values[m.indices], m.indices, m.indptr), shape=m.shape)
    out = np.zeros(m.shape[0])
    rows = np.flatnonzero(np.diff(m.indptr))
    if rows.size:
        out[rows] = np.maximum.reduceat(w.data, m.indptr[rows])
    return out
