"""Per-node adjacency lists, for looking up a node's neighbourhood without the whole graph."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphs.events.table import EventTable
from graphs.features.matrices import DEVICE, USER, device_user_matrix, share_matrix

__all__ = ["distinct_recipients", "node_adjacency"]


def _row(m: sp.csr_matrix, i: int, names: Any, limit: int) -> list[list[Any]]:
    """The ``limit`` heaviest entries of row ``i`` as ``[name, weight]``, heaviest first."""
    start, end = m.indptr[i], m.indptr[i + 1]
    if start == end:
        return []
    cols, vals = m.indices[start:end], m.data[start:end]
    order = np.argsort(-vals, kind="stable")[:limit]
    return [[str(names[c]), float(vals[k])] for k, c in zip(order, cols[order], strict=True)]


def node_adjacency(t: EventTable, limit: int = 50) -> Iterator[tuple[str, str, dict[str, list[list[Any]]]]]:
    """Yield ``(kind, id, lists)`` for every node with a neighbour.

    Users get ``out`` (recipients), ``in`` (sharers to them) and ``devices``;
    devices get ``users``. Each list holds at most ``limit`` ``[id, weight]``
    pairs, heaviest first, so a hub costs no more than anyone else.

    Examples
    --------
    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": "a", "device_id": "d", "coupon_id": "c", "ts": 0,
    ...                   "recipients": ["b"]}])
    >>> sorted((k, n, sorted(v)) for k, n, v in node_adjacency(t))
    [('device', 'd', ['users']), ('user', 'a', ['devices', 'out']), ('user', 'b', ['in'])]
    """
    share = share_matrix(t)
    incoming = share.T.tocsr()
    du = device_user_matrix(t)
    ud = du.T.tocsr()
    for i in range(t.n_users):
        lists = {"out": _row(share, i, t.users, limit), "in": _row(incoming, i, t.users, limit),
                 "devices": _row(ud, i, t.devices, limit)}
        lists = {k: v for k, v in lists.items() if v}
        if lists:
            yield USER, str(t.users[i]), lists
    for j in range(t.n_devices):
        users = _row(du, j, t.users, limit)
        if users:
            yield DEVICE, str(t.devices[j]), {"users": users}


def distinct_recipients(t: EventTable) -> dict[str, int]:
    """How many different people each user delivered shares to (their reach).

    >>> from graphs.events.jsonl import read_events
    >>> t = read_events([{"user_id": "a", "coupon_id": "c", "ts": 0, "recipients": ["b", "c", "b"]}])
    >>> distinct_recipients(t)
    {'a': 2}
    """
    reach = np.diff(share_matrix(t).indptr)
    return {str(t.users[i]): int(reach[i]) for i in np.flatnonzero(reach)}
