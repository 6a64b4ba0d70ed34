"""Closed groups: accounts that share with each other and hear from nobody else.

A reward ring's camouflage goes outwards (shares to real users), never
inwards: no real user ever shares with a ring member.  So a ring is a small
strongly connected part of the share graph (every member reaches every
other through shares) that no share from the rest of the graph enters,
except from accounts that never received a share themselves (the ring's
own sharers that are not its targets).  A sparse ring (six accounts, a
third of the pairs) is far too thin for FRAUDAR's density, but it is still
closed.  Real friends are part of the social graph: shares reach them from
friends of friends, so their strongly connected part is the whole world or
receives from it.  Small closed parts occur among real users too (three or
four friends passing coupons between them), but thin ones: about one share
per member.  The score ramps on the shares inside the group per member.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

from graphs.signals.catalog import CLOSED_GROUP
from graphs.signals.formulas import NUMPY, ramp
from graphs.signals.signal import Signal

__all__ = ["closed_group_signal", "closed_groups"]


def closed_groups(share_bin: sp.spmatrix, *, min_size: int,
                  max_size: int) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Per user: its closed group's id (-1: none), the group's size and its shares per member.

    A group is a strongly connected part of ``min_size`` to ``max_size``
    accounts whose inflow from outside comes only from accounts that never
    received a share; those sharers then join the group (each the one it
    sends most to).  ``size`` and the shares per member count them.

    Examples
    --------
    >>> m = np.zeros((9, 9)); ring = [0, 1, 2, 3]
    >>> m[np.ix_(ring, ring)] = 1 - np.eye(4); m[4, 0] = 1    # a ring fed by account 4
    >>> m[5, 6] = m[6, 7] = m[7, 5] = m[8, 5] = 1; m[2, 8] = 1   # a cycle fed by the ring's member
    >>> g, size, per = closed_groups(sp.csr_matrix(m), min_size=3, max_size=50)
    >>> (g >= 0).astype(int).tolist(), size[:5].tolist(), float(per[0])
    ([1, 1, 1, 1, 1, 0, 0, 0, 0], [5.0, 5.0, 5.0, 5.0, 5.0], 2.6)
    """
    s = sp.csr_matrix(share_bin, dtype=np.float64)
    n = s.shape[0]
    s.setdiag(0)
    s.eliminate_zeros()
    _, comp = connected_components(s, directed=True, connection="strong")
    coo = s.tocoo()
    src, dst = coo.row, coo.col
    in_deg = np.bincount(dst, minlength=n)
    cross = comp[src] != comp[dst]
    # an outside sharer that itself received something ties the part to the world
    tied = np.bincount(comp[dst[cross & (in_deg[src] > 0)]], minlength=n) > 0  # labels are < n
    size = np.bincount(comp, minlength=tied.size)
    ok = ~tied & (size >= min_size) & (size <= max_size)
    group = np.where(ok[comp], comp, -1)
    # sources feeding a closed part join it (the one they send most to)
    feed = cross & ok[comp[dst]] & (in_deg[src] == 0)
    if feed.any():
        pair = sp.csr_matrix((np.ones(int(feed.sum())), (src[feed], comp[dst[feed]])), shape=(n, tied.size))
        best = np.asarray(pair.argmax(axis=1)).ravel()
        feeds = np.diff(pair.indptr) > 0
        group = np.where(feeds & (group < 0), best, group)
    member = group >= 0
    inner = member[src] & member[dst] & (group[src] == group[dst])
    edges = np.bincount(group[src[inner]], minlength=tied.size).astype(np.float64)
    g_size = np.bincount(group[member], minlength=tied.size).astype(np.float64)
    out_size = np.where(member, g_size[np.maximum(group, 0)], 0.0)
    per = np.where(member, edges[np.maximum(group, 0)] / np.maximum(out_size, 1.0), 0.0)
    return group.astype(np.int64), out_size, per


def closed_group_signal(share_bin: sp.spmatrix, per_member: tuple[float, float], *, min_size: int,
                        max_size: int) -> Signal:
    """Members of a closed group, scored ``ramp(shares inside per member, per_member)``.

    Examples
    --------
    >>> m = np.zeros((8, 8)); ring = np.arange(6)
    >>> m[np.ix_(ring, ring)] = 1 - np.eye(6)
    >>> s = closed_group_signal(sp.csr_matrix(m), (1.5, 3.0), min_size=4, max_size=50)
    >>> s.score.tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    group, size, per = closed_groups(share_bin, min_size=min_size, max_size=max_size)
    score = np.asarray(ramp(NUMPY, per, per_member), dtype=np.float64) * (group >= 0)
    return Signal.of(CLOSED_GROUP, per, score, {"size": size})
